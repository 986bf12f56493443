//! Figures from a run (rates, latency percentiles, answers, oversell, CPU per booking), printed
//! as one JSON object or, through `table`, as a short table per scenario.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use serde::Serialize;

use super::cpu::Spent;
use super::load::{Outcome, Run};
use super::BenchArgs;

/// Everything one `masterclass bench` prints.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// `sqlite` or `postgres` for a server started by the bench, `remote` for `--url`.
    pub backend: String,
    pub concurrency: u32,
    pub machine: Machine,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flash: Option<FlashReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steady: Option<SteadyReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<PagesReport>,
    /// Whether every scenario asked for ran to the end.
    pub complete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: Option<String>,
}

impl BenchReport {
    /// Fails the command when the run shows a fault of the service: any oversell, any answer
    /// other than booked or full, or seats read back that disagree with the bookings made.
    pub fn verdict(&self) -> anyhow::Result<()> {
        if let Some(flash) = &self.flash {
            if flash.oversell != 0 || flash.seats_left < 0 {
                anyhow::bail!(
                    "OVERSOLD: {} confirmed seats for capacity {} (seats_left {})",
                    flash.confirmed_read_back,
                    flash.capacity,
                    flash.seats_left
                );
            }
            if flash.errors > 0 {
                anyhow::bail!(
                    "flash sale: {} answers were errors: {:?}",
                    flash.errors,
                    flash.error_kinds
                );
            }
        }
        if let Some(pages) = &self.pages {
            if pages.errors > 0 {
                anyhow::bail!(
                    "programme page: {} answers were errors: {:?}",
                    pages.errors,
                    pages.error_kinds
                );
            }
        }
        if let Some(steady) = &self.steady {
            if steady.seats_taken_read_back != steady.confirmed as i64 {
                anyhow::bail!(
                    "steady: {} bookings confirmed but {} seats taken read back",
                    steady.confirmed,
                    steady.seats_taken_read_back
                );
            }
            if steady.errors > 0 {
                anyhow::bail!(
                    "steady: {} answers were errors: {:?}",
                    steady.errors,
                    steady.error_kinds
                );
            }
        }
        Ok(())
    }
}

#[derive(Debug, Serialize)]
pub struct FlashReport {
    pub capacity: u32,
    pub attempts: usize,
    pub seconds: f64,
    pub attempts_per_s: f64,
    pub confirmed_per_s: f64,
    /// 201 answers.
    pub confirmed: usize,
    /// 409 `session-full` answers.
    pub session_full: usize,
    pub errors: usize,
    pub error_kinds: BTreeMap<String, usize>,
    pub latency_ms: Latency,
    /// When the last seat was confirmed, from the start of the run.
    pub sold_out_after_ms: Option<f64>,
    /// Confirmed seats in the server's attendee list.
    pub confirmed_read_back: usize,
    /// Confirmed seats read back minus capacity: 0 is the only good answer.
    pub oversell: i64,
    /// Active (held or confirmed) seats the attendee list shows.
    pub active_seats_read_back: usize,
    /// `seats_left` of the session in the public programme afterwards.
    pub seats_left: i64,
    pub cpu: CpuReport,
}

#[derive(Debug, Serialize)]
pub struct SteadyReport {
    pub sessions: u32,
    pub bookings: usize,
    pub seconds: f64,
    pub bookings_per_s: f64,
    pub confirmed: usize,
    pub errors: usize,
    pub error_kinds: BTreeMap<String, usize>,
    pub latency_ms: Latency,
    /// Seats taken over all sessions, from the public programme afterwards.
    pub seats_taken_read_back: i64,
    pub cpu: CpuReport,
}

/// The programme page under load.
#[derive(Debug, Serialize)]
pub struct PagesReport {
    pub sessions: u32,
    pub requests: usize,
    pub seconds: f64,
    pub pages_per_s: f64,
    pub served: usize,
    pub errors: usize,
    pub error_kinds: BTreeMap<String, usize>,
    pub latency_ms: Latency,
    /// Size of the HTML (uncompressed), and of the stylesheet and script it loads.
    pub page_bytes: usize,
    pub assets_bytes: usize,
    pub cpu: CpuReport,
}

impl PagesReport {
    pub fn new(args: &BenchArgs, run: &Run, cpu: Spent, assets_bytes: usize) -> Self {
        let mut answered = Vec::with_capacity(run.attempts.len());
        let (mut served, mut errors, mut page_bytes) = (0, 0, 0);
        let mut error_kinds = BTreeMap::new();
        for attempt in &run.attempts {
            match &attempt.outcome {
                Outcome::Served(bytes) => {
                    served += 1;
                    page_bytes = page_bytes.max(*bytes);
                    answered.push(attempt.latency.as_secs_f64() * 1000.0);
                }
                Outcome::Refused(kind) | Outcome::Transport(kind) => {
                    errors += 1;
                    *error_kinds.entry(kind.clone()).or_insert(0) += 1;
                }
                Outcome::Booked | Outcome::Full => errors += 1,
            }
        }
        let seconds = run.elapsed.as_secs_f64();
        Self {
            sessions: args.sessions,
            requests: run.attempts.len(),
            seconds: round(seconds),
            pages_per_s: if seconds > 0.0 {
                round(served as f64 / seconds)
            } else {
                0.0
            },
            served,
            errors,
            error_kinds,
            latency_ms: Latency::of(answered),
            page_bytes,
            assets_bytes,
            cpu: CpuReport::new(cpu, served, run.attempts.len()),
        }
    }
}

/// Latency of the answered requests, in milliseconds (nearest-rank percentiles).
#[derive(Debug, Serialize, PartialEq)]
pub struct Latency {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

/// CPU milliseconds over the load phase, and per confirmed booking.
#[derive(Debug, Serialize)]
pub struct CpuReport {
    pub service_ms: Option<f64>,
    pub postgres_ms: Option<f64>,
    /// The scratch database's own backends (part of `postgres_ms`).
    pub postgres_backends_ms: Option<f64>,
    /// The load generator, which shares the machine's cores with the server.
    pub bench_client_ms: Option<f64>,
    pub service_ms_per_booking: Option<f64>,
    pub postgres_ms_per_booking: Option<f64>,
    pub total_ms_per_booking: Option<f64>,
    /// Service and PostgreSQL time over every attempt, refused ones included (flash sale).
    pub total_ms_per_attempt: Option<f64>,
}

impl BenchReport {
    pub fn new(backend: String, concurrency: u32) -> Self {
        Self {
            backend,
            concurrency,
            machine: Machine::this_one(),
            flash: None,
            steady: None,
            pages: None,
            complete: false,
            error: None,
        }
    }

    pub fn finish(&mut self, error: Option<&anyhow::Error>) {
        self.complete = error.is_none();
        self.error = error.map(|e| format!("{e:#}"));
    }

    /// Writes the report to stdout: tables, or exactly one JSON object.
    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if json {
            serde_json::to_writer(&mut out, self).context("cannot write the report")?;
            writeln!(out).context("cannot write the report")?;
        } else {
            write!(out, "{}", self.tables()).context("cannot write the report")?;
        }
        Ok(())
    }
}

impl Machine {
    pub(super) fn this_one() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            });
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
        }
    }
}

/// Counts of a run's answers and its latency.
struct Tally {
    booked: usize,
    full: usize,
    errors: usize,
    error_kinds: BTreeMap<String, usize>,
    latency: Latency,
    last_booked_ms: Option<f64>,
    seconds: f64,
}

impl Tally {
    fn of(run: &Run) -> Self {
        let mut tally = Self {
            booked: 0,
            full: 0,
            errors: 0,
            error_kinds: BTreeMap::new(),
            latency: Latency::of(Vec::new()),
            last_booked_ms: None,
            seconds: run.elapsed.as_secs_f64(),
        };
        let mut answered = Vec::with_capacity(run.attempts.len());
        for attempt in &run.attempts {
            let millis = attempt.latency.as_secs_f64() * 1000.0;
            match &attempt.outcome {
                Outcome::Booked => {
                    tally.booked += 1;
                    let done = attempt.done_at.as_secs_f64() * 1000.0;
                    tally.last_booked_ms = Some(tally.last_booked_ms.map_or(done, |l| l.max(done)));
                    answered.push(millis);
                }
                Outcome::Full => {
                    tally.full += 1;
                    answered.push(millis);
                }
                Outcome::Served(_) => answered.push(millis),
                Outcome::Refused(kind) | Outcome::Transport(kind) => {
                    tally.errors += 1;
                    *tally.error_kinds.entry(kind.clone()).or_default() += 1;
                    // A request that got no answer has no latency worth showing.
                    if matches!(attempt.outcome, Outcome::Refused(_)) {
                        answered.push(millis);
                    }
                }
            }
        }
        tally.latency = Latency::of(answered);
        tally
    }

    fn per_second(&self, count: usize) -> f64 {
        if self.seconds > 0.0 {
            round(count as f64 / self.seconds)
        } else {
            0.0
        }
    }
}

impl FlashReport {
    pub fn new(
        args: &BenchArgs,
        run: &Run,
        cpu: Spent,
        confirmed_read_back: usize,
        active_seats_read_back: usize,
        seats_left: i64,
    ) -> Self {
        let t = Tally::of(run);
        Self {
            capacity: args.capacity,
            attempts: run.attempts.len(),
            seconds: round(t.seconds),
            attempts_per_s: t.per_second(run.attempts.len()),
            confirmed_per_s: t.per_second(t.booked),
            confirmed: t.booked,
            session_full: t.full,
            errors: t.errors,
            latency_ms: t.latency,
            sold_out_after_ms: t.last_booked_ms.map(round),
            confirmed_read_back,
            oversell: confirmed_read_back as i64 - i64::from(args.capacity),
            active_seats_read_back,
            seats_left,
            cpu: CpuReport::new(cpu, t.booked, run.attempts.len()),
            error_kinds: t.error_kinds,
        }
    }
}

impl SteadyReport {
    pub fn new(args: &BenchArgs, run: &Run, cpu: Spent, seats_taken_read_back: i64) -> Self {
        let t = Tally::of(run);
        Self {
            sessions: args.sessions,
            bookings: run.attempts.len(),
            seconds: round(t.seconds),
            bookings_per_s: t.per_second(t.booked),
            confirmed: t.booked,
            errors: t.errors,
            latency_ms: t.latency,
            seats_taken_read_back,
            cpu: CpuReport::new(cpu, t.booked, run.attempts.len()),
            error_kinds: t.error_kinds,
        }
    }
}

impl CpuReport {
    fn new(spent: Spent, bookings: usize, attempts: usize) -> Self {
        let per_n = |ms: Option<f64>, n: usize| ms.filter(|_| n > 0).map(|ms| round(ms / n as f64));
        let per = |ms: Option<f64>| per_n(ms, bookings);
        let total = match (spent.server_ms, spent.postgres_ms) {
            (Some(service), postgres) => Some(service + postgres.unwrap_or(0.0)),
            (None, _) => None,
        };
        Self {
            service_ms: spent.server_ms.map(round),
            postgres_ms: spent.postgres_ms.map(round),
            postgres_backends_ms: spent.backends_ms.map(round),
            bench_client_ms: spent.bench_ms.map(round),
            service_ms_per_booking: per(spent.server_ms),
            postgres_ms_per_booking: per(spent.postgres_ms),
            total_ms_per_booking: per(total),
            total_ms_per_attempt: per_n(total, attempts),
        }
    }
}

impl Latency {
    fn of(mut millis: Vec<f64>) -> Self {
        millis.sort_by(f64::total_cmp);
        Self {
            p50: percentile(&millis, 0.50).map(round),
            p99: percentile(&millis, 0.99).map(round),
            max: millis.last().copied().map(round),
        }
    }
}

/// The nearest-rank percentile of sorted values: the smallest value with at least `q` of all
/// values at or below it. `None` for no values.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

pub(super) fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::{percentile, Latency};

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&hundred, 0.50), Some(50.0));
        assert_eq!(percentile(&hundred, 0.99), Some(99.0));
        assert_eq!(percentile(&hundred, 1.0), Some(100.0));
        assert_eq!(percentile(&hundred, 0.0), Some(1.0));

        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 0.50), Some(5.0));
        assert_eq!(percentile(&ten, 0.99), Some(10.0));
    }

    #[test]
    fn one_value_is_every_percentile_and_none_is_none() {
        assert_eq!(percentile(&[7.5], 0.5), Some(7.5));
        assert_eq!(percentile(&[7.5], 0.99), Some(7.5));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn latency_sorts_before_taking_percentiles() {
        let latency = Latency::of(vec![30.0, 10.0, 20.0]);
        assert_eq!(
            latency,
            Latency {
                p50: Some(20.0),
                p99: Some(30.0),
                max: Some(30.0)
            }
        );
    }
}
