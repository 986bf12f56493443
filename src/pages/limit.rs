//! The rate limit of the forms that book, join waitlists or cancel, and of the organiser
//! sign-in forms: so many per minute per client (GCRA through `governor`, which allows a burst of
//! that many and then one every `60 / n` seconds), counted in this process's memory. The address
//! is the connection's peer, or, behind a trusted proxy, the last `X-Forwarded-For` entry: the
//! one the proxy added (earlier ones are whatever the client sent). Also the page shown when the
//! organiser sign-in limits kept in the database refuse an attempt.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::PageError;
use crate::organisers::sign_in_limits::{Client, Refused, Rule};

/// Addresses remembered before old ones are dropped.
const TIDY_EVERY: u32 = 1024;

pub struct Limiter {
    limiter: RateLimiter<Client, DefaultKeyedStateStore<Client>, DefaultClock>,
    trust_forwarded_for: bool,
    checks: AtomicU32,
}

impl Limiter {
    pub fn new(per_minute: NonZeroU32, trust_forwarded_for: bool) -> Self {
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            trust_forwarded_for,
            checks: AtomicU32::new(0),
        }
    }

    /// Counts one form from `req`'s client; a 429 page once it has sent too many.
    pub fn check(&self, req: &HttpRequest) -> Result<(), PageError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % TIDY_EVERY == TIDY_EVERY - 1 {
            self.limiter.retain_recent();
        }
        let Some(client) = self.client(req) else {
            return Ok(());
        };
        self.limiter.check_key(&client).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            tracing::warn!("form rate limit reached for a client");
            PageError::too_many(wait.as_secs() + 1)
        })
    }

    /// Who sent `req`, as counted here and by the sign-in limits: its address, an IPv6 address
    /// by its /64 (see [`Client`]); `None` when the connection has no address.
    pub fn client(&self, req: &HttpRequest) -> Option<Client> {
        let address = if self.trust_forwarded_for {
            forwarded_for(req).or_else(|| req.peer_addr().map(|a| a.ip()))
        } else {
            req.peer_addr().map(|a| a.ip())
        };
        address.map(Client::of)
    }
}

/// The 429 page of an organiser sign-in or password reset that a limit refused, with
/// `Retry-After`.
pub fn paused(refused: &Refused) -> PageError {
    let seconds = refused.retry_after.as_secs().max(1);
    let wait = in_words(seconds);
    let message = match refused.rule {
        Rule::AccountFromClient | Rule::AccountEverywhere => format!(
            "There have been too many unsuccessful sign-ins to this account, so it is paused. \
             Please try again in {wait}, or reset your password."
        ),
        Rule::Client => format!(
            "There have been too many unsuccessful sign-ins from this connection, so it is \
             paused. Please try again in {wait}."
        ),
        Rule::ResetsFromClient | Rule::ResetsEverywhere => format!(
            "Password reset links for this email address have been asked for several times in \
             the last hour, so no more are sent for now. Please use the newest email, or ask \
             again in {wait}."
        ),
        Rule::ResetsByClient => format!(
            "This connection has asked for several password reset links in the last hour, so \
             no more are sent from it for now. Please use the newest email, or ask again in \
             {wait}."
        ),
    };
    PageError {
        message,
        ..PageError::too_many(seconds)
    }
}

/// `seconds` for people: seconds under two minutes, whole minutes (rounded up) above.
fn in_words(seconds: u64) -> String {
    if seconds < 120 {
        format!("{seconds} seconds")
    } else {
        format!("{} minutes", seconds.div_ceil(60))
    }
}

/// The address the proxy in front added: the last entry of the last `X-Forwarded-For` line
/// (a client may send lines and entries of its own before it), with or without a port.
fn forwarded_for(req: &HttpRequest) -> Option<IpAddr> {
    let last = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .next_back()?
        .rsplit(',')
        .next()?
        .trim();
    last.parse::<IpAddr>()
        .ok()
        .or_else(|| last.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn key(trust: bool, request: TestRequest) -> Option<IpAddr> {
        let limiter = Limiter::new(NonZeroU32::MIN, trust);
        let request = request
            .peer_addr("10.0.0.9:50000".parse().expect("address"))
            .to_http_request();
        limiter.client(&request).map(Client::address)
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("address"))
    }

    #[test]
    fn the_peer_counts_unless_a_proxy_is_trusted() {
        let spoofed = || TestRequest::default().insert_header(("x-forwarded-for", "192.0.2.1"));
        assert_eq!(key(false, spoofed()), ip("10.0.0.9"));
        assert_eq!(key(true, spoofed()), ip("192.0.2.1"));
        assert_eq!(key(true, TestRequest::default()), ip("10.0.0.9"));
    }

    #[test]
    fn the_entry_the_proxy_added_counts_not_the_clients() {
        let appended =
            TestRequest::default().insert_header(("x-forwarded-for", "198.51.100.1, 192.0.2.7"));
        assert_eq!(key(true, appended), ip("192.0.2.7"));
        let two_lines = TestRequest::default()
            .append_header(("x-forwarded-for", "198.51.100.1"))
            .append_header(("x-forwarded-for", "192.0.2.7"));
        assert_eq!(key(true, two_lines), ip("192.0.2.7"));
        let with_port = TestRequest::default().insert_header(("x-forwarded-for", "192.0.2.7:4711"));
        assert_eq!(key(true, with_port), ip("192.0.2.7"));
        let garbage = TestRequest::default().insert_header(("x-forwarded-for", "not an address"));
        assert_eq!(key(true, garbage), ip("10.0.0.9"));
    }

    #[test]
    fn ipv6_clients_count_by_their_64_bit_prefix() {
        let one = TestRequest::default().insert_header(("x-forwarded-for", "2001:db8:1:2::1"));
        let other =
            TestRequest::default().insert_header(("x-forwarded-for", "[2001:db8:1:2:ffff::7]:443"));
        assert_eq!(key(true, one), ip("2001:db8:1:2::"));
        assert_eq!(key(true, other), ip("2001:db8:1:2::"));
    }

    #[test]
    fn past_the_quota_a_client_waits() {
        let limiter = Limiter::new(NonZeroU32::new(2).expect("two"), false);
        let request = TestRequest::default()
            .peer_addr("10.0.0.9:50000".parse().expect("address"))
            .to_http_request();
        assert!(limiter.check(&request).is_ok());
        assert!(limiter.check(&request).is_ok());
        let refused = limiter.check(&request).expect_err("third in a minute");
        assert_eq!(refused.status.as_u16(), 429);
        assert!(refused.retry_after.is_some_and(|s| (1..=31).contains(&s)));
        let other = TestRequest::default()
            .peer_addr("10.0.0.10:50000".parse().expect("address"))
            .to_http_request();
        assert!(limiter.check(&other).is_ok());
    }

    #[test]
    fn a_paused_sign_in_says_how_long_and_what_to_do() {
        let locked = |rule, secs| Refused {
            rule,
            retry_after: std::time::Duration::from_secs(secs),
        };
        let account = paused(&locked(Rule::AccountEverywhere, 899));
        assert_eq!(account.status.as_u16(), 429);
        assert_eq!(account.retry_after, Some(899));
        assert!(
            account.message.contains("in 15 minutes"),
            "{}",
            account.message
        );
        assert!(account.message.contains("reset your password"));
        let client = paused(&locked(Rule::Client, 61));
        assert!(
            client.message.contains("in 61 seconds"),
            "{}",
            client.message
        );
        assert!(client.message.contains("this connection"));
        let resets = paused(&locked(Rule::ResetsFromClient, 3600));
        assert!(
            resets.message.contains("in 60 minutes") && resets.message.contains("email address"),
            "{}",
            resets.message
        );
        let from_here = paused(&locked(Rule::ResetsByClient, 600));
        assert!(
            from_here.message.contains("This connection"),
            "{}",
            from_here.message
        );
    }
}
