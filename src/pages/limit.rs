//! The rate limit of the forms that book, join waitlists or cancel: so many per minute per
//! client address (GCRA through `governor`, which allows a burst of that many and then one every
//! `60 / n` seconds). The address is the connection's peer, or, behind a trusted proxy, the last
//! `X-Forwarded-For` entry: the one the proxy added (earlier ones are whatever the client sent).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::PageError;

/// Addresses remembered before old ones are dropped.
const TIDY_EVERY: u32 = 1024;

pub struct Limiter {
    limiter: RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>,
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
        let Some(address) = self.client_address(req) else {
            return Ok(());
        };
        self.limiter.check_key(&address).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            tracing::warn!("form rate limit reached for a client");
            PageError::too_many(wait.as_secs() + 1)
        })
    }

    /// The key a client is counted under: its address, an IPv6 address by its /64 (one
    /// household or server has all of those).
    fn client_address(&self, req: &HttpRequest) -> Option<IpAddr> {
        let address = if self.trust_forwarded_for {
            forwarded_for(req).or_else(|| req.peer_addr().map(|a| a.ip()))
        } else {
            req.peer_addr().map(|a| a.ip())
        };
        address.map(|ip| match ip {
            IpAddr::V6(v6) => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
            v4 => v4,
        })
    }
}

/// The address the proxy in front added: the last entry of the last `X-Forwarded-For` line
/// (a client may send lines and entries of its own before it), with or without a port.
/// Sign-in attempts per account (by normalised email), whatever address they come from.
pub struct AccountLimiter {
    limiter: RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>,
    checks: AtomicU32,
}

impl AccountLimiter {
    pub fn new(per_minute: NonZeroU32) -> Self {
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            checks: AtomicU32::new(0),
        }
    }

    /// Counts one attempt for `account`; a 429 page once it has had too many.
    pub fn check(&self, account: &str) -> Result<(), PageError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % TIDY_EVERY == TIDY_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&account.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                tracing::warn!("sign-in rate limit reached for an account");
                PageError::too_many(wait.as_secs() + 1)
            })
    }
}

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
        limiter.client_address(&request)
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
}
