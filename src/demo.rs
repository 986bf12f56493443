//! The demo programme: on an empty database (and `demo = true`), a published two-day event of
//! PMO masterclasses a few weeks ahead, one session nearly full, and an organiser to try the
//! admin API with.

use chrono::{Datelike, Days, NaiveTime, SubsecRound, TimeZone, Utc};
use chrono_tz::Europe::London;

use crate::bookings::{self, Attendee, BookingRequest, Issuer};
use crate::db::{self, DbConn};
use crate::events::{self, EventError, EventStatus, NewEvent, Slug};
use crate::organisers::{self, NewOrganiser, Role};
use crate::payments::policy::{RefundPolicy, RefundRule};
use crate::sessions::{self, NewSession, SessionStatus};
use crate::validation::{Currency, Email};

struct Class {
    day: u64,
    start: (u32, u32),
    end: (u32, u32),
    title: &'static str,
    summary: &'static str,
    speaker: &'static str,
    track: &'static str,
    room: &'static str,
    capacity: i32,
    price_minor: i64,
}

const PROGRAMME: &[Class] = &[
    Class { day: 0, start: (9, 0), end: (10, 30), title: "Setting up a PMO that lasts", summary: "Mandate, sponsorship, services and the first hundred days: how to stand up a project management office that the organisation still wants two years later.", speaker: "Priya Natarajan", track: "Foundations", room: "Thames Room", capacity: 120, price_minor: 0 },
    Class { day: 0, start: (9, 0), end: (10, 30), title: "P3O in practice: portfolio, programme and project offices", summary: "Choosing between a hub-and-spoke model, a centre of excellence and temporary programme offices, with worked examples from the public and private sectors.", speaker: "Martin Keller", track: "Frameworks", room: "Severn Room", capacity: 40, price_minor: 14_500 },
    Class { day: 0, start: (11, 0), end: (12, 30), title: "Portfolio prioritisation that survives the board", summary: "Scoring models, strategic alignment and capacity constraints: build a prioritisation method that decision makers trust and use.", speaker: "Helen Okafor", track: "Strategy", room: "Thames Room", capacity: 30, price_minor: 14_500 },
    Class { day: 0, start: (11, 0), end: (12, 30), title: "PMO reporting and dashboards people actually read", summary: "From RAG status to leading indicators: design a reporting cycle and dashboards that prompt decisions instead of filling inboxes.", speaker: "Tomás Ruiz", track: "Reporting", room: "Severn Room", capacity: 12, price_minor: 9_500 },
    Class { day: 0, start: (14, 0), end: (15, 30), title: "Resource management across competing projects", summary: "Capacity planning, skills matrices and the weekly conversation that keeps people from being booked at 140 per cent.", speaker: "Aisha Rahman", track: "Delivery", room: "Thames Room", capacity: 35, price_minor: 12_000 },
    Class { day: 0, start: (16, 0), end: (17, 0), title: "Panel: the PMO of 2030", summary: "Automation, AI-assisted reporting and the changing role of the PMO analyst, debated by practitioners from four sectors.", speaker: "Priya Natarajan", track: "Foundations", room: "Main Hall", capacity: 150, price_minor: 0 },
    Class { day: 1, start: (9, 0), end: (10, 30), title: "Benefits realisation from business case to close", summary: "Benefit maps, owners and measures that are tracked after the project team has gone home.", speaker: "Graham Whitfield", track: "Strategy", room: "Thames Room", capacity: 30, price_minor: 14_500 },
    Class { day: 1, start: (9, 0), end: (10, 30), title: "Assessing and raising PMO maturity", summary: "Using P3M3 and lighter self-assessments to find the two or three improvements that matter most this year.", speaker: "Martin Keller", track: "Frameworks", room: "Severn Room", capacity: 25, price_minor: 12_000 },
    Class { day: 1, start: (11, 0), end: (12, 30), title: "Agile PMOs: governance without the drag", summary: "Stage gates, quarterly planning and lean portfolio management side by side: keeping assurance while teams deliver iteratively.", speaker: "Sofia Lindqvist", track: "Delivery", room: "Thames Room", capacity: 40, price_minor: 9_500 },
    Class { day: 1, start: (14, 0), end: (15, 30), title: "Building the PMO team: roles, skills and career paths", summary: "Analyst, coordinator, manager, director: job families, development plans and how to keep good people in the PMO.", speaker: "Aisha Rahman", track: "Foundations", room: "Severn Room", capacity: 30, price_minor: 0 },
    Class { day: 1, start: (16, 0), end: (17, 0), title: "Clinic: bring your PMO problem", summary: "Small-group surgery with the speakers: bring a real challenge from your organisation and leave with next steps.", speaker: "Helen Okafor", track: "Delivery", room: "Clinic Room", capacity: 20, price_minor: 0 },
];

/// Which demo session starts nearly full, and with how many seats taken.
const NEARLY_FULL: (&str, usize) = ("PMO reporting and dashboards people actually read", 11);

/// Creates the demo programme when no event exists; returns the demo organiser's new token.
///
/// All of it is one transaction, so a crash leaves nothing half-made; when two processes start
/// on the same empty database at once, the second finds the first one's event and does nothing.
pub fn seed_if_empty(conn: &mut DbConn, issuer: &Issuer) -> anyhow::Result<Option<String>> {
    match db::write_transaction(conn, |conn| seed(conn, issuer)) {
        Err(e)
            if matches!(
                e.downcast_ref::<EventError>(),
                Some(EventError::SlugTaken(_) | EventError::PrefixTaken(_))
            ) =>
        {
            Ok(None)
        }
        outcome => outcome,
    }
}

fn seed(conn: &mut DbConn, issuer: &Issuer) -> anyhow::Result<Option<String>> {
    if events::any_exist(conn)? {
        return Ok(None);
    }
    let now = Utc::now();
    let first_day = now
        .with_timezone(&London)
        .date_naive()
        .checked_add_days(Days::new(42))
        .ok_or_else(|| anyhow::anyhow!("date out of range"))?;
    let at = |day: u64, (h, m): (u32, u32)| -> anyhow::Result<chrono::DateTime<Utc>> {
        let date = first_day
            .checked_add_days(Days::new(day))
            .ok_or_else(|| anyhow::anyhow!("date out of range"))?;
        let time = NaiveTime::from_hms_opt(h, m, 0).ok_or_else(|| anyhow::anyhow!("bad time"))?;
        London
            .from_local_datetime(&date.and_time(time))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| anyhow::anyhow!("no such local time"))
    };
    let year = first_day.year();
    let event = events::create(
        conn,
        &NewEvent {
            slug: Slug::parse(&format!("pmo-masterclasses-{year}")).map_err(anyhow::Error::msg)?,
            name: format!("PMO Masterclasses {year}"),
            venue: "Riverside Conference Centre, London".to_owned(),
            time_zone: London,
            currency: Currency::parse("GBP").map_err(anyhow::Error::msg)?,
            registration_opens_at: Some((now - chrono::Duration::days(1)).trunc_subsecs(0)),
            registration_closes_at: Some(at(0, (9, 0))?),
            status: EventStatus::Published,
            allow_clashes: false,
            // UK VAT; a full refund until two weeks before a session, half until one week.
            vat_rate_bp: 2000,
            refund_policy: RefundPolicy::new(vec![
                RefundRule {
                    days_before: 14,
                    percent: 100,
                },
                RefundRule {
                    days_before: 7,
                    percent: 50,
                },
            ])
            .map_err(anyhow::Error::msg)?,
            invoices_allowed: true,
            invoice_prefix: Some(format!("PMO{}", year % 100)),
            invoice_due_days: 14,
        },
    )?;
    for class in PROGRAMME {
        sessions::create(
            conn,
            &event.slug,
            &NewSession {
                title: class.title.to_owned(),
                abstract_text: class.summary.to_owned(),
                speakers: vec![class.speaker.to_owned()],
                track: Some(class.track.to_owned()),
                room: Some(class.room.to_owned()),
                starts_at: at(class.day, class.start)?,
                ends_at: at(class.day, class.end)?,
                capacity: class.capacity,
                price_minor: class.price_minor,
                status: SessionStatus::Published,
                // A CPD hour for every hour of the session.
                cpd_tenths: i32::try_from(
                    (at(class.day, class.end)? - at(class.day, class.start)?).num_minutes() / 6,
                )
                .unwrap_or(0),
            },
        )?;
    }
    let programme = sessions::Programme::load(conn, &event.slug)?
        .ok_or_else(|| anyhow::anyhow!("the demo event just created is not there"))?;
    let busy = sessions::for_event(conn, event.id, true)?
        .into_iter()
        .find(|s| s.title == NEARLY_FULL.0);
    if let Some(busy) = busy {
        for n in 1..=NEARLY_FULL.1 {
            let attendee = Attendee {
                name: format!("Demo Attendee {n}"),
                email: Email::parse(&format!("attendee{n:02}@example.org"))
                    .map_err(anyhow::Error::msg)?,
                organisation: Some("Example Ltd".to_owned()),
            };
            let request = BookingRequest::new(attendee, &[busy.id])?;
            bookings::book_in(conn, &programme, &request, issuer, chrono::Utc::now())?;
        }
    }
    let organiser = NewOrganiser::parse("demo@example.org", "Demo Organiser", Role::Owner)?;
    let token = match organisers::find_by_email(conn, organiser.email.as_str())? {
        Some(existing) => organisers::issue_token(conn, existing.id, "demo")?,
        None => organisers::insert_with_token(conn, &organiser, "demo")?.1,
    };
    Ok(Some(token.0))
}
