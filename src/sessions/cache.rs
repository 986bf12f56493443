//! Programmes as last read, so that a booking can go straight to its writes.
//!
//! A booking needs the event and the sessions it asks for: status, registration window, times,
//! prices and the words that go into the confirmation. Those change only when an organiser edits
//! them, and every edit raises the row's `revision`. This cache keeps what was read; the booking's
//! seat update checks the revisions it relied on (see [`super::take_seat`]), so a programme
//! changed since, by this process or any other, is read again instead of being booked on.
//! Counters (`taken`) are never read from here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::{for_event, Session};
use crate::db::{DbConn, DbError};
use crate::events::{self, Event, EventError};

/// More events than any deployment runs at once; past it the cache starts again empty.
const MAX_EVENTS: usize = 256;

/// An event with all of its sessions (drafts too), as read at one time.
#[derive(Debug)]
pub struct Programme {
    pub event: Event,
    sessions: HashMap<i64, Session>,
}

impl Programme {
    /// Reads the event (in any state) and its sessions; `None` when there is no such event.
    pub fn load(conn: &mut DbConn, slug: &str) -> Result<Option<Self>, DbError> {
        let event = match events::find(conn, slug) {
            Ok(event) => event,
            Err(EventError::Db(e)) => return Err(e),
            // Not found, or not a slug at all.
            Err(_) => return Ok(None),
        };
        let sessions = for_event(conn, event.id, true)?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        Ok(Some(Self { event, sessions }))
    }

    pub fn session(&self, id: i64) -> Option<&Session> {
        self.sessions.get(&id)
    }
}

/// Programmes by event slug, shared by every request of one process.
#[derive(Debug, Default)]
pub struct ProgrammeCache {
    entries: Mutex<HashMap<String, Arc<Programme>>>,
}

/// A programme and whether it was read just now (`fresh`) or kept from earlier.
pub struct Cached {
    pub programme: Arc<Programme>,
    pub fresh: bool,
}

impl ProgrammeCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The kept programme of `slug`, or one read now; `None` when there is no such event
    /// (which is not remembered, so an event created later is found).
    pub fn get(&self, conn: &mut DbConn, slug: &str) -> Result<Option<Cached>, DbError> {
        if let Some(programme) = self.lock().get(slug) {
            return Ok(Some(Cached {
                programme: Arc::clone(programme),
                fresh: false,
            }));
        }
        self.reload(conn, slug)
    }

    /// Reads the programme now and keeps it.
    pub fn reload(&self, conn: &mut DbConn, slug: &str) -> Result<Option<Cached>, DbError> {
        let Some(programme) = Programme::load(conn, slug)? else {
            self.forget(slug);
            return Ok(None);
        };
        let programme = Arc::new(programme);
        let mut entries = self.lock();
        if entries.len() >= MAX_EVENTS {
            entries.clear();
        }
        entries.insert(slug.to_owned(), Arc::clone(&programme));
        Ok(Some(Cached {
            programme,
            fresh: true,
        }))
    }

    /// Drops what is kept for `slug`, after a change this process made or noticed.
    pub fn forget(&self, slug: &str) {
        self.lock().remove(slug);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Programme>>> {
        // The map is valid after any panic: every change is a single insert, remove or clear.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
