//! Random secrets handed to people (manage links, API tokens) and how they are stored: only a
//! SHA-256 of each is kept. The secrets carry about 238 bits of randomness, so a fast hash is
//! enough; nobody can guess one to test against the hash.

use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};

/// A new secret of 40 letters and digits, after `prefix`.
pub fn random_token(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        Alphanumeric.sample_string(&mut rand::rng(), 40)
    )
}

/// SHA-256 in hex: how tokens are stored and looked up.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` could be one of ours; anything else is not looked up at all.
pub fn plausible(token: &str) -> bool {
    (20..=100).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The server's key for manage links. A booking's manage token is derived from its reference
/// with this key, so the token never needs to be stored, not even in the outbox: an email is
/// rendered with the link made again from the reference. Changing the key invalidates every
/// manage link sent so far.
#[derive(Clone)]
pub struct TokenKey(secrecy::SecretSlice<u8>);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("secrets.token_key must be at least 32 characters")]
    TooShort,
    #[error("cannot read or create the token key file {path}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no secrets.token_key is set (MASTERCLASS__SECRETS__TOKEN_KEY) and no secrets.token_key_file is configured")]
    Missing,
}

impl TokenKey {
    pub fn new(secret: &str) -> Result<Self, KeyError> {
        if secret.len() < 32 {
            return Err(KeyError::TooShort);
        }
        Ok(Self(secret.as_bytes().to_vec().into()))
    }

    /// The configured key, or on a laptop one kept in a file next to the database (made on
    /// first start, readable only by its owner).
    pub fn from_settings(settings: &crate::config::SecretSettings) -> Result<Self, KeyError> {
        use secrecy::ExposeSecret;
        if let Some(key) = &settings.token_key {
            return Self::new(key.expose_secret());
        }
        let path = settings
            .token_key_file
            .as_deref()
            .filter(|p| !p.is_empty())
            .ok_or(KeyError::Missing)?;
        let file_error = |source| KeyError::File {
            path: path.to_owned(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(existing) => Self::new(existing.trim()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = std::path::Path::new(path)
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(parent).map_err(file_error)?;
                }
                let fresh = random_token("");
                write_private(path, &fresh).map_err(file_error)?;
                Self::new(&fresh)
            }
            Err(e) => Err(file_error(e)),
        }
    }

    /// The manage token of the booking with this reference.
    pub fn manage_token(&self, reference: &str) -> String {
        self.sign(b"masterclass manage link", reference)
    }

    /// HMAC-SHA256 of `value` for one `purpose`, in hex: values signed for one purpose are no
    /// use for another.
    pub fn sign(&self, purpose: &[u8], value: &str) -> String {
        use hmac::Mac;
        hex::encode(self.mac(purpose, value).finalize().into_bytes())
    }

    /// Whether `tag` is the start of [`TokenKey::sign`]'s MAC of `value` for `purpose`, at least
    /// 16 bytes of it (shorter tags could be guessed), compared in constant time.
    pub fn verify_prefix(&self, purpose: &[u8], value: &str, tag: &[u8]) -> bool {
        use hmac::Mac;
        tag.len() >= 16 && self.mac(purpose, value).verify_truncated_left(tag).is_ok()
    }

    fn mac(&self, purpose: &[u8], value: &str) -> hmac::SimpleHmac<Sha256> {
        use hmac::{Mac, SimpleHmac};
        use secrecy::ExposeSecret;
        // A key of any length is valid for HMAC, so this cannot fail.
        let mut mac = SimpleHmac::<Sha256>::new_from_slice(self.0.expose_secret())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(purpose);
        mac.update(b"\0");
        mac.update(value.as_bytes());
        mac
    }
}

fn write_private(path: &str, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manage_tokens_are_stable_per_reference_and_key() {
        let key = TokenKey::new("an example key that is long enough!!").expect("key");
        let other = TokenKey::new("another example key, also long enough").expect("key");
        let token = key.manage_token("PMO-7K3F9Q");
        assert_eq!(token, key.manage_token("PMO-7K3F9Q"));
        assert_ne!(token, key.manage_token("PMO-7K3F9R"));
        assert_ne!(token, other.manage_token("PMO-7K3F9Q"));
        assert!(plausible(&token), "{token}");
        assert!(TokenKey::new("short").is_err());
    }

    #[test]
    fn a_prefix_of_a_signature_verifies_only_for_its_purpose_and_from_16_bytes() {
        let key = TokenKey::new("an example key that is long enough!!").expect("key");
        let mac = hex::decode(key.sign(b"purpose", "value")).expect("hex");

        assert!(key.verify_prefix(b"purpose", "value", &mac));
        assert!(key.verify_prefix(b"purpose", "value", &mac[..16]));
        assert!(!key.verify_prefix(b"purpose", "value", &mac[..15]));
        assert!(!key.verify_prefix(b"other purpose", "value", &mac[..16]));
        assert!(!key.verify_prefix(b"purpose", "values", &mac[..16]));
        let mut flipped = mac[..16].to_vec();
        flipped[15] ^= 1;
        assert!(!key.verify_prefix(b"purpose", "value", &flipped));
    }
}
