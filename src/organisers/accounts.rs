//! Signing in to the dashboard: passwords (argon2id), sessions kept by a cookie, invitations and
//! password resets by emailed link. Only hashes of session and link tokens are stored; a link's
//! token is derived from its row with the server's key, so the email is rendered with it at
//! sending time and the outbox never holds it.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::{NewOrganiser, Organiser, OrganiserError, OrganiserRow};
use crate::db::schema::{organiser_links, organiser_sessions, organisers};
use crate::db::{self, DbConn, DbError};
use crate::mail::{self, Template};
use crate::tokens::{hash_token, plausible, random_token, TokenKey};
use crate::validation::{Fields, ValidationError};

/// How long a dashboard session lasts from signing in.
pub const SESSION_HOURS: i64 = 12;
/// How long an invitation link can be used.
pub const INVITE_DAYS: i64 = 7;
/// How long a password reset link can be used.
pub const RESET_MINUTES: i64 = 60;
/// What a link token is signed for.
const LINK_PURPOSE: &[u8] = b"masterclass organiser link";

/// A password as chosen: 10 to 256 characters, not only spaces.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

impl Password {
    pub fn parse(raw: &str, repeated: &str, email: &str) -> Result<Self, ValidationError> {
        let mut fields = Fields::new();
        let length = raw.chars().count();
        if raw.trim().is_empty() {
            fields.add("password", "choose a password");
        } else if length < 10 {
            fields.add("password", "use at least 10 characters");
        } else if length > 256 {
            fields.add("password", "use at most 256 characters");
        } else if raw.trim().eq_ignore_ascii_case(email.trim()) {
            fields.add("password", "must not be your email address");
        }
        if raw != repeated {
            fields.add("repeat_password", "does not match the password");
        }
        fields.finish()?;
        Ok(Self(raw.to_owned()))
    }
}

/// An argon2id hash of `password` (PHC string, with its own random salt).
pub fn hash_password(password: &Password) -> Result<String, DbError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.0.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| DbError::Inconsistent(format!("cannot hash a password: {e}")))
}

/// Whether `password` matches `stored` (an argon2 PHC string).
fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash no password matches, checked when the email is unknown so that a refusal takes as long
/// whether or not the account exists.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(random_token("").as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// A dashboard session just opened: its token in the clear, for the cookie only.
pub struct SignedIn {
    pub organiser: Organiser,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Unknown email, no password set, or a wrong password: the same answer for each.
    #[error("the email address or password is not right")]
    Refused,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for SignInError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

/// Checks the password of the organiser with `email` and opens a session for them.
pub fn sign_in(
    conn: &mut DbConn,
    email: &str,
    password: &str,
    now: DateTime<Utc>,
) -> Result<SignedIn, SignInError> {
    let found: Option<(OrganiserRow, Option<String>)> = organisers::table
        .filter(organisers::email.eq(crate::validation::Email::normalize(email)))
        .select((OrganiserRow::as_select(), organisers::password_hash))
        .first(conn)
        .optional()?;
    let Some((row, Some(stored))) = found else {
        let _ = verify(password, decoy_hash());
        return Err(SignInError::Refused);
    };
    if !verify(password, &stored) {
        return Err(SignInError::Refused);
    }
    let organiser = Organiser::from(row);
    Ok(open_session(conn, organiser, now)?)
}

fn open_session(
    conn: &mut DbConn,
    organiser: Organiser,
    now: DateTime<Utc>,
) -> Result<SignedIn, DbError> {
    let token = random_token("mcs_");
    let expires_at = now + Duration::hours(SESSION_HOURS);
    diesel::insert_into(organiser_sessions::table)
        .values((
            organiser_sessions::organiser_id.eq(organiser.id),
            organiser_sessions::token_hash.eq(hash_token(&token)),
            organiser_sessions::created_at.eq(db::stored(now)),
            organiser_sessions::expires_at.eq(db::stored(expires_at)),
        ))
        .execute(conn)?;
    Ok(SignedIn {
        organiser,
        token,
        expires_at,
    })
}

/// The organiser of an open session, if `token` is one.
pub fn session(
    conn: &mut DbConn,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<Organiser>, DbError> {
    if !plausible(token) {
        return Ok(None);
    }
    let found = organiser_sessions::table
        .inner_join(organisers::table)
        .filter(organiser_sessions::token_hash.eq(hash_token(token)))
        .filter(organiser_sessions::ended_at.is_null())
        .filter(organiser_sessions::expires_at.gt(db::stored(now)))
        .select(OrganiserRow::as_select())
        .first(conn)
        .optional()?;
    Ok(found.map(Organiser::from))
}

/// Ends the session of `token` (signing out).
pub fn sign_out(conn: &mut DbConn, token: &str, now: DateTime<Utc>) -> Result<(), DbError> {
    diesel::update(organiser_sessions::table)
        .filter(organiser_sessions::token_hash.eq(hash_token(token)))
        .filter(organiser_sessions::ended_at.is_null())
        .set(organiser_sessions::ended_at.eq(Some(db::stored(now))))
        .execute(conn)?;
    Ok(())
}

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Join the organisers: choose a name and a password.
    Invite,
    /// Choose a new password.
    Reset,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invite => "invite",
            Self::Reset => "reset",
        }
    }
}

/// The token of link `id`: derived, never stored.
pub fn link_token(key: &TokenKey, id: i64) -> String {
    format!("mcl_{}", key.sign(LINK_PURPOSE, &id.to_string()))
}

/// Writes a link for `organiser` and the email that carries it, in the caller's transaction.
fn issue_link(
    conn: &mut DbConn,
    key: &TokenKey,
    organiser: &Organiser,
    kind: LinkKind,
    invited_by: Option<&Organiser>,
    site_name: &str,
    now: DateTime<Utc>,
) -> Result<i64, DbError> {
    let expires_at = match kind {
        LinkKind::Invite => now + Duration::days(INVITE_DAYS),
        LinkKind::Reset => now + Duration::minutes(RESET_MINUTES),
    };
    // The row first, for its id; then the hash of the token derived from it.
    let id: i64 = diesel::insert_into(organiser_links::table)
        .values((
            organiser_links::organiser_id.eq(organiser.id),
            organiser_links::kind.eq(kind.as_str()),
            organiser_links::token_hash.eq(format!("pending-{}", random_token(""))),
            organiser_links::created_at.eq(db::stored(now)),
            organiser_links::expires_at.eq(db::stored(expires_at)),
        ))
        .returning(organiser_links::id)
        .get_result(conn)?;
    diesel::update(organiser_links::table.find(id))
        .set(organiser_links::token_hash.eq(hash_token(&link_token(key, id))))
        .execute(conn)?;
    let data = mail::compose::account_mail(
        site_name,
        &organiser.name,
        crate::mail::data::AccountMail {
            link_id: id,
            role: organiser.role.as_str().to_owned(),
            invited_by: invited_by.map(|o| o.name.clone()),
            valid_until: match kind {
                LinkKind::Invite => format!("{INVITE_DAYS} days"),
                LinkKind::Reset => format!("{RESET_MINUTES} minutes"),
            },
        },
    );
    let template = match kind {
        LinkKind::Invite => Template::OrganiserInvite,
        LinkKind::Reset => Template::PasswordReset,
    };
    mail::enqueue(conn, template, &organiser.email, None, &data)?;
    Ok(id)
}

/// Invites a colleague: their account, without a password until they choose one through the
/// emailed link. Returns the account and the link's id.
pub fn invite(
    conn: &mut DbConn,
    key: &TokenKey,
    inviter: &Organiser,
    new: &NewOrganiser,
    site_name: &str,
    now: DateTime<Utc>,
) -> Result<(Organiser, i64), OrganiserError> {
    db::write_transaction(conn, |conn| {
        let organiser = super::insert(conn, new)?;
        let link = issue_link(
            conn,
            key,
            &organiser,
            LinkKind::Invite,
            Some(inviter),
            site_name,
            now,
        )?;
        Ok((organiser, link))
    })
}

/// A link for an organiser made on the command line: its id, to print the link.
pub fn invite_link(
    conn: &mut DbConn,
    key: &TokenKey,
    organiser: &Organiser,
    site_name: &str,
    now: DateTime<Utc>,
) -> Result<i64, DbError> {
    db::write_transaction(conn, |conn| {
        issue_link(conn, key, organiser, LinkKind::Invite, None, site_name, now)
    })
}

/// Emails a password reset link when `email` is an organiser's; does nothing otherwise (the
/// answer to the person asking is the same either way).
pub fn request_reset(
    conn: &mut DbConn,
    key: &TokenKey,
    email: &str,
    site_name: &str,
    now: DateTime<Utc>,
) -> Result<Option<i64>, DbError> {
    let Some(organiser) = super::find_by_email(conn, &crate::validation::Email::normalize(email))?
    else {
        return Ok(None);
    };
    db::write_transaction(conn, |conn| {
        issue_link(conn, key, &organiser, LinkKind::Reset, None, site_name, now).map(Some)
    })
}

/// A link that can still be used, with its organiser.
pub struct OpenLink {
    pub id: i64,
    pub kind: LinkKind,
    pub organiser: Organiser,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("this link is not valid")]
    Unknown,
    #[error("this link has been used already")]
    Used,
    #[error("this link has expired")]
    Expired,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for LinkError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

type LinkRow = (
    i64,
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
    OrganiserRow,
);

/// The link behind `token`, if it can still be used.
pub fn open_link(
    conn: &mut DbConn,
    token: &str,
    now: DateTime<Utc>,
) -> Result<OpenLink, LinkError> {
    if !plausible(token) {
        return Err(LinkError::Unknown);
    }
    let found: Option<LinkRow> = organiser_links::table
        .inner_join(organisers::table)
        .filter(organiser_links::token_hash.eq(hash_token(token)))
        .select((
            organiser_links::id,
            organiser_links::kind,
            organiser_links::expires_at,
            organiser_links::used_at,
            OrganiserRow::as_select(),
        ))
        .first(conn)
        .optional()?;
    let Some((id, kind, expires_at, used_at, row)) = found else {
        return Err(LinkError::Unknown);
    };
    if used_at.is_some() {
        return Err(LinkError::Used);
    }
    let expires_at = expires_at.and_utc();
    if expires_at <= now {
        return Err(LinkError::Expired);
    }
    Ok(OpenLink {
        id,
        kind: if kind == "invite" {
            LinkKind::Invite
        } else {
            LinkKind::Reset
        },
        organiser: row.into(),
        expires_at,
    })
}

/// Uses the link behind `token`: sets the password (and, for an invitation, the name), ends
/// every other session of the account, and signs in. The link works once. `password_hash` comes
/// from [`hash_password`], called before any transaction: hashing takes a while, and a writer
/// must not wait on it.
pub fn use_link(
    conn: &mut DbConn,
    token: &str,
    name: Option<&str>,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<SignedIn, LinkError> {
    let hash = password_hash;
    db::write_transaction(conn, |conn| {
        let link = open_link(conn, token, now)?;
        let used = diesel::update(organiser_links::table.find(link.id))
            .filter(organiser_links::used_at.is_null())
            .set(organiser_links::used_at.eq(Some(db::stored(now))))
            .execute(conn)?;
        if used == 0 {
            return Err(LinkError::Used);
        }
        // The password is set now: every other link still open for the account is spent too.
        diesel::update(organiser_links::table)
            .filter(organiser_links::organiser_id.eq(link.organiser.id))
            .filter(organiser_links::id.ne(link.id))
            .filter(organiser_links::used_at.is_null())
            .set(organiser_links::used_at.eq(Some(db::stored(now))))
            .execute(conn)?;
        let mut organiser = link.organiser;
        if let Some(name) = name {
            organiser.name = crate::validation::required_text(name, 200)
                .map_err(|m| ValidationError::single("name", m))?;
        }
        diesel::update(organisers::table.find(organiser.id))
            .set((
                organisers::password_hash.eq(Some(hash)),
                organisers::name.eq(&organiser.name),
            ))
            .execute(conn)?;
        diesel::update(organiser_sessions::table)
            .filter(organiser_sessions::organiser_id.eq(organiser.id))
            .filter(organiser_sessions::ended_at.is_null())
            .set(organiser_sessions::ended_at.eq(Some(db::stored(now))))
            .execute(conn)?;
        Ok(open_session(conn, organiser, now)?)
    })
}

/// Every organiser, owners first, then by name.
pub fn team(conn: &mut DbConn) -> Result<Vec<(Organiser, bool)>, DbError> {
    let rows: Vec<(OrganiserRow, Option<String>)> = organisers::table
        .select((OrganiserRow::as_select(), organisers::password_hash))
        .order(organisers::name.asc())
        .load(conn)?;
    let mut team: Vec<(Organiser, bool)> = rows
        .into_iter()
        .map(|(row, hash)| (Organiser::from(row), hash.is_some()))
        .collect();
    team.sort_by_key(|(o, _)| std::cmp::Reverse(o.role));
    Ok(team)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_checked_and_hashed_with_argon2id() {
        let email = "ada@example.org";
        assert!(Password::parse("short", "short", email).is_err());
        assert!(Password::parse("          ", "          ", email).is_err());
        assert!(Password::parse("ada@example.org", "ada@example.org", email).is_err());
        assert!(Password::parse("long enough pass", "long enough pasS", email).is_err());
        let password = Password::parse("correct horse battery", "correct horse battery", email)
            .expect("valid");
        assert_eq!(format!("{password:?}"), "Password(…)");
        let hash = hash_password(&password).expect("hashed");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify("correct horse battery", &hash));
        assert!(!verify("correct horse batterY", &hash));
        assert!(!verify("anything", "not a hash"));
        assert_ne!(hash, hash_password(&password).expect("hashed"), "salted");
    }

    #[test]
    fn account_emails_carry_their_link_and_what_it_is_for() {
        use crate::mail::data::AccountMail;
        let templates = crate::mail::templates::Templates::new().expect("templates");
        let mut data = crate::mail::compose::account_mail(
            "PMO Masterclasses",
            "Carl Checker",
            AccountMail {
                link_id: 7,
                role: "checkin".into(),
                invited_by: Some("Olive Owner".into()),
                valid_until: "7 days".into(),
            },
        );
        data.account_url = Some("https://example.org/organiser/password/mcl_x".into());
        let invite = templates
            .render(Template::OrganiserInvite, &data)
            .expect("rendered");
        assert_eq!(
            invite.subject,
            "Olive Owner invites you to organise PMO Masterclasses"
        );
        for part in [&invite.text, &invite.html] {
            assert!(
                part.contains("https://example.org/organiser/password/mcl_x"),
                "{part}"
            );
            assert!(part.contains("as checkin"), "{part}");
            assert!(part.contains("within 7 days"), "{part}");
            assert!(!part.contains(" at ."), "{part}");
        }
        let reset = templates
            .render(Template::PasswordReset, &data)
            .expect("rendered");
        assert_eq!(reset.subject, "Reset your password for PMO Masterclasses");
        assert!(reset.text.contains("your password stays as it is"));
        assert!(invite.calendar.is_none() && reset.calendar.is_none());
    }

    #[test]
    fn link_tokens_depend_on_the_key_and_the_link() {
        let key = TokenKey::new("a key for the account tests, long enough").expect("key");
        let other = TokenKey::new("another key for the account tests, long").expect("key");
        let token = link_token(&key, 7);
        assert!(plausible(&token), "{token}");
        assert_eq!(token, link_token(&key, 7));
        assert_ne!(token, link_token(&key, 8));
        assert_ne!(token, link_token(&other, 7));
    }
}
