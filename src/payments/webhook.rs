//! Stripe's webhook deliveries: the `Stripe-Signature` check, then only the fields this service
//! acts on, read from the verified payload (so a newer Stripe API version with more or other
//! fields does not break confirmation).
//!
//! The signature is Stripe's documented scheme: the header carries `t=<unix time>` and one or
//! more `v1=<hex>` values; a `v1` must equal HMAC-SHA256, keyed with the endpoint's secret, of
//! `<t>.<raw body>`, and `t` must lie within the tolerance of now. Two secrets may be configured
//! while one replaces the other.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// Why a delivery was not accepted as Stripe's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("no v1 signature matches any configured webhook secret")]
    NoMatch,
    #[error("the signature's timestamp is {0} s away from now, beyond the tolerance")]
    OutsideTolerance(i64),
}

/// Checks `header` (the `Stripe-Signature` value) against `payload` for any of `secrets`.
pub fn verify(
    header: Option<&str>,
    payload: &[u8],
    secrets: &[String],
    now: DateTime<Utc>,
    tolerance_seconds: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (name, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed("an element without '='"))?;
        match name {
            "t" => {
                let t: i64 = value
                    .parse()
                    .map_err(|_| SignatureError::Malformed("t is not a number"))?;
                timestamp = Some(t);
            }
            "v1" => {
                let bytes =
                    hex::decode(value).map_err(|_| SignatureError::Malformed("v1 is not hex"))?;
                signatures.push(bytes);
            }
            // v0 (test mode's old scheme) and anything newer are ignored, as Stripe advises.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed("no t= element"))?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed("no v1= signature"));
    }
    let matches = secrets.iter().filter(|s| !s.is_empty()).any(|secret| {
        signatures.iter().any(|signature| {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
                return false;
            };
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(payload);
            // Constant-time comparison.
            mac.verify_slice(signature).is_ok()
        })
    });
    if !matches {
        return Err(SignatureError::NoMatch);
    }
    let age = now.timestamp() - timestamp;
    if age.abs() > tolerance_seconds {
        return Err(SignatureError::OutsideTolerance(age));
    }
    Ok(())
}

/// A verified event, reduced to what this service reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: EventData,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventData {
    pub object: serde_json::Value,
}

/// The PaymentIntent an event is about.
#[derive(Debug, Clone, Deserialize)]
pub struct IntentObject {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub amount_received: Option<i64>,
    #[serde(default)]
    pub last_payment_error: Option<PaymentError>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentError {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
}

/// A charge, as `charge.refunded` carries it: how much of it has been refunded in all.
#[derive(Debug, Clone, Deserialize)]
pub struct ChargeObject {
    pub amount_refunded: i64,
    /// The PaymentIntent's id (an id string, or the object when expanded).
    pub payment_intent: Option<serde_json::Value>,
}

impl ChargeObject {
    pub fn intent_id(&self) -> Option<&str> {
        match self.payment_intent.as_ref()? {
            serde_json::Value::String(id) => Some(id),
            serde_json::Value::Object(o) => o.get("id").and_then(|id| id.as_str()),
            _ => None,
        }
    }
}

/// A refund, as `refund.*` events carry it.
#[derive(Debug, Clone, Deserialize)]
pub struct RefundObject {
    pub id: String,
    pub status: Option<String>,
}

/// The event's object read as `T`, or why it could not be.
pub fn object<T: serde::de::DeserializeOwned>(event: &Event) -> Result<T, serde_json::Error> {
    T::deserialize(&event.data.object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, payload: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(payload);
        hex::encode(mac.finalize().into_bytes())
    }

    fn at(t: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(t, 0).unwrap()
    }

    const BODY: &[u8] = br#"{"id":"evt_1","type":"x","data":{"object":{}}}"#;

    #[test]
    fn accepts_any_matching_v1_and_either_secret() {
        let secrets = vec!["whsec_old".to_owned(), "whsec_new".to_owned()];
        let good = sign("whsec_new", 1000, BODY);
        let header = format!("t=1000,v1={},v1={good},v0=abc", "00".repeat(32));
        assert_eq!(verify(Some(&header), BODY, &secrets, at(1000), 300), Ok(()));
        let old = format!("t=1000,v1={}", sign("whsec_old", 1000, BODY));
        assert_eq!(verify(Some(&old), BODY, &secrets, at(1299), 300), Ok(()));
    }

    #[test]
    fn refuses_forged_stale_and_malformed_headers() {
        let secrets = vec!["whsec_a".to_owned()];
        let good = format!("t=1000,v1={}", sign("whsec_a", 1000, BODY));
        assert_eq!(
            verify(Some(&good), b"{}", &secrets, at(1000), 300),
            Err(SignatureError::NoMatch)
        );
        let other = format!("t=1000,v1={}", sign("whsec_b", 1000, BODY));
        assert_eq!(
            verify(Some(&other), BODY, &secrets, at(1000), 300),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify(Some(&good), BODY, &secrets, at(1301), 300),
            Err(SignatureError::OutsideTolerance(301))
        );
        assert_eq!(
            verify(Some(&good), BODY, &secrets, at(699), 300),
            Err(SignatureError::OutsideTolerance(-301))
        );
        // A signature for another timestamp does not carry over to a new `t`.
        let moved = good.replace("t=1000", "t=1200");
        assert_eq!(
            verify(Some(&moved), BODY, &secrets, at(1200), 300),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify(None, BODY, &secrets, at(1000), 300),
            Err(SignatureError::Missing)
        );
        for bad in [
            "",
            "t=1000",
            "t=x,v1=00",
            "v1=00",
            "t=1000,v1=zz",
            "garbage",
        ] {
            assert!(matches!(
                verify(Some(bad), BODY, &secrets, at(1000), 300),
                Err(SignatureError::Malformed(_))
            ));
        }
        // No secret configured: nothing verifies.
        assert_eq!(
            verify(Some(&good), BODY, &[String::new()], at(1000), 300),
            Err(SignatureError::NoMatch)
        );
    }
}
