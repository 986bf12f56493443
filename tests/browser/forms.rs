//! Form steps: fields found as a person finds them, by their label, and buttons and links by
//! what they read.

use serde_json::json;

use crate::harness::{element_json, Browser, Element};

impl Browser {
    /// Types `value` into the field labelled `field` (its `<label>`'s text, whole or a unique
    /// beginning, or its `aria-label`), else the field named `field`. A `<select>` gets the
    /// option shown as `value`; date and time inputs get `value` in their wire format
    /// (`2027-03-10`, `09:30`).
    pub async fn fill(&self, field: &str, value: &str) {
        let element = self.field(field).await;
        let tag = element
            .tag_name()
            .await
            .unwrap_or_else(|e| panic!("the tag of {field:?}: {e}"));
        let kind = element
            .attr("type")
            .await
            .unwrap_or_else(|e| panic!("the type of {field:?}: {e}"))
            .unwrap_or_default();
        if tag.eq_ignore_ascii_case("select") {
            element
                .select_by_label(value)
                .await
                .unwrap_or_else(|e| panic!("choose {value:?} in {field:?}: {e}"));
        } else if matches!(
            kind.as_str(),
            "date" | "time" | "datetime-local" | "month" | "week" | "color" | "range"
        ) {
            // Typing into these depends on the browser's locale; set what a picker would.
            self.client()
                .execute(SET_VALUE_JS, vec![element_json(&element), json!(value)])
                .await
                .unwrap_or_else(|e| panic!("set {field:?} to {value:?}: {e}"));
        } else {
            element
                .clear()
                .await
                .unwrap_or_else(|e| panic!("clear {field:?}: {e}"));
            element
                .send_keys(value)
                .await
                .unwrap_or_else(|e| panic!("type into {field:?}: {e}"));
        }
    }

    /// Ticks the checkbox or chooses the radio button found as in [`Browser::fill`].
    pub async fn check(&self, field: &str) {
        self.set_checked(field, true).await;
    }

    /// Unticks the checkbox found as in [`Browser::fill`].
    pub async fn uncheck(&self, field: &str) {
        self.set_checked(field, false).await;
    }

    async fn set_checked(&self, field: &str, checked: bool) {
        let element = self.field(field).await;
        let is_checked = async || {
            element
                .is_selected()
                .await
                .unwrap_or_else(|e| panic!("whether {field:?} is checked: {e}"))
        };
        if is_checked().await != checked {
            // A styled control often hides its input; clicking its label is what a person does.
            if element.click().await.is_err() {
                self.client()
                    .execute(
                        "arguments[0].labels[0].click();",
                        vec![element_json(&element)],
                    )
                    .await
                    .unwrap_or_else(|e| panic!("click {field:?} or its label: {e}"));
            }
        }
        assert_eq!(
            is_checked().await,
            checked,
            "{field:?} is {}",
            if checked { "checked" } else { "unchecked" }
        );
    }

    /// Clicks the one shown button (`<button>`, a submit or button `<input>`, or
    /// `role="button"`) whose text or `aria-label` is `text`.
    pub async fn click_button(&self, text: &str) {
        let found = self
            .client()
            .execute(BUTTON_JS, vec![json!(text)])
            .await
            .unwrap_or_else(|e| panic!("look for the button {text:?}: {e}"));
        let buttons = self.elements(&found["found"]);
        let [button] = buttons.as_slice() else {
            panic!(
                "{} shown buttons read {text:?} on {}; the buttons are {}",
                buttons.len(),
                self.location().await,
                found["buttons"]
            );
        };
        button
            .click()
            .await
            .unwrap_or_else(|e| panic!("click the button {text:?}: {e}"));
    }

    /// Follows the first shown link whose text is `text`: as shown, or as a screen reader reads
    /// it (with visually hidden text, e.g. "Cancel<span class="visually-hidden"> Benefits
    /// realisation</span>"), or its `aria-label`.
    pub async fn click_link(&self, text: &str) {
        let found = self
            .client()
            .execute(LINK_JS, vec![json!(text)])
            .await
            .unwrap_or_else(|e| panic!("look for the link {text:?}: {e}"));
        let Some(link) = self.elements(&found["found"]).into_iter().next() else {
            panic!(
                "no link {text:?} on {}; the links are {}",
                self.location().await,
                found["links"]
            );
        };
        link.click()
            .await
            .unwrap_or_else(|e| panic!("follow the link {text:?}: {e}"));
    }

    /// The one field labelled or named `field`.
    async fn field(&self, field: &str) -> Element {
        let found = self
            .client()
            .execute(FIELD_JS, vec![json!(field)])
            .await
            .unwrap_or_else(|e| panic!("look for the field {field:?}: {e}"));
        let mut fields = self.elements(&found["found"]);
        match fields.len() {
            1 => fields.remove(0),
            0 => panic!(
                "no field labelled or named {field:?} on {}; the labels are {}",
                self.location().await,
                found["labels"]
            ),
            n => panic!(
                "{n} fields are labelled or named {field:?} on {}; the labels are {}",
                self.location().await,
                found["labels"]
            ),
        }
    }
}

/// Finds the fields for `arguments[0]`: by label text (whole), `aria-label`, `name`, then a
/// label that begins with it. Also gives every label's text, for the failure message.
const FIELD_JS: &str = r#"
const wanted = arguments[0];
const norm = (s) => (s || "").replace(/\s+/g, " ").trim();
const labels = Array.from(document.querySelectorAll("label"));
const controls = (list) => [...new Set(list.map((l) => l.control).filter(Boolean))];
let found = controls(labels.filter((l) => norm(l.innerText) === wanted));
if (found.length === 0) {
  found = Array.from(document.querySelectorAll("[aria-label]"))
    .filter((e) => norm(e.getAttribute("aria-label")) === wanted);
}
if (found.length === 0) {
  found = Array.from(document.getElementsByName(wanted));
}
if (found.length === 0) {
  found = controls(labels.filter((l) => norm(l.innerText).startsWith(wanted)));
}
return { found, labels: labels.map((l) => norm(l.innerText)) };
"#;

/// Finds the shown buttons reading `arguments[0]`; also gives every shown button's text.
const BUTTON_JS: &str = r#"
const wanted = arguments[0];
const norm = (s) => (s || "").replace(/\s+/g, " ").trim();
const shown = Array.from(document.querySelectorAll(
  'button, input[type="submit"], input[type="button"], input[type="reset"], [role="button"]'
)).filter((b) => b.getClientRects().length > 0);
const text = (b) => norm(b.tagName === "INPUT" ? b.value : b.innerText);
const found = shown.filter(
  (b) => text(b) === wanted || norm(b.getAttribute("aria-label")) === wanted
);
return { found, buttons: shown.map(text) };
"#;

/// Finds the shown links reading `arguments[0]`, as shown, in full or by `aria-label`; also
/// gives every shown link's full text.
const LINK_JS: &str = r#"
const wanted = arguments[0];
const norm = (s) => (s || "").replace(/\s+/g, " ").trim();
const shown = Array.from(document.querySelectorAll("a[href]"))
  .filter((a) => a.getClientRects().length > 0);
const found = shown.filter((a) =>
  [a.innerText, a.textContent, a.getAttribute("aria-label")].some((t) => norm(t) === wanted)
);
return { found, links: shown.map((a) => norm(a.textContent)) };
"#;

/// Sets `arguments[0]`'s value to `arguments[1]` and tells the page, as a picker would.
const SET_VALUE_JS: &str = r#"
const [field, value] = arguments;
field.value = value;
field.dispatchEvent(new Event("input", { bubbles: true }));
field.dispatchEvent(new Event("change", { bubbles: true }));
"#;
