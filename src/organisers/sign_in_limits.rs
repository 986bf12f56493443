//! Limits on organiser sign-ins and password reset requests, counted in the database
//! (`sign_in_attempts`) so that every app instance behind a load balancer enforces the same
//! ones: N instances give an attacker no more guesses than one.
//!
//! A sign-in is counted as failed *before* its password is checked, in the write transaction
//! that checks the limits, and the account's failures are cleared when the password turns out
//! right. Checking and counting are one step under the account's and the client's lock, so
//! concurrent attempts cannot all slip under a limit; the slow password check runs outside any
//! transaction. An attempt a limit refuses is neither checked nor counted.

use std::net::{IpAddr, Ipv6Addr};

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use sha2::{Digest, Sha256};

use super::accounts::{self, SignInError, SignedIn};
use super::Organiser;
use crate::config::SignInSettings;
use crate::db::schema::sign_in_attempts;
use crate::db::{self, DbConn, DbError};
use crate::tokens::TokenKey;
use crate::validation::Email;

/// The longest window a setting may give; the sweeper forgets attempts older than this.
pub const LONGEST_WINDOW_MINUTES: u32 = 24 * 60;
/// Password reset requests are counted over an hour.
const RESET_WINDOW_MINUTES: i64 = 60;
const SIGN_IN: &str = "sign_in";
const RESET: &str = "reset";

/// How many failures and reset requests are allowed, and over how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    failures_per_account: u32,
    failures_per_client: u32,
    window: Duration,
    resets_per_account: u32,
}

impl Limits {
    pub fn from_settings(settings: &SignInSettings) -> Self {
        Self {
            failures_per_account: settings.failures_per_account.get(),
            failures_per_client: settings.failures_per_client.get(),
            window: Duration::minutes(i64::from(settings.window_minutes.get())),
            resets_per_account: settings.resets_per_account.get(),
        }
    }
}

/// The account an attempt counts against: the normalised email address as typed, whether or
/// not an organiser has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account(String);

impl Account {
    /// `None` when what was typed is no email address. It may then be a password typed in the
    /// wrong field, so it is neither stored nor logged; and it can be no organiser's (their
    /// addresses are valid and stored normalised), so there is no account to protect.
    pub fn typed(typed: &str) -> Option<Self> {
        let normalised = Email::normalize(typed.trim());
        Email::parse(&normalised).ok().map(|_| Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who an attempt came from, as counted: an IPv4 address, or the /64 prefix of an IPv6 address
/// (one household or server has all of those). An IPv4 address written as IPv6 (`::ffff:…`, as
/// a dual-stack listener sees it) counts as the IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Client(IpAddr);

impl Client {
    pub fn of(address: IpAddr) -> Self {
        match address.to_canonical() {
            IpAddr::V6(v6) => {
                let [a, b, c, d, ..] = v6.segments();
                Self(IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0)))
            }
            v4 => Self(v4),
        }
    }

    /// The address counted: the IPv4 address, or the IPv6 prefix with the rest zero.
    pub fn address(self) -> IpAddr {
        self.0
    }
}

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// Which limit refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Too many failed sign-ins to the account.
    Account,
    /// Too many failed sign-ins from the client.
    Client,
    /// Too many password reset requests for the account.
    Resets,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Client => "client",
            Self::Resets => "resets",
        }
    }
}

/// A refusal: which limit, and how long until an attempt would be counted again (when the oldest
/// attempt it counts leaves the window), in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    pub limit: Limit,
    pub retry_after: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// Unknown email, no password set, or a wrong password (counted as a failure).
    #[error("the email address or password is not right")]
    NotRight,
    /// A limit refused the attempt before the password was looked at.
    #[error("too many attempts ({} limit); try again in {} seconds", .0.limit.as_str(), .0.retry_after.as_secs())]
    Locked(Locked),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for AttemptError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

/// Signs in with `email` and `password` from `client` unless a limit refuses it first; a wrong
/// password stays counted against the account (when `email` is an address) and the client, the
/// right one clears the account's failures.
pub fn sign_in(
    conn: &mut DbConn,
    limits: &Limits,
    email: &str,
    password: &str,
    client: Option<Client>,
    now: DateTime<Utc>,
) -> Result<SignedIn, AttemptError> {
    let account = Account::typed(email);
    count_failure(conn, limits, account.as_ref(), client, now)?;
    match accounts::sign_in(conn, email, password, now) {
        Ok(signed) => {
            forget_failures(conn, &signed.organiser)?;
            Ok(signed)
        }
        Err(SignInError::Refused) => Err(AttemptError::NotRight),
        Err(SignInError::Db(e)) => Err(e.into()),
    }
}

/// Counts a sign-in as failed, unless the account or the client has had its fill of failures
/// within the window: then the refusal with the longer wait.
fn count_failure(
    conn: &mut DbConn,
    limits: &Limits,
    account: Option<&Account>,
    client: Option<Client>,
    now: DateTime<Utc>,
) -> Result<(), AttemptError> {
    let since = db::stored(now - limits.window);
    let client_key = client.map(|c| c.to_string());
    db::write_transaction(conn, |conn| {
        let mut keys = Vec::new();
        keys.extend(account.map(|a| lock_key("account", a.as_str())));
        keys.extend(client_key.as_deref().map(|c| lock_key("client", c)));
        serialise(conn, &keys)?;
        let by_account = match account {
            Some(account) => sign_in_attempts::table
                .filter(sign_in_attempts::kind.eq(SIGN_IN))
                .filter(sign_in_attempts::account.eq(account.as_str()))
                .filter(sign_in_attempts::at.gt(since))
                .order(sign_in_attempts::at.desc())
                .select(sign_in_attempts::at)
                .offset(nth_newest(limits.failures_per_account))
                .first::<NaiveDateTime>(conn)
                .optional()?,
            None => None,
        };
        let by_client = match &client_key {
            Some(key) => sign_in_attempts::table
                .filter(sign_in_attempts::kind.eq(SIGN_IN))
                .filter(sign_in_attempts::client.eq(key))
                .filter(sign_in_attempts::at.gt(since))
                .order(sign_in_attempts::at.desc())
                .select(sign_in_attempts::at)
                .offset(nth_newest(limits.failures_per_client))
                .first::<NaiveDateTime>(conn)
                .optional()?,
            None => None,
        };
        let refusal = refusal(
            &[(Limit::Account, by_account), (Limit::Client, by_client)],
            limits.window,
            now,
        );
        if let Some(locked) = refusal {
            return Err(AttemptError::Locked(locked));
        }
        insert(conn, SIGN_IN, account, client_key.as_deref(), now)?;
        Ok(())
    })
}

/// Clears the failed sign-ins of `organiser`'s account (not those of the clients they came
/// from): after the right password, or a password set through an emailed link.
pub fn forget_failures(conn: &mut DbConn, organiser: &Organiser) -> Result<usize, DbError> {
    let Some(account) = Account::typed(&organiser.email) else {
        return Ok(0);
    };
    Ok(diesel::delete(sign_in_attempts::table)
        .filter(sign_in_attempts::kind.eq(SIGN_IN))
        .filter(sign_in_attempts::account.eq(account.as_str()))
        .execute(conn)?)
}

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// The account has been sent its fill of reset links this hour.
    #[error("too many password resets asked for; try again in {} seconds", .0.retry_after.as_secs())]
    Locked(Locked),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for ResetError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

/// Emails a password reset link when `account` is an organiser's (see
/// [`accounts::request_reset`]), unless the account has been asked for too many this hour. Every
/// request counts, for an organiser's address or not, so the answer is the same either way.
pub fn request_reset(
    conn: &mut DbConn,
    limits: &Limits,
    key: &TokenKey,
    account: &Account,
    client: Option<Client>,
    site_name: &str,
    now: DateTime<Utc>,
) -> Result<Option<i64>, ResetError> {
    let window = Duration::minutes(RESET_WINDOW_MINUTES);
    let since = db::stored(now - window);
    let client_key = client.map(|c| c.to_string());
    db::write_transaction(conn, |conn| {
        serialise(conn, &[lock_key("account", account.as_str())])?;
        let counted = sign_in_attempts::table
            .filter(sign_in_attempts::kind.eq(RESET))
            .filter(sign_in_attempts::account.eq(account.as_str()))
            .filter(sign_in_attempts::at.gt(since))
            .order(sign_in_attempts::at.desc())
            .select(sign_in_attempts::at)
            .offset(nth_newest(limits.resets_per_account))
            .first::<NaiveDateTime>(conn)
            .optional()?;
        if let Some(locked) = refusal(&[(Limit::Resets, counted)], window, now) {
            return Err(ResetError::Locked(locked));
        }
        insert(conn, RESET, Some(account), client_key.as_deref(), now)?;
        Ok(())
    })?;
    Ok(accounts::request_reset(
        conn,
        key,
        account.as_str(),
        site_name,
        now,
    )?)
}

/// Deletes the attempts no window counts any more (older than the longest a window may be);
/// returns how many.
pub fn forget_old(conn: &mut DbConn, now: DateTime<Utc>) -> Result<usize, DbError> {
    let before = db::stored(now - Duration::minutes(i64::from(LONGEST_WINDOW_MINUTES)));
    Ok(diesel::delete(sign_in_attempts::table)
        .filter(sign_in_attempts::at.le(before))
        .execute(conn)?)
}

fn insert(
    conn: &mut DbConn,
    kind: &str,
    account: Option<&Account>,
    client: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::insert_into(sign_in_attempts::table)
        .values((
            sign_in_attempts::kind.eq(kind),
            sign_in_attempts::account.eq(account.map(Account::as_str)),
            sign_in_attempts::client.eq(client),
            sign_in_attempts::at.eq(db::stored(now)),
        ))
        .execute(conn)
}

/// The offset of the attempt that fills a limit of `limit`, newest first: when that one is in
/// the window, so are `limit` attempts.
fn nth_newest(limit: u32) -> i64 {
    i64::from(limit.saturating_sub(1))
}

/// The refusal, if any limit is full: `found` pairs each limit with the time of the attempt that
/// fills it (see [`nth_newest`]). With several full, the one that lasts longer.
fn refusal(
    found: &[(Limit, Option<NaiveDateTime>)],
    window: Duration,
    now: DateTime<Utc>,
) -> Option<Locked> {
    found
        .iter()
        .filter_map(|&(limit, at)| {
            at.map(|at| Locked {
                limit,
                retry_after: wait(at, window, now),
            })
        })
        .max_by_key(|locked| locked.retry_after)
}

/// How long until an attempt made at `at` leaves a `window` ending `now`: whole seconds,
/// rounded up, at least one.
fn wait(at: NaiveDateTime, window: Duration, now: DateTime<Utc>) -> std::time::Duration {
    let left = at.and_utc() + window - now;
    let millis = u64::try_from(left.num_milliseconds()).unwrap_or(0);
    std::time::Duration::from_secs(millis.div_ceil(1000).max(1))
}

/// Makes the transaction the only one counting attempts of these keys until it ends.
/// PostgreSQL: transaction-scoped advisory locks, always taken account first, then client, so
/// two transactions never wait on each other in a circle. SQLite: the write transaction began
/// with `BEGIN IMMEDIATE`, so it is the only writer already.
fn serialise(conn: &mut DbConn, keys: &[i64]) -> QueryResult<()> {
    match conn {
        DbConn::Pg(pg) => {
            for key in keys {
                diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                    .bind::<BigInt, _>(*key)
                    .execute(pg)?;
            }
            Ok(())
        }
        DbConn::Sqlite(_) => Ok(()),
    }
}

/// The advisory lock key of an account or client.
fn lock_key(what: &str, value: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(b"masterclass sign-in attempts\0")
        .chain_update(what.as_bytes())
        .chain_update(b"\0")
        .chain_update(value.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn client(text: &str) -> Client {
        Client::of(text.parse().expect("address"))
    }

    #[test]
    fn accounts_are_normalised_addresses_and_anything_else_is_not_kept() {
        assert_eq!(
            Account::typed("  Ada@Example.ORG ").map(|a| a.to_string()),
            Some("ada@example.org".to_owned())
        );
        assert_eq!(Account::typed("correct horse battery staple"), None);
        assert_eq!(Account::typed(""), None);
    }

    #[test]
    fn clients_are_ipv4_addresses_or_ipv6_prefixes() {
        assert_eq!(client("192.0.2.7").to_string(), "192.0.2.7");
        assert_eq!(client("::ffff:192.0.2.7").to_string(), "192.0.2.7");
        assert_eq!(client("2001:db8:1:2::1").to_string(), "2001:db8:1:2::/64");
        assert_eq!(client("2001:db8:1:2::1"), client("2001:db8:1:2:ffff::7"));
        assert_ne!(client("2001:db8:1:2::1"), client("2001:db8:1:3::1"));
    }

    #[test]
    fn a_limit_is_full_when_its_nth_newest_attempt_is_in_the_window() {
        assert_eq!(nth_newest(1), 0);
        assert_eq!(nth_newest(10), 9);
        let window = Duration::minutes(15);
        let now = at("2027-03-10T09:15:00Z");
        assert_eq!(refusal(&[(Limit::Account, None)], window, now), None);
        let filled = at("2027-03-10T09:05:00Z").naive_utc();
        assert_eq!(
            refusal(&[(Limit::Account, Some(filled))], window, now),
            Some(Locked {
                limit: Limit::Account,
                retry_after: std::time::Duration::from_secs(300),
            })
        );
    }

    #[test]
    fn the_wait_is_until_the_attempt_leaves_the_window_rounded_up() {
        let window = Duration::minutes(15);
        let now = at("2027-03-10T09:15:00Z");
        let secs = |t: &str| wait(at(t).naive_utc(), window, now).as_secs();
        assert_eq!(secs("2027-03-10T09:00:00.000001Z"), 1);
        assert_eq!(secs("2027-03-10T09:00:01.5Z"), 2);
        assert_eq!(secs("2027-03-10T09:14:59Z"), 899);
        // Never "retry after 0": a refusal always asks for a wait.
        assert_eq!(secs("2027-03-10T09:00:00Z"), 1);
    }

    #[test]
    fn with_both_limits_full_the_longer_wait_wins() {
        let window = Duration::minutes(15);
        let now = at("2027-03-10T09:15:00Z");
        let locked = refusal(
            &[
                (Limit::Account, Some(at("2027-03-10T09:01:00Z").naive_utc())),
                (Limit::Client, Some(at("2027-03-10T09:10:00Z").naive_utc())),
            ],
            window,
            now,
        )
        .expect("refused");
        assert_eq!(locked.limit, Limit::Client);
        assert_eq!(locked.retry_after.as_secs(), 600);
    }

    #[test]
    fn lock_keys_are_stable_and_tell_accounts_from_clients() {
        assert_eq!(
            lock_key("account", "ada@example.org"),
            lock_key("account", "ada@example.org")
        );
        assert_ne!(
            lock_key("account", "ada@example.org"),
            lock_key("account", "bob@example.org")
        );
        assert_ne!(
            lock_key("account", "192.0.2.7"),
            lock_key("client", "192.0.2.7")
        );
    }
}
