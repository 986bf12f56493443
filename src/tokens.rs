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
