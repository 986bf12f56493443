//! Limits on organiser sign-ins and password reset requests, counted in the database
//! (`sign_in_attempts`) so that every app instance behind a load balancer enforces the same
//! ones: N instances give an attacker no more guesses than one.
//!
//! Failed sign-ins are limited three ways within the window:
//! - per account *and* client address (`failures_per_account`): guesses at an account from one
//!   address lock it for that address only, so nobody can lock the owner out by guessing from
//!   somewhere else;
//! - per account from every address together (`failures_per_account_everywhere`, set well
//!   above the first): this stops guessing spread over many addresses, and locks the owner out
//!   too while it lasts, except from an address they have signed in from lately (below).
//!   Setting a password through an emailed reset link lifts it;
//! - per client address to any accounts (`failures_per_client`).
//!
//! Attempts from no known address count as one address of their own for the first limit, and
//! the third does not count them.
//!
//! Each successful sign-in is remembered (a `known` row per account and address, replaced at
//! the next one). An address that signed in to the account within [`KNOWN_FOR_DAYS`] is exempt
//! from the second limit for that account, so failures spread over many addresses cannot keep
//! the owner out from where they usually sign in; the first and third limits still apply to it.
//! Attempts from no known address are never exempt.
//!
//! Password reset requests are limited the same three ways over an hour, for the same reason:
//! if resets were counted per account only, anyone could use up the owner's resets from
//! anywhere. Per account and address (`resets_per_account`), the owner can still ask from
//! their own address. Per account from every address (`resets_per_account_everywhere`), the
//! number of emails one inbox gets is still capped, which is what a per-account limit is for.
//! Per client address (`resets_per_client`), one address cannot send resets to many inboxes.
//! Even when someone fills the everywhere cap, the owner is not cut off: every link those
//! requests sent is in the owner's inbox and works until it expires.
//!
//! A sign-in is counted as failed *before* its password is checked, in the write transaction
//! that checks the limits. The right password then clears the account's failures from that
//! address, but not those from elsewhere, which say nothing about the owner; a password set
//! through an emailed link clears them all. Checking and counting are one step under the
//! account's and the client's lock, so concurrent attempts cannot all slip under a limit. The
//! slow password check runs outside any transaction. An attempt a limit refuses is neither
//! checked nor counted.

use std::net::{IpAddr, Ipv6Addr};

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

use super::accounts::{self, SignInError, SignedIn};
use super::Organiser;
use crate::config::SignInSettings;
use crate::db::schema::sign_in_attempts;
use crate::db::{self, DbConn, DbError};
use crate::tokens::TokenKey;
use crate::validation::Email;

mod counting;

use counting::{check_and_count, remember, serialise, Group};

/// The longest window a setting may give; the sweeper forgets attempts older than this.
pub const LONGEST_WINDOW_MINUTES: u32 = 24 * 60;
/// Password reset requests are counted over an hour.
const RESET_WINDOW_MINUTES: i64 = 60;
/// How long an address an account signed in from stays exempt from the account's limit from
/// every address; the sweeper forgets the sign-in after this.
pub const KNOWN_FOR_DAYS: i64 = 30;
/// The `kind` of a remembered successful sign-in.
const KNOWN: &str = "known";

/// How many failures and reset requests are allowed, and over how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    failures_per_account: u32,
    failures_per_account_everywhere: u32,
    failures_per_client: u32,
    window: Duration,
    resets_per_account: u32,
    resets_per_account_everywhere: u32,
    resets_per_client: u32,
}

impl Limits {
    pub fn from_settings(settings: &SignInSettings) -> Self {
        Self {
            failures_per_account: settings.failures_per_account.get(),
            failures_per_account_everywhere: settings.failures_per_account_everywhere.get(),
            failures_per_client: settings.failures_per_client.get(),
            window: Duration::minutes(i64::from(settings.window_minutes.get())),
            resets_per_account: settings.resets_per_account.get(),
            resets_per_account_everywhere: settings.resets_per_account_everywhere.get(),
            resets_per_client: settings.resets_per_client.get(),
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

/// What is counted: a failed sign-in or a password reset request (the `kind` column; a
/// remembered successful sign-in is [`KNOWN`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    SignIn,
    Reset,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "sign_in",
            Self::Reset => "reset",
        }
    }

    /// The rules an attempt of this kind must pass.
    fn rules(self) -> [Rule; 3] {
        match self {
            Self::SignIn => [
                Rule::AccountFromClient,
                Rule::AccountEverywhere,
                Rule::Client,
            ],
            Self::Reset => [
                Rule::ResetsFromClient,
                Rule::ResetsEverywhere,
                Rule::ResetsByClient,
            ],
        }
    }

    fn window(self, limits: &Limits) -> Duration {
        match self {
            Self::SignIn => limits.window,
            Self::Reset => Duration::minutes(RESET_WINDOW_MINUTES),
        }
    }
}

/// One limit as counted: which attempts it counts and how many it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Failed sign-ins to the account from the client (`failures_per_account`).
    AccountFromClient,
    /// Failed sign-ins to the account from every client together
    /// (`failures_per_account_everywhere`).
    AccountEverywhere,
    /// Failed sign-ins from the client to any accounts (`failures_per_client`).
    Client,
    /// Reset requests for the account from the client (`resets_per_account`).
    ResetsFromClient,
    /// Reset requests for the account from every client together
    /// (`resets_per_account_everywhere`).
    ResetsEverywhere,
    /// Reset requests from the client for any accounts (`resets_per_client`).
    ResetsByClient,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccountFromClient => "account_from_client",
            Self::AccountEverywhere => "account_everywhere",
            Self::Client => "client",
            Self::ResetsFromClient => "resets_from_client",
            Self::ResetsEverywhere => "resets_everywhere",
            Self::ResetsByClient => "resets_by_client",
        }
    }

    /// Whether an address that signed in to the account within [`KNOWN_FOR_DAYS`] is exempt.
    fn waived_for_known_client(self) -> bool {
        matches!(self, Self::AccountEverywhere)
    }

    /// How many attempts the rule allows within the window.
    fn allowed(self, limits: &Limits) -> u32 {
        match self {
            Self::AccountFromClient => limits.failures_per_account,
            Self::AccountEverywhere => limits.failures_per_account_everywhere,
            Self::Client => limits.failures_per_client,
            Self::ResetsFromClient => limits.resets_per_account,
            Self::ResetsEverywhere => limits.resets_per_account_everywhere,
            Self::ResetsByClient => limits.resets_per_client,
        }
    }

    /// The attempts the rule counts for an attempt on `account` from `client`; `None` when it
    /// has nothing to count by (no account for the account rules, no client address for the
    /// client rules).
    fn group<'a>(self, account: Option<&'a str>, client: Option<&'a str>) -> Option<Group<'a>> {
        match self {
            Self::AccountFromClient | Self::ResetsFromClient => {
                account.map(|account| Group::AccountFrom(account, client))
            }
            Self::AccountEverywhere | Self::ResetsEverywhere => account.map(Group::Account),
            Self::Client | Self::ResetsByClient => client.map(Group::Client),
        }
    }
}

/// A refusal with the rule behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub rule: Rule,
    pub retry_after: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// Unknown email, no password set, or a wrong password (counted as a failure).
    #[error("the email address or password is not right")]
    NotRight,
    /// A limit refused the attempt before the password was looked at.
    #[error("too many attempts ({} limit); try again in {} seconds", .0.rule.as_str(), .0.retry_after.as_secs())]
    Locked(Refused),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for AttemptError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

impl From<Refused> for AttemptError {
    fn from(refused: Refused) -> Self {
        Self::Locked(refused)
    }
}

/// Signs in with `email` and `password` from `client` unless a limit refuses it first. A wrong
/// password stays counted against the account (when `email` is an address), the account from
/// this client, and the client; the right one clears the account's failures from this client
/// and remembers the client as known to the account.
pub fn sign_in(
    conn: &mut DbConn,
    limits: &Limits,
    email: &str,
    password: &str,
    client: Option<Client>,
    now: DateTime<Utc>,
) -> Result<SignedIn, AttemptError> {
    let account = Account::typed(email);
    check_and_count::<AttemptError>(conn, Kind::SignIn, limits, account.as_ref(), client, now)?;
    match accounts::sign_in(conn, email, password, now) {
        Ok(signed) => {
            if let Some(account) = Account::typed(&signed.organiser.email) {
                signed_in_from(conn, &account, client, now)?;
            }
            Ok(signed)
        }
        Err(SignInError::Refused) => Err(AttemptError::NotRight),
        Err(SignInError::Db(e)) => Err(e.into()),
    }
}

/// Clears every failed sign-in of `organiser`'s account, from whichever client (not the failures
/// of those clients on other accounts): after a password set through an emailed link, which
/// proves the owner and also lifts a lock on the account from everywhere.
pub fn forget_failures(conn: &mut DbConn, organiser: &Organiser) -> Result<usize, DbError> {
    let Some(account) = Account::typed(&organiser.email) else {
        return Ok(0);
    };
    Ok(diesel::delete(sign_in_attempts::table)
        .filter(sign_in_attempts::kind.eq(Kind::SignIn.as_str()))
        .filter(sign_in_attempts::account.eq(account.as_str()))
        .execute(conn)?)
}

/// After a successful sign-in: clears the failed sign-ins of `account` from `client` and, for a
/// known address, replaces the remembered sign-in of the account from it with one at `now`.
fn signed_in_from(
    conn: &mut DbConn,
    account: &Account,
    client: Option<Client>,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let address = client.map(|c| c.to_string());
    db::write_transaction(conn, |conn| {
        serialise(conn, Some(account.as_str()), address.as_deref())?;
        forget_failures_from(conn, account, client)?;
        if let Some(address) = &address {
            remember(conn, account.as_str(), address, now)?;
        }
        Ok(())
    })
}

/// Clears the failed sign-ins of `account` from `client` (or from no known address).
fn forget_failures_from(
    conn: &mut DbConn,
    account: &Account,
    client: Option<Client>,
) -> QueryResult<usize> {
    let delete = diesel::delete(sign_in_attempts::table)
        .filter(sign_in_attempts::kind.eq(Kind::SignIn.as_str()))
        .filter(sign_in_attempts::account.eq(account.as_str()))
        .into_boxed();
    match client {
        Some(client) => delete
            .filter(sign_in_attempts::client.eq(client.to_string()))
            .execute(conn),
        None => delete
            .filter(sign_in_attempts::client.is_null())
            .execute(conn),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// The account, or the client, has been sent its fill of reset links this hour.
    #[error("too many password resets asked for ({}); try again in {} seconds", .0.rule.as_str(), .0.retry_after.as_secs())]
    Locked(Refused),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for ResetError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

impl From<Refused> for ResetError {
    fn from(refused: Refused) -> Self {
        Self::Locked(refused)
    }
}

/// Emails a password reset link when `account` is an organiser's (see
/// [`accounts::request_reset`]), unless too many have been asked for this hour: for the account
/// from `client`, for the account from everywhere, or from `client` for any accounts. Every
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
    check_and_count::<ResetError>(conn, Kind::Reset, limits, Some(account), client, now)?;
    Ok(accounts::request_reset(
        conn,
        key,
        account.as_str(),
        site_name,
        now,
    )?)
}

/// Deletes the attempts no window counts any more (older than the longest a window may be)
/// and the sign-ins remembered more than [`KNOWN_FOR_DAYS`] ago; returns how many.
pub fn forget_old(conn: &mut DbConn, now: DateTime<Utc>) -> Result<usize, DbError> {
    let counted_before = db::stored(now - Duration::minutes(i64::from(LONGEST_WINDOW_MINUTES)));
    let known_before = db::stored(now - Duration::days(KNOWN_FOR_DAYS));
    let counted = sign_in_attempts::kind
        .ne(KNOWN)
        .and(sign_in_attempts::at.le(counted_before));
    let known = sign_in_attempts::kind
        .eq(KNOWN)
        .and(sign_in_attempts::at.le(known_before));
    Ok(diesel::delete(sign_in_attempts::table)
        .filter(counted.or(known))
        .execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::counting::*;
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
        assert_eq!(
            refusal(&[(Rule::AccountFromClient, None)], window, now),
            None
        );
        let filled = at("2027-03-10T09:05:00Z").naive_utc();
        assert_eq!(
            refusal(&[(Rule::AccountFromClient, Some(filled))], window, now),
            Some(Refused {
                rule: Rule::AccountFromClient,
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
    fn with_several_limits_full_the_longest_wait_wins() {
        let window = Duration::minutes(15);
        let now = at("2027-03-10T09:15:00Z");
        let refused = refusal(
            &[
                (
                    Rule::AccountFromClient,
                    Some(at("2027-03-10T09:01:00Z").naive_utc()),
                ),
                (Rule::AccountEverywhere, None),
                (Rule::Client, Some(at("2027-03-10T09:10:00Z").naive_utc())),
            ],
            window,
            now,
        )
        .expect("refused");
        assert_eq!(refused.rule, Rule::Client);
        assert_eq!(refused.retry_after.as_secs(), 600);
    }

    fn limits() -> Limits {
        Limits {
            failures_per_account: 10,
            failures_per_account_everywhere: 100,
            failures_per_client: 50,
            window: Duration::minutes(15),
            resets_per_account: 5,
            resets_per_account_everywhere: 20,
            resets_per_client: 21,
        }
    }

    #[test]
    fn sign_ins_count_by_account_and_client_by_account_and_by_client() {
        let limits = limits();
        let counted = |account, client| {
            Kind::SignIn.rules().map(|rule| {
                rule.group(account, client)
                    .map(|g| (g, rule.allowed(&limits)))
            })
        };
        assert_eq!(
            counted(Some("ada@example.org"), Some("192.0.2.7")),
            [
                Some((Group::AccountFrom("ada@example.org", Some("192.0.2.7")), 10)),
                Some((Group::Account("ada@example.org"), 100)),
                Some((Group::Client("192.0.2.7"), 50)),
            ]
        );
        assert_eq!(
            counted(Some("ada@example.org"), None),
            [
                Some((Group::AccountFrom("ada@example.org", None), 10)),
                Some((Group::Account("ada@example.org"), 100)),
                None,
            ],
            "no known address is a client of its own for the account, and not limited as one"
        );
        assert_eq!(
            counted(None, Some("192.0.2.7")),
            [None, None, Some((Group::Client("192.0.2.7"), 50))],
            "what is no email address counts against the client only"
        );
    }

    #[test]
    fn resets_count_the_same_ways_with_their_own_limits_over_an_hour() {
        let limits = limits();
        let counted = Kind::Reset.rules().map(|rule| {
            let group = rule.group(Some("ada@example.org"), Some("192.0.2.7"));
            (group, rule.allowed(&limits))
        });
        assert_eq!(
            counted,
            [
                (
                    Some(Group::AccountFrom("ada@example.org", Some("192.0.2.7"))),
                    5
                ),
                (Some(Group::Account("ada@example.org")), 20),
                (Some(Group::Client("192.0.2.7")), 21),
            ]
        );
        assert_eq!(Kind::Reset.window(&limits), Duration::hours(1));
        assert_eq!(Kind::SignIn.window(&limits), Duration::minutes(15));
    }

    #[test]
    fn only_the_limit_from_everywhere_is_waived_for_a_known_client() {
        let waived: Vec<Rule> = [Kind::SignIn.rules(), Kind::Reset.rules()]
            .concat()
            .into_iter()
            .filter(|rule| rule.waived_for_known_client())
            .collect();
        assert_eq!(waived, [Rule::AccountEverywhere]);
    }

    #[test]
    fn known_sign_ins_are_kept_for_thirty_days_and_failures_for_the_longest_window() {
        let mut conn = DbConn::Sqlite(
            diesel::sqlite::SqliteConnection::establish(":memory:").expect("in-memory database"),
        );
        db::migrate(&mut conn).expect("migrations");
        let now = at("2027-03-10T09:00:00Z");
        let (ada, old, recent) = ("ada@example.org", "192.0.2.1", "192.0.2.2");
        let a_month_ago = now - Duration::days(KNOWN_FOR_DAYS) - Duration::minutes(1);
        remember(&mut conn, ada, old, a_month_ago).expect("old");
        remember(&mut conn, ada, recent, now - Duration::days(10)).expect("recent");
        insert(
            &mut conn,
            "sign_in",
            Some(ada),
            Some(old),
            now - Duration::days(2),
        )
        .expect("old");
        insert(&mut conn, "sign_in", Some(ada), Some(recent), now).expect("recent");
        remember(&mut conn, ada, recent, now - Duration::days(3)).expect("refreshed");

        assert_eq!(forget_old(&mut conn, now).expect("forgotten"), 2);

        let left: Vec<(String, Option<String>)> = sign_in_attempts::table
            .order(sign_in_attempts::id)
            .select((sign_in_attempts::kind, sign_in_attempts::client))
            .load(&mut conn)
            .expect("left");
        assert_eq!(
            left,
            [
                ("sign_in".to_owned(), Some(recent.to_owned())),
                ("known".to_owned(), Some(recent.to_owned())),
            ]
        );
        let since = db::stored(now - Duration::days(KNOWN_FOR_DAYS));
        let known =
            |conn: &mut DbConn, client| known(conn, Some(ada), client, since).expect("known");
        assert!(known(&mut conn, Some(recent)));
        assert!(!known(&mut conn, Some(old)));
        assert!(!known(&mut conn, None));
    }

    #[test]
    fn rules_are_logged_by_name() {
        assert_eq!(Rule::AccountEverywhere.as_str(), "account_everywhere");
        assert_eq!(Rule::ResetsByClient.as_str(), "resets_by_client");
    }

    #[test]
    fn the_account_lock_is_taken_before_the_client_lock() {
        let (account, client) = ("ada@example.org", "192.0.2.7");
        assert_eq!(
            lock_keys(Some(account), Some(client)),
            [lock_key("account", account), lock_key("client", client)]
        );
        assert_eq!(
            lock_keys(Some(account), None),
            [lock_key("account", account)]
        );
        assert_eq!(lock_keys(None, Some(client)), [lock_key("client", client)]);
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
