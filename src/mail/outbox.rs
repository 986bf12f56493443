//! The outbox table: jobs are written in the caller's transaction, claimed by workers under a
//! lease (PostgreSQL also skips rows another worker has locked), then marked sent, retried later
//! with backoff, or marked dead after the last attempt.

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamp};
use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::data::{MailData, Template};
use crate::config::MailSettings;
use crate::db::schema::email_jobs;
use crate::db::{self, DbConn, DbError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Pending,
    Sent,
    Dead,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Dead => "dead",
        }
    }

    fn from_db(raw: &str) -> Self {
        match raw {
            "sent" => Self::Sent,
            "dead" => Self::Dead,
            _ => Self::Pending,
        }
    }
}

/// Writes an email job; call it inside the transaction of the change that owes the email.
pub fn enqueue(
    conn: &mut DbConn,
    template: Template,
    recipient: &str,
    booking_id: Option<i64>,
    data: &MailData,
) -> Result<(), DbError> {
    let data = serde_json::to_string(data)
        .map_err(|e| DbError::Query(diesel::result::Error::SerializationError(Box::new(e))))?;
    let now = db::now();
    diesel::insert_into(email_jobs::table)
        .values((
            email_jobs::template.eq(template.name()),
            email_jobs::recipient.eq(recipient),
            email_jobs::data.eq(data),
            email_jobs::message_id.eq(uuid::Uuid::new_v4().simple().to_string()),
            email_jobs::booking_id.eq(booking_id),
            email_jobs::state.eq(JobState::Pending.as_str()),
            email_jobs::attempts.eq(0),
            email_jobs::next_attempt_at.eq(now),
            email_jobs::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// A job a worker holds.
#[derive(Debug, Clone, QueryableByName)]
pub struct Job {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub template: String,
    #[diesel(sql_type = Text)]
    pub recipient: String,
    #[diesel(sql_type = Text)]
    pub data: String,
    /// The stable part of the Message-ID.
    #[diesel(sql_type = Text)]
    pub message_id: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub booking_id: Option<i64>,
    /// Counting this one.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

const CLAIM_PG: &str = "UPDATE email_jobs SET lease_until = $1, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM email_jobs WHERE state = 'pending' AND next_attempt_at <= $2 \
       AND (lease_until IS NULL OR lease_until <= $2) ORDER BY next_attempt_at, id LIMIT $3 \
       FOR UPDATE SKIP LOCKED) \
     RETURNING id, template, recipient, data, message_id, booking_id, attempts";

// SQLite has one writer at a time (the claim runs in a write transaction), so it needs no row
// locks; the lease is what keeps a claimed job from a second worker.
const CLAIM_SQLITE: &str = "UPDATE email_jobs SET lease_until = ?, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM email_jobs WHERE state = 'pending' AND next_attempt_at <= ? \
       AND (lease_until IS NULL OR lease_until <= ?) ORDER BY next_attempt_at, id LIMIT ?) \
     RETURNING id, template, recipient, data, message_id, booking_id, attempts";

/// Claims up to `batch` due jobs for `lease`; each claim counts as an attempt.
pub fn claim(conn: &mut DbConn, batch: i64, lease: Duration) -> Result<Vec<Job>, DbError> {
    let now = db::now();
    let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(120));
    db::write_transaction(conn, |conn| {
        let jobs = match conn {
            DbConn::Pg(pg) => diesel::sql_query(CLAIM_PG)
                .bind::<Timestamp, _>(until)
                .bind::<Timestamp, _>(now)
                .bind::<BigInt, _>(batch)
                .load::<Job>(pg)?,
            DbConn::Sqlite(lite) => diesel::sql_query(CLAIM_SQLITE)
                .bind::<Timestamp, _>(until)
                .bind::<Timestamp, _>(now)
                .bind::<Timestamp, _>(now)
                .bind::<BigInt, _>(batch)
                .load::<Job>(lite)?,
        };
        Ok::<_, DbError>(jobs)
    })
}

pub fn mark_sent(conn: &mut DbConn, id: i64) -> Result<(), DbError> {
    diesel::update(email_jobs::table.find(id))
        .set((
            email_jobs::state.eq(JobState::Sent.as_str()),
            email_jobs::sent_at.eq(Some(db::now())),
            email_jobs::lease_until.eq(None::<NaiveDateTime>),
            email_jobs::last_error.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records a failed attempt: the job waits for its next try, or is dead after the last one.
/// Returns the state it is left in.
pub fn mark_failed(
    conn: &mut DbConn,
    job: &Job,
    error: &str,
    settings: &MailSettings,
    permanent: bool,
) -> Result<JobState, DbError> {
    let error: String = error.chars().take(2000).collect();
    if permanent || job.attempts >= settings.max_attempts {
        diesel::update(email_jobs::table.find(job.id))
            .set((
                email_jobs::state.eq(JobState::Dead.as_str()),
                email_jobs::lease_until.eq(None::<NaiveDateTime>),
                email_jobs::last_error.eq(Some(error)),
            ))
            .execute(conn)?;
        return Ok(JobState::Dead);
    }
    let next = db::now() + backoff(job.attempts, settings);
    diesel::update(email_jobs::table.find(job.id))
        .set((
            email_jobs::next_attempt_at.eq(next),
            email_jobs::lease_until.eq(None::<NaiveDateTime>),
            email_jobs::last_error.eq(Some(error)),
        ))
        .execute(conn)?;
    Ok(JobState::Pending)
}

/// Hands claimed jobs back unsent (a worker stopping), without counting the attempt.
pub fn release(conn: &mut DbConn, ids: &[i64]) -> Result<(), DbError> {
    if ids.is_empty() {
        return Ok(());
    }
    diesel::update(email_jobs::table.filter(email_jobs::id.eq_any(ids)))
        .filter(email_jobs::state.eq(JobState::Pending.as_str()))
        .set((
            email_jobs::lease_until.eq(None::<NaiveDateTime>),
            email_jobs::attempts.eq(email_jobs::attempts - 1),
        ))
        .execute(conn)?;
    Ok(())
}

/// Exponential backoff with jitter: about `base * 2^(attempts-1)`, at most `max`, each wait
/// between half and all of that so that retries of many jobs spread out.
pub fn backoff(attempts: i32, settings: &MailSettings) -> chrono::Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    let full = settings
        .retry_base_seconds
        .saturating_mul(1u64 << exponent)
        .min(settings.retry_max_seconds)
        .max(1);
    let millis = full * 1000;
    let jittered = rand::rng().random_range(millis / 2..=millis);
    chrono::Duration::milliseconds(i64::try_from(jittered).unwrap_or(i64::MAX / 2))
}

/// A job as organisers see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobView {
    pub id: i64,
    pub template: String,
    pub recipient: String,
    pub state: JobState,
    pub attempts: i32,
    pub next_attempt_at: chrono::DateTime<chrono::Utc>,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

type ViewRow = (
    i64,
    String,
    String,
    String,
    i32,
    NaiveDateTime,
    Option<String>,
    NaiveDateTime,
    Option<NaiveDateTime>,
);

fn view(
    (id, template, recipient, state, attempts, next, last_error, created, sent): ViewRow,
) -> JobView {
    JobView {
        id,
        template,
        recipient,
        state: JobState::from_db(&state),
        attempts,
        next_attempt_at: next.and_utc(),
        last_error,
        created_at: created.and_utc(),
        sent_at: sent.map(|t| t.and_utc()),
    }
}

macro_rules! view_columns {
    () => {
        (
            email_jobs::id,
            email_jobs::template,
            email_jobs::recipient,
            email_jobs::state,
            email_jobs::attempts,
            email_jobs::next_attempt_at,
            email_jobs::last_error,
            email_jobs::created_at,
            email_jobs::sent_at,
        )
    };
}

/// Jobs in a state (all when `None`), newest first, at most `limit`.
pub fn list(
    conn: &mut DbConn,
    state: Option<JobState>,
    limit: i64,
) -> Result<Vec<JobView>, DbError> {
    let mut query = email_jobs::table
        .select(view_columns!())
        .order(email_jobs::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(state) = state {
        query = query.filter(email_jobs::state.eq(state.as_str()));
    }
    Ok(query.load::<ViewRow>(conn)?.into_iter().map(view).collect())
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("no email job {0}")]
    NotFound(i64),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for OutboxError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Db(err.into())
    }
}

/// Puts a job back in line now with a fresh count of attempts (an organiser fixed the cause).
/// A job already sent is sent again: the organiser asked for it.
pub fn retry(conn: &mut DbConn, id: i64) -> Result<JobView, OutboxError> {
    let changed = diesel::update(email_jobs::table.find(id))
        .set((
            email_jobs::state.eq(JobState::Pending.as_str()),
            email_jobs::attempts.eq(0),
            email_jobs::next_attempt_at.eq(db::now()),
            email_jobs::lease_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    if changed == 0 {
        return Err(OutboxError::NotFound(id));
    }
    let row = email_jobs::table
        .find(id)
        .select(view_columns!())
        .first::<ViewRow>(conn)?;
    Ok(view(row))
}

/// Every email job about a booking, newest first.
pub fn for_booking(conn: &mut DbConn, booking_id: i64) -> Result<Vec<JobView>, DbError> {
    Ok(email_jobs::table
        .filter(email_jobs::booking_id.eq(booking_id))
        .select(view_columns!())
        .order(email_jobs::id.desc())
        .load::<ViewRow>(conn)?
        .into_iter()
        .map(view)
        .collect())
}
