//! A session's sign-in sheet: a printable page listing its confirmed attendees alphabetically,
//! with an empty column for signatures. The page has no inline styles or scripts; its look comes
//! from the site's stylesheet (the `.sign-in-sheet` rules), so it passes a strict
//! Content-Security-Policy.

use diesel::prelude::*;

use super::ExportError;
use crate::bookings::SeatState;
use crate::db::schema::{bookings, seats};
use crate::db::{self, DbConn};
use crate::events::{self, Event};
use crate::mail::compose;
use crate::sessions::{self, Session};

/// One confirmed attendee on the sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInLine {
    pub name: String,
    pub organisation: Option<String>,
    pub reference: String,
}

/// The sign-in sheet of one session.
#[derive(Debug, Clone)]
pub struct SignInSheet {
    pub event: Event,
    pub session: Session,
    /// Alphabetical by name, ignoring case.
    pub lines: Vec<SignInLine>,
}

/// The sign-in sheet of session `session_id`.
pub fn sign_in_sheet(conn: &mut DbConn, session_id: i64) -> Result<SignInSheet, ExportError> {
    db::read_snapshot(conn, |conn| {
        let session = sessions::find(conn, session_id)?;
        let event = events::by_id(conn, session.event_id)?;
        let rows: Vec<(String, Option<String>, String)> = seats::table
            .inner_join(bookings::table)
            .filter(seats::session_id.eq(session_id))
            .filter(seats::state.eq(SeatState::Confirmed.as_str()))
            .select((
                bookings::attendee_name,
                bookings::attendee_organisation,
                bookings::reference,
            ))
            .load(conn)?;
        let mut lines: Vec<SignInLine> = rows
            .into_iter()
            .map(|(name, organisation, reference)| SignInLine {
                name,
                organisation,
                reference,
            })
            .collect();
        lines.sort_by_cached_key(|l| (l.name.to_lowercase(), l.name.clone(), l.reference.clone()));
        Ok(SignInSheet {
            event,
            session,
            lines,
        })
    })
}

impl SignInSheet {
    /// The sheet as a whole HTML page, styled by the stylesheet at `stylesheet`.
    pub fn html(&self, stylesheet: &str) -> String {
        let (day, time) = compose::day_and_time(
            self.session.starts_at,
            self.session.ends_at,
            self.event.time_zone,
        );
        let title = escape(&self.session.title);
        let mut facts = vec![format!("{} · {}", escape(&day), escape(&time))];
        if let Some(room) = &self.session.room {
            facts.push(format!("Room: {}", escape(room)));
        }
        if !self.session.speakers.is_empty() {
            facts.push(format!(
                "With {}",
                escape(&self.session.speakers.join(", "))
            ));
        }
        let mut rows = String::new();
        for (i, line) in self.lines.iter().enumerate() {
            rows.push_str(&format!(
                "<tr><td class=\"number\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"signature\"></td></tr>\n",
                i + 1,
                escape(&line.name),
                escape(line.organisation.as_deref().unwrap_or_default()),
                escape(&line.reference),
            ));
        }
        if self.lines.is_empty() {
            rows.push_str("<tr><td colspan=\"5\">No confirmed attendees.</td></tr>\n");
        }
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>Sign-in sheet: {title}</title>\n\
             <link rel=\"stylesheet\" href=\"{stylesheet}\">\n</head>\n\
             <body class=\"sign-in-sheet\">\n<main>\n\
             <p class=\"event\">{event}</p>\n<h1>{title}</h1>\n\
             <p class=\"facts\">{facts}</p>\n\
             <p class=\"count\">{count} confirmed</p>\n\
             <table>\n<thead><tr><th scope=\"col\" class=\"number\">#</th><th scope=\"col\">Name</th>\
             <th scope=\"col\">Organisation</th><th scope=\"col\">Reference</th>\
             <th scope=\"col\" class=\"signature\">Signature</th></tr></thead>\n\
             <tbody>\n{rows}</tbody>\n</table>\n</main>\n</body>\n</html>\n",
            stylesheet = escape(stylesheet),
            event = escape(&self.event.name),
            facts = facts.join(" · "),
            count = self.lines.len(),
        )
    }
}

/// Text made safe for HTML content and quoted attribute values.
fn escape(text: &str) -> String {
    crate::pages::escape_html(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_names_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(escape("Zoë 中文 🎉"), "Zoë 中文 🎉");
    }
}
