//! Counting attempts: the rule groups, the check-and-count step under the account's and the
//! client's lock, and the arithmetic of windows and waits. The rules themselves and what is
//! asked of them are in the parent module.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use sha2::{Digest, Sha256};

use super::{Account, Client, Kind, Limits, Refused, Rule, KNOWN, KNOWN_FOR_DAYS};
use crate::db::schema::sign_in_attempts;
use crate::db::{self, DbConn};

/// The attempts one rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Group<'a> {
    /// The account's from one client; `None`: from clients of no known address, as one.
    AccountFrom(&'a str, Option<&'a str>),
    /// The account's from every client.
    Account(&'a str),
    /// The client's, on any account or none.
    Client(&'a str),
}

/// Counts an attempt of `kind`, unless one of its rules has had its fill within the window: then
/// the refusal with the longest wait, and nothing counted. A rule waived for a client known to
/// the account (see [`known`]) is not checked for one.
pub(super) fn check_and_count<E>(
    conn: &mut DbConn,
    kind: Kind,
    limits: &Limits,
    account: Option<&Account>,
    client: Option<Client>,
    now: DateTime<Utc>,
) -> Result<(), E>
where
    E: From<diesel::result::Error> + From<Refused>,
{
    let window = kind.window(limits);
    let since = db::stored(now - window);
    let known_since = db::stored(now - Duration::days(KNOWN_FOR_DAYS));
    let account = account.map(Account::as_str);
    let client = client.map(|c| c.to_string());
    let client = client.as_deref();
    db::write_transaction(conn, |conn| {
        serialise(conn, account, client)?;
        let mut found = Vec::new();
        for rule in kind.rules() {
            if let Some(group) = rule.group(account, client) {
                if rule.waived_for_known_client() && known(conn, account, client, known_since)? {
                    continue;
                }
                let filling = filling(conn, kind, group, rule.allowed(limits), since)?;
                found.push((rule, filling));
            }
        }
        if let Some(refused) = refusal(&found, window, now) {
            return Err(refused.into());
        }
        insert(conn, kind.as_str(), account, client, now)?;
        Ok(())
    })
}

/// The time of the attempt in `group` that fills a limit of `allowed` (see [`nth_newest`]), if
/// it is after `since`.
pub(super) fn filling(
    conn: &mut DbConn,
    kind: Kind,
    group: Group<'_>,
    allowed: u32,
    since: NaiveDateTime,
) -> QueryResult<Option<NaiveDateTime>> {
    let counted = sign_in_attempts::table
        .filter(sign_in_attempts::kind.eq(kind.as_str()))
        .filter(sign_in_attempts::at.gt(since))
        .select(sign_in_attempts::at)
        .into_boxed();
    let counted = match group {
        Group::AccountFrom(account, Some(client)) => counted
            .filter(sign_in_attempts::account.eq(account))
            .filter(sign_in_attempts::client.eq(client)),
        Group::AccountFrom(account, None) => counted
            .filter(sign_in_attempts::account.eq(account))
            .filter(sign_in_attempts::client.is_null()),
        Group::Account(account) => counted.filter(sign_in_attempts::account.eq(account)),
        Group::Client(client) => counted.filter(sign_in_attempts::client.eq(client)),
    };
    counted
        .order(sign_in_attempts::at.desc())
        .offset(nth_newest(allowed))
        .first(conn)
        .optional()
}

/// Whether `account` signed in successfully from `client` after `since`; never for no account
/// or no known address.
pub(super) fn known(
    conn: &mut DbConn,
    account: Option<&str>,
    client: Option<&str>,
    since: NaiveDateTime,
) -> QueryResult<bool> {
    let (Some(account), Some(client)) = (account, client) else {
        return Ok(false);
    };
    diesel::select(diesel::dsl::exists(
        sign_in_attempts::table
            .filter(sign_in_attempts::kind.eq(KNOWN))
            .filter(sign_in_attempts::account.eq(account))
            .filter(sign_in_attempts::client.eq(client))
            .filter(sign_in_attempts::at.gt(since)),
    ))
    .get_result(conn)
}

/// Remembers that `account` signed in successfully from `client` at `now`, in place of any
/// earlier sign-in of the account from it. Run under the account's lock (see [`serialise`]).
pub(super) fn remember(
    conn: &mut DbConn,
    account: &str,
    client: &str,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::delete(sign_in_attempts::table)
        .filter(sign_in_attempts::kind.eq(KNOWN))
        .filter(sign_in_attempts::account.eq(account))
        .filter(sign_in_attempts::client.eq(client))
        .execute(conn)?;
    insert(conn, KNOWN, Some(account), Some(client), now)
}

pub(super) fn insert(
    conn: &mut DbConn,
    kind: &str,
    account: Option<&str>,
    client: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::insert_into(sign_in_attempts::table)
        .values((
            sign_in_attempts::kind.eq(kind),
            sign_in_attempts::account.eq(account),
            sign_in_attempts::client.eq(client),
            sign_in_attempts::at.eq(db::stored(now)),
        ))
        .execute(conn)
}

/// The offset of the attempt that fills a limit of `limit`, newest first: when that one is in
/// the window, so are `limit` attempts.
pub(super) fn nth_newest(limit: u32) -> i64 {
    i64::from(limit.saturating_sub(1))
}

/// The refusal, if any rule is full: `found` pairs each rule with the time of the attempt that
/// fills it (see [`nth_newest`]). With several full, the one that lasts longest.
pub(super) fn refusal(
    found: &[(Rule, Option<NaiveDateTime>)],
    window: Duration,
    now: DateTime<Utc>,
) -> Option<Refused> {
    found
        .iter()
        .filter_map(|&(rule, at)| {
            at.map(|at| Refused {
                rule,
                retry_after: wait(at, window, now),
            })
        })
        .max_by_key(|refused| refused.retry_after)
}

/// How long until an attempt made at `at` leaves a `window` ending `now`: whole seconds,
/// rounded up, at least one.
pub(super) fn wait(at: NaiveDateTime, window: Duration, now: DateTime<Utc>) -> std::time::Duration {
    let left = at.and_utc() + window - now;
    let millis = u64::try_from(left.num_milliseconds()).unwrap_or(0);
    std::time::Duration::from_secs(millis.div_ceil(1000).max(1))
}

/// Makes the transaction the only one counting attempts of this account or this client until it
/// ends. The account's lock covers every rule counting by the account (from one client or from
/// all), the client's every rule counting by the client. PostgreSQL: transaction-scoped advisory
/// locks, always the account's first, then the client's, so two transactions never wait on each
/// other in a circle. SQLite: the write transaction began with `BEGIN IMMEDIATE`, so it is the
/// only writer already.
pub(super) fn serialise(
    conn: &mut DbConn,
    account: Option<&str>,
    client: Option<&str>,
) -> QueryResult<()> {
    match conn {
        DbConn::Pg(pg) => {
            for key in lock_keys(account, client) {
                diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                    .bind::<BigInt, _>(key)
                    .execute(pg)?;
            }
            Ok(())
        }
        DbConn::Sqlite(_) => Ok(()),
    }
}

/// The advisory locks an attempt takes, in the order it takes them: the account's, then the
/// client's.
pub(super) fn lock_keys(account: Option<&str>, client: Option<&str>) -> Vec<i64> {
    let account = account.map(|a| lock_key("account", a));
    let client = client.map(|c| lock_key("client", c));
    account.into_iter().chain(client).collect()
}

/// The advisory lock key of an account or client.
pub(super) fn lock_key(what: &str, value: &str) -> i64 {
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
