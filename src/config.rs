//! Typed settings, read once at start-up from `config/default.toml`, `config/<MASTERCLASS_ENV>.toml`
//! and `MASTERCLASS__SECTION__KEY` environment variables, in that order.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;

use crate::db::DatabaseUrl;

/// The built-in defaults, so the binary starts even where no `config/` folder is at hand.
const DEFAULTS: &str = include_str!("../config/default.toml");

/// Everything the service can be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Create a published demo event and a demo organiser when the database has no event yet.
    pub demo: bool,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    pub bookings: BookingSettings,
    pub secrets: SecretSettings,
    pub mail: MailSettings,
    pub payments: PaymentSettings,
    pub pages: PageSettings,
    pub sign_in: SignInSettings,
}

/// The attendee web pages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageSettings {
    /// The name in every page's header and title.
    pub site_name: String,
    /// Stripe.js, the one script loaded from elsewhere, by the card payment page only (Stripe
    /// requires it to come from Stripe; tests point it at their Stripe test double).
    pub stripe_js_url: String,
    /// Booking, waitlist and cancellation forms one client address may send per minute.
    pub submissions_per_minute: std::num::NonZeroU32,
    /// Take the client's address from the last `X-Forwarded-For` entry, the one the proxy in
    /// front adds (only behind such a proxy; otherwise anyone could pick their own address).
    pub trust_forwarded_for: bool,
    /// `Strict-Transport-Security` max-age in seconds; 0 sends none. Set it when the site is
    /// served over HTTPS only.
    pub hsts_seconds: u32,
    /// How long a programme page is served from memory; its seat counts may be this old (a
    /// booking always checks the real count).
    pub programme_cache_ms: u32,
}

/// Limits on organiser sign-ins and password reset requests. They are counted in the database,
/// so every instance behind a load balancer enforces the same ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInSettings {
    /// Failed sign-ins to one account from one client address within the window, after which
    /// the account takes no more from that address (not even the right password) until the
    /// oldest of them is out of the window. Other addresses are not held up.
    pub failures_per_account: std::num::NonZeroU32,
    /// Failed sign-ins to one account from all addresses together within the window, after
    /// which the account takes no more from any address: a guessing attack spread over many
    /// addresses. At least `failures_per_account`.
    pub failures_per_account_everywhere: std::num::NonZeroU32,
    /// Failed sign-ins from one client address (an IPv6 one by its /64) within the window, to
    /// any accounts, after which it may try no more.
    pub failures_per_client: std::num::NonZeroU32,
    /// The window failed sign-ins are counted over.
    pub window_minutes: WindowMinutes,
    /// Password reset requests for one account from one client address in an hour; further
    /// ones from that address are refused.
    pub resets_per_account: std::num::NonZeroU32,
    /// Password reset requests for one account from all addresses together in an hour: the
    /// most reset emails one inbox gets. At least `resets_per_account`.
    pub resets_per_account_everywhere: std::num::NonZeroU32,
    /// Password reset requests from one client address in an hour, for any accounts.
    pub resets_per_client: std::num::NonZeroU32,
}

impl SignInSettings {
    /// Refuses an everywhere limit below its per-address one: the per-address limit would then
    /// never apply, and anyone could lock an account out from anywhere.
    fn check(&self) -> Result<(), ConfigError> {
        let pairs = [
            (
                "failures_per_account_everywhere",
                self.failures_per_account_everywhere,
                "failures_per_account",
                self.failures_per_account,
            ),
            (
                "resets_per_account_everywhere",
                self.resets_per_account_everywhere,
                "resets_per_account",
                self.resets_per_account,
            ),
        ];
        for (everywhere_key, everywhere, per_address_key, per_address) in pairs {
            if everywhere < per_address {
                return Err(ConfigError::Invalid(format!(
                    "sign_in.{everywhere_key}: {everywhere} is below sign_in.{per_address_key} \
                     ({per_address})"
                )));
            }
        }
        Ok(())
    }
}

/// A sign-in window: one minute to a day (what the sweeper keeps attempts for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowMinutes(u32);

impl WindowMinutes {
    pub fn get(self) -> u32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for WindowMinutes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let minutes = u32::deserialize(d)?;
        let longest = crate::organisers::sign_in_limits::LONGEST_WINDOW_MINUTES;
        if (1..=longest).contains(&minutes) {
            Ok(Self(minutes))
        } else {
            Err(serde::de::Error::custom(format!(
                "{minutes} is not 1 to {longest} minutes"
            )))
        }
    }
}

/// Card payments through Stripe. Cards are offered only when both keys are set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentSettings {
    /// `sk_live_...` or `sk_test_...`, from the environment only:
    /// `MASTERCLASS__PAYMENTS__STRIPE_SECRET_KEY`.
    #[serde(default)]
    pub stripe_secret_key: Option<secrecy::SecretString>,
    /// `pk_live_...` or `pk_test_...`, handed to the attendee's browser.
    pub stripe_publishable_key: String,
    /// The webhook endpoint's signing secret (`whsec_...`), from the environment only:
    /// `MASTERCLASS__PAYMENTS__STRIPE_WEBHOOK_SECRET`.
    #[serde(default)]
    pub stripe_webhook_secret: Option<secrecy::SecretString>,
    /// While Stripe rolls the signing secret over, the previous one, also accepted.
    #[serde(default)]
    pub stripe_previous_webhook_secret: Option<secrecy::SecretString>,
    /// Stripe's API, or a test double's.
    pub stripe_api_base: String,
    pub stripe_timeout_seconds: std::num::NonZeroU32,
    /// How far a webhook's signed timestamp may be from now.
    pub webhook_tolerance_seconds: std::num::NonZeroU32,
    /// The reconciler asks Stripe about a card payment still open after this long, and again
    /// at this interval, in case its webhook was lost.
    pub reconcile_after_seconds: std::num::NonZeroU32,
}

impl PaymentSettings {
    /// The webhook signing secrets in force (the current one, and the previous during a roll).
    pub fn webhook_secrets(&self) -> Vec<String> {
        use secrecy::ExposeSecret;
        [
            &self.stripe_webhook_secret,
            &self.stripe_previous_webhook_secret,
        ]
        .into_iter()
        .flatten()
        .map(|s| s.expose_secret().trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
    }
}

/// Keys. Set them in the environment, never in a file that is committed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSettings {
    /// The key manage links are derived from (at least 32 characters):
    /// `MASTERCLASS__SECRETS__TOKEN_KEY`.
    #[serde(default)]
    pub token_key: Option<secrecy::SecretString>,
    /// Without `token_key`: a file to keep a generated key in (made on first start).
    #[serde(default)]
    pub token_key_file: Option<String>,
}

/// Email delivery: the outbox worker and its transport.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    /// Run the delivery worker inside `serve` too (`masterclass worker` runs it on its own).
    pub worker_in_serve: bool,
    /// The sender, e.g. `PMO Masterclasses <bookings@example.org>`.
    pub from: String,
    /// Domain of the Message-ID of every email (`<job-uuid@domain>`).
    pub message_id_domain: String,
    /// Without an SMTP host, messages are written here as `.eml` files.
    pub outbox_dir: String,
    /// SMTP server; empty means "write files to `outbox_dir`".
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `starttls`, `tls` (implicit TLS, port 465) or `none` (a local relay only).
    pub smtp_tls: SmtpTls,
    /// A PEM file with a certificate authority to trust besides the usual public ones (a relay
    /// with a private CA). Empty: public roots only.
    #[serde(default)]
    pub smtp_ca_file: String,
    /// Empty: no authentication.
    pub smtp_username: String,
    /// From the environment: `MASTERCLASS__MAIL__SMTP_PASSWORD`.
    #[serde(default)]
    pub smtp_password: Option<secrecy::SecretString>,
    pub smtp_timeout_seconds: u64,
    /// After this many failed attempts a job is `dead` (and shown to organisers).
    pub max_attempts: i32,
    /// The first retry waits about this long; each further one twice as long, with jitter.
    pub retry_base_seconds: u64,
    /// No retry waits longer than this.
    pub retry_max_seconds: u64,
    /// Jobs one sender claims at a time.
    pub batch_size: i64,
    /// Sender threads per process.
    pub senders: usize,
    /// How often an idle sender looks for due jobs.
    pub poll_interval_ms: u64,
    /// How long a claimed job stays with its worker; after that another may take it over.
    pub lease_seconds: i64,
    /// Send each attendee their agenda again this many days before the event's first session.
    pub agenda_days_before: i64,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    Starttls,
    Tls,
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on; 0 picks a free one (tests).
    pub port: u16,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Public address of the service, for absolute links.
    pub public_base_url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://…`; the scheme picks the backend.
    pub url: DatabaseUrl,
    /// Connections kept by each process.
    pub pool_size: u32,
    /// How long to wait for a free connection (and for the first one at start-up).
    pub connect_timeout_seconds: u64,
    /// How long an SQLite writer waits for the write lock.
    pub sqlite_busy_timeout_ms: u32,
    /// SQLite's `synchronous` pragma.
    pub sqlite_synchronous: SqliteSynchronous,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    Full,
    Normal,
}

impl SqliteSynchronous {
    pub fn as_pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// A `tracing` filter directive; `RUST_LOG` wins when set.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingSettings {
    /// Letters before the dash in booking references (`PMO` gives `PMO-7K3F9Q`).
    pub reference_prefix: ReferencePrefix,
    /// How long the seats of an unpaid booking are held.
    pub hold_minutes: std::num::NonZeroU32,
    /// How long a waitlist offer keeps its seat (never past the session's start).
    pub offer_hours: std::num::NonZeroU32,
    /// Expire unpaid holds and lapsed offers from `serve` too; `masterclass worker` always does.
    pub sweeper_in_serve: bool,
    /// How often the sweeper looks for holds and offers past their deadline.
    pub sweep_interval_ms: std::num::NonZeroU32,
}

impl BookingSettings {
    pub fn hold(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.hold_minutes.get()))
    }

    pub fn offer(&self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(self.offer_hours.get()))
    }
}

/// One to eight upper-case letters or digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferencePrefix(String);

impl ReferencePrefix {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ReferencePrefix {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        let ok = (1..=8).contains(&raw.len())
            && raw
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if ok {
            Ok(Self(raw))
        } else {
            Err(serde::de::Error::custom(format!(
                "{raw:?} is not 1 to 8 upper-case letters or digits"
            )))
        }
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        DatabaseUrl::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Why the settings could not be read; the message names the key or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("MASTERCLASS_ENV={profile} but {} does not exist", path.display())]
    MissingProfile { profile: String, path: PathBuf },
    #[error("configuration error: {0}")]
    Invalid(String),
}

impl Settings {
    /// Reads the settings for the profile in `MASTERCLASS_ENV` (none when unset).
    pub fn load() -> Result<Self, ConfigError> {
        let profile = std::env::var("MASTERCLASS_ENV")
            .ok()
            .filter(|p| !p.is_empty());
        let dir = std::env::var_os("MASTERCLASS_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("config"));
        Self::load_from(&dir, profile.as_deref())
    }

    /// Reads the settings from `dir` for `profile`, then the environment.
    pub fn load_from(dir: &Path, profile: Option<&str>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new()
            .merge(Toml::string(DEFAULTS))
            .merge(Toml::file(dir.join("default.toml")));
        if let Some(profile) = profile {
            let path = dir.join(format!("{profile}.toml"));
            if !path.is_file() {
                return Err(ConfigError::MissingProfile {
                    profile: profile.to_owned(),
                    path,
                });
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database.url".into()),
            )
            .merge(Env::prefixed("MASTERCLASS__").split("__"));
        let settings: Self = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(describe(e)))?;
        settings.sign_in.check()?;
        Ok(settings)
    }
}

/// One line per fault: the key (as written in the TOML files), what is wrong, and where the value
/// came from (a file or an environment variable).
fn describe(err: figment::Error) -> String {
    err.into_iter()
        .map(|e| {
            let key = e.path.join(".").to_lowercase();
            let origin = e
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(source) => format!(" (from {source})"),
                    None => format!(" (from {})", m.name),
                })
                .unwrap_or_default();
            if key.is_empty() {
                format!("{}{origin}", e.kind)
            } else {
                format!("{key}: {}{origin}", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings with `toml` as the folder's `default.toml` over the built-in defaults.
    fn with(toml: &str) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().expect("a folder");
        std::fs::write(dir.path().join("default.toml"), toml).expect("written");
        Settings::load_from(dir.path(), None)
    }

    #[test]
    fn sign_in_limits_default_to_ten_per_address_a_hundred_everywhere_and_fifty_per_client() {
        let sign_in = with("").expect("the defaults").sign_in;
        assert_eq!(sign_in.failures_per_account.get(), 10);
        assert_eq!(sign_in.failures_per_account_everywhere.get(), 100);
        assert_eq!(sign_in.failures_per_client.get(), 50);
        assert_eq!(sign_in.window_minutes.get(), 15);
        assert_eq!(sign_in.resets_per_account.get(), 5);
        assert_eq!(sign_in.resets_per_account_everywhere.get(), 20);
        assert_eq!(sign_in.resets_per_client.get(), 20);
    }

    #[test]
    fn an_everywhere_limit_below_its_per_address_limit_stops_start_up_naming_both_keys() {
        for (lines, everywhere, per_address) in [
            (
                "failures_per_account = 10\nfailures_per_account_everywhere = 9",
                "sign_in.failures_per_account_everywhere",
                "sign_in.failures_per_account",
            ),
            (
                "resets_per_account = 5\nresets_per_account_everywhere = 4",
                "sign_in.resets_per_account_everywhere",
                "sign_in.resets_per_account",
            ),
        ] {
            let refused = with(&format!("[sign_in]\n{lines}\n"))
                .expect_err(lines)
                .to_string();
            assert!(refused.contains(everywhere), "{lines}: {refused}");
            assert!(refused.contains(per_address), "{lines}: {refused}");
        }
        let equal =
            with("[sign_in]\nfailures_per_account = 7\nfailures_per_account_everywhere = 7\n");
        assert!(equal.is_ok(), "the same number is allowed");
    }

    #[test]
    fn a_sign_in_limit_of_zero_or_a_window_past_a_day_stops_start_up_naming_the_key() {
        for (line, key) in [
            ("failures_per_account = 0", "sign_in.failures_per_account"),
            (
                "failures_per_account_everywhere = 0",
                "sign_in.failures_per_account_everywhere",
            ),
            ("failures_per_client = 0", "sign_in.failures_per_client"),
            ("resets_per_account = 0", "sign_in.resets_per_account"),
            (
                "resets_per_account_everywhere = 0",
                "sign_in.resets_per_account_everywhere",
            ),
            ("resets_per_client = 0", "sign_in.resets_per_client"),
            ("window_minutes = 0", "sign_in.window_minutes"),
            ("window_minutes = 1441", "sign_in.window_minutes"),
        ] {
            let refused = with(&format!("[sign_in]\n{line}\n"))
                .expect_err(line)
                .to_string();
            assert!(refused.contains(key), "{line}: {refused}");
        }
        let day = with("[sign_in]\nwindow_minutes = 1440\n").expect("a day");
        assert_eq!(day.sign_in.window_minutes.get(), 1440);
    }
}
