//! `masterclass bench`: a flash sale and a steady stream of bookings, against a running server
//! (`--url`) or one it starts itself on a scratch database (`--database sqlite|postgres`); with
//! `--scenario pages`, the programme page under load; or, with `--scenario mail`, email delivery
//! from a scratch outbox to an SMTP sink in this process.
//!
//! The run is bounded: every scenario has a fixed number of requests, and the whole command stops
//! at `--timeout-seconds` (or Ctrl-C), killing its server and dropping its database on the way out.

mod cpu;
mod load;
mod mail;
mod mail_report;
mod report;
mod scenario;
mod server;
mod smtp_sink;
mod table;

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgGroup, ValueEnum};
use tokio::time::Instant;

use crate::config::DatabaseSettings;
use load::Api;
use report::BenchReport;

/// What `masterclass bench` is told.
#[derive(Debug, Clone, clap::Args)]
#[command(group(ArgGroup::new("target").required(true).args(["url", "database"])))]
pub struct BenchArgs {
    /// Base address of a running server, e.g. http://127.0.0.1:8080 (needs --token). The run
    /// creates its own events there and unpublishes them afterwards.
    #[arg(long, requires = "token", value_parser = parse_base_url)]
    pub url: Option<String>,
    /// Organiser API token (admin or owner) for --url.
    #[arg(long, requires = "url")]
    pub token: Option<String>,
    /// Process id of the --url server, to measure its CPU time per booking.
    #[arg(long, requires = "url")]
    pub server_pid: Option<u32>,
    /// Start a server of this binary on a fresh temporary database of this kind. PostgreSQL is
    /// reached through MASTERCLASS_BENCH_DATABASE_URL (default
    /// postgres://postgres@127.0.0.1:5432/postgres), which must be allowed to create databases.
    #[arg(long, value_enum)]
    pub database: Option<BenchBackend>,
    /// Which scenarios to run: bookings (flash, steady or both), or mail delivery (needs
    /// --database).
    #[arg(long, value_enum, default_value_t = ScenarioChoice::Both)]
    pub scenario: ScenarioChoice,
    /// Flash sale: seats in the one session on sale.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub capacity: u32,
    /// Flash sale: booking attempts, each by a different person.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub attempts: u32,
    /// Requests in flight at once (workers each taking the next request when done).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,
    /// Steady: sessions the bookings are spread over.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub sessions: u32,
    /// Steady: bookings, each for one session picked at random; every session has room for all.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub bookings: u32,
    /// Pages: requests for the programme page (of a programme of --sessions sessions).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub requests: u32,
    /// Mail: booking confirmations to enqueue and deliver, each to a different attendee.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=200_000))]
    pub emails: u32,
    /// Mail: sender threads, each with its own SMTP connection (default: mail.senders, 4).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub senders: Option<u16>,
    /// Mail: deliver to this SMTP server (plain SMTP, no TLS or login) instead of the sink the
    /// bench runs on a loopback port. Only the sending side is timed then: until the outbox has
    /// every job marked sent.
    #[arg(long, value_name = "HOST:PORT", value_parser = mail::parse_smtp_address)]
    pub smtp: Option<mail::SmtpAddress>,
    /// Give up (cleanly: server stopped, database dropped) after this many seconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout_seconds: u64,
    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchBackend {
    Sqlite,
    Postgres,
}

impl BenchBackend {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScenarioChoice {
    Flash,
    Steady,
    /// Flash, then steady.
    Both,
    /// The attendees' programme page (HTML), as everyone opens it when registration opens.
    Pages,
    /// Email delivery: confirmations from the outbox to an SMTP server.
    Mail,
}

/// The server under test and how to measure it.
pub(crate) struct Target {
    api: Api,
    cpu: cpu::Probe,
    /// Whether events made by the run should be unpublished afterwards (not on a scratch server).
    tidy_up: bool,
}

/// Runs the benchmark; the report goes to stdout, progress to stderr.
pub fn run(args: BenchArgs, database: &DatabaseSettings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(args, database.clone()))
}

async fn run_async(args: BenchArgs, database: DatabaseSettings) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(args.timeout_seconds);
    if args.scenario == ScenarioChoice::Mail {
        let Some(kind) = args.database else {
            anyhow::bail!("--scenario mail runs on a scratch database of its own: give --database sqlite|postgres");
        };
        return mail::run(&args, kind, database, deadline).await;
    }
    let backend = match (&args.url, args.database) {
        (_, Some(kind)) => kind.as_str().to_owned(),
        (Some(_), None) => "remote".to_owned(),
        (None, None) => anyhow::bail!("give --url or --database"),
    };
    let mut report = BenchReport::new(backend, args.concurrency);
    let outcome = match args.database {
        Some(kind) => on_scratch_server(&args, kind, database, deadline, &mut report).await,
        None => on_running_server(&args, deadline, &mut report).await,
    };
    report.finish(outcome.as_ref().err());
    report.print(args.json)?;
    outcome?;
    report.verdict()
}

async fn on_scratch_server(
    args: &BenchArgs,
    kind: BenchBackend,
    database: DatabaseSettings,
    deadline: Instant,
    report: &mut BenchReport,
) -> anyhow::Result<()> {
    eprintln!(
        "bench: starting a server on a fresh {} database",
        kind.as_str()
    );
    let server = bounded(server::LocalServer::start(kind, database), deadline).await?;
    eprintln!("bench: server {} (pid {})", server.base_url(), server.pid());
    let outcome = async {
        let target = Target {
            api: Api::new(server.base_url(), server.token())?,
            cpu: cpu::Probe::new(
                Some(server.pid()),
                server.postgres_database().map(str::to_owned),
                kind == BenchBackend::Postgres,
            ),
            tidy_up: false,
        };
        scenarios(args, &target, deadline, report).await
    }
    .await;
    server.shutdown().await;
    outcome
}

async fn on_running_server(
    args: &BenchArgs,
    deadline: Instant,
    report: &mut BenchReport,
) -> anyhow::Result<()> {
    let (Some(url), Some(token)) = (&args.url, &args.token) else {
        anyhow::bail!("--url needs --token");
    };
    // PostgreSQL time is counted when its processes are visible here; it reads 0 otherwise.
    let target = Target {
        api: Api::new(url, token)?,
        cpu: cpu::Probe::new(args.server_pid, None, cpu::postgres_visible()),
        tidy_up: true,
    };
    scenarios(args, &target, deadline, report).await
}

async fn scenarios(
    args: &BenchArgs,
    target: &Target,
    deadline: Instant,
    report: &mut BenchReport,
) -> anyhow::Result<()> {
    bounded(target.api.ready(), deadline).await?;
    if matches!(args.scenario, ScenarioChoice::Flash | ScenarioChoice::Both) {
        eprintln!(
            "bench: flash sale, {} attempts for {} seats, concurrency {}",
            args.attempts, args.capacity, args.concurrency
        );
        report.flash = Some(bounded(scenario::flash(target, args), deadline).await?);
    }
    if args.scenario == ScenarioChoice::Pages {
        eprintln!(
            "bench: programme page, {} requests for a programme of {} sessions, concurrency {}",
            args.requests, args.sessions, args.concurrency
        );
        report.pages = Some(bounded(scenario::pages(target, args), deadline).await?);
    }
    if matches!(args.scenario, ScenarioChoice::Steady | ScenarioChoice::Both) {
        eprintln!(
            "bench: steady, {} bookings over {} sessions, concurrency {}",
            args.bookings, args.sessions, args.concurrency
        );
        report.steady = Some(bounded(scenario::steady(target, args), deadline).await?);
    }
    Ok(())
}

/// Runs `work` until it ends, the deadline passes or Ctrl-C arrives; dropping it then cancels
/// every request in flight and lets the guards (server process, scratch database) clean up.
async fn bounded<T>(
    work: impl Future<Output = anyhow::Result<T>>,
    deadline: Instant,
) -> anyhow::Result<T> {
    tokio::select! {
        outcome = tokio::time::timeout_at(deadline, work) => match outcome {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!("the benchmark ran out of time (--timeout-seconds)")),
        },
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    }
}

/// An `http(s)://host[:port][/prefix]` base address, kept without a trailing slash.
fn parse_base_url(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("use http://HOST:PORT or https://HOST:PORT".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("give the base address only, without ?query or #fragment".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::parse_base_url;

    #[test]
    fn a_base_url_loses_its_trailing_slash_and_must_be_http() {
        assert_eq!(
            parse_base_url("http://127.0.0.1:8080/").as_deref(),
            Ok("http://127.0.0.1:8080")
        );
        assert!(parse_base_url("ftp://127.0.0.1").is_err());
        assert!(parse_base_url("127.0.0.1:8080").is_err());
    }
}
