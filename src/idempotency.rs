//! Idempotency keys: a request sent again with the same `Idempotency-Key` (same route, same body)
//! gets the first answer and has no second effect, even while the first is still running.
//!
//! A key is claimed in a row of its own before the work starts, and completed in the same
//! transaction as the work's effect ([`complete`] is called from inside it), so an answer is
//! recorded exactly when its effect is: a crash in between leaves neither, and a later retry
//! simply does the work. While a request holds a key, others with it wait for its answer; a
//! holder that died lets its lease lapse and the next retry takes over.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::db::schema::idempotency_keys;
use crate::db::{self, DbConn, DbError};

/// How long a key is remembered.
pub const KEEP_FOR: Duration = Duration::hours(24);
/// How long one request may hold a key before another may take it over.
pub const LEASE: Duration = Duration::seconds(60);

/// A key as sent with one request.
#[derive(Debug, Clone)]
pub struct Key {
    /// The route it was sent to, e.g. `POST /api/v1/events/x/bookings`.
    pub scope: String,
    pub key: String,
    /// SHA-256 of the request body in its canonical JSON form.
    pub request_hash: String,
    /// Set once this request holds the key (see [`Claim::Fresh`]): proves it still does.
    pub lease: Option<NaiveDateTime>,
}

impl Key {
    pub fn new(scope: String, key: String, canonical_body: &[u8]) -> Self {
        Self {
            scope,
            key,
            request_hash: hex::encode(Sha256::digest(canonical_body)),
            lease: None,
        }
    }
}

/// A kept key: request hash, state, answer status and body, lease.
type KeyRow = (
    String,
    String,
    Option<i32>,
    Option<String>,
    Option<chrono::NaiveDateTime>,
);

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Nobody has used the key: go ahead, then [`complete`] or [`release`] it with this lease,
    /// which proves the key is still this request's.
    Fresh { lease: NaiveDateTime },
    /// The first request's answer, to send again.
    Answered { status: u16, body: String },
    /// Another request holds the key right now: ask again shortly.
    Running,
    /// The key was used with a different body.
    Reused,
}

/// Claims `key` for this request at `now`.
pub fn claim(conn: &mut DbConn, key: &Key, now: DateTime<Utc>) -> Result<Claim, DbError> {
    let stamp = db::stored(now);
    let lease = db::stored(now + LEASE);
    // A key past its 24 hours is forgotten, whatever the sweeper has got round to.
    diesel::delete(idempotency_keys::table.find((&key.scope, &key.key)))
        .filter(idempotency_keys::expires_at.le(stamp))
        .execute(conn)?;
    let inserted = diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::scope.eq(&key.scope),
            idempotency_keys::idempotency_key.eq(&key.key),
            idempotency_keys::request_hash.eq(&key.request_hash),
            idempotency_keys::state.eq("running"),
            idempotency_keys::lease_until.eq(Some(lease)),
            idempotency_keys::created_at.eq(stamp),
            idempotency_keys::expires_at.eq(db::stored(now + KEEP_FOR)),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => return Ok(Claim::Fresh { lease }),
        Err(e) if db::is_unique_violation(&e) => {}
        Err(e) => return Err(e.into()),
    }
    let row: Option<KeyRow> = idempotency_keys::table
        .find((&key.scope, &key.key))
        .select((
            idempotency_keys::request_hash,
            idempotency_keys::state,
            idempotency_keys::status,
            idempotency_keys::body,
            idempotency_keys::lease_until,
        ))
        .first(conn)
        .optional()?;
    let Some((hash, state, status, body, lease_until)) = row else {
        // Released between the two statements: try again.
        return Ok(Claim::Running);
    };
    if hash != key.request_hash {
        return Ok(Claim::Reused);
    }
    if state == "done" {
        return Ok(Claim::Answered {
            status: status.and_then(|s| u16::try_from(s).ok()).unwrap_or(500),
            body: body.unwrap_or_default(),
        });
    }
    if lease_until.is_some_and(|until| until > stamp) {
        return Ok(Claim::Running);
    }
    // Its holder is gone (the lease lapsed): take it over, unless another retry just did.
    let taken = diesel::update(idempotency_keys::table.find((&key.scope, &key.key)))
        .filter(idempotency_keys::state.eq("running"))
        .filter(idempotency_keys::lease_until.eq(lease_until))
        .set(idempotency_keys::lease_until.eq(Some(lease)))
        .execute(conn)?;
    Ok(if taken == 1 {
        Claim::Fresh { lease }
    } else {
        Claim::Running
    })
}

/// Records the answer to a key this request holds (its `lease`). Call it inside the
/// transaction of the request's effect (or on its own for an answer that changed nothing). If
/// the lease ran out and another request took the key over, this fails, and so does the
/// transaction: the other request's work is the one that counts.
pub fn complete(conn: &mut DbConn, key: &Key, status: u16, body: &str) -> Result<(), DbError> {
    let recorded = diesel::update(idempotency_keys::table.find((&key.scope, &key.key)))
        .filter(idempotency_keys::state.eq("running"))
        .filter(idempotency_keys::lease_until.eq(key.lease))
        .set((
            idempotency_keys::state.eq("done"),
            idempotency_keys::status.eq(Some(i32::from(status))),
            idempotency_keys::body.eq(Some(body)),
            idempotency_keys::lease_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    if recorded == 1 {
        Ok(())
    } else {
        Err(DbError::Inconsistent(format!(
            "idempotency key {:?} was taken over by another request",
            key.key
        )))
    }
}

/// Forgets a key this request holds and could not finish on our side, so that a retry does the
/// work.
pub fn release(conn: &mut DbConn, key: &Key) -> Result<(), DbError> {
    diesel::delete(idempotency_keys::table.find((&key.scope, &key.key)))
        .filter(idempotency_keys::state.eq("running"))
        .filter(idempotency_keys::lease_until.eq(key.lease))
        .execute(conn)?;
    Ok(())
}

/// Deletes keys past their 24 hours; returns how many.
pub fn purge(conn: &mut DbConn, now: DateTime<Utc>) -> Result<usize, DbError> {
    Ok(diesel::delete(idempotency_keys::table)
        .filter(idempotency_keys::expires_at.le(db::stored(now)))
        .execute(conn)?)
}
