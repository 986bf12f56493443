//! Calendar files (RFC 5545) for a booking's seats: one `VEVENT` per seat, in the event's own
//! time zone, that calendars update in place rather than duplicate.
//!
//! The `icalendar` crate writes the calendar and its events (escaping, CRLF, folding at 75
//! octets). It cannot write a `VTIMEZONE` (every component it writes gets a `UID` and a
//! `DTSTAMP`, which a `VTIMEZONE` must not have), so that one is written here from the chrono-tz
//! rules and placed before the events, where strict clients look for it.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::{OffsetComponents, OffsetName, Tz};
use icalendar::{Calendar, CalendarDateTime, Component, Event, EventLike, EventStatus, Property};

use super::data::{EventMail, SeatMail};

/// Who wrote the calendar (the `PRODID` property).
pub const PRODID: &str = "-//PMO Masterclasses//masterclass//EN";

/// Whether a seat goes into calendar files. A held seat does not: it is not the attendee's until
/// it is paid for, and an entry would linger in their calendar if the hold expired.
pub fn belongs_in_calendar(seat: &SeatMail) -> bool {
    seat.state != "held"
}

/// The calendar for `seats` of `event` (`METHOD:PUBLISH`).
///
/// Each seat that [belongs in a calendar](belongs_in_calendar) becomes a `VEVENT` with
/// `UID:seat-{seat_id}@{uid_domain}` and the session's `SEQUENCE`, so a later file about the same
/// seat updates the entry. `uid_domain` must never change once files have been sent, or calendars
/// will show every session twice. A cancelled (or expired) seat is written with
/// `STATUS:CANCELLED`, which removes or strikes out the entry.
pub fn calendar(event: &EventMail, seats: &[SeatMail], uid_domain: &str) -> String {
    build(event, seats, uid_domain, Utc::now())
}

fn build(event: &EventMail, seats: &[SeatMail], uid_domain: &str, stamp: DateTime<Utc>) -> String {
    let seats: Vec<&SeatMail> = seats.iter().filter(|s| belongs_in_calendar(s)).collect();
    // The zone comes from the events table, where only IANA names are stored; should one not
    // parse, UTC times are still the right instants, just shown less kindly.
    let zone: Option<Tz> = event.time_zone.parse().ok();
    if zone.is_none() {
        tracing::warn!(time_zone = %event.time_zone, event = %event.slug, "unknown time zone: calendar in UTC");
    }

    let mut calendar = Calendar::empty();
    calendar
        .append_property(("VERSION", "2.0"))
        .append_property(("PRODID", PRODID))
        .append_property(("CALSCALE", "GREGORIAN"))
        .append_property(("METHOD", "PUBLISH"));
    for seat in &seats {
        calendar.push(vevent(event, seat, zone, uid_domain, stamp));
    }
    let text = calendar.to_string();

    let Some(zone) = zone.filter(|z| *z != Tz::UTC) else {
        return text;
    };
    let (first, last) = years(&seats, zone).unwrap_or((stamp.year(), stamp.year()));
    let vtimezone = vtimezone(zone, first, last);
    // Event values are escaped and folded (continuation lines start with a space), so a line
    // that is exactly BEGIN:VEVENT or END:VCALENDAR is a component boundary.
    let at = text
        .find("\r\nBEGIN:VEVENT\r\n")
        .or_else(|| text.rfind("\r\nEND:VCALENDAR"))
        .map_or(text.len(), |at| at + 2);
    let mut out = String::with_capacity(text.len() + vtimezone.len());
    out.push_str(&text[..at]);
    out.push_str(&vtimezone);
    out.push_str(&text[at..]);
    out
}

fn vevent(
    event: &EventMail,
    seat: &SeatMail,
    zone: Option<Tz>,
    uid_domain: &str,
    stamp: DateTime<Utc>,
) -> Event {
    let when = |at: DateTime<Utc>| match zone {
        Some(zone) if zone != Tz::UTC => CalendarDateTime::WithTimezone {
            date_time: at.with_timezone(&zone).naive_local(),
            tzid: zone.name().to_owned(),
        },
        _ => CalendarDateTime::Utc(at),
    };
    let location = match &seat.room {
        Some(room) if !room.trim().is_empty() => format!("{}, {}", room.trim(), event.venue),
        _ => event.venue.clone(),
    };
    let mut description = event.name.clone();
    match seat.speakers.as_slice() {
        [] => {}
        [one] => description.push_str(&format!("\nSpeaker: {one}")),
        many => description.push_str(&format!("\nSpeakers: {}", many.join(", "))),
    }
    let status = if seat.state == "confirmed" {
        EventStatus::Confirmed
    } else {
        EventStatus::Cancelled
    };
    Event::new()
        .uid(&format!("seat-{}@{}", seat.seat_id, uid_domain))
        .sequence(u32::try_from(seat.sequence).unwrap_or(0))
        .timestamp(stamp)
        .summary(&clean(&seat.title))
        .starts(when(seat.starts_at))
        .ends(when(seat.ends_at))
        .location(&clean(&location))
        .description(&clean(&description))
        .status(status)
        .done()
}

/// Text as a property value may carry it: icalendar escapes `\n` but writes a carriage return
/// or other control character as it is, which would break the line structure.
fn clean(text: &str) -> String {
    text.replace("\r\n", "\n")
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect()
}

/// The first and last year, in the event's zone, that the seats touch.
fn years(seats: &[&SeatMail], zone: Tz) -> Option<(i32, i32)> {
    let years = seats
        .iter()
        .flat_map(|s| [s.starts_at, s.ends_at])
        .map(|at| at.with_timezone(&zone).year());
    let first = years.clone().min()?;
    let last = years.max()?;
    Some((first, last))
}

/// A `VTIMEZONE` for `zone` that covers `first_year..=last_year`: the offset in force at the start
/// of that span, then every change of offset within it, each at the local time it happens (as
/// RFC 5545 wants: in the offset before the change). A zone without changes gets one STANDARD.
fn vtimezone(zone: Tz, first_year: i32, last_year: i32) -> String {
    // A day either side, as local new year differs from UTC new year by up to 14 hours.
    let day = Duration::days(1);
    let from = new_year(first_year);
    let from = from.checked_sub_signed(day).unwrap_or(from);
    let until = new_year(last_year.saturating_add(1));
    let until = until.checked_add_signed(day).unwrap_or(until);

    let mut text = String::from("BEGIN:VTIMEZONE\r\n");
    text.push_str(&line("TZID", zone.name()));
    let initial = Observance::at(zone, from);
    text.push_str(&initial.component(from, &initial));
    for (at, before, after) in transitions(zone, from, until) {
        text.push_str(&after.component(at, &before));
    }
    text.push_str("END:VTIMEZONE\r\n");
    text
}

fn new_year(year: i32) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(year, 1, 1)
        .unwrap_or(NaiveDate::MAX)
        .and_time(chrono::NaiveTime::MIN)
        .and_utc()
}

/// One offset a zone observes.
#[derive(Debug, Clone, PartialEq)]
struct Observance {
    /// Seconds east of UTC, daylight saving included.
    offset: i32,
    daylight: bool,
    /// `BST`, `CET`, or a numeric form such as `+03` where the zone has no letters.
    name: Option<String>,
}

impl Observance {
    fn at(zone: Tz, at: DateTime<Utc>) -> Self {
        let offset = zone.offset_from_utc_datetime(&at.naive_utc());
        Self {
            offset: offset.fix().local_minus_utc(),
            daylight: !offset.dst_offset().is_zero(),
            name: offset.abbreviation().map(str::to_owned),
        }
    }

    /// Same clock, whatever it is called: a change of name alone is no transition for a client.
    fn same_clock(&self, other: &Self) -> bool {
        self.offset == other.offset && self.daylight == other.daylight
    }

    /// The STANDARD or DAYLIGHT sub-component for this observance starting at `at`, when the
    /// clock showed `before`'s offset.
    fn component(&self, at: DateTime<Utc>, before: &Observance) -> String {
        let kind = if self.daylight {
            "DAYLIGHT"
        } else {
            "STANDARD"
        };
        let onset: NaiveDateTime = at.naive_utc() + Duration::seconds(i64::from(before.offset));
        let mut text = format!("BEGIN:{kind}\r\n");
        text.push_str(&line("DTSTART", &onset.format("%Y%m%dT%H%M%S").to_string()));
        text.push_str(&line("TZOFFSETFROM", &utc_offset(before.offset)));
        text.push_str(&line("TZOFFSETTO", &utc_offset(self.offset)));
        if let Some(name) = &self.name {
            text.push_str(&line("TZNAME", name));
        }
        text.push_str(&format!("END:{kind}\r\n"));
        text
    }
}

/// Every change of clock in `[from, until)`: the instant of the change, the observance before and
/// the one after. Scans a day at a time (no zone changes its clock twice in a day), then narrows
/// each change down to the second by bisection.
fn transitions(
    zone: Tz,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, Observance, Observance)> {
    let mut found = Vec::new();
    let mut at = from;
    let mut current = Observance::at(zone, at);
    while at < until {
        let Some(next) = at.checked_add_signed(Duration::days(1)) else {
            break;
        };
        let observed = Observance::at(zone, next);
        if !observed.same_clock(&current) {
            let (mut old, mut new) = (at, next);
            while new - old > Duration::seconds(1) {
                let middle = old + (new - old) / 2;
                if Observance::at(zone, middle).same_clock(&current) {
                    old = middle;
                } else {
                    new = middle;
                }
            }
            found.push((new, current, observed.clone()));
            current = observed;
        }
        at = next;
    }
    found
}

/// `+0100`, `-0500`, `+0530`; seconds only when there are some (historical offsets).
fn utc_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let abs = seconds.unsigned_abs();
    let (hours, minutes, secs) = (abs / 3600, abs / 60 % 60, abs % 60);
    if secs == 0 {
        format!("{sign}{hours:02}{minutes:02}")
    } else {
        format!("{sign}{hours:02}{minutes:02}{secs:02}")
    }
}

/// One content line, escaped and folded by icalendar like the rest of the file.
fn line(key: &str, value: &str) -> String {
    let text: Result<String, std::fmt::Error> = Property::new(key, value).try_into();
    // Formatting into a String cannot fail; the Result only mirrors `fmt::Write`.
    text.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("valid test time")
    }

    fn event(time_zone: &str) -> EventMail {
        EventMail {
            slug: "pmo-2027".into(),
            name: "PMO Masterclasses 2027".into(),
            venue: "Queen Elizabeth II Centre, London".into(),
            time_zone: time_zone.into(),
        }
    }

    fn seat(
        seat_id: i64,
        title: &str,
        starts_at: DateTime<Utc>,
        minutes: i64,
        state: &str,
    ) -> SeatMail {
        SeatMail {
            seat_id,
            session_id: seat_id + 100,
            title: title.into(),
            room: Some("Churchill Room".into()),
            speakers: vec!["Dr Amelia Hart".into(), "Tom Okafor".into()],
            starts_at,
            ends_at: starts_at + Duration::minutes(minutes),
            day: String::new(),
            time: String::new(),
            sequence: 3,
            state: state.into(),
            price: Some("£145.00".into()),
        }
    }

    fn stamp() -> DateTime<Utc> {
        utc(2026, 11, 26, 12, 0)
    }

    /// The logical lines of a calendar file, unfolded.
    fn unfolded(ics: &str) -> Vec<String> {
        ics.replace("\r\n ", "")
            .split("\r\n")
            .map(str::to_owned)
            .collect()
    }

    fn count(lines: &[String], wanted: &str) -> usize {
        lines.iter().filter(|l| *l == wanted).count()
    }

    fn winter_and_summer() -> Vec<SeatMail> {
        vec![
            // 09:00 GMT in January, 09:00 BST (08:00 UTC) in June.
            seat(
                41,
                "Building a PMO from scratch",
                utc(2027, 1, 6, 9, 0),
                90,
                "confirmed",
            ),
            seat(
                42,
                "Portfolio prioritisation that sticks",
                utc(2027, 6, 16, 8, 0),
                120,
                "confirmed",
            ),
        ]
    }

    #[test]
    fn a_calendar_is_published_with_one_event_per_seat() {
        let ics = build(
            &event("Europe/London"),
            &winter_and_summer(),
            "masterclasses.example.org",
            stamp(),
        );
        let lines = unfolded(&ics);

        assert_eq!(lines.first().map(String::as_str), Some("BEGIN:VCALENDAR"));
        assert_eq!(count(&lines, "METHOD:PUBLISH"), 1);
        assert_eq!(count(&lines, "VERSION:2.0"), 1);
        assert_eq!(count(&lines, &format!("PRODID:{PRODID}")), 1);
        assert_eq!(count(&lines, "BEGIN:VEVENT"), 2);
        assert_eq!(count(&lines, "END:VEVENT"), 2);
        assert_eq!(count(&lines, "UID:seat-41@masterclasses.example.org"), 1);
        assert_eq!(count(&lines, "UID:seat-42@masterclasses.example.org"), 1);
        assert_eq!(count(&lines, "SEQUENCE:3"), 2);
        assert_eq!(count(&lines, "STATUS:CONFIRMED"), 2);
        assert_eq!(count(&lines, "DTSTAMP:20261126T120000Z"), 2);
        assert_eq!(count(&lines, "SUMMARY:Building a PMO from scratch"), 1);
        assert_eq!(
            count(
                &lines,
                r"LOCATION:Churchill Room\, Queen Elizabeth II Centre\, London"
            ),
            2
        );
        assert_eq!(
            count(
                &lines,
                r"DESCRIPTION:PMO Masterclasses 2027\nSpeakers: Dr Amelia Hart\, Tom Okafor"
            ),
            2
        );
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
    }

    #[test]
    fn times_are_local_to_the_event_zone_in_winter_and_summer() {
        let ics = build(
            &event("Europe/London"),
            &winter_and_summer(),
            "masterclasses.example.org",
            stamp(),
        );
        let lines = unfolded(&ics);

        assert_eq!(
            count(&lines, "DTSTART;TZID=Europe/London:20270106T090000"),
            1
        );
        assert_eq!(count(&lines, "DTEND;TZID=Europe/London:20270106T103000"), 1);
        assert_eq!(
            count(&lines, "DTSTART;TZID=Europe/London:20270616T090000"),
            1
        );
        assert_eq!(count(&lines, "DTEND;TZID=Europe/London:20270616T110000"), 1);
    }

    #[test]
    fn the_time_zone_is_defined_before_the_events_with_standard_and_daylight_time() {
        let ics = build(
            &event("Europe/London"),
            &winter_and_summer(),
            "masterclasses.example.org",
            stamp(),
        );
        let lines = unfolded(&ics);

        let zone = lines
            .iter()
            .position(|l| l == "BEGIN:VTIMEZONE")
            .expect("a VTIMEZONE");
        let first_event = lines
            .iter()
            .position(|l| l == "BEGIN:VEVENT")
            .expect("a VEVENT");
        assert!(zone < first_event);
        assert_eq!(lines[zone + 1], "TZID:Europe/London");
        assert_eq!(count(&lines, "END:VTIMEZONE"), 1);
        // Clocks go forward at 01:00 GMT on 28 March 2027 and back at 02:00 BST on 31 October.
        assert!(ics.contains(
            "BEGIN:DAYLIGHT\r\nDTSTART:20270328T010000\r\nTZOFFSETFROM:+0000\r\nTZOFFSETTO:+0100\r\nTZNAME:BST\r\nEND:DAYLIGHT\r\n"
        ));
        assert!(ics.contains(
            "BEGIN:STANDARD\r\nDTSTART:20271031T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0000\r\nTZNAME:GMT\r\nEND:STANDARD\r\n"
        ));
        // January is covered too: the observance in force when the span starts.
        assert!(ics.contains("BEGIN:STANDARD\r\nDTSTART:20261231T000000\r\nTZOFFSETFROM:+0000\r\nTZOFFSETTO:+0000\r\n"));
        // Nothing a VTIMEZONE must not have.
        let block = &lines[zone..=lines
            .iter()
            .position(|l| l == "END:VTIMEZONE")
            .expect("end")];
        assert!(block
            .iter()
            .all(|l| !l.starts_with("UID") && !l.starts_with("DTSTAMP")));
    }

    #[test]
    fn a_zone_without_clock_changes_gets_one_standard_observance() {
        let mut tokyo = event("Asia/Tokyo");
        tokyo.venue = "Tokyo International Forum".into();
        let ics = build(
            &tokyo,
            &winter_and_summer(),
            "masterclasses.example.org",
            stamp(),
        );
        let lines = unfolded(&ics);

        assert_eq!(count(&lines, "BEGIN:STANDARD"), 1);
        assert_eq!(count(&lines, "BEGIN:DAYLIGHT"), 0);
        assert_eq!(count(&lines, "TZOFFSETTO:+0900"), 1);
        assert_eq!(count(&lines, "DTSTART;TZID=Asia/Tokyo:20270106T180000"), 1);
    }

    #[test]
    fn a_cancelled_seat_is_sent_as_cancelled_and_a_held_one_is_left_out() {
        let seats = vec![
            seat(
                41,
                "Building a PMO from scratch",
                utc(2027, 1, 6, 9, 0),
                90,
                "cancelled",
            ),
            seat(
                42,
                "Portfolio prioritisation that sticks",
                utc(2027, 1, 6, 11, 0),
                90,
                "held",
            ),
            seat(
                43,
                "Benefits realisation",
                utc(2027, 1, 7, 9, 0),
                90,
                "confirmed",
            ),
        ];
        let ics = build(
            &event("Europe/London"),
            &seats,
            "masterclasses.example.org",
            stamp(),
        );
        let lines = unfolded(&ics);

        assert_eq!(count(&lines, "BEGIN:VEVENT"), 2);
        assert_eq!(count(&lines, "STATUS:CANCELLED"), 1);
        assert_eq!(count(&lines, "STATUS:CONFIRMED"), 1);
        assert_eq!(count(&lines, "UID:seat-42@masterclasses.example.org"), 0);
        let cancelled = lines
            .iter()
            .position(|l| l == "UID:seat-41@masterclasses.example.org")
            .expect("seat 41");
        let end = lines[cancelled..]
            .iter()
            .position(|l| l == "END:VEVENT")
            .expect("end")
            + cancelled;
        let start = lines[..cancelled]
            .iter()
            .rposition(|l| l == "BEGIN:VEVENT")
            .expect("begin");
        assert!(lines[start..end].iter().any(|l| l == "STATUS:CANCELLED"));
    }

    #[test]
    fn a_changed_session_keeps_its_uid_and_carries_its_new_sequence() {
        let mut moved = seat(
            41,
            "Building a PMO from scratch",
            utc(2027, 1, 6, 14, 0),
            90,
            "confirmed",
        );
        moved.sequence = 4;
        let ics = build(
            &event("Europe/London"),
            &[moved],
            "masterclasses.example.org",
            stamp(),
        );
        let lines = unfolded(&ics);

        assert_eq!(count(&lines, "UID:seat-41@masterclasses.example.org"), 1);
        assert_eq!(count(&lines, "SEQUENCE:4"), 1);
        assert_eq!(
            count(&lines, "DTSTART;TZID=Europe/London:20270106T140000"),
            1
        );
    }

    #[test]
    fn lines_end_in_crlf_and_long_ones_are_folded_at_75_octets() {
        let title =
            "Governance, assurance and the art of saying “no” – a long-form masterclass on \
                     portfolio boards, stage gates, RAID logs and benefits tracking for PMO leads";
        let ics = build(
            &event("Europe/London"),
            &[seat(41, title, utc(2027, 1, 6, 9, 0), 90, "confirmed")],
            "masterclasses.example.org",
            stamp(),
        );

        assert!(ics.ends_with("\r\n"));
        let physical: Vec<&str> = ics
            .strip_suffix("\r\n")
            .unwrap_or(&ics)
            .split("\r\n")
            .collect();
        assert!(
            physical
                .iter()
                .all(|l| !l.contains('\n') && !l.contains('\r')),
            "bare line breaks in {ics}"
        );
        assert!(
            physical.iter().all(|l| l.len() <= 75),
            "a line over 75 octets in {ics}"
        );
        assert!(
            physical.iter().any(|l| l.starts_with(' ')),
            "nothing was folded in {ics}"
        );
        let summary = title.replace(',', r"\,");
        assert_eq!(count(&unfolded(&ics), &format!("SUMMARY:{summary}")), 1);
    }

    #[test]
    fn control_characters_cannot_break_the_line_structure() {
        let ics = build(
            &event("Europe/London"),
            &[seat(
                41,
                "Title\r\nBEGIN:VEVENT",
                utc(2027, 1, 6, 9, 0),
                90,
                "confirmed",
            )],
            "masterclasses.example.org",
            stamp(),
        );
        let lines = unfolded(&ics);

        assert_eq!(count(&lines, "BEGIN:VEVENT"), 1);
        assert_eq!(count(&lines, r"SUMMARY:Title\nBEGIN:VEVENT"), 1);
    }

    #[test]
    fn an_unknown_zone_falls_back_to_utc_times() {
        let ics = build(
            &event("Mars/Olympus_Mons"),
            &winter_and_summer(),
            "masterclasses.example.org",
            stamp(),
        );
        let lines = unfolded(&ics);

        assert_eq!(count(&lines, "BEGIN:VTIMEZONE"), 0);
        assert_eq!(count(&lines, "DTSTART:20270616T080000Z"), 1);
    }

    #[test]
    fn offsets_are_written_as_rfc_5545_utc_offsets() {
        assert_eq!(utc_offset(3600), "+0100");
        assert_eq!(utc_offset(-5 * 3600), "-0500");
        assert_eq!(utc_offset(5 * 3600 + 1800), "+0530");
        assert_eq!(utc_offset(-75), "-000115");
        assert_eq!(utc_offset(0), "+0000");
    }
}
