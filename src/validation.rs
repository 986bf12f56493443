//! Turning raw input into values that are valid by construction, collecting every field's
//! problem so one answer can name them all.

use std::str::FromStr;

use serde::Serialize;
use utoipa::ToSchema;

/// One input field that was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `attendee.email`.
    pub field: String,
    pub message: String,
}

/// Input that was refused; it names every field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
pub struct ValidationError(pub Vec<FieldError>);

impl ValidationError {
    pub fn single(field: &str, message: impl Into<String>) -> Self {
        Self(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }
}

/// Collects field errors while input is parsed.
#[derive(Debug, Default)]
pub struct Fields {
    errors: Vec<FieldError>,
}

impl Fields {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the value, or records the message against `field`.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(message) => {
                self.add(field, message);
                None
            }
        }
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            message: message.into(),
        });
    }

    /// Ends parsing: `Ok` only when no field was refused.
    pub fn finish(self) -> Result<(), ValidationError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationError(self.errors))
        }
    }
}

/// Trims `raw` and checks it is 1..=`max` characters of printable text.
pub fn required_text(raw: &str, max: usize) -> Result<String, String> {
    let value = raw.trim();
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    bounded(value, max)
}

/// Like [`required_text`], but blank means absent.
pub fn optional_text(raw: Option<&str>, max: usize) -> Result<Option<String>, String> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(value) => bounded(value, max).map(Some),
    }
}

/// Longer free text (abstracts): line breaks allowed, may be empty.
pub fn long_text(raw: &str, max: usize) -> Result<String, String> {
    let value = raw.trim();
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err("must not contain control characters".into());
    }
    Ok(value.to_owned())
}

fn bounded(value: &str, max: usize) -> Result<String, String> {
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(value.to_owned())
}

/// An email address as given (trimmed), compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let value = raw.trim();
        if value.is_empty() {
            return Err("must not be empty".into());
        }
        if value.len() > 254 {
            return Err("must be at most 254 characters".into());
        }
        // The crate accepts display names and quoted local parts; only a plain address is wanted.
        if value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == '"')
        {
            return Err("is not a valid email address".into());
        }
        let parsed = email_address::EmailAddress::from_str(value)
            .map_err(|_| "is not a valid email address".to_string())?;
        if !parsed.domain().contains('.') {
            return Err("is not a valid email address".into());
        }
        Ok(Self(value.to_owned()))
    }

    /// As the person typed it, for display and mail.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Lower-cased, for matching one person across bookings.
    pub fn normalized(&self) -> String {
        Self::normalize(&self.0)
    }

    /// An address as stored for comparison (seats, waitlists): lower-cased.
    pub fn normalize(address: &str) -> String {
        address.to_lowercase()
    }
}

/// An ISO 4217 currency code: three upper-case letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency(String);

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let value = raw.trim().to_ascii_uppercase();
        if value.len() == 3 && value.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Self(value))
        } else {
            Err("must be a three-letter ISO 4217 code such as EUR".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A point in time given with its offset, as UTC. Bounded to the years 2000 to 2199, so that it
/// stays a four-digit-year RFC 3339 time in every zone and sorts correctly as stored text.
pub fn instant(
    at: chrono::DateTime<chrono::FixedOffset>,
) -> Result<chrono::DateTime<chrono::Utc>, String> {
    use chrono::Datelike;
    let utc = at.with_timezone(&chrono::Utc);
    if (2000..2200).contains(&utc.year()) {
        Ok(utc)
    } else {
        Err("must be a time between the years 2000 and 2199".into())
    }
}

/// An IANA time zone name such as `Europe/Amsterdam`.
pub fn time_zone(raw: &str) -> Result<chrono_tz::Tz, String> {
    raw.trim()
        .parse::<chrono_tz::Tz>()
        .map_err(|_| "must be an IANA time zone such as Europe/London".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_plain_addresses_with_a_dotted_domain() {
        assert!(Email::parse("Ada@Example.org").is_ok());
        assert_eq!(
            Email::parse(" Ada@Example.org ").map(|e| e.normalized()),
            Ok("ada@example.org".into())
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@localhost",
            "Ada <ada@example.org>",
            "a b@example.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn text_is_trimmed_bounded_and_printable() {
        assert_eq!(required_text("  PMO  ", 10), Ok("PMO".into()));
        assert!(required_text("   ", 10).is_err());
        assert!(required_text("abcdefghijk", 10).is_err());
        assert!(required_text("a\u{0}b", 10).is_err());
        assert_eq!(optional_text(Some(" "), 10), Ok(None));
    }
}
