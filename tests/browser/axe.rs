//! Accessibility checks with axe-core, run inside the page under test.
//!
//! `axe.min.js` is read from `MASTERCLASS_TEST_AXE_JS` (default `node_modules/axe-core/axe.min.js`
//! in the repository; install it with `npm install --no-save axe-core@4`). It is a test tool
//! only (MPL-2.0): never committed, never shipped.
//!
//! A violation of impact `serious` or `critical` fails the test; `moderate` and `minor` ones are
//! printed with the test's output.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::json;

use crate::harness::Browser;
use crate::tools::tools;

/// How much a violation hurts, as axe-core rates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Impact {
    Minor,
    Moderate,
    Serious,
    Critical,
}

impl Impact {
    /// Whether a violation of this impact fails the test.
    pub fn fails(self) -> bool {
        self >= Impact::Serious
    }
}

impl fmt::Display for Impact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Impact::Minor => "minor",
            Impact::Moderate => "moderate",
            Impact::Serious => "serious",
            Impact::Critical => "critical",
        })
    }
}

/// A rule the page breaks, with the elements that break it.
#[derive(Debug, Clone, Deserialize)]
pub struct Violation {
    /// The rule, e.g. `image-alt`.
    pub id: String,
    pub impact: Option<Impact>,
    /// What the rule asks for, in a sentence.
    pub help: String,
    #[serde(rename = "helpUrl")]
    pub help_url: String,
    pub nodes: Vec<Node>,
}

/// One element that breaks a rule.
#[derive(Debug, Clone, Deserialize)]
pub struct Node {
    /// CSS selectors leading to the element (more than one across frames).
    pub target: Vec<String>,
}

/// Everything one axe-core run found on a page.
#[derive(Debug, Clone)]
pub struct AxeReport {
    /// The name the test gave the page.
    pub page: String,
    pub url: String,
    pub axe_version: String,
    pub violations: Vec<Violation>,
    pub rules_passed: usize,
    /// Rules axe-core could not decide (e.g. contrast over an image); for a person to review.
    pub rules_incomplete: usize,
}

/// How a page fared, for a test to report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AxeSummary {
    /// Rules broken, by impact (a rule without an impact is not counted).
    pub violations: BTreeMap<Impact, usize>,
    pub rules_passed: usize,
    pub rules_incomplete: usize,
}

impl AxeSummary {
    pub fn count(&self, impact: Impact) -> usize {
        self.violations.get(&impact).copied().unwrap_or(0)
    }
}

impl fmt::Display for AxeSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [critical, serious, moderate, minor] = [
            Impact::Critical,
            Impact::Serious,
            Impact::Moderate,
            Impact::Minor,
        ]
        .map(|impact| self.count(impact));
        write!(
            f,
            "{critical} critical, {serious} serious, {moderate} moderate, {minor} minor; \
             {} rules passed, {} to review",
            self.rules_passed, self.rules_incomplete
        )
    }
}

impl AxeReport {
    pub fn summary(&self) -> AxeSummary {
        let mut violations = BTreeMap::new();
        for impact in self.violations.iter().filter_map(|v| v.impact) {
            *violations.entry(impact).or_insert(0) += 1;
        }
        AxeSummary {
            violations,
            rules_passed: self.rules_passed,
            rules_incomplete: self.rules_incomplete,
        }
    }

    /// The violations that fail the test.
    pub fn failing(&self) -> impl Iterator<Item = &Violation> {
        self.violations
            .iter()
            .filter(|v| v.impact.is_some_and(Impact::fails))
    }

    /// Why the page fails, listing each failing rule and the elements breaking it; `None` when it
    /// passes.
    pub fn failure(&self) -> Option<String> {
        let failing: Vec<&Violation> = self.failing().collect();
        if failing.is_empty() {
            return None;
        }
        Some(format!(
            "accessibility: {:?} ({}) has {} serious or critical violation(s) (axe-core {}):\n{}",
            self.page,
            self.url,
            failing.len(),
            self.axe_version,
            list(&failing)
        ))
    }

    /// The violations that do not fail the test, for the output.
    fn notes(&self) -> Option<String> {
        let minor: Vec<&Violation> = self
            .violations
            .iter()
            .filter(|v| !v.impact.is_some_and(Impact::fails))
            .collect();
        (!minor.is_empty()).then(|| {
            format!(
                "accessibility: {:?} has {} moderate or minor violation(s), not failing:\n{}",
                self.page,
                minor.len(),
                list(&minor)
            )
        })
    }
}

/// One entry per rule: id, impact, help and link, then each element's selector.
fn list(violations: &[&Violation]) -> String {
    let mut out = String::new();
    for v in violations {
        let impact = v.impact.map_or("no impact".to_owned(), |i| i.to_string());
        out.push_str(&format!(
            "  - {} ({impact}): {} <{}>\n",
            v.id, v.help, v.help_url
        ));
        for node in &v.nodes {
            out.push_str(&format!("      {}\n", node.target.join(" >> ")));
        }
    }
    out
}

/// Checks the page shown with axe-core: fails the test on any serious or critical violation,
/// prints the others, and returns how the page fared. `page` names it in the messages.
pub async fn axe(browser: &Browser, page: &str) -> AxeSummary {
    let report = axe_report(browser, page).await;
    if let Some(failure) = report.failure() {
        panic!("{failure}");
    }
    report.summary()
}

/// Runs axe-core on the page shown and returns everything it found, failing nothing.
pub async fn axe_report(browser: &Browser, page: &str) -> AxeReport {
    let loaded = browser
        .execute("return window.axe ? window.axe.version : null;", vec![])
        .await;
    if loaded.is_null() {
        browser.execute(axe_source(), vec![]).await;
    }
    let answer = browser
        .client()
        .execute_async(RUN_JS, vec![json!(["violations"])])
        .await
        .unwrap_or_else(|e| panic!("axe-core runs on {page:?}: {e}"));
    if let Some(error) = answer["error"].as_str() {
        panic!("axe-core failed on {page:?}: {error}");
    }
    let violations: Vec<Violation> = serde_json::from_value(answer["violations"].clone())
        .unwrap_or_else(|e| panic!("axe-core's violations read: {e}\n{answer}"));
    let count = |key: &str| {
        answer[key]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or_else(|| panic!("axe-core's {key} count in {answer}"))
    };
    let report = AxeReport {
        page: page.to_owned(),
        url: browser.current_url().await,
        axe_version: answer["version"].as_str().unwrap_or("?").to_owned(),
        rules_passed: count("passes"),
        rules_incomplete: count("incomplete"),
        violations,
    };
    if let Some(notes) = report.notes() {
        println!("{notes}");
    }
    report
}

/// `axe.min.js`, read once.
fn axe_source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = &tools().expect("browser tools checked").axe;
        std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("read axe-core at {}: {e}", path.display()))
    })
}

/// Runs axe-core on the whole document and answers with what the report needs. A passed rule
/// keeps a single node when only violations are asked for in full, so the count is right.
const RUN_JS: &str = r#"
const [resultTypes, done] = arguments;
const selector = (t) => (Array.isArray(t) ? t.join(" >>> ") : String(t));
window.axe
  .run(document, { resultTypes })
  .then((r) =>
    done({
      version: window.axe.version,
      passes: r.passes.length,
      incomplete: r.incomplete.length,
      violations: r.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        helpUrl: v.helpUrl.split("?")[0],
        nodes: v.nodes.map((n) => ({ target: n.target.map(selector) })),
      })),
    })
  )
  .catch((e) => done({ error: String((e && e.stack) || e) }));
"#;
