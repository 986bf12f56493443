//! A small W3C WebDriver client: the commands the harness uses, over HTTP to a local
//! chromedriver.
//!
//! A [`Session`] is a handle on one WebDriver session (cheap to clone); an [`Element`] is a web
//! element of that session. Every command answers `Result<_, Error>`; an [`Error`] names the
//! command, and [`Error::is_no_such_element`] tells a lookup that found nothing from a failure.
//!
//! Ending the session is left to the owner ([`Session::url`] is what to `DELETE`), since it has
//! to happen in `Drop`, outside any runtime.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

/// The web element identifier: the key under which WebDriver passes an element to and from a
/// script, and answers a lookup.
pub const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The longest any one command may take: past the page-load and script timeouts the session is
/// opened with, so those answer first.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);

/// How elements are looked for.
#[derive(Debug, Clone, Copy)]
pub enum By<'a> {
    Css(&'a str),
    /// An `<a>` whose shown text is exactly this.
    LinkText(&'a str),
    XPath(&'a str),
}

impl By<'_> {
    fn to_json(self) -> Value {
        let (using, value) = match self {
            By::Css(css) => ("css selector", css),
            By::LinkText(text) => ("link text", text),
            By::XPath(path) => ("xpath", path),
        };
        json!({ "using": using, "value": value })
    }
}

/// A command that failed: what WebDriver said, or why it could not be asked.
#[derive(Debug, Clone)]
pub struct Error {
    /// The command, e.g. `Find Element`.
    pub command: &'static str,
    pub kind: ErrorKind,
}

#[derive(Debug, Clone)]
pub enum ErrorKind {
    /// WebDriver answered with an error code (e.g. `no such element`) and a message.
    WebDriver {
        status: u16,
        error: String,
        message: String,
    },
    /// No answer, or one that is not WebDriver's.
    Transport(String),
}

impl Error {
    /// The WebDriver error code, e.g. `no such element`.
    pub fn code(&self) -> Option<&str> {
        match &self.kind {
            ErrorKind::WebDriver { error, .. } => Some(error),
            ErrorKind::Transport(_) => None,
        }
    }

    /// Whether a lookup found nothing (rather than failing).
    pub fn is_no_such_element(&self) -> bool {
        self.code() == Some("no such element")
    }

    fn transport(command: &'static str, why: impl fmt::Display) -> Error {
        Error {
            command,
            kind: ErrorKind::Transport(why.to_string()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::WebDriver {
                status,
                error,
                message,
            } => write!(
                f,
                "WebDriver {}: {error} (HTTP {status}): {message}",
                self.command
            ),
            ErrorKind::Transport(why) => write!(f, "WebDriver {}: {why}", self.command),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// One WebDriver session; clones share it.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// `<driver>/session/<id>`.
    url: String,
}

/// An HTTP client for a local driver: never through a proxy, every request bounded.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(COMMAND_TIMEOUT)
        .build()
        .expect("an HTTP client")
}

/// Sends one command and unwraps WebDriver's `{"value": ...}` answer.
async fn send(
    http: &reqwest::Client,
    command: &'static str,
    method: Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value> {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .map_err(|e| Error::transport(command, e))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| Error::transport(command, e))?;
    let answer: Value = serde_json::from_str(&text).map_err(|e| {
        Error::transport(
            command,
            format!("HTTP {status}, not JSON ({e}): {}", shorten(&text)),
        )
    })?;
    let Some(value) = answer.get("value") else {
        return Err(Error::transport(
            command,
            format!("HTTP {status}, no value: {}", shorten(&text)),
        ));
    };
    if status.is_success() {
        return Ok(value.clone());
    }
    match value["error"].as_str() {
        Some(error) => Err(Error {
            command,
            kind: ErrorKind::WebDriver {
                status: status.as_u16(),
                error: error.to_owned(),
                message: value["message"].as_str().unwrap_or_default().to_owned(),
            },
        }),
        None => Err(Error::transport(
            command,
            format!(
                "HTTP {}, no error code: {}",
                status.as_u16(),
                shorten(&text)
            ),
        )),
    }
}

fn shorten(text: &str) -> &str {
    match text.char_indices().nth(500) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

impl Session {
    /// Opens a session on the driver at `driver` (e.g. `http://127.0.0.1:9515`) with
    /// `capabilities` always matched.
    pub async fn new(driver: &str, capabilities: Value) -> Result<Session> {
        const COMMAND: &str = "New Session";
        let http = http_client();
        let answer = send(
            &http,
            COMMAND,
            Method::POST,
            &format!("{}/session", driver.trim_end_matches('/')),
            Some(json!({ "capabilities": { "alwaysMatch": capabilities } })),
        )
        .await?;
        let id = answer["sessionId"]
            .as_str()
            .ok_or_else(|| Error::transport(COMMAND, format!("no session id in {answer}")))?;
        Ok(Session {
            inner: Arc::new(Inner {
                http,
                url: format!("{}/session/{id}", driver.trim_end_matches('/')),
            }),
        })
    }

    /// The session's own URL, `<driver>/session/<id>`: `DELETE` it to end the session.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    async fn command(
        &self,
        command: &'static str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.inner.url);
        send(&self.inner.http, command, method, &url, body).await
    }

    async fn get(&self, command: &'static str, path: &str) -> Result<Value> {
        self.command(command, Method::GET, path, None).await
    }

    async fn post(&self, command: &'static str, path: &str, body: Value) -> Result<Value> {
        self.command(command, Method::POST, path, Some(body)).await
    }

    /// Opens `url` and waits until it has loaded.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.post("Navigate To", "/url", json!({ "url": url }))
            .await
            .map(drop)
    }

    pub async fn current_url(&self) -> Result<String> {
        const COMMAND: &str = "Get Current URL";
        string(COMMAND, self.get(COMMAND, "/url").await?)
    }

    pub async fn title(&self) -> Result<String> {
        const COMMAND: &str = "Get Title";
        string(COMMAND, self.get(COMMAND, "/title").await?)
    }

    /// The first element found `by`; an error for which [`Error::is_no_such_element`] holds when
    /// there is none.
    pub async fn find(&self, by: By<'_>) -> Result<Element> {
        const COMMAND: &str = "Find Element";
        let answer = self.post(COMMAND, "/element", by.to_json()).await?;
        self.element(COMMAND, &answer)
    }

    /// Every element found `by`; maybe none.
    pub async fn find_all(&self, by: By<'_>) -> Result<Vec<Element>> {
        const COMMAND: &str = "Find Elements";
        let answer = self.post(COMMAND, "/elements", by.to_json()).await?;
        self.element_list(COMMAND, &answer)
    }

    /// Runs `script`, a function body whose `arguments` are `args`, and answers what it returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.post(
            "Execute Script",
            "/execute/sync",
            json!({ "script": script, "args": args }),
        )
        .await
    }

    /// Runs `script` with a callback after `args` as its last argument, and answers what the
    /// callback is given.
    pub async fn execute_async(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.post(
            "Execute Async Script",
            "/execute/async",
            json!({ "script": script, "args": args }),
        )
        .await
    }

    /// The window's outer size.
    pub async fn window_size(&self) -> Result<(u32, u32)> {
        const COMMAND: &str = "Get Window Rect";
        let rect = self.get(COMMAND, "/window/rect").await?;
        let side = |key: &str| {
            rect[key]
                .as_f64()
                .filter(|n| (0.0..=f64::from(u32::MAX)).contains(n))
                .map(|n| n.round() as u32)
                .ok_or_else(|| Error::transport(COMMAND, format!("no {key} in {rect}")))
        };
        Ok((side("width")?, side("height")?))
    }

    /// Sets the window's outer size, leaving where it is.
    pub async fn set_window_size(&self, width: u32, height: u32) -> Result<()> {
        self.post(
            "Set Window Rect",
            "/window/rect",
            json!({ "width": width, "height": height }),
        )
        .await
        .map(drop)
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Result<Vec<u8>> {
        const COMMAND: &str = "Take Screenshot";
        let answer = self.get(COMMAND, "/screenshot").await?;
        let encoded = answer
            .as_str()
            .ok_or_else(|| Error::transport(COMMAND, "no base64 string"))?;
        base64_decode(encoded).ok_or_else(|| Error::transport(COMMAND, "not valid base64"))
    }

    /// The element a lookup answered with.
    fn element(&self, command: &'static str, answer: &Value) -> Result<Element> {
        answer[ELEMENT_KEY]
            .as_str()
            .map(|id| Element::new(self.clone(), id))
            .ok_or_else(|| Error::transport(command, format!("not an element: {answer}")))
    }

    fn element_list(&self, command: &'static str, answer: &Value) -> Result<Vec<Element>> {
        answer
            .as_array()
            .ok_or_else(|| Error::transport(command, format!("not a list: {answer}")))?
            .iter()
            .map(|e| self.element(command, e))
            .collect()
    }

    /// The elements in a script's answer (a list; anything that is not an element is left out).
    pub fn elements_in(&self, list: &Value) -> Vec<Element> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT_KEY].as_str())
            .map(|id| Element::new(self.clone(), id))
            .collect()
    }
}

fn string(command: &'static str, value: Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(Error::transport(command, format!("not a string: {other}"))),
    }
}

/// A web element of a session.
#[derive(Clone)]
pub struct Element {
    session: Session,
    id: String,
}

impl fmt::Debug for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Element").field("id", &self.id).finish()
    }
}

impl Element {
    pub fn new(session: Session, id: &str) -> Element {
        Element {
            session,
            id: id.to_owned(),
        }
    }

    /// The web element reference WebDriver knows it by.
    pub fn element_id(&self) -> &str {
        &self.id
    }

    /// The element as a script argument.
    pub fn to_json(&self) -> Value {
        let mut element = Map::new();
        element.insert(ELEMENT_KEY.to_owned(), Value::String(self.id.clone()));
        Value::Object(element)
    }

    async fn get(&self, command: &'static str, path: &str) -> Result<Value> {
        self.session
            .get(command, &format!("/element/{}{path}", self.id))
            .await
    }

    async fn post(&self, command: &'static str, path: &str, body: Value) -> Result<Value> {
        self.session
            .post(command, &format!("/element/{}{path}", self.id), body)
            .await
    }

    /// Clicks the element's centre, as a person would; fails when something else is on top or
    /// it cannot be reached.
    ///
    /// The element is first scrolled to the middle of the viewport, at once: the driver's own
    /// scrolling follows the page's `scroll-behavior`, so on a page that scrolls smoothly it
    /// would aim at where the element is before the scroll ends.
    pub async fn click(&self) -> Result<()> {
        self.session
            .execute(
                "arguments[0].scrollIntoView({ block: 'center', inline: 'nearest', \
                 behavior: 'instant' });",
                vec![self.to_json()],
            )
            .await?;
        self.post("Element Click", "/click", json!({}))
            .await
            .map(drop)
    }

    /// Empties an editable field.
    pub async fn clear(&self) -> Result<()> {
        self.post("Element Clear", "/clear", json!({}))
            .await
            .map(drop)
    }

    /// Types `text` into the element, after what it holds.
    pub async fn send_keys(&self, text: &str) -> Result<()> {
        self.post("Element Send Keys", "/value", json!({ "text": text }))
            .await
            .map(drop)
    }

    /// The element's text as shown.
    pub async fn text(&self) -> Result<String> {
        const COMMAND: &str = "Get Element Text";
        string(COMMAND, self.get(COMMAND, "/text").await?)
    }

    /// The element's tag name, e.g. `select`.
    pub async fn tag_name(&self) -> Result<String> {
        const COMMAND: &str = "Get Element Tag Name";
        string(COMMAND, self.get(COMMAND, "/name").await?)
    }

    /// The attribute `name` as written in the document, `None` when absent.
    pub async fn attr(&self, name: &str) -> Result<Option<String>> {
        const COMMAND: &str = "Get Element Attribute";
        match self.get(COMMAND, &format!("/attribute/{name}")).await? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Ok(Some(other.to_string())),
        }
    }

    /// The DOM property `name` (e.g. `value`, `checked`) as text, `None` when it is `null` or
    /// `undefined`; a value that is not a string is given as JSON.
    pub async fn prop(&self, name: &str) -> Result<Option<String>> {
        const COMMAND: &str = "Get Element Property";
        match self.get(COMMAND, &format!("/property/{name}")).await? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Ok(Some(other.to_string())),
        }
    }

    /// Whether a checkbox or radio button is checked, or an option selected.
    pub async fn is_selected(&self) -> Result<bool> {
        const COMMAND: &str = "Is Element Selected";
        let answer = self.get(COMMAND, "/selected").await?;
        answer
            .as_bool()
            .ok_or_else(|| Error::transport(COMMAND, format!("not a boolean: {answer}")))
    }

    /// Whether the element takes up room on the page and is not hidden.
    pub async fn is_displayed(&self) -> Result<bool> {
        let answer = self
            .session
            .execute(
                "const e = arguments[0]; \
                 return e.getClientRects().length > 0 \
                   && getComputedStyle(e).visibility !== 'hidden';",
                vec![self.to_json()],
            )
            .await?;
        Ok(answer == true)
    }

    /// The first element inside this one found `by`.
    pub async fn find(&self, by: By<'_>) -> Result<Element> {
        const COMMAND: &str = "Find Element From Element";
        let answer = self.post(COMMAND, "/element", by.to_json()).await?;
        self.session.element(COMMAND, &answer)
    }

    /// Every element inside this one found `by`; maybe none.
    pub async fn find_all(&self, by: By<'_>) -> Result<Vec<Element>> {
        const COMMAND: &str = "Find Elements From Element";
        let answer = self.post(COMMAND, "/elements", by.to_json()).await?;
        self.session.element_list(COMMAND, &answer)
    }

    /// Chooses, in this `<select>`, the option whose text is `label` (spaces collapsed), by
    /// clicking it.
    pub async fn select_by_label(&self, label: &str) -> Result<()> {
        let wanted = collapse(label);
        let mut shown = Vec::new();
        for option in self.find_all(By::Css("option")).await? {
            let text = collapse(&option.prop("text").await?.unwrap_or_default());
            if text == wanted {
                return option.click().await;
            }
            shown.push(text);
        }
        Err(Error {
            command: "Find Element From Element",
            kind: ErrorKind::WebDriver {
                status: StatusCode::NOT_FOUND.as_u16(),
                error: "no such element".to_owned(),
                message: format!("no option {wanted:?}; the options are {shown:?}"),
            },
        })
    }
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Decodes standard base64 (RFC 4648, `+` and `/`, padded or not); `None` on anything else.
/// Line breaks are skipped.
fn base64_decode(encoded: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    }
    let symbols: Vec<u8> = encoded
        .bytes()
        .filter(|c| !matches!(c, b'\r' | b'\n'))
        .collect();
    let data = symbols
        .iter()
        .rposition(|&c| c != b'=')
        .map_or(&symbols[..0], |last| &symbols[..=last]);
    let padding = symbols.len() - data.len();
    if padding > 2 || (padding > 0 && !symbols.len().is_multiple_of(4)) || data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() / 4 * 3 + 2);
    for chunk in data.chunks(4) {
        let mut bits = 0u32;
        for &c in chunk {
            bits = bits << 6 | sextet(c)?;
        }
        // A chunk of n symbols carries n * 6 bits: whole bytes first, leftover bits zero.
        let bytes = chunk.len() * 6 / 8;
        let spare = chunk.len() * 6 - bytes * 8;
        if bits & ((1 << spare) - 1) != 0 {
            return None;
        }
        bits >>= spare;
        for i in (0..bytes).rev() {
            out.push((bits >> (8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn base64_decodes_the_rfc_4648_vectors() {
        for (encoded, decoded) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
            ("Zm9vYmFy\nZm9v", "foobarfoo"),
        ] {
            assert_eq!(
                base64_decode(encoded).as_deref(),
                Some(decoded.as_bytes()),
                "{encoded:?}"
            );
        }
        assert_eq!(base64_decode("/+8="), Some(vec![0xff, 0xef]));
        for bad in ["Z", "Zg=", "Zh==", "Zm9v!", "Zg===", "Z=g="] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
    }
}
