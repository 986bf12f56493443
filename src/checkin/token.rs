//! Check-in codes: what a ticket's QR code holds.
//!
//! A code reads `{seat_id}.{session_id}.{tag}`: the tag is the first 16 bytes of an HMAC-SHA256
//! of `{seat_id}.{session_id}` under the server's key (the one manage links are derived with,
//! for a purpose of its own), in upper-case hex. So a code is made again from the seat whenever
//! it is needed and never stored; it cannot be guessed or forged from a seat id, nor moved to
//! another seat or session; and it is checked without a database look-up, in constant time.
//! Digits, `A`–`F` and `.` are all in the QR alphanumeric set, which keeps the code small.
//! Changing the key invalidates every code sent so far, as it does manage links.

use crate::tokens::TokenKey;

/// Keeps these MACs apart from those of manage links and any other use of the key.
const PURPOSE: &[u8] = b"masterclass check-in code";

/// Bytes of the MAC kept: 128 bits, out of reach of guessing.
const TAG_BYTES: usize = 16;

/// The seat (and its session) a genuine code names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub seat_id: i64,
    pub session_id: i64,
}

/// The check-in code of a seat.
pub fn code(key: &TokenKey, seat_id: i64, session_id: i64) -> String {
    let ids = format!("{seat_id}.{session_id}");
    let mac = key.sign(PURPOSE, &ids);
    let tag = mac.get(..TAG_BYTES * 2).unwrap_or(&mac);
    format!("{ids}.{}", tag.to_ascii_uppercase())
}

/// The seat a code names, if the code is one of ours: well formed and correctly signed. Upper or
/// lower case hex is accepted, and surrounding spaces (a code typed in by hand).
pub fn read(key: &TokenKey, code: &str) -> Option<Ticket> {
    let code = code.trim();
    if code.len() > 80 {
        return None;
    }
    let mut parts = code.split('.');
    let (seat, session, tag) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || tag.len() != TAG_BYTES * 2 {
        return None;
    }
    let seat_id = id(seat)?;
    let session_id = id(session)?;
    let tag = hex::decode(tag).ok()?;
    // The ids as written are what was signed: they are in their one canonical form (see `id`).
    key.verify_prefix(PURPOSE, &format!("{seat}.{session}"), &tag)
        .then_some(Ticket {
            seat_id,
            session_id,
        })
}

/// A positive id in its one decimal spelling: no sign, no leading zero, no more than 18 digits.
fn id(digits: &str) -> Option<i64> {
    let plain = !digits.is_empty()
        && digits.len() <= 18
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit());
    plain.then(|| digits.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey::new("an example key that is long enough!!").expect("key")
    }

    #[test]
    fn a_code_reads_back_as_its_seat_and_session() {
        let code = code(&key(), 1234, 56);

        assert!(code.starts_with("1234.56."), "{code}");
        assert_eq!(code.len(), "1234.56.".len() + 32);
        assert!(code
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || (b'A'..=b'F').contains(&b)));
        assert_eq!(
            read(&key(), &code),
            Some(Ticket {
                seat_id: 1234,
                session_id: 56
            })
        );
        assert_eq!(
            read(&key(), &format!("  {}\n", code.to_ascii_lowercase())),
            Some(Ticket {
                seat_id: 1234,
                session_id: 56
            }),
            "typed in lower case"
        );
    }

    #[test]
    fn a_changed_digit_anywhere_is_refused() {
        let code = code(&key(), 1234, 56);
        for (at, c) in code.char_indices().filter(|(_, c)| *c != '.') {
            let other = if c == '7' { '8' } else { '7' };
            let mut changed = code.clone();
            changed.replace_range(at..at + 1, &other.to_string());
            assert_eq!(read(&key(), &changed), None, "{changed}");
        }
    }

    #[test]
    fn a_code_for_another_seat_session_or_key_is_refused() {
        let genuine = code(&key(), 1234, 56);
        let tag = genuine.rsplit('.').next().expect("tag");
        let other_key = TokenKey::new("another example key, also long enough").expect("key");

        for forged in [
            format!("1235.56.{tag}"),
            format!("1234.57.{tag}"),
            format!("01234.56.{tag}"),
            format!("+1234.56.{tag}"),
            format!("1234.56.{}", &tag[..30]),
            format!("1234.56.{tag}00"),
            format!("1234.56.{tag}.1"),
            "1234.56".to_owned(),
            String::new(),
            "not a code at all".to_owned(),
            code(&other_key, 1234, 56),
        ] {
            assert_eq!(read(&key(), &forged), None, "{forged}");
        }
    }

    #[test]
    fn ids_are_read_only_in_their_plain_decimal_form() {
        assert_eq!(id("7"), Some(7));
        assert_eq!(id("123456789012345678"), Some(123_456_789_012_345_678));
        for bad in ["", "0", "07", "-7", "+7", "7a", " 7", "1234567890123456789"] {
            assert_eq!(id(bad), None, "{bad:?}");
        }
    }
}
