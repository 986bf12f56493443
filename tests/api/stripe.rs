//! localstripe, the Stripe test peer: one per test process, started by `tests/localstripe/launch.py`
//! with the Python named by `MASTERCLASS_TEST_STRIPE_PYTHON` (one that can import localstripe).
//! Without it the payment tests are skipped with a warning, unless `CI` is set: then they fail.
//!
//! Also what a browser and Stripe would do: pay an intent with a test card, and sign a webhook
//! payload with the endpoint's secret.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

pub const SECRET_KEY: &str = "sk_test_masterclass";
pub const PUBLISHABLE_KEY: &str = "pk_test_masterclass";
/// Succeeds.
pub const CARD_OK: &str = "4242424242424242";
/// Declined when the payment is confirmed.
pub const CARD_DECLINED: &str = "4000000000000341";

pub struct LocalStripe {
    pub base_url: String,
    _child: Mutex<Child>,
}

fn python() -> Option<String> {
    std::env::var("MASTERCLASS_TEST_STRIPE_PYTHON").ok()
}

/// The process's localstripe, started on first use; `None` (with a warning) when it cannot run
/// here and `CI` is not set.
pub fn localstripe() -> Option<&'static LocalStripe> {
    static PEER: OnceLock<Option<LocalStripe>> = OnceLock::new();
    PEER.get_or_init(|| {
        let ci = std::env::var_os("CI").is_some();
        let Some(python) = python() else {
            if ci {
                panic!("CI is set but MASTERCLASS_TEST_STRIPE_PYTHON (a Python with localstripe) is not");
            }
            eprintln!("WARNING: MASTERCLASS_TEST_STRIPE_PYTHON is not set; Stripe payment tests are SKIPPED");
            return None;
        };
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/localstripe/launch.py");
        let mut child = Command::new(&python)
            .arg(script)
            .arg("--parent")
            .arg(std::process::id().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start localstripe with {python}: {e}"));
        let stdout = child.stdout.take().expect("localstripe's output");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("localstripe announces its port");
        let port: u16 = line
            .trim()
            .strip_prefix("localstripe listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("localstripe did not start: {line:?}"));
        Some(LocalStripe {
            base_url: format!("http://127.0.0.1:{port}"),
            _child: Mutex::new(child),
        })
    })
    .as_ref()
}

impl LocalStripe {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        let response = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(SECRET_KEY)
            .form(form)
            .send()
            .await
            .expect("localstripe answers");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Sends the events of interest to `url`, signed with `secret`, under this endpoint `id`.
    pub async fn register_webhook(&self, id: &str, url: &str, secret: &str) {
        let (status, _) = self
            .call(
                reqwest::Method::POST,
                &format!("/_config/webhooks/{id}"),
                &[
                    ("url", url),
                    ("secret", secret),
                    ("events[]", "payment_intent.succeeded"),
                    ("events[]", "payment_intent.payment_failed"),
                ],
            )
            .await;
        assert_eq!(status, 200, "webhook registered");
    }

    /// What a browser does with Stripe.js: gives the card to the intent and confirms it.
    /// Returns the confirmation's status and body (402 for a declined card).
    pub async fn pay(&self, intent_id: &str, card: &str) -> (u16, Value) {
        let (status, method) = self
            .call(
                reqwest::Method::POST,
                "/v1/payment_methods",
                &[
                    ("type", "card"),
                    ("card[number]", card),
                    ("card[exp_month]", "12"),
                    ("card[exp_year]", "2034"),
                    ("card[cvc]", "123"),
                ],
            )
            .await;
        assert_eq!(status, 200, "payment method made: {method}");
        let method_id = method["id"].as_str().expect("payment method id").to_owned();
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/payment_intents/{intent_id}"),
                &[("payment_method", &method_id)],
            )
            .await;
        assert_eq!(status, 200, "card given to the intent: {body}");
        self.call(
            reqwest::Method::POST,
            &format!("/v1/payment_intents/{intent_id}/confirm"),
            &[],
        )
        .await
    }

    /// The intent as localstripe has it.
    pub async fn intent(&self, intent_id: &str) -> Value {
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/payment_intents/{intent_id}"),
                &[],
            )
            .await;
        assert_eq!(status, 200, "intent {intent_id}: {body}");
        body
    }

    /// The refunds of an intent, as localstripe has them.
    pub async fn refunds(&self, intent_id: &str) -> Vec<Value> {
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/refunds?payment_intent={intent_id}"),
                &[],
            )
            .await;
        assert_eq!(status, 200, "refunds: {body}");
        body["data"].as_array().cloned().unwrap_or_default()
    }
}

/// A `Stripe-Signature` header for `payload`, as Stripe makes it: `t=<time>,v1=<hex HMAC-SHA256
/// of "<time>.<payload>" keyed with the secret>`.
pub fn signature(payload: &str, secret: &str, timestamp: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp}.{payload}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}
