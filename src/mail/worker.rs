//! Delivery: sender threads claim due jobs, render them, hand them to the transport and record
//! each outcome. At least once: a job is marked sent only after the transport took it, so a crash
//! in between sends it again later, with the same Message-ID.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;

use super::compose;
use super::data::{MailData, Template};
use super::outbox::{self, Job, JobState};
use super::templates::{RenderError, Templates};
use super::transport::{Transport, TransportError};
use crate::config::{MailSettings, Settings};
use crate::db::{Db, DbConn, DbError};
use crate::tokens::TokenKey;

/// Everything needed to turn jobs into delivered messages.
pub struct Mailer {
    transport: Transport,
    templates: Templates,
    from: Mailbox,
    settings: MailSettings,
    key: TokenKey,
    public_base_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Templates(#[from] RenderError),
    #[error("mail.from {0:?} is not an address like `Name <bookings@example.org>`")]
    From(String),
}

/// Why a job could not become a message: these never get better by retrying.
#[derive(Debug, thiserror::Error)]
enum ComposeError {
    #[error("unknown template {0:?}")]
    UnknownTemplate(String),
    #[error("stored data does not fit the template: {0}")]
    Data(#[from] serde_json::Error),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("bad recipient or header: {0}")]
    Address(#[from] lettre::address::AddressError),
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("cannot build the message: {0}")]
    ContentType(#[from] lettre::message::header::ContentTypeErr),
    #[error("cannot attach the document: {0}")]
    Attachment(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What one round of delivery did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub claimed: usize,
    pub sent: usize,
    pub retrying: usize,
    pub dead: usize,
    pub released: usize,
}

impl Round {
    fn add(&mut self, other: Round) {
        self.claimed += other.claimed;
        self.sent += other.sent;
        self.retrying += other.retrying;
        self.dead += other.dead;
        self.released += other.released;
    }
}

impl Mailer {
    pub fn new(settings: &Settings, key: TokenKey) -> Result<Self, MailerError> {
        let mail = &settings.mail;
        let from = mail
            .from
            .parse::<Mailbox>()
            .map_err(|_| MailerError::From(mail.from.clone()))?;
        Ok(Self {
            transport: Transport::from_settings(mail, mail.senders)?,
            templates: Templates::new()?.with_uid_domain(&mail.message_id_domain),
            from,
            settings: mail.clone(),
            key,
            public_base_url: settings
                .server
                .public_base_url
                .trim_end_matches('/')
                .to_owned(),
        })
    }

    /// Claims one batch of due jobs and delivers it. Stops early (handing the rest back) when
    /// `stop` is set.
    pub fn deliver_batch(&self, db: &Db, stop: &AtomicBool) -> Result<Round, DbError> {
        let mut conn = db.conn()?;
        let lease = Duration::from_secs(u64::try_from(self.settings.lease_seconds).unwrap_or(120));
        let jobs = outbox::claim(&mut conn, self.settings.batch_size, lease)?;
        let mut round = Round {
            claimed: jobs.len(),
            ..Round::default()
        };
        for (index, job) in jobs.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                let rest: Vec<i64> = jobs[index..].iter().map(|j| j.id).collect();
                outbox::release(&mut conn, &rest)?;
                round.released += rest.len();
                tracing::info!(released = rest.len(), "stopping: unsent jobs handed back");
                break;
            }
            match self.deliver(&mut conn, job)? {
                JobState::Sent => round.sent += 1,
                JobState::Pending => round.retrying += 1,
                JobState::Dead => round.dead += 1,
            }
        }
        Ok(round)
    }

    /// Delivers until nothing is due any more (tests, `worker --once`).
    pub fn drain(&self, db: &Db) -> Result<Round, DbError> {
        let never = AtomicBool::new(false);
        let mut total = Round::default();
        loop {
            let round = self.deliver_batch(db, &never)?;
            total.add(round);
            if round.claimed == 0 {
                return Ok(total);
            }
        }
    }

    fn deliver(&self, conn: &mut DbConn, job: &Job) -> Result<JobState, DbError> {
        let message = match self.compose(conn, job) {
            Ok(message) => message,
            Err(ComposeError::Db(e)) => return Err(e),
            Err(e) => {
                tracing::error!(job = job.id, template = %job.template, error = %e, "email cannot be composed; dead");
                return outbox::mark_failed(conn, job, &e.to_string(), &self.settings, true);
            }
        };
        match self.transport.send(&message) {
            Ok(file) => {
                outbox::mark_sent(conn, job.id)?;
                match file {
                    Some(path) => {
                        tracing::info!(job = job.id, template = %job.template, file = %path.display(), "email written")
                    }
                    None => {
                        tracing::info!(job = job.id, template = %job.template, attempt = job.attempts, "email sent")
                    }
                }
                Ok(JobState::Sent)
            }
            Err(e) => {
                let state = outbox::mark_failed(
                    conn,
                    job,
                    &e.to_string(),
                    &self.settings,
                    e.is_permanent(),
                )?;
                match state {
                    JobState::Dead => {
                        tracing::error!(job = job.id, attempt = job.attempts, error = %e, "email dead after its last attempt")
                    }
                    _ => {
                        tracing::warn!(job = job.id, attempt = job.attempts, error = %e, "email not sent; will retry")
                    }
                }
                Ok(state)
            }
        }
    }

    fn compose(&self, conn: &mut DbConn, job: &Job) -> Result<Message, ComposeError> {
        let template = Template::from_name(&job.template)
            .ok_or_else(|| ComposeError::UnknownTemplate(job.template.clone()))?;
        let mut data: MailData = serde_json::from_str(&job.data)?;
        let token = self.key.manage_token(&data.reference);
        if let Some(account) = &data.account {
            // About an organiser's account: the invitation or reset link, made again here.
            let link = crate::organisers::accounts::link_token(&self.key, account.link_id);
            data.account_url = Some(format!(
                "{}/organiser/password/{link}",
                self.public_base_url
            ));
        } else if data.waitlist.is_some() {
            // About a waitlist place: the link leads to its page (see, claim, decline, leave).
            data.manage_url = Some(format!("{}/waitlist/{token}", self.public_base_url));
        } else {
            // The manage page, and the agenda as the API serves it.
            data.manage_url = Some(format!("{}/bookings/{token}", self.public_base_url));
            data.agenda_url = Some(format!(
                "{}/api/v1/bookings/{token}/agenda.ics",
                self.public_base_url
            ));
        }
        if let Some(booking_id) = job.booking_id {
            data.agenda = compose::agenda(conn, booking_id)?;
        }
        let tickets =
            super::tickets::for_email(template, &data, &self.key, &self.settings.message_id_domain)
                .map_err(|e| ComposeError::Attachment(e.to_string()))?;
        let shown: Vec<_> = tickets.iter().map(|t| t.mail.clone()).collect();
        let rendered = self
            .templates
            .render_with_tickets(template, &data, &shown)?;
        // An invoice or credit note goes with its email as a PDF, made from the stored document.
        let document = match &data.invoice {
            Some(announced) => {
                let invoice = crate::payments::invoices::by_number(conn, &announced.number)
                    .map_err(|e| ComposeError::Attachment(e.to_string()))?;
                let event = crate::events::by_id(conn, invoice.event_id)?;
                Some((
                    format!("{}.pdf", invoice.number),
                    crate::payments::invoices::pdf(&invoice, &event, &data.reference),
                ))
            }
            // A certificate of attendance, made from the check-ins as they stand.
            None if template == Template::Certificate => {
                let certificate = crate::certificates::read(conn, &data.reference)
                    .map_err(|e| ComposeError::Attachment(e.to_string()))?;
                Some((
                    crate::certificates::file_name(&certificate.reference),
                    crate::certificates::pdf(&certificate),
                ))
            }
            None => None,
        };
        let alternative = if tickets.is_empty() {
            MultiPart::alternative_plain_html(rendered.text, rendered.html)
        } else {
            // The HTML with the pictures it shows by `cid:`, as one multipart/related.
            let mut related = MultiPart::related().singlepart(SinglePart::html(rendered.html));
            for ticket in tickets {
                let name = format!("check-in-code-{}.png", ticket.mail.seat_id);
                related = related.singlepart(
                    Attachment::new_inline_with_name(ticket.mail.cid, name)
                        .body(ticket.png, ContentType::parse("image/png")?),
                );
            }
            MultiPart::alternative()
                .singlepart(SinglePart::plain(rendered.text))
                .multipart(related)
        };
        let builder = Message::builder()
            .from(self.from.clone())
            .to(job.recipient.parse::<Mailbox>()?)
            .subject(rendered.subject)
            .message_id(Some(format!(
                "<{}@{}>",
                job.message_id, self.settings.message_id_domain
            )));
        let message = if rendered.calendar.is_none() && document.is_none() {
            builder.multipart(alternative)?
        } else {
            let mut mixed = MultiPart::mixed().multipart(alternative);
            if let Some(calendar) = rendered.calendar {
                let kind = ContentType::parse("text/calendar; charset=utf-8; method=PUBLISH")?;
                mixed =
                    mixed.singlepart(Attachment::new("agenda.ics".to_owned()).body(calendar, kind));
            }
            if let Some((name, bytes)) = document {
                let kind = ContentType::parse("application/pdf")?;
                mixed = mixed.singlepart(Attachment::new(name).body(bytes, kind));
            }
            builder.multipart(mixed)?
        };
        Ok(message)
    }
}

/// Sender threads running [`Mailer::deliver_batch`] until stopped.
pub struct Workers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    pub fn start(db: Db, mailer: Arc<Mailer>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let senders = mailer.settings.senders.max(1);
        let poll = Duration::from_millis(mailer.settings.poll_interval_ms.max(10));
        let reminders = {
            let (db, stop) = (db.clone(), stop.clone());
            let days = mailer.settings.agenda_days_before;
            std::thread::Builder::new()
                .name("agenda-reminders".to_owned())
                .spawn(move || reminder_loop(&db, days, &stop))
        };
        let threads = (0..senders)
            .map(|n| {
                let (db, mailer, stop) = (db.clone(), mailer.clone(), stop.clone());
                std::thread::Builder::new()
                    .name(format!("mail-sender-{n}"))
                    .spawn(move || sender_loop(&db, &mailer, &stop, poll))
            })
            .chain(std::iter::once(reminders))
            .filter_map(|spawned| match spawned {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start a mail sender thread");
                    None
                }
            })
            .collect();
        Self { stop, threads }
    }

    /// Lets every sender finish the message in hand, hand back the rest, and exit.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Once a minute: agenda reminders for events starting soon.
fn reminder_loop(db: &Db, days_before: i64, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let written = db
            .conn()
            .and_then(|mut conn| super::reminders::enqueue_due(&mut conn, days_before));
        match written {
            Ok(0) => {}
            Ok(n) => tracing::info!(emails = n, "agenda reminders written"),
            Err(e) => {
                tracing::error!(error = %crate::api::problem::chain(&e), "agenda reminders failed")
            }
        }
        pause(Duration::from_secs(60), stop);
    }
}

/// Sleeps for `length` in short steps, so a stop is noticed quickly.
fn pause(length: Duration, stop: &AtomicBool) {
    let mut waited = Duration::ZERO;
    while waited < length && !stop.load(Ordering::Relaxed) {
        let step = Duration::from_millis(20).min(length - waited);
        std::thread::sleep(step);
        waited += step;
    }
}

fn sender_loop(db: &Db, mailer: &Mailer, stop: &AtomicBool, poll: Duration) {
    while !stop.load(Ordering::Relaxed) {
        match mailer.deliver_batch(db, stop) {
            Ok(round) if round.claimed > 0 => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %crate::api::problem::chain(&e), "mail delivery round failed")
            }
        }
        pause(poll, stop);
    }
}
