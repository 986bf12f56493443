//! The audit trail: who changed what and when, with the subject as the API showed it before and
//! after the change. Organiser actions of the admin API and the dashboard write a row each, in
//! the transaction of the change itself ([`recorded`]); rows are never changed or removed.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::db::like_literal as escape_like;
use crate::db::schema::{audit_log, organisers};
use crate::db::{self, DbConn, DbError};

/// Rows on one page of the audit trail.
pub const PAGE_SIZE: i64 = 100;

#[derive(Insertable)]
#[diesel(table_name = audit_log)]
struct NewRow<'a> {
    at: chrono::NaiveDateTime,
    organiser_id: Option<i64>,
    action: &'a str,
    subject: &'a str,
    before: Option<String>,
    after: Option<String>,
}

/// What one organiser action records: the action, its subject, and the subject as the API
/// showed it before and after (either may be absent, as for a creation or a resend).
#[derive(Debug, Clone)]
pub struct Record {
    action: &'static str,
    subject: String,
    before: Option<String>,
    after: Option<String>,
}

impl Record {
    pub fn new(action: &'static str, subject: impl Into<String>) -> Self {
        Self {
            action,
            subject: subject.into(),
            before: None,
            after: None,
        }
    }

    pub fn before(mut self, value: &impl Serialize) -> Self {
        self.before = to_json(value);
        self
    }

    pub fn after(mut self, value: &impl Serialize) -> Self {
        self.after = to_json(value);
        self
    }
}

/// Runs an organiser's change and writes its audit row in one write transaction: the change
/// and its record commit together or not at all. `change` may call domain functions that open
/// their own write transactions; they run as savepoints of this one. An error from `change`
/// writes no row, and so does a change that returns `None` as its record (nothing was changed,
/// e.g. undoing a check-in that was not there). `by` is `None` for the command line and the
/// system.
pub fn recorded<T, E, F, R>(conn: &mut DbConn, by: Option<i64>, change: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<(T, R), E>,
    R: Into<Option<Record>>,
    E: From<diesel::result::Error>,
{
    db::write_transaction(conn, |conn| {
        let (value, record) = change(conn)?;
        let Some(record) = record.into() else {
            return Ok(value);
        };
        diesel::insert_into(audit_log::table)
            .values(NewRow {
                at: db::now(),
                organiser_id: by,
                action: record.action,
                subject: &record.subject,
                before: record.before,
                after: record.after,
            })
            .execute(conn)?;
        Ok(value)
    })
}

fn to_json(value: &impl Serialize) -> Option<String> {
    serde_json::to_string(value).ok()
}

/// Which rows to show.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub organiser_id: Option<i64>,
    /// Actions starting with this, e.g. `event.` or `booking.cancel`.
    pub action_prefix: Option<String>,
    /// Subjects containing this, e.g. `pmo-2027` or `PMO-7K3F9Q`.
    pub subject: Option<String>,
}

/// One row of the trail, with who did it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub organiser_id: Option<i64>,
    /// The organiser's name, or `None` for the command line and the system.
    pub organiser: Option<String>,
    pub action: String,
    pub subject: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl Entry {
    /// The top-level fields that differ between before and after.
    pub fn changes(&self) -> Vec<Change> {
        changes(self.before.as_deref(), self.after.as_deref())
    }
}

/// One changed field: its value before and after, as compact JSON (`—` when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub field: String,
    pub old: String,
    pub new: String,
}

/// The top-level fields whose values differ between two JSON documents. A document that is not
/// an object counts as one field named `value`.
pub fn changes(before: Option<&str>, after: Option<&str>) -> Vec<Change> {
    use serde_json::{Map, Value};
    let as_map = |raw: Option<&str>| -> Map<String, Value> {
        match raw.and_then(|r| serde_json::from_str::<Value>(r).ok()) {
            Some(Value::Object(map)) => map,
            Some(Value::Null) | None => Map::new(),
            Some(other) => Map::from_iter([("value".to_owned(), other)]),
        }
    };
    let (old, new) = (as_map(before), as_map(after));
    let mut fields: Vec<&String> = old.keys().chain(new.keys()).collect();
    fields.sort();
    fields.dedup();
    let show = |v: Option<&Value>| match v {
        None => "—".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    fields
        .into_iter()
        .filter(|f| old.get(*f) != new.get(*f))
        .map(|f| Change {
            field: f.clone(),
            old: show(old.get(f)),
            new: show(new.get(f)),
        })
        .collect()
}

/// One page of rows matching `filter`, newest first, and whether there is a next page.
pub fn list(conn: &mut DbConn, filter: &Filter, page: i64) -> Result<(Vec<Entry>, bool), DbError> {
    let mut query = audit_log::table
        .left_join(organisers::table.on(organisers::id.nullable().eq(audit_log::organiser_id)))
        .select((
            audit_log::id,
            audit_log::at,
            audit_log::organiser_id,
            organisers::name.nullable(),
            audit_log::action,
            audit_log::subject,
            audit_log::before,
            audit_log::after,
        ))
        .into_boxed();
    if let Some(id) = filter.organiser_id {
        query = query.filter(audit_log::organiser_id.eq(id));
    }
    if let Some(prefix) = &filter.action_prefix {
        query = query.filter(
            audit_log::action
                .like(format!("{}%", escape_like(prefix)))
                .escape('\\'),
        );
    }
    if let Some(subject) = &filter.subject {
        query = query.filter(
            audit_log::subject
                .like(format!("%{}%", escape_like(subject)))
                .escape('\\'),
        );
    }
    type Row = (
        i64,
        chrono::NaiveDateTime,
        Option<i64>,
        Option<String>,
        String,
        String,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = query
        .order((audit_log::at.desc(), audit_log::id.desc()))
        .offset(page.max(0) * PAGE_SIZE)
        .limit(PAGE_SIZE + 1)
        .load(conn)?;
    let more = rows.len() as i64 > PAGE_SIZE;
    let entries = rows
        .into_iter()
        .take(PAGE_SIZE as usize)
        .map(
            |(id, at, organiser_id, organiser, action, subject, before, after)| Entry {
                id,
                at: at.and_utc(),
                organiser_id,
                organiser,
                action,
                subject,
                before,
                after,
            },
        )
        .collect();
    Ok((entries, more))
}

/// Every organiser, by name, for choosing whose actions to show.
pub fn organisers(conn: &mut DbConn) -> Result<Vec<(i64, String)>, DbError> {
    Ok(organisers::table
        .select((organisers::id, organisers::name))
        .order(organisers::name.asc())
        .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fields_that_changed_are_listed() {
        let diff = changes(
            Some(r#"{"name":"Old","venue":"Hall","capacity":10}"#),
            Some(r#"{"name":"New","venue":"Hall","capacity":12,"room":"B"}"#),
        );
        assert_eq!(
            diff,
            vec![
                Change {
                    field: "capacity".into(),
                    old: "10".into(),
                    new: "12".into()
                },
                Change {
                    field: "name".into(),
                    old: "Old".into(),
                    new: "New".into()
                },
                Change {
                    field: "room".into(),
                    old: "—".into(),
                    new: "B".into()
                },
            ]
        );
        assert!(changes(None, None).is_empty());
    }

    #[test]
    fn like_wildcards_are_taken_literally() {
        assert_eq!(escape_like("a_b%c\\"), "a\\_b\\%c\\\\");
    }
}
