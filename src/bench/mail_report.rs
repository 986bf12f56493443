//! What `bench --scenario mail` prints: one JSON object, or a short table like the booking
//! scenarios'.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Context;
use serde::Serialize;

use super::report::Machine;
use super::table::row;

/// Everything `bench --scenario mail` prints.
#[derive(Debug, Serialize)]
pub struct MailReport {
    pub scenario: &'static str,
    /// `sqlite` or `postgres`: where the outbox lives.
    pub backend: &'static str,
    pub machine: Machine,
    /// Confirmations enqueued, each for a different attendee.
    pub emails: usize,
    /// Sender threads (and pooled SMTP connections).
    pub senders: usize,
    /// Jobs one sender claims at a time (`mail.batch_size`).
    pub batch_size: i64,
    /// `sink 127.0.0.1:PORT` (in this process) or the `--smtp` address.
    pub smtp: String,
    pub enqueue_seconds: Option<f64>,
    /// From the senders' start until the sink had every message (with `--smtp`: until the outbox
    /// had every job marked sent).
    pub seconds: Option<f64>,
    pub emails_per_s: Option<f64>,
    /// Messages the sink accepted, repeats included; `None` with `--smtp`.
    pub received: Option<usize>,
    /// Messages the sink got a second time (same Message-ID); `None` with `--smtp`.
    pub duplicates: Option<usize>,
    /// Jobs by state after the senders stopped.
    pub outbox: Option<OutboxCounts>,
    /// Whether every email arrived in time.
    pub complete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct OutboxCounts {
    pub sent: i64,
    pub pending: i64,
    pub dead: i64,
}

impl MailReport {
    /// Writes the report to stdout: a short table, or exactly one JSON object.
    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if json {
            serde_json::to_writer(&mut out, self).context("cannot write the report")?;
            writeln!(out).context("cannot write the report")?;
        } else {
            write!(out, "{}", self.table()).context("cannot write the report")?;
        }
        Ok(())
    }

    fn table(&self) -> String {
        let cpu = self.machine.cpu_model.as_deref().unwrap_or("unknown CPU");
        let mut text = format!(
            "\nmail delivery - {}, {} cores ({cpu}), {} senders, batch {}: {} confirmations to {}\n",
            self.backend, self.machine.cores, self.senders, self.batch_size, self.emails, self.smtp
        );
        let seconds = |s: Option<f64>| s.map_or_else(|| "-".to_owned(), |s| format!("{s:.2} s"));
        text += &row(
            "throughput",
            format!(
                "{} emails/s ({} in all; enqueued in {})",
                self.emails_per_s
                    .map_or_else(|| "-".to_owned(), |r| format!("{r:.1}")),
                seconds(self.seconds),
                seconds(self.enqueue_seconds)
            ),
        );
        if let (Some(received), Some(duplicates)) = (self.received, self.duplicates) {
            text += &row(
                "received",
                format!("{received} messages, {duplicates} duplicates (same Message-ID)"),
            );
        }
        if let Some(o) = self.outbox {
            text += &row(
                "outbox",
                format!("{} sent, {} pending, {} dead", o.sent, o.pending, o.dead),
            );
        }
        if let Some(error) = &self.error {
            let _ = writeln!(text, "\nincomplete: {error}");
        }
        text
    }
}
