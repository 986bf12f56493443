//! `masterclass bench --scenario mail`: how fast the outbox worker delivers booking
//! confirmations. N jobs are written to a scratch database, then the mail senders of this process
//! deliver them to an SMTP sink on a loopback port (or to `--smtp`); the clock runs from the
//! senders' start until the last message has arrived.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DurationRound, TimeDelta, Utc};
use diesel::prelude::*;
use tokio::time::Instant;

use super::mail_report::{MailReport, OutboxCounts};
use super::report::{round, Machine};
use super::server::Scratch;
use super::smtp_sink::SmtpSink;
use super::{bounded, BenchArgs, BenchBackend};
use crate::config::{DatabaseSettings, Settings, SmtpTls};
use crate::db::schema::email_jobs;
use crate::db::{self, DatabaseUrl, Db, DbConn};
use crate::events::{self, EventStatus, NewEvent, Slug};
use crate::mail::compose::{self, SessionLine};
use crate::mail::{self, Mailer, Template, Workers};
use crate::sessions::{self, NewSession, SessionStatus, MAX_CAPACITY};
use crate::tokens::{random_token, TokenKey};
use crate::validation::Currency;

/// Jobs written per transaction while filling the outbox.
const ENQUEUE_CHUNK: usize = 500;
/// How often the outbox is read while waiting on an external SMTP server.
const POLL: Duration = Duration::from_millis(25);

/// An SMTP server given with `--smtp HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpAddress {
    host: String,
    port: u16,
}

/// `HOST:PORT` or `[IPv6]:PORT`.
pub fn parse_smtp_address(raw: &str) -> Result<SmtpAddress, String> {
    let (host, port) = raw
        .rsplit_once(':')
        .ok_or_else(|| "use HOST:PORT, e.g. 127.0.0.1:2525".to_owned())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{port:?} is not a port number"))?;
    if host.is_empty() {
        return Err("the host is missing: use HOST:PORT".to_owned());
    }
    Ok(SmtpAddress {
        host: host.to_owned(),
        port,
    })
}

/// Runs the mail scenario and prints its report; fails unless every email arrived in time.
pub async fn run(
    args: &BenchArgs,
    backend: BenchBackend,
    database: DatabaseSettings,
    deadline: Instant,
) -> anyhow::Result<()> {
    let mut report = MailReport {
        scenario: "mail",
        backend: backend.as_str(),
        machine: Machine::this_one(),
        emails: args.emails as usize,
        senders: 0,
        batch_size: 0,
        smtp: String::new(),
        enqueue_seconds: None,
        seconds: None,
        emails_per_s: None,
        received: None,
        duplicates: None,
        outbox: None,
        complete: false,
        error: None,
    };
    let outcome = on_scratch_database(args, backend, database, deadline, &mut report).await;
    report.complete = outcome.is_ok();
    report.error = outcome.as_ref().err().map(|e| format!("{e:#}"));
    report.print(args.json)?;
    outcome
}

async fn on_scratch_database(
    args: &BenchArgs,
    backend: BenchBackend,
    database: DatabaseSettings,
    deadline: Instant,
    report: &mut MailReport,
) -> anyhow::Result<()> {
    eprintln!(
        "bench: mail, {} confirmations from a fresh {} database",
        args.emails,
        backend.as_str()
    );
    let created = tokio::task::spawn_blocking(move || Scratch::create(backend));
    let scratch = bounded(
        async { created.await.context("database set-up stopped")? },
        deadline,
    )
    .await?;
    let outcome = deliver(args, &scratch, database, deadline, report).await;
    // Also after a failure: the database goes (and on a cancelled run, `Scratch`'s drop does it).
    let mut scratch = scratch;
    match tokio::task::spawn_blocking(move || scratch.remove()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("bench: {e:#}"),
        Err(e) => eprintln!("bench: dropping the database stopped: {e}"),
    }
    outcome
}

async fn deliver(
    args: &BenchArgs,
    scratch: &Scratch,
    database: DatabaseSettings,
    deadline: Instant,
    report: &mut MailReport,
) -> anyhow::Result<()> {
    let sink = match &args.smtp {
        Some(_) => None,
        None => Some(
            SmtpSink::start()
                .await
                .context("cannot start the SMTP sink")?,
        ),
    };
    let (host, port) = match (&args.smtp, &sink) {
        (Some(smtp), _) => (smtp.host.clone(), smtp.port),
        (None, Some(sink)) => (sink.address().ip().to_string(), sink.address().port()),
        (None, None) => anyhow::bail!("no SMTP server to send to"),
    };
    report.smtp = match &sink {
        Some(_) => format!("sink {host}:{port}"),
        None => format!("{host}:{port}"),
    };
    let settings = bench_settings(args, scratch.url()?, database, host, port)?;
    report.senders = settings.mail.senders.max(1);
    report.batch_size = settings.mail.batch_size;

    let emails = args.emails as usize;
    let started = Instant::now();
    let db = {
        let database = settings.database.clone();
        let filled = tokio::task::spawn_blocking(move || fill_outbox(&database, emails));
        bounded(
            async { filled.await.context("outbox set-up stopped")? },
            deadline,
        )
        .await?
    };
    report.enqueue_seconds = Some(round(started.elapsed().as_secs_f64()));

    let key = TokenKey::new(&random_token("bench-key-")).context("bench manage-link key")?;
    let mailer = Mailer::new(&settings, key).context("cannot set up email delivery")?;
    eprintln!(
        "bench: delivering {emails} emails to {} with {} senders",
        report.smtp, report.senders
    );
    let start = Instant::now();
    let workers = Running(Some(Workers::start(db.clone(), Arc::new(mailer))));
    let arrived = {
        let all_in = async {
            match &sink {
                Some(sink) => {
                    sink.wait_for(emails).await;
                    Ok(())
                }
                None => wait_until_sent(&db, emails).await,
            }
        };
        tokio::select! {
            waited = tokio::time::timeout_at(deadline, all_in) => match waited {
                Ok(result) => result,
                Err(_) => Err(anyhow::anyhow!("the benchmark ran out of time (--timeout-seconds)")),
            },
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    };
    let elapsed = start.elapsed().as_secs_f64();
    tokio::task::spawn_blocking(move || drop(workers))
        .await
        .context("stopping the mail senders failed")?;

    let delivered = match &sink {
        Some(sink) => {
            let received = sink.received();
            report.received = Some(received.messages);
            report.duplicates = Some(received.duplicates);
            received.distinct
        }
        None => usize::MAX,
    };
    let counts = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || outbox_counts(&db)).await
    };
    match counts {
        Ok(Ok(counts)) => report.outbox = Some(counts),
        Ok(Err(e)) => eprintln!("bench: cannot count the outbox: {e:#}"),
        Err(e) => eprintln!("bench: counting the outbox stopped: {e}"),
    }
    let done = match (&sink, report.outbox) {
        (Some(_), _) => delivered.min(emails),
        (None, Some(counts)) => usize::try_from(counts.sent).unwrap_or(0).min(emails),
        (None, None) => 0,
    };
    report.seconds = Some(round(elapsed));
    report.emails_per_s = (elapsed > 0.0).then(|| round(done as f64 / elapsed));
    arrived.with_context(|| format!("{done} of {emails} emails delivered"))
}

/// The built-in settings, with the scratch database and the SMTP server of the run.
fn bench_settings(
    args: &BenchArgs,
    url: String,
    database: DatabaseSettings,
    host: String,
    port: u16,
) -> anyhow::Result<Settings> {
    // The defaults are built in, so this works wherever the bench is started.
    let mut settings =
        Settings::load_from(Path::new("config"), None).context("cannot read the settings")?;
    settings.database = DatabaseSettings {
        url: DatabaseUrl::parse(&url).context("bench database URL")?,
        ..database
    };
    let mail = &mut settings.mail;
    mail.smtp_host = host;
    mail.smtp_port = port;
    mail.smtp_tls = SmtpTls::None;
    mail.smtp_username = String::new();
    mail.smtp_password = None;
    if let Some(senders) = args.senders {
        mail.senders = usize::from(senders);
    }
    Ok(settings)
}

/// Migrates the database, makes a published event with one session, and enqueues `emails`
/// confirmations for it, each to a different attendee. Blocking.
fn fill_outbox(database: &DatabaseSettings, emails: usize) -> anyhow::Result<Db> {
    let db = Db::connect(database).context("cannot open the bench database")?;
    db.migrate()?;
    let mut conn = db.conn()?;
    let zone = chrono_tz::Europe::London;
    let starts_at = (Utc::now() + TimeDelta::days(42))
        .duration_trunc(TimeDelta::hours(1))
        .context("session time")?;
    let event = events::create(
        &mut conn,
        &NewEvent {
            slug: Slug::parse("mail-bench").map_err(anyhow::Error::msg)?,
            name: "PMO Masterclasses (mail benchmark)".to_owned(),
            venue: "Riverside Conference Centre, London".to_owned(),
            time_zone: zone,
            currency: Currency::parse("GBP").map_err(anyhow::Error::msg)?,
            registration_opens_at: None,
            registration_closes_at: None,
            status: EventStatus::Published,
            allow_clashes: false,
            vat_rate_bp: 2000,
            refund_policy: Default::default(),
            invoices_allowed: false,
            invoice_prefix: None,
            invoice_due_days: 14,
        },
    )?;
    let (_, session) = sessions::create(
        &mut conn,
        &event.slug,
        &NewSession {
            title: "Benefits realisation from business case to close".to_owned(),
            abstract_text: "Benefit maps, owners and measures that are tracked after the project team has gone home.".to_owned(),
            speakers: vec!["Graham Whitfield".to_owned()],
            track: Some("Strategy".to_owned()),
            room: Some("Thames Room".to_owned()),
            starts_at,
            ends_at: starts_at + TimeDelta::minutes(90),
            capacity: i32::try_from(emails).unwrap_or(MAX_CAPACITY).min(MAX_CAPACITY),
            price_minor: 14_500,
            status: SessionStatus::Published,
            cpd_tenths: 15,
        },
    )?;
    let line = SessionLine {
        session_id: session.id,
        title: &session.title,
        room: session.room.as_deref(),
        speakers: &session.speakers,
        starts_at: session.starts_at,
        ends_at: session.ends_at,
        sequence: session.sequence,
        price_minor: session.price_minor,
    };
    let numbers: Vec<usize> = (1..=emails).collect();
    for chunk in numbers.chunks(ENQUEUE_CHUNK) {
        db::write_transaction(&mut conn, |conn| {
            for &n in chunk {
                let seat_id = i64::try_from(n).unwrap_or(i64::MAX);
                let seat = compose::seat_mail(seat_id, &line, zone, &event.currency, "confirmed");
                let mut data =
                    compose::booking_mail(&event, &reference(n), &format!("Attendee {n}"));
                data.total = seat.price.clone();
                // A real confirmation reads the agenda when it is sent; without a booking row
                // the job carries it, so every email still has its calendar file.
                data.agenda = vec![seat.clone()];
                data.seats = vec![seat];
                let recipient = format!("attendee{n}@example.org");
                mail::enqueue(conn, Template::BookingConfirmed, &recipient, None, &data)?;
            }
            Ok::<_, db::DbError>(())
        })?;
    }
    drop(conn);
    Ok(db)
}

/// A booking reference like `PMO-7K3F9Q`, different for every `n` below 32^6.
fn reference(n: usize) -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut rest = n;
    let mut code = [b'2'; 6];
    for place in code.iter_mut().rev() {
        *place = ALPHABET[rest % ALPHABET.len()];
        rest /= ALPHABET.len();
    }
    format!("PMO-{}", String::from_utf8_lossy(&code))
}

/// Waits until `emails` jobs are marked sent (an external server's arrivals are not visible).
async fn wait_until_sent(db: &Db, emails: usize) -> anyhow::Result<()> {
    loop {
        let db = db.clone();
        let counts = tokio::task::spawn_blocking(move || outbox_counts(&db))
            .await
            .context("reading the outbox stopped")??;
        if usize::try_from(counts.sent).unwrap_or(0) >= emails {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

fn outbox_counts(db: &Db) -> anyhow::Result<OutboxCounts> {
    let mut conn = db.conn()?;
    let conn: &mut DbConn = &mut conn;
    let rows: Vec<(String, i64)> = email_jobs::table
        .group_by(email_jobs::state)
        .select((email_jobs::state, diesel::dsl::count_star()))
        .load(conn)?;
    let mut counts = OutboxCounts::default();
    for (state, n) in rows {
        match state.as_str() {
            "sent" => counts.sent = n,
            "dead" => counts.dead = n,
            _ => counts.pending += n,
        }
    }
    Ok(counts)
}

/// The senders of the run; dropping them stops them (blocking: the message in hand is finished),
/// so they also stop when the run fails or is cancelled.
struct Running(Option<Workers>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(workers) = self.0.take() {
            workers.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_smtp_address, reference, SmtpAddress};

    #[test]
    fn an_smtp_address_is_a_host_and_a_port() {
        assert_eq!(
            parse_smtp_address("127.0.0.1:2525"),
            Ok(SmtpAddress {
                host: "127.0.0.1".to_owned(),
                port: 2525
            })
        );
        assert_eq!(
            parse_smtp_address("[::1]:25").map(|a| a.host),
            Ok("::1".to_owned())
        );
        assert!(parse_smtp_address("127.0.0.1").is_err());
        assert!(parse_smtp_address(":25").is_err());
        assert!(parse_smtp_address("localhost:0").is_err());
    }

    #[test]
    fn references_look_real_and_differ() {
        assert_eq!(reference(0), "PMO-222222");
        assert_ne!(reference(1), reference(2));
        assert_eq!(reference(1).len(), "PMO-7K3F9Q".len());
    }
}
