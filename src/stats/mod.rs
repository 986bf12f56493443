//! Figures about one event for organisers: how full each session is, bookings made per day,
//! money received and refunded per day, invoices, and waitlist demand. Rows are fetched plainly
//! and grouped by day in Rust, in the event's time zone, so the same code runs on both backends.

pub mod chart;

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime};
use chrono_tz::Tz;
use diesel::prelude::*;
use serde::Serialize;

use crate::bookings::BookingStatus;
use crate::db::schema::{bookings, invoices, payments, refunds, sessions, waitlist_entries};
use crate::db::{DbConn, DbError};
use crate::events::{self, Event, EventStatus};
use crate::payments::invoices::InvoiceState;
use crate::payments::PaymentState;

/// Longest run of days a per-day series covers; older days are left out.
const MAX_DAYS: usize = 366;

/// Everything the statistics page shows for one event.
#[derive(Debug, Clone, Serialize)]
pub struct EventStats {
    pub sessions: Vec<SessionFill>,
    /// One entry per day from the first booking to the last, days without bookings included.
    pub bookings_per_day: Vec<DayCount>,
    pub revenue: Revenue,
    pub waitlists: Vec<WaitlistDemand>,
}

/// How full a session is: seats taken (confirmed, held and offered) of its capacity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionFill {
    pub session_id: i64,
    pub title: String,
    pub taken: i64,
    pub capacity: i64,
}

impl SessionFill {
    /// Taken seats as a whole percentage of capacity (0 for no capacity).
    pub fn percent(&self) -> i64 {
        if self.capacity <= 0 {
            0
        } else {
            self.taken * 100 / self.capacity
        }
    }
}

/// Bookings made on one day (in the event's time zone), expired holds left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayCount {
    pub day: NaiveDate,
    pub count: i64,
}

/// Money in the event's currency, in minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Revenue {
    /// Days on which money came in or went back, in order.
    pub days: Vec<RevenueDay>,
    /// Card payments that succeeded and invoices marked paid (what was left to pay of them
    /// after their credit notes).
    pub received_minor: i64,
    /// Refunds made or on their way (failed ones left out).
    pub refunded_minor: i64,
    /// Invoices issued, whatever their state but cancelled, less their credit notes.
    pub invoiced_minor: i64,
    /// Of those, what was paid.
    pub invoices_paid_minor: i64,
}

impl Revenue {
    /// What the event keeps: received minus refunded.
    pub fn net_minor(&self) -> i64 {
        self.received_minor - self.refunded_minor
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevenueDay {
    pub day: NaiveDate,
    pub received_minor: i64,
    pub refunded_minor: i64,
}

/// People waiting for a session, and people holding an offer of a seat in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitlistDemand {
    pub session_id: i64,
    pub title: String,
    pub waiting: i64,
    pub offered: i64,
}

/// The event to show when none is chosen: the newest published one, else the newest of all.
pub fn default_event(conn: &mut DbConn) -> Result<Option<Event>, DbError> {
    let all = events::list(conn, true)?;
    let newest_published = all
        .iter()
        .rev()
        .find(|e| e.status == EventStatus::Published)
        .cloned();
    Ok(newest_published.or_else(|| all.last().cloned()))
}

/// The figures of `event`.
#[tracing::instrument(level = "debug", skip_all, fields(event = event.id))]
pub fn for_event(conn: &mut DbConn, event: &Event) -> Result<EventStats, DbError> {
    crate::db::read_snapshot(conn, |conn| {
        let rows: Vec<(i64, String, i32, i32)> = sessions::table
            .filter(sessions::event_id.eq(event.id))
            .filter(sessions::status.ne("draft"))
            .order((sessions::starts_at.asc(), sessions::id.asc()))
            .select((
                sessions::id,
                sessions::title,
                sessions::taken,
                sessions::capacity,
            ))
            .load(conn)?;
        let fills: Vec<SessionFill> = rows
            .into_iter()
            .map(|(session_id, title, taken, capacity)| SessionFill {
                session_id,
                title,
                taken: taken.into(),
                capacity: capacity.into(),
            })
            .collect();

        let made: Vec<NaiveDateTime> = bookings::table
            .filter(bookings::event_id.eq(event.id))
            .filter(bookings::status.ne(BookingStatus::Expired.as_str()))
            .select(bookings::created_at)
            .load(conn)?;
        let bookings_per_day = per_day(&made, event.time_zone);

        let waiting: Vec<(i64, String)> = waitlist_entries::table
            .inner_join(sessions::table)
            .filter(sessions::event_id.eq(event.id))
            .filter(waitlist_entries::state.eq_any(crate::waitlist::EntryState::ACTIVE))
            .select((waitlist_entries::session_id, waitlist_entries::state))
            .load(conn)?;
        let waitlists = fills
            .iter()
            .map(|s| {
                let count = |state: &str| {
                    waiting
                        .iter()
                        .filter(|(id, st)| *id == s.session_id && st == state)
                        .count() as i64
                };
                WaitlistDemand {
                    session_id: s.session_id,
                    title: s.title.clone(),
                    waiting: count(crate::waitlist::EntryState::Waiting.as_str()),
                    offered: count(crate::waitlist::EntryState::Offered.as_str()),
                }
            })
            .collect();

        let revenue = revenue(conn, event)?;
        Ok(EventStats {
            sessions: fills,
            bookings_per_day,
            revenue,
            waitlists,
        })
    })
}

fn revenue(conn: &mut DbConn, event: &Event) -> Result<Revenue, DbError> {
    let cards: Vec<(Option<NaiveDateTime>, i64)> = payments::table
        .inner_join(bookings::table)
        .filter(bookings::event_id.eq(event.id))
        .filter(payments::state.eq(PaymentState::Succeeded.as_str()))
        .select((payments::succeeded_at, payments::amount_minor))
        .load(conn)?;
    let back: Vec<(NaiveDateTime, i64)> = refunds::table
        .inner_join(bookings::table.on(bookings::id.eq(refunds::booking_id)))
        .filter(bookings::event_id.eq(event.id))
        .filter(refunds::state.ne("failed"))
        .select((refunds::created_at, refunds::amount_minor))
        .load(conn)?;
    let bills: Vec<(i64, String, Option<NaiveDateTime>, i64)> = invoices::table
        .filter(invoices::event_id.eq(event.id))
        .filter(invoices::kind.eq("invoice"))
        .filter(invoices::state.ne(InvoiceState::Cancelled.as_str()))
        .select((
            invoices::id,
            invoices::state,
            invoices::paid_at,
            invoices::gross_minor,
        ))
        .load(conn)?;
    let credits: Vec<(Option<i64>, NaiveDateTime, i64)> = invoices::table
        .filter(invoices::event_id.eq(event.id))
        .filter(invoices::kind.eq("credit_note"))
        .select((
            invoices::credits_invoice_id,
            invoices::created_at,
            invoices::gross_minor,
        ))
        .load(conn)?;
    // What the credit notes of invoice `id` took off it, all of them or only those issued by
    // `until` (what was left to pay when it was paid).
    let credited = |id: i64, until: Option<NaiveDateTime>| -> i64 {
        credits
            .iter()
            .filter(|(of, at, _)| *of == Some(id) && until.is_none_or(|until| *at <= until))
            .map(|(_, _, amount)| *amount)
            .sum()
    };

    let zone = event.time_zone;
    let mut days: BTreeMap<NaiveDate, (i64, i64)> = BTreeMap::new();
    let mut out = Revenue::default();
    // A paid invoice brought in its gross less what had been credited when it was paid.
    let paid_bills: Vec<(NaiveDateTime, i64)> = bills
        .iter()
        .filter(|(_, state, _, _)| state == InvoiceState::Paid.as_str())
        .filter_map(|(id, _, at, gross)| {
            at.map(|at| (at, (gross - credited(*id, Some(at))).max(0)))
        })
        .collect();
    let received = cards
        .iter()
        .filter_map(|(at, amount)| at.map(|at| (at, *amount)))
        .chain(paid_bills.iter().copied());
    for (at, amount) in received {
        days.entry(local_day(at, zone)).or_default().0 += amount;
        out.received_minor += amount;
    }
    for (at, amount) in &back {
        days.entry(local_day(*at, zone)).or_default().1 += amount;
        out.refunded_minor += amount;
    }
    for (id, _, _, gross) in &bills {
        out.invoiced_minor += (gross - credited(*id, None)).max(0);
    }
    out.invoices_paid_minor = paid_bills.iter().map(|(_, amount)| amount).sum();
    out.days = days
        .into_iter()
        .filter(|(_, (received, refunded))| *received != 0 || *refunded != 0)
        .map(|(day, (received_minor, refunded_minor))| RevenueDay {
            day,
            received_minor,
            refunded_minor,
        })
        .collect();
    Ok(out)
}

/// The calendar day of a stored (UTC) time in `zone`.
fn local_day(at: NaiveDateTime, zone: Tz) -> NaiveDate {
    at.and_utc().with_timezone(&zone).date_naive()
}

/// Counts per local day, every day from the first to the last (at most [`MAX_DAYS`], the latest).
fn per_day(times: &[NaiveDateTime], zone: Tz) -> Vec<DayCount> {
    let mut counts: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    for at in times {
        *counts.entry(local_day(*at, zone)).or_default() += 1;
    }
    let (Some(first), Some(last)) = (
        counts.keys().next().copied(),
        counts.keys().next_back().copied(),
    ) else {
        return Vec::new();
    };
    let mut out: Vec<DayCount> = first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|day| DayCount {
            day,
            count: counts.get(&day).copied().unwrap_or(0),
        })
        .collect();
    if out.len() > MAX_DAYS {
        out.drain(..out.len() - MAX_DAYS);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(day: u32, hour: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2027, 3, day)
            .and_then(|d| d.and_hms_opt(hour, 0, 0))
            .expect("valid")
    }

    #[test]
    fn days_are_counted_in_the_event_time_zone_with_empty_days_filled() {
        // 23:30 UTC on the 1st is already the 2nd in Berlin.
        let times = [at(1, 10), at(1, 23), at(4, 9)];
        let days = per_day(&times, chrono_tz::Europe::Berlin);
        let counts: Vec<(u32, i64)> = days
            .iter()
            .map(|d| (chrono::Datelike::day(&d.day), d.count))
            .collect();
        assert_eq!(counts, vec![(1, 1), (2, 1), (3, 0), (4, 1)]);
        assert!(per_day(&[], chrono_tz::UTC).is_empty());
    }
}
