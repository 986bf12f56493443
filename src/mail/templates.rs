//! Email templates: the files under `emails/`, embedded in the binary and rendered with
//! minijinja into a subject, a plain-text and an HTML body, plus the calendar file the email
//! carries.
//!
//! One folder per [`Template`] holds `subject.txt`, `body.txt` and `body.html`, which extend
//! `_base.txt` / `_base.html` and import `_macros.*` (see `emails/README.md`). minijinja rather
//! than askama: the templates stay plain Jinja files that someone who does not write Rust can
//! edit, yet they are compiled into the binary and every one is rendered by the tests below.
//! Variables are strict, so a misspelt name fails a test instead of leaving a blank in an
//! attendee's inbox; `.html` files are escaped, `.txt` files are not.

use minijinja::{context, AutoEscape, Environment, UndefinedBehavior, Value};

use super::calendar;
use super::data::{MailData, Rendered, SeatMail, Template, TicketMail};

/// Embeds files under `emails/` by their path there, so the binary needs no folder at run time.
macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../emails/", $path)))),*]
    };
}

/// Every template file, by its path under `emails/`.
const FILES: &[(&str, &str)] = embed![
    "_base.html",
    "_base.txt",
    "_macros.html",
    "_macros.txt",
    "booking_confirmed/subject.txt",
    "booking_confirmed/body.txt",
    "booking_confirmed/body.html",
    "booking_cancelled/subject.txt",
    "booking_cancelled/body.txt",
    "booking_cancelled/body.html",
    "session_changed/subject.txt",
    "session_changed/body.txt",
    "session_changed/body.html",
    "session_cancelled/subject.txt",
    "session_cancelled/body.txt",
    "session_cancelled/body.html",
    "agenda/subject.txt",
    "agenda/body.txt",
    "agenda/body.html",
    "booking_held/subject.txt",
    "booking_held/body.txt",
    "booking_held/body.html",
    "hold_expired/subject.txt",
    "hold_expired/body.txt",
    "hold_expired/body.html",
    "waitlist_joined/subject.txt",
    "waitlist_joined/body.txt",
    "waitlist_joined/body.html",
    "waitlist_offer/subject.txt",
    "waitlist_offer/body.txt",
    "waitlist_offer/body.html",
    "offer_expired/subject.txt",
    "offer_expired/body.txt",
    "offer_expired/body.html",
    "waitlist_left/subject.txt",
    "waitlist_left/body.txt",
    "waitlist_left/body.html",
    "payment_failed/subject.txt",
    "payment_failed/body.txt",
    "payment_failed/body.html",
    "payment_refunded/subject.txt",
    "payment_refunded/body.txt",
    "payment_refunded/body.html",
    "credit_note/subject.txt",
    "credit_note/body.txt",
    "credit_note/body.html",
    "invoice_reminder/subject.txt",
    "invoice_reminder/body.txt",
    "invoice_reminder/body.html",
    "organiser_invite/subject.txt",
    "organiser_invite/body.txt",
    "organiser_invite/body.html",
    "password_reset/subject.txt",
    "password_reset/body.txt",
    "password_reset/body.html",
    "certificate/subject.txt",
    "certificate/body.txt",
    "certificate/body.html",
];

/// The three files every email has, in its folder.
const PARTS: [&str; 3] = ["subject.txt", "body.txt", "body.html"];

/// Domain of calendar UIDs until [`Templates::with_uid_domain`] sets the deployment's own.
pub const DEFAULT_UID_DOMAIN: &str = "masterclass.invalid";

/// A template that could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The file does not parse (a syntax error, an unclosed tag).
    #[error("email template emails/{file} does not compile")]
    Compile {
        file: String,
        #[source]
        source: minijinja::Error,
    },
    /// The file failed while rendering: an unknown variable, a bad filter call. The source names
    /// the file and line where it happened (which may be a base layout or the macros).
    #[error("email {template} failed to render emails/{file}")]
    Render {
        template: &'static str,
        file: String,
        #[source]
        source: minijinja::Error,
    },
}

/// The loaded templates. Build once and keep: loading compiles every file.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    uid_domain: String,
}

impl Templates {
    /// Compiles every template embedded in the binary.
    pub fn new() -> Result<Self, RenderError> {
        Self::from_files(FILES)
    }

    /// Sets the domain of calendar UIDs (`seat-{id}@{domain}`). Use the one the agenda download
    /// uses, and never change it afterwards: a calendar that already holds a seat under another
    /// UID would show it twice.
    pub fn with_uid_domain(mut self, domain: impl Into<String>) -> Self {
        self.uid_domain = domain.into();
        self
    }

    /// The one way files become an environment, for the embedded set and for tests alike.
    fn from_files(files: &[(&'static str, &'static str)]) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        // A tag alone on its line leaves no trace, so plain text lays out as written.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        for (file, source) in files {
            env.add_template(file, source)
                .map_err(|source| RenderError::Compile {
                    file: (*file).to_owned(),
                    source,
                })?;
        }
        Ok(Self {
            env,
            uid_domain: DEFAULT_UID_DOMAIN.to_owned(),
        })
    }

    /// Renders `template` with `data`: a one-line subject, both bodies and, when some seat
    /// belongs in a calendar, the calendar file.
    pub fn render(&self, template: Template, data: &MailData) -> Result<Rendered, RenderError> {
        self.render_with_tickets(template, data, &[])
    }

    /// Like [`Templates::render`], for an email that carries check-in codes (`tickets`, whose
    /// pictures the caller sends with the message).
    pub fn render_with_tickets(
        &self,
        template: Template,
        data: &MailData,
        tickets: &[TicketMail],
    ) -> Result<Rendered, RenderError> {
        // The links are left out of stored JSON when absent; templates always see every field.
        let ctx = context! {
            manage_url => data.manage_url.as_deref(),
            agenda_url => data.agenda_url.as_deref(),
            account_url => data.account_url.as_deref(),
            tickets => Value::from_serialize(tickets),
            ..Value::from_serialize(data)
        };
        let [subject, text, html] = PARTS;
        let subject = one_line(&self.part(template, subject, &ctx)?);
        let text = tidy(&self.part(template, text, &ctx)?);
        // minijinja escapes `/` as `&#x2f;`, which is safe but turns every link into an
        // obfuscated-looking URL that spam filters dislike. A slash needs no escaping in HTML, and
        // escaped input cannot contain `&#x2f;` (its `&` would be `&amp;`), so undo it whole.
        let html = self.part(template, html, &ctx)?.replace("&#x2f;", "/");
        let calendar = calendar_seats(template, data)
            .map(|seats| calendar::calendar(&data.event, &seats, &self.uid_domain));
        Ok(Rendered {
            subject,
            text,
            html,
            calendar,
        })
    }

    fn part(&self, template: Template, part: &str, ctx: &Value) -> Result<String, RenderError> {
        let file = format!("{}/{part}", template.name());
        let failed = |source| RenderError::Render {
            template: template.name(),
            file: file.clone(),
            source,
        };
        self.env
            .get_template(&file)
            .map_err(failed)?
            .render(ctx)
            .map_err(failed)
    }
}

/// The seats an email's calendar file holds, or `None` when it would hold none.
fn calendar_seats(template: Template, data: &MailData) -> Option<Vec<SeatMail>> {
    let seats = match template {
        Template::BookingConfirmed | Template::Agenda => data.agenda.clone(),
        Template::SessionChanged | Template::BookingHeld => data.seats.clone(),
        // Held seats never went into a calendar, so there is nothing to take out of one; a
        // waitlist place is not a seat.
        Template::HoldExpired
        | Template::WaitlistJoined
        | Template::WaitlistOffer
        | Template::OfferExpired
        | Template::WaitlistLeft
        // Money, not places: the calendar is unchanged.
        | Template::PaymentFailed
        | Template::PaymentRefunded
        | Template::CreditNote
        | Template::InvoiceReminder
        // About an organiser's account.
        | Template::OrganiserInvite
        | Template::PasswordReset
        // A document about seats past.
        | Template::Certificate => return None,
        // The email says these seats are cancelled, so the calendar says so too, whatever state
        // they were read in.
        Template::BookingCancelled | Template::SessionCancelled => data
            .seats
            .iter()
            .cloned()
            .map(|mut seat| {
                seat.state = "cancelled".to_owned();
                seat
            })
            .collect(),
    };
    seats
        .iter()
        .any(calendar::belongs_in_calendar)
        .then_some(seats)
}

/// A subject is one line, whatever the template's whitespace.
fn one_line(subject: &str) -> String {
    subject.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Plain text without trailing spaces, leading blank lines or more than two blank lines in a row,
/// ending in one newline: templates can be laid out for reading without that showing.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blanks = 0;
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() {
            blanks += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(&"\n".repeat(1 + blanks.min(2)));
        }
        out.push_str(line);
        blanks = 0;
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};

    use super::*;
    use crate::mail::data::{ChangeMail, EventMail, WaitlistMail};

    const MANAGE_URL: &str =
        "https://masterclasses.example.org/manage/mt_4f9c2a?from=email&lang=en";
    const AGENDA_URL: &str =
        "https://masterclasses.example.org/api/v1/bookings/mt_4f9c2a/agenda.ics";

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("valid test time")
    }

    fn event() -> EventMail {
        EventMail {
            slug: "pmo-2027".into(),
            name: "PMO Masterclasses 2027".into(),
            venue: "Queen Elizabeth II Centre, Westminster, London".into(),
            time_zone: "Europe/London".into(),
        }
    }

    /// Wednesday morning, priced, two speakers.
    fn building_a_pmo() -> SeatMail {
        SeatMail {
            seat_id: 101,
            session_id: 11,
            title: "Building a PMO from scratch".into(),
            room: Some("Churchill Room".into()),
            speakers: vec!["Dr Amelia Hart".into(), "Tom Okafor".into()],
            starts_at: utc(2027, 1, 6, 9, 0),
            ends_at: utc(2027, 1, 6, 10, 30),
            day: "Wednesday 6 January 2027".into(),
            time: "09:00–10:30".into(),
            sequence: 0,
            state: "confirmed".into(),
            price: Some("£145.00".into()),
        }
    }

    /// Wednesday late morning, priced, one speaker.
    fn portfolio() -> SeatMail {
        SeatMail {
            seat_id: 102,
            session_id: 12,
            title: "Portfolio prioritisation that sticks".into(),
            room: Some("Attlee Suite".into()),
            speakers: vec!["Priya Raman".into()],
            starts_at: utc(2027, 1, 6, 11, 0),
            ends_at: utc(2027, 1, 6, 12, 30),
            day: "Wednesday 6 January 2027".into(),
            time: "11:00–12:30".into(),
            sequence: 2,
            state: "confirmed".into(),
            price: Some("£95.00".into()),
        }
    }

    /// Thursday afternoon, free, no room yet, no speakers.
    fn forum() -> SeatMail {
        SeatMail {
            seat_id: 103,
            session_id: 13,
            title: "PMO community of practice: open forum".into(),
            room: None,
            speakers: vec![],
            starts_at: utc(2027, 1, 7, 14, 0),
            ends_at: utc(2027, 1, 7, 15, 0),
            day: "Thursday 7 January 2027".into(),
            time: "14:00–15:00".into(),
            sequence: 0,
            state: "confirmed".into(),
            price: None,
        }
    }

    fn cancelled(mut seat: SeatMail) -> SeatMail {
        seat.state = "cancelled".into();
        seat
    }

    fn mail(seats: Vec<SeatMail>, agenda: Vec<SeatMail>) -> MailData {
        MailData {
            event: event(),
            reference: "PMO-7K3F9Q".into(),
            attendee_name: "Priya Shah".into(),
            seats,
            agenda,
            total: Some("£240.00".into()),
            change: None,
            hold_until: None,
            moved: false,
            paid: false,
            payment: None,
            refund: None,
            payment_error: None,
            invoice: None,
            waitlist: None,
            account: None,
            account_url: None,
            manage_url: Some(MANAGE_URL.into()),
            agenda_url: Some(AGENDA_URL.into()),
        }
    }

    fn without_links(mut data: MailData) -> MailData {
        data.manage_url = None;
        data.agenda_url = None;
        data
    }

    /// A booking of all three sessions, as it is stored in a job and read back: the links are
    /// not in the JSON.
    fn full_booking() -> MailData {
        let all = vec![building_a_pmo(), portfolio(), forum()];
        mail(all.clone(), all)
    }

    fn render(template: Template, data: &MailData) -> Rendered {
        Templates::new()
            .expect("templates load")
            .with_uid_domain("masterclasses.example.org")
            .render(template, data)
            .unwrap_or_else(|e| {
                panic!(
                    "{} does not render: {e}: {:?}",
                    template.name(),
                    std::error::Error::source(&e)
                )
            })
    }

    fn vevents(calendar: &Option<String>) -> usize {
        calendar
            .as_deref()
            .map_or(0, |ics| ics.matches("BEGIN:VEVENT\r\n").count())
    }

    #[test]
    fn a_confirmation_gives_the_reference_each_session_the_total_and_both_links() {
        let rendered = render(Template::BookingConfirmed, &full_booking());

        assert_eq!(
            rendered.subject,
            "Booking confirmed: PMO Masterclasses 2027 (PMO-7K3F9Q)"
        );
        for part in [&rendered.text, &rendered.html] {
            for wanted in [
                "PMO-7K3F9Q",
                "Priya Shah",
                "Building a PMO from scratch",
                "Portfolio prioritisation that sticks",
                "PMO community of practice: open forum",
                "Wednesday 6 January 2027",
                "Thursday 7 January 2027",
                "09:00–10:30",
                "14:00–15:00",
                "Churchill Room",
                "Dr Amelia Hart and Tom Okafor",
                "£145.00",
                "£240.00",
            ] {
                assert!(part.contains(wanted), "{wanted:?} missing from {part}");
            }
        }
        assert!(rendered.text.contains(MANAGE_URL));
        assert!(rendered.text.contains(AGENDA_URL));
        assert!(rendered.text.contains("Price: free"));
        let escaped = MANAGE_URL.replace('&', "&amp;");
        assert!(rendered.html.contains(&format!(r#"<a href="{escaped}""#)));
        assert!(rendered
            .html
            .contains(&format!(r#"<a href="{AGENDA_URL}""#)));
        assert!(rendered.html.contains(">Manage your booking</a>"));
        assert_eq!(vevents(&rendered.calendar), 3);
    }

    #[test]
    fn a_confirmation_without_links_says_how_to_change_the_booking() {
        let rendered = render(Template::BookingConfirmed, &without_links(full_booking()));

        for part in [&rendered.text, &rendered.html] {
            assert!(
                part.contains("quote your booking reference, PMO-7K3F9Q"),
                "{part}"
            );
            assert!(!part.contains("Manage your booking"));
            assert!(!part.contains("https://"));
        }
        assert_eq!(vevents(&rendered.calendar), 3);
    }

    #[test]
    fn a_confirmation_shows_the_full_timetable_only_when_other_bookings_add_to_it() {
        let mut data = mail(vec![forum()], vec![building_a_pmo(), portfolio(), forum()]);
        data.total = None;
        let with_others = render(Template::BookingConfirmed, &data);
        let alone = render(
            Template::BookingConfirmed,
            &mail(vec![forum()], vec![forum()]),
        );

        assert!(with_others.text.contains("YOUR FULL TIMETABLE"));
        assert!(with_others.html.contains("Your full timetable</h2>"));
        assert!(with_others.text.contains("Building a PMO from scratch"));
        assert!(!with_others.text.contains("Total:"));
        assert!(!alone.text.contains("YOUR FULL TIMETABLE"));
        assert_eq!(vevents(&with_others.calendar), 3);
    }

    #[test]
    fn html_escapes_what_attendees_and_organisers_typed_and_text_keeps_it() {
        let mut seat = building_a_pmo();
        seat.title = "Risk & <Issues> \"logs\"".into();
        let mut data = mail(vec![seat.clone()], vec![seat]);
        data.attendee_name = "<script>alert(1)</script>".into();

        let rendered = render(Template::BookingConfirmed, &data);

        assert!(
            rendered
                .html
                .contains("Risk &amp; &lt;Issues&gt; &quot;logs&quot;"),
            "{}",
            rendered.html
        );
        assert!(!rendered.html.contains("<Issues>"));
        assert!(!rendered.html.contains("<script>"));
        assert!(!rendered.html.contains("&amp;lt;"), "escaped twice");
        assert!(rendered.text.contains("Risk & <Issues> \"logs\""));
        assert!(rendered.text.contains("<script>alert(1)</script>"));
    }

    #[test]
    fn cancelling_one_seat_lists_it_and_what_remains() {
        let data = mail(
            vec![cancelled(portfolio())],
            vec![building_a_pmo(), forum()],
        );

        let rendered = render(Template::BookingCancelled, &data);

        assert_eq!(
            rendered.subject,
            "Cancellation confirmed: PMO Masterclasses 2027 (PMO-7K3F9Q)"
        );
        let (cancelled_part, remaining) = rendered
            .text
            .split_once("YOUR SESSIONS NOW")
            .expect("what remains");
        assert!(cancelled_part.contains("Portfolio prioritisation that sticks"));
        assert!(!cancelled_part.contains("Building a PMO from scratch"));
        assert!(remaining.contains("Building a PMO from scratch"));
        assert!(remaining.contains("PMO community of practice: open forum"));
        assert!(rendered
            .text
            .contains("The rest of your booking, PMO-7K3F9Q, is unchanged."));
        assert!(rendered.html.contains("Your sessions now</h2>"));
        let ics = rendered.calendar.expect("a calendar");
        assert_eq!(ics.matches("BEGIN:VEVENT\r\n").count(), 1);
        assert!(ics.contains("UID:seat-102@masterclasses.example.org\r\n"));
        assert!(ics.contains("STATUS:CANCELLED\r\n"));
    }

    #[test]
    fn cancelling_every_seat_says_the_whole_booking_is_cancelled() {
        let all = vec![
            cancelled(building_a_pmo()),
            cancelled(portfolio()),
            cancelled(forum()),
        ];
        let data = without_links(mail(all, vec![]));

        let rendered = render(Template::BookingCancelled, &data);

        assert_eq!(
            rendered.subject,
            "Booking cancelled: PMO Masterclasses 2027 (PMO-7K3F9Q)"
        );
        assert!(rendered.text.contains("you no longer hold any places"));
        assert!(rendered.html.contains("Your booking is cancelled</h1>"));
        assert!(!rendered.text.contains("YOUR SESSIONS NOW"));
        assert!(
            !rendered.text.contains("(cancelled)"),
            "the heading already says so"
        );
        let ics = rendered.calendar.expect("a calendar");
        assert_eq!(ics.matches("STATUS:CANCELLED\r\n").count(), 3);
    }

    fn moved() -> MailData {
        let mut seat = building_a_pmo();
        seat.starts_at = utc(2027, 1, 7, 14, 0);
        seat.ends_at = utc(2027, 1, 7, 15, 30);
        seat.day = "Thursday 7 January 2027".into();
        seat.time = "14:00–15:30".into();
        seat.room = Some("Attlee Suite".into());
        seat.sequence = 1;
        let mut data = mail(vec![seat.clone()], vec![portfolio(), seat]);
        data.total = None;
        data.change = Some(ChangeMail {
            previous_day: "Wednesday 6 January 2027".into(),
            previous_time: "09:00–10:30".into(),
            previous_room: Some("Churchill Room".into()),
        });
        data
    }

    #[test]
    fn a_moved_session_shows_the_old_and_new_day_time_and_room() {
        let rendered = render(Template::SessionChanged, &moved());

        assert_eq!(
            rendered.subject,
            "New time and room for Building a PMO from scratch – PMO Masterclasses 2027 (PMO-7K3F9Q)"
        );
        for wanted in [
            "Day:  Thursday 7 January 2027 (was Wednesday 6 January 2027)",
            "Time: 14:00–15:30 (was 09:00–10:30)",
            "Room: Attlee Suite (was Churchill Room)",
            "Your calendar file is updated",
            "YOUR TIMETABLE NOW",
        ] {
            assert!(
                rendered.text.contains(wanted),
                "{wanted:?} missing from {}",
                rendered.text
            );
        }
        assert!(rendered.html.contains("<strong>14:00–15:30</strong>"));
        assert!(rendered.html.contains("<s>09:00–10:30</s>"));
        assert!(rendered.html.contains("Your calendar file is updated"));
        let ics = rendered.calendar.expect("a calendar");
        assert!(ics.contains("SEQUENCE:1\r\n"));
        assert!(ics.contains("DTSTART;TZID=Europe/London:20270107T140000\r\n"));
        assert!(ics.contains("UID:seat-101@masterclasses.example.org\r\n"));
    }

    #[test]
    fn a_room_change_alone_is_called_a_new_room() {
        let mut data = moved();
        data.change = Some(ChangeMail {
            previous_day: "Thursday 7 January 2027".into(),
            previous_time: "14:00–15:30".into(),
            previous_room: None,
        });

        let rendered = render(Template::SessionChanged, &data);

        assert!(
            rendered
                .subject
                .starts_with("New room for Building a PMO from scratch"),
            "{}",
            rendered.subject
        );
        assert!(rendered
            .text
            .contains("Day:  Thursday 7 January 2027 (unchanged)"));
        assert!(rendered
            .text
            .contains("Room: Attlee Suite (was to be confirmed)"));
    }

    #[test]
    fn a_cancelled_session_apologises_and_shows_what_remains() {
        // Read before the seat changed state: the calendar still says CANCELLED.
        let data = mail(vec![portfolio()], vec![building_a_pmo(), forum()]);

        let rendered = render(Template::SessionCancelled, &data);

        assert_eq!(
            rendered.subject,
            "Session cancelled: Portfolio prioritisation that sticks – PMO Masterclasses 2027 (PMO-7K3F9Q)"
        );
        assert!(rendered.text.contains("We are very sorry"));
        let (cancelled_part, remaining) = rendered
            .text
            .split_once("YOUR OTHER SESSIONS ARE UNAFFECTED")
            .expect("what remains");
        assert!(cancelled_part.contains("Portfolio prioritisation that sticks"));
        assert!(cancelled_part.contains("11:00–12:30"));
        assert!(remaining.contains("Building a PMO from scratch"));
        assert!(rendered
            .html
            .contains("We are sorry: a session has been cancelled</h1>"));
        let ics = rendered.calendar.expect("a calendar");
        assert!(ics.contains("STATUS:CANCELLED\r\n"));
        assert!(!ics.contains("STATUS:CONFIRMED"));
    }

    #[test]
    fn the_last_session_cancelled_says_nothing_else_is_booked() {
        let rendered = render(Template::SessionCancelled, &mail(vec![forum()], vec![]));

        assert!(rendered
            .text
            .contains("You have no other sessions booked at PMO Masterclasses 2027."));
    }

    #[test]
    fn the_agenda_gives_the_venue_and_every_session_by_day() {
        let rendered = render(Template::Agenda, &full_booking());

        assert_eq!(
            rendered.subject,
            "Your agenda for PMO Masterclasses 2027 (PMO-7K3F9Q)"
        );
        for part in [&rendered.text, &rendered.html] {
            for wanted in [
                "Queen Elizabeth II Centre, Westminster, London",
                "Wednesday 6 January 2027",
                "Thursday 7 January 2027",
                "Building a PMO from scratch",
                "Portfolio prioritisation that sticks",
                "PMO community of practice: open forum",
            ] {
                assert!(part.contains(wanted), "{wanted:?} missing from {part}");
            }
        }
        // One table per day, each with header cells.
        assert_eq!(rendered.html.matches("<table").count(), 2);
        assert_eq!(rendered.html.matches(r#"<th scope="row""#).count(), 3);
        assert_eq!(vevents(&rendered.calendar), 3);
    }

    #[test]
    fn a_held_seat_shows_as_awaiting_payment_and_stays_out_of_the_calendar() {
        let mut held = portfolio();
        held.state = "held".into();
        let rendered = render(
            Template::Agenda,
            &mail(vec![], vec![building_a_pmo(), held]),
        );

        assert!(rendered.text.contains("(awaiting payment)"));
        assert_eq!(vevents(&rendered.calendar), 1);
    }

    #[test]
    fn an_email_without_seats_for_a_calendar_carries_none() {
        let rendered = render(Template::Agenda, &mail(vec![], vec![]));

        assert_eq!(rendered.calendar, None);
        assert!(rendered.text.contains("You have no sessions booked"));
    }

    const HOLD_UNTIL: &str = "14:15 on Wednesday 6 January 2027";
    const OFFER_UNTIL: &str = "09:00 on Thursday 7 January 2027";
    const WAITLIST_URL: &str = "https://masterclasses.example.org/waitlist/wl_8b3d1e";

    fn held(mut seat: SeatMail) -> SeatMail {
        seat.state = "held".into();
        seat
    }

    /// Two priced sessions booked and waiting for payment, as a new booking stores it.
    fn held_booking() -> MailData {
        let mut data = mail(vec![held(building_a_pmo()), held(portfolio())], vec![]);
        data.hold_until = Some(HOLD_UNTIL.into());
        data.agenda_url = None;
        data
    }

    /// A waitlist entry for the (priced) PMO session, in `state`.
    fn on_the_waitlist(state: &str, position: Option<i64>, offer_until: Option<&str>) -> MailData {
        let mut session = building_a_pmo();
        session.seat_id = 0;
        session.state = state.into();
        let mut data = mail(vec![], vec![]);
        data.reference = "WL-7K3F9Q".into();
        data.total = None;
        data.manage_url = Some(WAITLIST_URL.into());
        data.agenda_url = None;
        data.waitlist = Some(WaitlistMail {
            session,
            position,
            offer_until: offer_until.map(Into::into),
        });
        data
    }

    fn assert_both_parts_say(rendered: &Rendered, wanted: &[&str]) {
        for part in [&rendered.text, &rendered.html] {
            for wanted in wanted {
                assert!(part.contains(wanted), "{wanted:?} missing from {part}");
            }
        }
    }

    #[test]
    fn a_held_booking_changed_by_a_move_says_so_instead_of_thanking_for_booking() {
        let mut data = held_booking();
        data.moved = true;
        let rendered = render(Template::BookingHeld, &data);
        assert_both_parts_say(
            &rendered,
            &[
                "Your booking has changed: a place was moved to another session",
                "Total due: £240.00",
            ],
        );
        assert!(!rendered.text.contains("Thank you for booking"));
        assert!(!rendered.html.contains("Thank you for booking"));
        let fresh = render(Template::BookingHeld, &held_booking());
        assert_both_parts_say(&fresh, &["Thank you for booking."]);
    }

    #[test]
    fn a_held_booking_lists_the_prices_the_total_due_and_the_deadline_to_pay() {
        let rendered = render(Template::BookingHeld, &held_booking());

        assert_eq!(
            rendered.subject,
            "Your places are held until 14:15 on Wednesday 6 January 2027: please complete your payment – PMO Masterclasses 2027 (PMO-7K3F9Q)"
        );
        assert_both_parts_say(
            &rendered,
            &[
                "PMO-7K3F9Q",
                "Building a PMO from scratch",
                "Portfolio prioritisation that sticks",
                "09:00–10:30",
                "£145.00",
                "£95.00",
                "Total due: £240.00",
                HOLD_UNTIL,
                "(time at the venue)",
                "Please complete your payment by",
                "released for others to book",
                "Complete your payment",
            ],
        );
        assert!(rendered
            .text
            .contains("for you until 14:15 on Wednesday 6 January 2027 (time at the venue)"));
        assert!(
            !rendered.text.contains("(awaiting payment)"),
            "the email already says so"
        );
        assert!(rendered.text.contains(&format!(
            "Complete your payment (no account or password needed):\n{MANAGE_URL}"
        )));
        let escaped = MANAGE_URL.replace('&', "&amp;");
        assert!(rendered.html.contains(&format!(r#"<a href="{escaped}""#)));
        assert!(rendered.html.contains(">Complete your payment</a>"));
        // A held seat is not the attendee's yet: it goes into no calendar.
        assert_eq!(rendered.calendar, None);
    }

    #[test]
    fn a_held_booking_without_a_link_says_how_to_pay() {
        let rendered = render(Template::BookingHeld, &without_links(held_booking()));

        assert_both_parts_say(
            &rendered,
            &["To complete your payment, or if you need any help, please contact the organisers and quote your booking reference, PMO-7K3F9Q."],
        );
        assert!(!rendered.text.contains("https://"));
        assert!(!rendered.html.contains("<a href"));
    }

    #[test]
    fn an_expired_hold_says_which_places_were_released_and_invites_booking_again() {
        let mut data = held_booking();
        data.total = None;

        let rendered = render(Template::HoldExpired, &data);

        assert_eq!(
            rendered.subject,
            "Payment not received: your places have been released – PMO Masterclasses 2027 (PMO-7K3F9Q)"
        );
        assert_both_parts_say(
            &rendered,
            &[
                "PMO-7K3F9Q",
                "Building a PMO from scratch",
                "Portfolio prioritisation that sticks",
                "until 14:15 on Wednesday 6 January 2027",
                "we did not receive it in time",
                "released for others to book",
                "You are welcome to book again while places remain.",
            ],
        );
        assert!(rendered.text.contains("\nRELEASED\n"));
        assert!(rendered
            .html
            .contains("Your places have been released</h1>"));
    }

    #[test]
    fn joining_the_waitlist_gives_the_session_the_position_and_what_happens_next() {
        let rendered = render(
            Template::WaitlistJoined,
            &on_the_waitlist("waiting", Some(3), None),
        );

        assert_eq!(
            rendered.subject,
            "You are number 3 on the waitlist for Building a PMO from scratch – PMO Masterclasses 2027 (WL-7K3F9Q)"
        );
        assert_both_parts_say(
            &rendered,
            &[
                "WL-7K3F9Q",
                "Building a PMO from scratch",
                "Wednesday 6 January 2027",
                "09:00–10:30",
                "Churchill Room",
                "You are number 3 in the queue",
                "2 people are ahead of you",
                "This is not a booking yet",
                "we offer it by email to the first person waiting",
                "See your place or leave the waitlist",
                "about waitlist place WL-7K3F9Q for PMO Masterclasses 2027",
                WAITLIST_URL,
            ],
        );
        assert!(rendered.text.contains("Waitlist reference: WL-7K3F9Q"));
        assert!(rendered
            .html
            .contains(&format!(r#"<a href="{WAITLIST_URL}""#)));
        assert!(!rendered.text.contains("booking WL-7K3F9Q"));
        assert_eq!(rendered.calendar, None);
    }

    #[test]
    fn the_first_in_line_is_told_the_next_free_seat_is_theirs() {
        let rendered = render(
            Template::WaitlistJoined,
            &without_links(on_the_waitlist("waiting", Some(1), None)),
        );

        assert!(
            rendered
                .subject
                .starts_with("You are next on the waitlist for Building a PMO from scratch"),
            "{}",
            rendered.subject
        );
        assert_both_parts_say(
            &rendered,
            &[
                "You are first in the queue",
                "the next seat that becomes free will be offered to you",
                "To leave the waitlist, or with any question about it, please contact the organisers and quote your waitlist reference, WL-7K3F9Q.",
            ],
        );
        assert!(!rendered.text.contains("ahead of you"));
    }

    #[test]
    fn an_offer_gives_the_deadline_and_says_a_priced_seat_is_held_for_payment() {
        let rendered = render(
            Template::WaitlistOffer,
            &on_the_waitlist("offered", None, Some(OFFER_UNTIL)),
        );

        assert_eq!(
            rendered.subject,
            "A seat is free in Building a PMO from scratch: claim it by 09:00 on Thursday 7 January 2027 – PMO Masterclasses 2027 (WL-7K3F9Q)"
        );
        assert_both_parts_say(
            &rendered,
            &[
                "WL-7K3F9Q",
                "Building a PMO from scratch",
                OFFER_UNTIL,
                "(time at the venue)",
                "The seat costs £145.00. Claiming it holds it for you while you pay",
                "Claim or decline the seat",
                "please decline it, so that the next person waiting can have it",
                "the offer passes to the next person at 09:00 on Thursday 7 January 2027",
                WAITLIST_URL,
            ],
        );
        assert!(rendered
            .text
            .contains("for you until 09:00 on Thursday 7 January 2027 (time at the venue)"));
        assert!(rendered.html.contains(">Claim or decline the seat</a>"));
        assert_eq!(rendered.calendar, None);
    }

    #[test]
    fn an_offer_of_a_free_seat_says_claiming_books_it() {
        let mut data = without_links(on_the_waitlist("offered", None, Some(OFFER_UNTIL)));
        if let Some(waitlist) = data.waitlist.as_mut() {
            waitlist.session.price = None;
        }

        let rendered = render(Template::WaitlistOffer, &data);

        assert_both_parts_say(
            &rendered,
            &[
                "Claiming the seat books your place",
                "please contact the organisers before 09:00 on Thursday 7 January 2027 and quote your waitlist reference, WL-7K3F9Q.",
            ],
        );
        assert!(!rendered.text.contains("while you pay"));
    }

    #[test]
    fn an_expired_offer_says_it_passed_on_and_the_waitlist_place_is_gone() {
        let rendered = render(
            Template::OfferExpired,
            &on_the_waitlist("expired", None, Some(OFFER_UNTIL)),
        );

        assert_eq!(
            rendered.subject,
            "Your waitlist offer has expired: Building a PMO from scratch – PMO Masterclasses 2027 (WL-7K3F9Q)"
        );
        assert_both_parts_say(
            &rendered,
            &[
                "WL-7K3F9Q",
                "until 09:00 on Thursday 7 January 2027",
                "it was not claimed in time",
                "passed to the next person waiting",
                "you are no longer on the waitlist for this session",
            ],
        );
        assert_eq!(rendered.calendar, None);
    }

    #[test]
    fn leaving_the_waitlist_is_confirmed() {
        let rendered = render(
            Template::WaitlistLeft,
            &on_the_waitlist("withdrawn", None, None),
        );

        assert_eq!(
            rendered.subject,
            "You have left the waitlist: Building a PMO from scratch – PMO Masterclasses 2027 (WL-7K3F9Q)"
        );
        assert_both_parts_say(
            &rendered,
            &[
                "You have left the waitlist for Building a PMO from scratch",
                "If you did not ask for this, please contact the organisers and quote your waitlist reference, WL-7K3F9Q.",
            ],
        );
        assert!(!rendered.text.contains("declined"));
        assert_eq!(rendered.calendar, None);
    }

    #[test]
    fn a_cancelled_session_ends_the_waitlist_place_with_an_apology() {
        let rendered = render(
            Template::WaitlistLeft,
            &on_the_waitlist("cancelled", None, None),
        );

        assert_eq!(
            rendered.subject,
            "Cancelled: the session you were waiting for: Building a PMO from scratch – PMO Masterclasses 2027 (WL-7K3F9Q)"
        );
        assert_both_parts_say(
            &rendered,
            &["Building a PMO from scratch, which you were waiting for, has been cancelled by the organisers"],
        );
        assert!(!rendered.text.contains("If you did not ask for this"));
        assert!(!rendered.text.contains("as you asked"));
    }

    #[test]
    fn declining_an_offer_says_the_seat_goes_to_the_next_person() {
        let rendered = render(
            Template::WaitlistLeft,
            &on_the_waitlist("declined", None, Some(OFFER_UNTIL)),
        );

        assert_eq!(
            rendered.subject,
            "You have declined the seat offered to you: Building a PMO from scratch – PMO Masterclasses 2027 (WL-7K3F9Q)"
        );
        assert_both_parts_say(
            &rendered,
            &[
                "You have declined the seat we offered you in Building a PMO from scratch",
                "it now goes to the next person waiting",
                "you are no longer on the waitlist for this session",
            ],
        );
        assert!(rendered.html.contains("You have declined the seat</h1>"));
    }

    #[test]
    fn a_paid_confirmation_says_the_payment_was_received() {
        let mut data = full_booking();
        data.paid = true;

        let rendered = render(Template::BookingConfirmed, &data);

        assert_both_parts_say(
            &rendered,
            &[
                "Thank you for booking and for your payment.",
                "Payment received: £240.00",
            ],
        );
        assert!(!rendered.text.contains("Total:"));
        let unpaid = render(Template::BookingConfirmed, &full_booking());
        assert!(unpaid.text.contains("Total: £240.00"));
        assert!(!unpaid.text.contains("Payment received"));
    }

    fn receipt() -> MailData {
        let mut data = full_booking();
        data.paid = true;
        data.payment = Some(crate::mail::compose::payment(24_000, 2000, "GBP"));
        data
    }

    fn refunded(nothing_kept: bool) -> MailData {
        let mut data = held_booking();
        data.refund = Some(crate::mail::data::RefundMail {
            amount: "£240.00".into(),
            why: "because your booking had already been paid for".into(),
            nothing_kept,
        });
        data
    }

    #[test]
    fn a_receipt_shows_what_was_paid_with_its_vat() {
        let rendered = render(Template::BookingConfirmed, &receipt());

        assert_both_parts_say(
            &rendered,
            &[
                "Payment received: £240.00",
                "VAT at 20%: £40.00 (net £200.00)",
            ],
        );
        let mut untaxed = receipt();
        untaxed.payment = Some(crate::mail::compose::payment(24_000, 0, "GBP"));
        let rendered = render(Template::BookingConfirmed, &untaxed);
        assert!(rendered.text.contains("Payment received: £240.00"));
        assert!(!rendered.text.contains("VAT"));
    }

    #[test]
    fn a_failed_payment_says_no_money_was_taken_and_the_places_are_still_held() {
        let mut data = held_booking();
        data.payment_error = Some("Your card was declined.".into());

        let rendered = render(Template::PaymentFailed, &data);

        assert!(rendered
            .subject
            .starts_with("Your payment did not go through"));
        assert_both_parts_say(
            &rendered,
            &[
                "did not go through: Your card was declined.",
                "No money has been taken.",
                HOLD_UNTIL,
            ],
        );
        assert!(rendered.text.contains(MANAGE_URL));
    }

    fn invoiced(credit_note: bool) -> MailData {
        let mut data = full_booking();
        data.invoice = Some(crate::mail::data::InvoiceMail {
            number: if credit_note {
                "PMO27-0002"
            } else {
                "PMO27-0001"
            }
            .into(),
            gross: "£240.00".into(),
            net: "£200.00".into(),
            vat: "£40.00".into(),
            due: "10 December 2026".into(),
            po_number: Some("PO-4471".into()),
            credit_note,
            credits_number: credit_note.then(|| "PMO27-0001".into()),
            outstanding: credit_note.then(|| "£0.00".into()),
            already_paid: false,
        });
        data
    }

    #[test]
    fn an_invoiced_confirmation_says_what_to_pay_by_when() {
        let rendered = render(Template::BookingConfirmed, &invoiced(false));

        assert_both_parts_say(
            &rendered,
            &[
                "PMO27-0001",
                "£240.00",
                "10 December 2026",
                "PO-4471",
                "attached as a PDF",
            ],
        );
        let reminder = render(Template::InvoiceReminder, &invoiced(false));
        assert!(reminder.subject.starts_with("Reminder: invoice PMO27-0001"));
        assert_both_parts_say(&reminder, &["was due on 10 December 2026", "£240.00"]);
        let credit = render(Template::CreditNote, &invoiced(true));
        assert!(credit.subject.starts_with("Credit note PMO27-0002"));
        assert_both_parts_say(
            &credit,
            &[
                "PMO27-0002",
                "against invoice PMO27-0001",
                "Still to pay of the invoice",
            ],
        );
    }

    #[test]
    fn a_refund_says_how_much_and_why() {
        let rendered = render(Template::PaymentRefunded, &refunded(true));

        assert!(rendered.subject.starts_with("Refund of £240.00"));
        assert_both_parts_say(
            &rendered,
            &[
                "We have refunded",
                "£240.00",
                "because your booking had already been paid for",
                "You are welcome to book again",
            ],
        );
        let kept = render(Template::PaymentRefunded, &refunded(false));
        assert!(kept.text.contains(MANAGE_URL));
        assert!(!kept.text.contains("book again"));
    }

    #[test]
    fn every_template_renders_with_and_without_links() {
        let mut changed = moved();
        changed.agenda = vec![];
        for template in Template::ALL {
            for data in [
                full_booking(),
                without_links(full_booking()),
                changed.clone(),
                mail(vec![], vec![]),
                held_booking(),
                receipt(),
                invoiced(false),
                invoiced(true),
                refunded(true),
                without_links(refunded(false)),
                on_the_waitlist("waiting", Some(3), None),
                without_links(on_the_waitlist("offered", Some(1), Some(OFFER_UNTIL))),
            ] {
                let rendered = render(template, &data);

                assert!(!rendered.subject.is_empty() && !rendered.subject.contains('\n'));
                assert!(rendered.subject.contains("PMO Masterclasses 2027"));
                assert!(rendered.html.starts_with("<!DOCTYPE html>"));
                assert!(rendered.html.contains(r#"<html lang="en-GB""#));
                assert!(rendered.html.contains(r#"name="viewport""#));
                assert!(rendered.html.contains("<h1"));
                for part in [&rendered.subject, &rendered.text, &rendered.html] {
                    assert!(
                        !part.contains("{{") && !part.contains("{%"),
                        "a tag left in {part}"
                    );
                    assert!(!part.to_lowercase().contains("click here"));
                }
                // Nothing to fetch: no images, scripts, style sheets or fonts.
                for external in [
                    "<img", "<script", "<link", "<style", "src=", "url(", "@import",
                ] {
                    assert!(
                        !rendered.html.contains(external),
                        "{external} in {}",
                        template.name()
                    );
                }
                assert!(rendered.text.ends_with('\n') && !rendered.text.ends_with("\n\n"));
                assert!(
                    rendered.text.lines().all(|l| l == l.trim_end()),
                    "trailing spaces"
                );
                assert!(!rendered.text.contains("\n\n\n\n"), "too many blank lines");
            }
        }
    }

    #[test]
    fn a_misspelt_variable_fails_and_names_the_file() {
        let files: Vec<(&'static str, &'static str)> = FILES
            .iter()
            .map(|&(file, source)| match file {
                "booking_confirmed/body.txt" => (file, "Your booking {{ refrence }}"),
                _ => (file, source),
            })
            .collect();
        let templates = Templates::from_files(&files).expect("it parses");

        let error = templates
            .render(Template::BookingConfirmed, &full_booking())
            .expect_err("an unknown variable is an error");

        match &error {
            RenderError::Render {
                template,
                file,
                source,
            } => {
                assert_eq!(*template, "booking_confirmed");
                assert_eq!(file, "booking_confirmed/body.txt");
                assert_eq!(source.kind(), minijinja::ErrorKind::UndefinedError);
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(error
            .to_string()
            .contains("emails/booking_confirmed/body.txt"));
    }

    #[test]
    fn a_syntax_error_fails_when_loading_and_names_the_file() {
        let files: Vec<(&'static str, &'static str)> = FILES
            .iter()
            .map(|&(file, source)| match file {
                "agenda/body.html" => (file, "{% if agenda %}unclosed"),
                _ => (file, source),
            })
            .collect();

        let error = Templates::from_files(&files).expect_err("a syntax error");

        assert!(
            matches!(&error, RenderError::Compile { file, .. } if file == "agenda/body.html"),
            "{error:?}"
        );
    }

    #[test]
    fn every_email_has_its_three_files_and_every_file_is_embedded() {
        for template in Template::ALL {
            for part in PARTS {
                let file = format!("{}/{part}", template.name());
                assert!(
                    FILES.iter().any(|(f, _)| *f == file),
                    "{file} is not embedded"
                );
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("emails");
        let mut on_disk = Vec::new();
        let mut folders = vec![root.clone()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).expect("emails/ is readable") {
                let path = entry.expect("an entry").path();
                if path.is_dir() {
                    folders.push(path);
                } else if path.extension().is_some_and(|e| e == "txt" || e == "html") {
                    let relative = path.strip_prefix(&root).expect("under emails/");
                    on_disk.push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(f, _)| (*f).to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "emails/ and the embedded list differ");
    }

    /// The check-in codes the mailer would send with `seats`.
    fn tickets_for(seats: &[SeatMail]) -> Vec<TicketMail> {
        seats
            .iter()
            .map(|s| TicketMail {
                seat_id: s.seat_id,
                title: s.title.clone(),
                day: s.day.clone(),
                time: s.time.clone(),
                cid: format!("checkin-{}@masterclasses.example.org", s.seat_id),
                size: 198,
            })
            .collect()
    }

    fn render_with_codes(template: Template, data: &MailData, tickets: &[TicketMail]) -> Rendered {
        Templates::new()
            .expect("templates load")
            .render_with_tickets(template, data, tickets)
            .unwrap_or_else(|e| panic!("{} does not render: {e:?}", template.name()))
    }

    #[test]
    fn a_confirmation_shows_a_check_in_code_per_seat_and_says_how_to_use_it() {
        let data = full_booking();

        let rendered =
            render_with_codes(Template::BookingConfirmed, &data, &tickets_for(&data.seats));

        assert!(rendered.html.contains("Your check-in codes</h2>"));
        for (seat, title, day) in [
            (
                101,
                "Building a PMO from scratch",
                "Wednesday 6 January 2027",
            ),
            (
                102,
                "Portfolio prioritisation that sticks",
                "Wednesday 6 January 2027",
            ),
            (
                103,
                "PMO community of practice: open forum",
                "Thursday 7 January 2027",
            ),
        ] {
            let img = format!(
                r#"<img src="cid:checkin-{seat}@masterclasses.example.org" width="198" height="198" alt="Check-in code for {title}, {day}""#
            );
            assert!(rendered.html.contains(&img), "{img} in {}", rendered.html);
        }
        let text = &rendered.text;
        assert!(text.contains("YOUR CHECK-IN CODES"), "{text}");
        assert!(text.contains("Each of these sessions has its own check-in code"));
        assert!(text.contains("Show it at the door"));
        assert!(text.contains("your booking reference, PMO-7K3F9Q."));
        assert!(text
            .contains("  - Building a PMO from scratch, Wednesday 6 January 2027, 09:00–10:30\n"));
        assert!(!text.contains("cid:"));
    }

    #[test]
    fn an_agenda_with_one_code_says_so_in_the_singular() {
        let data = mail(vec![], vec![forum()]);

        let rendered = render_with_codes(Template::Agenda, &data, &tickets_for(&data.agenda));

        assert!(rendered.html.contains("Your check-in code</h2>"));
        assert!(rendered.html.contains("Show this code at the door"));
        assert!(rendered
            .html
            .contains(r#"src="cid:checkin-103@masterclasses.example.org""#));
        assert!(rendered.text.contains("YOUR CHECK-IN CODE\n"));
        assert!(rendered.text.contains("This session has a check-in code"));
    }

    #[test]
    fn emails_without_codes_do_not_mention_them() {
        for template in [Template::BookingConfirmed, Template::Agenda] {
            let rendered = render(template, &full_booking());
            for part in [&rendered.text, &rendered.html] {
                assert!(!part.to_lowercase().contains("check-in code"), "{part}");
                assert!(!part.contains("cid:"));
            }
        }
    }

    #[test]
    fn html_escapes_a_title_in_a_code_description() {
        let mut seat = forum();
        seat.title = "Risk & <Issues>".into();
        let data = mail(vec![seat.clone()], vec![seat]);

        let rendered =
            render_with_codes(Template::BookingConfirmed, &data, &tickets_for(&data.seats));

        assert!(rendered.html.contains(
            r#"alt="Check-in code for Risk &amp; &lt;Issues&gt;, Thursday 7 January 2027""#
        ));
        assert!(!rendered.html.contains("<Issues>"));
    }

    #[test]
    fn tidy_keeps_at_most_two_blank_lines_and_ends_with_one_newline() {
        assert_eq!(tidy("\n\nHello  \n\n\n\n\nthere\n\n"), "Hello\n\n\nthere\n");
        assert_eq!(one_line("  Booking\n confirmed \n"), "Booking confirmed");
    }
}
