//! The browser under test: headless Chromium driven by chromedriver over WebDriver, one browser
//! per test, with the steps flow tests are written in (form steps in [`crate::forms`]).
//!
//! Every [`Browser`] has its own chromedriver (it starts in tens of milliseconds, next to a second
//! for Chromium), its own profile in a temporary folder, and ends all of them when dropped, even
//! when the test failed. At most `MASTERCLASS_TEST_BROWSERS` browsers (default: one per core, at
//! most four) are open at once, whatever the number of test threads.
//!
//! The steps panic with what they were looking for and what the page had instead: a test reads
//! as a list of steps, and a failed step is the failure message.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::SemaphorePermit;

use crate::helpers::{Backend, TestApp};
use crate::tools::{browser_slots, tools, Driver};
use crate::webdriver::{By, Session};

pub use crate::webdriver::Element;

/// How long a step waits for the page before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// How often a waiting step looks again.
const POLL: Duration = Duration::from_millis(50);

/// The viewport every browser opens with.
pub const DESKTOP: (u32, u32) = (1280, 800);

/// What Chromium runs with: headless, and quiet: nothing of its own is fetched, no profile is
/// shared. Host names other than `localhost` and `127.0.0.1` do not resolve, so a page that
/// reaches for the internet fails here rather than depending on it; the language is fixed (with
/// the `intl.accept_languages` preference) so `Accept-Language` does not follow the machine's.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
    "--lang=en-GB",
];

/// The real server on `backend` and a browser, started together; `None` when either is out of
/// reach outside CI. Fits `on_both_backends_with!`, whose tests then take `(TestApp, Browser)`.
pub async fn spawn(backend: Backend) -> Option<(TestApp, Browser)> {
    tools()?;
    let (app, browser) = tokio::join!(TestApp::spawn(backend), Browser::open());
    Some((app?, browser?))
}

/// One headless Chromium in a WebDriver session of its own, for one test.
///
/// Dropping it ends the session, Chromium and chromedriver, and removes the profile.
pub struct Browser {
    client: Session,
    // Dropped in this order: the driver (and with it Chromium) before the profile it used.
    _driver: Driver,
    _profile: tempfile::TempDir,
    _slot: SemaphorePermit<'static>,
}

impl Browser {
    /// Opens a browser at [`DESKTOP`] size on a blank page; `None` when the browser tools are
    /// missing outside CI.
    pub async fn open() -> Option<Browser> {
        let tools = tools()?;
        let slot = browser_slots()
            .acquire()
            .await
            .expect("the browser slots stay open");
        let profile = tempfile::Builder::new()
            .prefix("masterclass-chromium-")
            .tempdir()
            .expect("a temporary profile folder");
        let driver = Driver::start(&tools.chromedriver).await;

        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|&f| f.to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push(format!("--window-size={},{}", DESKTOP.0, DESKTOP.1));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": tools.chromium,
                "args": args,
                "prefs": {"intl.accept_languages": "en-GB,en"},
            },
            "timeouts": {"pageLoad": 30_000, "script": 30_000, "implicit": 0},
        });
        let client = tokio::time::timeout(
            Duration::from_secs(60),
            Session::new(&driver.url, capabilities),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "Chromium ({}) started within 60 s",
                tools.chromium.display()
            )
        })
        .unwrap_or_else(|e| panic!("Chromium ({}) starts: {e}", tools.chromium.display()));
        // The session is ended by `Drop`.
        let browser = Browser {
            client,
            _driver: driver,
            _profile: profile,
            _slot: slot,
        };
        browser.set_viewport_size(DESKTOP.0, DESKTOP.1).await;
        Some(browser)
    }

    /// The WebDriver session, for what the steps here do not cover.
    pub fn client(&self) -> &Session {
        &self.client
    }

    /// Opens `url` and waits until it has loaded.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    pub async fn current_url(&self) -> String {
        self.client
            .current_url()
            .await
            .unwrap_or_else(|e| panic!("the current URL: {e}"))
    }

    /// The current URL for a failure message: a `data:` page is cut short.
    pub(crate) async fn location(&self) -> String {
        let url = self.current_url().await;
        match url.char_indices().nth(80) {
            Some((end, _)) if url.starts_with("data:") => format!("{}…", &url[..end]),
            _ => url,
        }
    }

    pub async fn title(&self) -> String {
        self.client
            .title()
            .await
            .unwrap_or_else(|e| panic!("the page title: {e}"))
    }

    /// The page's text as shown (hidden elements left out).
    pub async fn text(&self) -> String {
        self.text_of("body").await
    }

    /// The shown text of the first element matching `css`.
    pub async fn text_of(&self, css: &str) -> String {
        self.find(css)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("the text of `{css}`: {e}"))
    }

    /// The first element matching `css`, now.
    pub async fn find(&self, css: &str) -> Element {
        match self.client.find(By::Css(css)).await {
            Ok(element) => element,
            Err(e) if e.is_no_such_element() => {
                panic!("no `{css}` on {}: {e}", self.location().await)
            }
            Err(e) => panic!("look for `{css}` on {}: {e}", self.location().await),
        }
    }

    /// Every element matching `css`, now; maybe none.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(By::Css(css))
            .await
            .unwrap_or_else(|e| panic!("look for `{css}`: {e}"))
    }

    /// Waits up to [`WAIT`] for an element matching `css`.
    pub async fn wait_for(&self, css: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.client.find(By::Css(css)).await {
                Ok(element) => return element,
                Err(e) if e.is_no_such_element() => {
                    if Instant::now() >= deadline {
                        panic!(
                            "no `{css}` on {} within {WAIT:?}: {e}",
                            self.location().await
                        );
                    }
                }
                Err(e) => panic!("look for `{css}` on {}: {e}", self.location().await),
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits up to [`WAIT`] until the page shows `text`.
    pub async fn wait_for_text(&self, text: &str) {
        let mut shown = String::new();
        let found = self
            .poll(async || {
                shown = self.page_text_now().await;
                shown.contains(text)
            })
            .await;
        assert!(
            found,
            "{:?} did not appear on {} within {WAIT:?}; the page shows:\n{shown}",
            text,
            self.location().await
        );
    }

    /// Waits up to [`WAIT`] until `condition` holds; `what` names it in the failure.
    pub async fn wait_until(&self, what: &str, mut condition: impl AsyncFnMut(&Browser) -> bool) {
        let held = self.poll(async || condition(self).await).await;
        assert!(
            held,
            "{what}: not so on {} within {WAIT:?}",
            self.location().await
        );
    }

    /// Whether `check` held within [`WAIT`], asked every 50 ms.
    async fn poll(&self, mut check: impl AsyncFnMut() -> bool) -> bool {
        let deadline = Instant::now() + WAIT;
        loop {
            if check().await {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The page text, or nothing while a navigation has no body yet.
    async fn page_text_now(&self) -> String {
        let text = self
            .client
            .execute(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await;
        text.ok()
            .and_then(|t| t.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The elements in a script's answer.
    pub(crate) fn elements(&self, list: &Value) -> Vec<Element> {
        self.client.elements_in(list)
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns what it returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The viewport's size in CSS pixels.
    pub async fn viewport_size(&self) -> (u32, u32) {
        let size = self
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await;
        let side = |i: usize| {
            size[i]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .expect("a viewport side")
        };
        (side(0), side(1))
    }

    /// Makes the viewport (what the page lays out in) `width` × `height` CSS pixels: the window
    /// is that much bigger than its viewport, so it is sized, measured and sized again.
    pub async fn set_viewport_size(&self, width: u32, height: u32) {
        self.set_window_size(width, height).await;
        let (inner_width, inner_height) = self.viewport_size().await;
        if (inner_width, inner_height) != (width, height) {
            let grow = |wanted: u32, got: u32| (2 * wanted).saturating_sub(got).max(wanted);
            self.set_window_size(grow(width, inner_width), grow(height, inner_height))
                .await;
        }
    }

    /// The window's outer size.
    pub async fn window_size(&self) -> (u32, u32) {
        self.client
            .window_size()
            .await
            .unwrap_or_else(|e| panic!("window size: {e}"))
    }

    /// Sets the window's outer size; see [`Browser::set_viewport_size`] for the page's.
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .unwrap_or_else(|e| panic!("resize the window to {width}×{height}: {e}"));
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("a screenshot: {e}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing the session lets Chromium quit and release its profile before the folder goes.
        // Drop may run on the test's runtime, outside it, or while unwinding from a failed step,
        // so the request is made from a thread of its own.
        let url = self.client.url().to_owned();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                reqwest::Client::builder()
                    .no_proxy()
                    .build()
                    .ok()?
                    .delete(url)
                    .timeout(Duration::from_secs(20))
                    .send()
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// An element as a script argument.
pub(crate) fn element_json(element: &Element) -> Value {
    element.to_json()
}
