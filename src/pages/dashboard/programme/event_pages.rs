//! The events: the list with the form to create one, and an event's page (its details form,
//! publishing, and its sessions with their places at a glance).

use super::*;
use crate::audit::{self, Record};
use crate::events::http::EventView;

#[derive(Serialize, Default, Clone)]
pub(super) struct RefundStep {
    days: String,
    percent: String,
}

/// The event form as entered.
#[derive(Serialize, Default)]
pub(super) struct EventValues {
    slug: String,
    name: String,
    venue: String,
    time_zone: String,
    currency: String,
    registration_opens_at: String,
    registration_closes_at: String,
    vat_rate: String,
    refund: Vec<RefundStep>,
    invoices_allowed: bool,
    invoice_prefix: String,
    invoice_due_days: String,
    allow_clashes: bool,
    published: bool,
    /// The event's revision the form was filled in against (empty for a new event).
    revision: String,
}

impl EventValues {
    fn blank() -> Self {
        Self {
            time_zone: "Europe/London".to_owned(),
            currency: "GBP".to_owned(),
            vat_rate: "0".to_owned(),
            invoice_due_days: "14".to_owned(),
            refund: vec![RefundStep::default(); REFUND_ROWS],
            ..Self::default()
        }
    }

    fn of(event: &Event) -> Self {
        let mut refund: Vec<RefundStep> = event
            .refund_policy
            .rules()
            .iter()
            .map(|r| RefundStep {
                days: r.days_before.to_string(),
                percent: r.percent.to_string(),
            })
            .collect();
        refund.resize(REFUND_ROWS.max(refund.len()), RefundStep::default());
        let zone = event.time_zone;
        Self {
            slug: event.slug.clone(),
            name: event.name.clone(),
            venue: event.venue.clone(),
            time_zone: zone.name().to_owned(),
            currency: event.currency.clone(),
            registration_opens_at: event
                .registration_opens_at
                .map(|t| local_input(t, zone))
                .unwrap_or_default(),
            registration_closes_at: event
                .registration_closes_at
                .map(|t| local_input(t, zone))
                .unwrap_or_default(),
            vat_rate: percent_text(event.vat_rate_bp),
            refund,
            invoices_allowed: event.invoices_allowed,
            invoice_prefix: event.invoice_prefix.clone(),
            invoice_due_days: event.invoice_due_days.to_string(),
            allow_clashes: event.allow_clashes,
            published: event.status == EventStatus::Published,
            revision: event.revision.to_string(),
        }
    }

    fn read(form: &FormData) -> Self {
        let text = |name: &str| form.text(name);
        Self {
            slug: text("slug"),
            name: text("name"),
            venue: text("venue"),
            time_zone: text("time_zone"),
            currency: text("currency").to_uppercase(),
            registration_opens_at: text("registration_opens_at"),
            registration_closes_at: text("registration_closes_at"),
            vat_rate: text("vat_rate"),
            refund: (1..=REFUND_ROWS)
                .map(|i| RefundStep {
                    days: text(&format!("refund_days_{i}")),
                    percent: text(&format!("refund_percent_{i}")),
                })
                .collect(),
            invoices_allowed: checked(form, "invoices_allowed"),
            invoice_prefix: text("invoice_prefix"),
            invoice_due_days: text("invoice_due_days"),
            allow_clashes: checked(form, "allow_clashes"),
            published: checked(form, "published"),
            revision: text("revision"),
        }
    }

    /// Each field whose value saved now differs from what was entered, saying what it is now:
    /// for an organiser whose form was overtaken by someone else's change.
    fn overtaken_by(&self, now: &Self) -> Vec<FieldMessage> {
        let steps = |steps: &[RefundStep]| {
            steps
                .iter()
                .filter(|s| !s.days.is_empty() || !s.percent.is_empty())
                .map(|s| format!("{} % up to {} days before", s.percent, s.days))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let mut said = overtaken_texts([
            ("name", "Name", &self.name, &now.name),
            ("venue", "Venue", &self.venue, &now.venue),
            ("time_zone", "Time zone", &self.time_zone, &now.time_zone),
            ("currency", "Currency", &self.currency, &now.currency),
            (
                "registration_opens_at",
                "Registration opens",
                &self.registration_opens_at,
                &now.registration_opens_at,
            ),
            (
                "registration_closes_at",
                "Registration closes",
                &self.registration_closes_at,
                &now.registration_closes_at,
            ),
            ("vat_rate", "VAT rate", &self.vat_rate, &now.vat_rate),
            (
                "invoice_prefix",
                "Invoice prefix",
                &self.invoice_prefix,
                &now.invoice_prefix,
            ),
            (
                "invoice_due_days",
                "Days to pay an invoice",
                &self.invoice_due_days,
                &now.invoice_due_days,
            ),
        ]);
        let (entered_steps, saved_steps) = (steps(&self.refund), steps(&now.refund));
        if entered_steps != saved_steps {
            said.push(message(
                "refund_days_1",
                overtaken("The refund policy", &saved_steps),
            ));
        }
        said.extend(overtaken_ticks([
            (
                "invoices_allowed",
                "Invoices",
                self.invoices_allowed,
                now.invoices_allowed,
            ),
            (
                "allow_clashes",
                "Overlapping sessions",
                self.allow_clashes,
                now.allow_clashes,
            ),
            ("published", "Published", self.published, now.published),
        ]));
        said
    }

    /// The fields the API types take as they are, and the messages of those that cannot be read.
    fn parsed(&self) -> (Parsed, Vec<FieldMessage>) {
        let mut errors = Vec::new();
        let zone = crate::validation::time_zone(&self.time_zone).ok();
        let mut time = |name: &str, raw: &str| match zone {
            Some(zone) => parse_local(raw, zone).unwrap_or_else(|m| {
                errors.push(message(name, m));
                None
            }),
            None => None,
        };
        let opens = time("registration_opens_at", &self.registration_opens_at);
        let closes = time("registration_closes_at", &self.registration_closes_at);
        let vat = parse_percent(&self.vat_rate).unwrap_or_else(|m| {
            errors.push(message("vat_rate", m));
            0
        });
        let mut rules = Vec::new();
        for (i, step) in self.refund.iter().enumerate() {
            if step.days.is_empty() && step.percent.is_empty() {
                continue;
            }
            match (whole_number(&step.days), whole_number(&step.percent)) {
                (Ok(days_before), Ok(percent)) => rules.push(RefundRule {
                    days_before,
                    percent,
                }),
                _ => errors.push(message(
                    &format!("refund_days_{}", i + 1),
                    "give both the days before the session and the percent refunded, as whole numbers (percent 0 to 100)",
                )),
            }
        }
        let due = if self.invoice_due_days.is_empty() {
            14
        } else {
            whole_number(&self.invoice_due_days).unwrap_or_else(|m| {
                errors.push(message("invoice_due_days", m));
                14
            })
        };
        (
            Parsed {
                opens,
                closes,
                vat,
                rules,
                due,
            },
            errors,
        )
    }

    fn new_event(&self) -> Result<NewEvent, Vec<FieldMessage>> {
        let (p, errors) = self.parsed();
        let input = EventInput {
            slug: self.slug.clone(),
            name: self.name.clone(),
            venue: self.venue.clone(),
            time_zone: self.time_zone.clone(),
            currency: self.currency.clone(),
            registration_opens_at: p.opens,
            registration_closes_at: p.closes,
            status: Some(self.status()),
            allow_clashes: self.allow_clashes,
            vat_rate_bp: p.vat,
            refund_policy: p.rules,
            invoices_allowed: self.invoices_allowed,
            invoice_prefix: (!self.invoice_prefix.is_empty()).then(|| self.invoice_prefix.clone()),
            invoice_due_days: Some(p.due),
        };
        accepted(NewEvent::try_from(input), errors)
    }

    /// The changes as entered, made against `revision` (the form's, when it carries one).
    fn changes(&self, revision: Option<i32>) -> Result<EventChanges, Vec<FieldMessage>> {
        let (p, errors) = self.parsed();
        let patch = EventPatch {
            name: Some(self.name.clone()),
            venue: Some(self.venue.clone()),
            time_zone: Some(self.time_zone.clone()),
            currency: Some(self.currency.clone()),
            registration_opens_at: Some(p.opens),
            registration_closes_at: Some(p.closes),
            status: Some(self.status()),
            allow_clashes: Some(self.allow_clashes),
            vat_rate_bp: Some(p.vat),
            refund_policy: Some(p.rules),
            invoices_allowed: Some(self.invoices_allowed),
            invoice_prefix: (!self.invoice_prefix.is_empty()).then(|| self.invoice_prefix.clone()),
            invoice_due_days: Some(p.due),
        };
        let changes = accepted(EventChanges::try_from(patch), errors)?;
        Ok(EventChanges {
            if_revision: revision,
            ..changes
        })
    }

    fn status(&self) -> EventStatus {
        if self.published {
            EventStatus::Published
        } else {
            EventStatus::Draft
        }
    }
}

pub(super) struct Parsed {
    opens: Option<DateTime<FixedOffset>>,
    closes: Option<DateTime<FixedOffset>>,
    vat: i32,
    rules: Vec<RefundRule>,
    due: i32,
}

/// An event's refusal as a message next to the field it concerns; other failures as pages.
pub(super) fn event_refusal(err: EventError) -> Result<Vec<FieldMessage>, PageError> {
    Ok(match err {
        EventError::SlugTaken(_) => vec![message("slug", "is taken by another event")],
        EventError::CurrencyLocked => vec![message(
            "currency",
            "cannot change once the event has bookings",
        )],
        e @ (EventError::PrefixTaken(_) | EventError::PrefixLocked) => {
            vec![message("invoice_prefix", e.to_string())]
        }
        EventError::Invalid(v) => messages(&v),
        other => return Err(Problem::from(other).into()),
    })
}

#[derive(Serialize)]
pub(super) struct EventRow {
    slug: String,
    name: String,
    status: &'static str,
    dates: String,
    registration: String,
    sessions: usize,
}

#[derive(Serialize)]
pub(super) struct EventsPage {
    title: &'static str,
    csrf: String,
    me: Me,
    events: Vec<EventRow>,
    values: EventValues,
    errors: Vec<FieldMessage>,
    refund_rows: usize,
}

fn day(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%-d %b %Y").to_string()
}

fn moment(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%-d %b %Y %H:%M")
        .to_string()
}

fn window(event: &Event) -> String {
    let zone = event.time_zone;
    match (event.registration_opens_at, event.registration_closes_at) {
        (None, None) => "Always open once published".to_owned(),
        (Some(o), None) => format!("From {}", moment(o, zone)),
        (None, Some(c)) => format!("Until {}", moment(c, zone)),
        (Some(o), Some(c)) => format!("{} to {}", moment(o, zone), moment(c, zone)),
    }
}

pub(super) async fn events_page(
    state: &AppState,
    req: &HttpRequest,
    me: &Organiser,
    values: EventValues,
    errors: Vec<FieldMessage>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let listed = run(&state.db, |conn| -> Result<_, Problem> {
        let events = events::list(conn, true)?;
        let mut rows = Vec::with_capacity(events.len());
        for event in events {
            let sessions = sessions::for_event(conn, event.id, true)?;
            let dates = match (sessions.first(), sessions.iter().map(|s| s.ends_at).max()) {
                (Some(first), Some(last)) => {
                    let (a, b) = (
                        day(first.starts_at, event.time_zone),
                        day(last, event.time_zone),
                    );
                    if a == b {
                        a
                    } else {
                        format!("{a} to {b}")
                    }
                }
                _ => "No sessions yet".to_owned(),
            };
            rows.push(EventRow {
                slug: event.slug.clone(),
                name: event.name.clone(),
                status: event.status.as_str(),
                dates,
                registration: window(&event),
                sessions: sessions.len(),
            });
        }
        Ok(rows)
    })
    .await?;
    let form = csrf::form_token(req, &state.pages);
    let page = EventsPage {
        title: "Events",
        csrf: form.token,
        me: Me::from(me),
        events: listed,
        values,
        errors,
        refund_rows: REFUND_ROWS,
    };
    let html = state
        .pages
        .render("dashboard/programme/events.html", page)?;
    Ok(html_page(status, html, form.set_cookie))
}

pub(super) async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: Admin,
) -> Result<HttpResponse, PageError> {
    events_page(
        &state,
        &req,
        &me,
        EventValues::blank(),
        Vec::new(),
        StatusCode::OK,
    )
    .await
}

pub(super) async fn create_event(
    state: web::Data<AppState>,
    req: HttpRequest,
    PostedBy { form, me }: AdminPost,
) -> Result<HttpResponse, PageError> {
    let values = EventValues::read(&form);
    let errors = match values.new_event() {
        Ok(new) => {
            let by = Some(me.id);
            match run(&state.db, move |conn| {
                Ok::<_, Problem>(audit::recorded(conn, by, |conn| -> Result<_, EventError> {
                    let event = events::create(conn, &new)?;
                    let record = Record::new("event.create", format!("event:{}", event.slug))
                        .after(&EventView::from(&event));
                    Ok((event, record))
                }))
            })
            .await?
            {
                Ok(event) => {
                    tracing::info!(organiser = me.id, event = %event.slug, "event created");
                    return Ok(redirect(&format!(
                        "/organiser/events/{}?done=created",
                        event.slug
                    )));
                }
                Err(e) => event_refusal(e)?,
            }
        }
        Err(errors) => errors,
    };
    events_page(
        &state,
        &req,
        &me,
        values,
        errors,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

#[derive(Serialize)]
pub(super) struct SessionRow {
    id: i64,
    title: String,
    when: String,
    room: String,
    status: &'static str,
    capacity: i32,
    confirmed: i64,
    held: i64,
    offered: i64,
    waiting: i64,
    left: i32,
    cancelled: bool,
    /// The revision the capacity form is filled in against.
    revision: i32,
    /// The capacity form's value, and its refusal.
    capacity_value: String,
    capacity_error: Option<String>,
}

/// A capacity that was refused, to show again next to its field.
pub(super) struct CapacityAttempt {
    pub(super) id: i64,
    pub(super) value: String,
    pub(super) message: String,
}

#[derive(Serialize)]
pub(super) struct EventPage {
    title: String,
    csrf: String,
    me: Me,
    slug: String,
    name: String,
    published: bool,
    values: EventValues,
    errors: Vec<FieldMessage>,
    problem: Option<&'static str>,
    sessions: Vec<SessionRow>,
    notice: Option<&'static str>,
    refund_rows: usize,
}

/// An event page: the event form (with `values` when given, else the stored event) and its
/// sessions.
#[allow(clippy::too_many_arguments)]
pub(super) async fn event_page(
    state: &AppState,
    req: &HttpRequest,
    me: &Organiser,
    slug: String,
    values: Option<EventValues>,
    said: Said,
    notice: Option<&'static str>,
    capacity: Option<CapacityAttempt>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let (event, listed, counts) = run(&state.db, move |conn| -> Result<_, Problem> {
        let event = events::find(conn, &slug)?;
        let listed = sessions::for_event(conn, event.id, true)?;
        let counts = sessions::occupancy(conn, event.id)?;
        Ok((event, listed, counts))
    })
    .await?;
    let rows = listed
        .iter()
        .map(|s| {
            let c = counts.get(&s.id).copied().unwrap_or(Occupancy::default());
            let attempt = capacity.as_ref().filter(|a| a.id == s.id);
            SessionRow {
                capacity_value: attempt.map_or_else(|| s.capacity.to_string(), |a| a.value.clone()),
                capacity_error: attempt.map(|a| a.message.clone()),
                id: s.id,
                title: s.title.clone(),
                when: when(s, event.time_zone),
                room: s.room.clone().unwrap_or_default(),
                status: s.status.as_str(),
                capacity: s.capacity,
                confirmed: c.confirmed,
                held: c.held,
                offered: c.offered,
                waiting: c.waiting,
                left: s.seats_left(),
                cancelled: s.status == SessionStatus::Cancelled,
                revision: s.revision,
            }
        })
        .collect();
    let form = csrf::form_token(req, &state.pages);
    let page = EventPage {
        title: event.name.clone(),
        csrf: form.token,
        me: Me::from(me),
        slug: event.slug.clone(),
        name: event.name.clone(),
        published: event.status == EventStatus::Published,
        values: values.unwrap_or_else(|| EventValues::of(&event)),
        errors: said.errors,
        problem: said.problem,
        sessions: rows,
        notice,
        refund_rows: REFUND_ROWS,
    };
    let html = state.pages.render("dashboard/programme/event.html", page)?;
    Ok(html_page(status, html, form.set_cookie))
}

pub(super) fn notice(query: &FormData) -> Option<&'static str> {
    match query.get("done") {
        Some("created") => Some("The event has been created."),
        Some("saved") => Some("The event has been saved."),
        Some("published") => Some("The event is published: its programme is public."),
        Some("unpublished") => Some("The event is a draft again: its programme is hidden."),
        Some("session-created") => Some("The session has been added."),
        Some("session-saved") => Some("The session has been saved."),
        Some("duplicated") => Some("A copy of the session has been made as a draft."),
        Some("capacity") => Some("The capacity has been changed."),
        Some("cancelled") => Some(
            "The session is cancelled: its seats are cancelled, paid ones refunded and everyone emailed.",
        ),
        _ => None,
    }
}

pub(super) async fn event(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: Admin,
    slug: web::Path<String>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let query = FormData(query.into_inner());
    event_page(
        &state,
        &req,
        &me,
        slug.into_inner(),
        None,
        Said::default(),
        notice(&query),
        None,
        StatusCode::OK,
    )
    .await
}

pub(super) async fn update_event(
    state: web::Data<AppState>,
    req: HttpRequest,
    PostedBy { form, me }: AdminPost,
    slug: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let slug = slug.into_inner();
    let mut values = EventValues::read(&form);
    values.slug = slug.clone();
    let revision = form_revision(&values.revision)?;
    let said = match values.changes(revision) {
        Ok(changes) => {
            let (at, by) = (slug.clone(), Some(me.id));
            match run(&state.db, move |conn| {
                Ok::<_, Problem>(audit::recorded(conn, by, |conn| -> Result<_, EventError> {
                    events::lock(conn, &at)?;
                    let before = events::find(conn, &at)?;
                    let event = events::update(conn, &at, changes)?;
                    let record = Record::new("event.update", format!("event:{}", event.slug))
                        .before(&EventView::from(&before))
                        .after(&EventView::from(&event));
                    Ok((event, record))
                }))
            })
            .await?
            {
                Ok(event) => {
                    state.programmes.forget(&event.slug);
                    tracing::info!(organiser = me.id, event = %event.slug, "event changed");
                    return Ok(redirect(&format!(
                        "/organiser/events/{}?done=saved",
                        event.slug
                    )));
                }
                Err(EventError::Changed { .. }) => {
                    // Shown again against the event as it is now: saving once more keeps what
                    // this organiser entered, knowingly.
                    let at = slug.clone();
                    let now = run(&state.db, move |conn| events::find(conn, &at)).await?;
                    let saved = EventValues::of(&now);
                    let errors = values.overtaken_by(&saved);
                    values.revision = saved.revision;
                    return event_page(
                        &state,
                        &req,
                        &me,
                        slug,
                        Some(values),
                        Said {
                            errors,
                            problem: Some(OVERTAKEN),
                        },
                        None,
                        None,
                        StatusCode::CONFLICT,
                    )
                    .await;
                }
                Err(e) => event_refusal(e)?.into(),
            }
        }
        Err(errors) => errors.into(),
    };
    event_page(
        &state,
        &req,
        &me,
        slug,
        Some(values),
        said,
        None,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

pub(super) async fn event_status(
    state: web::Data<AppState>,
    PostedBy { form, me }: AdminPost,
    slug: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let (status, action, done) = match form.get("status") {
        Some("published") => (EventStatus::Published, "event.publish", "published"),
        Some("draft") => (EventStatus::Draft, "event.unpublish", "unpublished"),
        _ => {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                "Publish or unpublish?",
                "The form did not say. Please go back and use one of the buttons.",
            ))
        }
    };
    let (slug, by) = (slug.into_inner(), Some(me.id));
    let changes = EventChanges {
        status: Some(status),
        ..EventChanges::default()
    };
    let event = run(&state.db, move |conn| {
        audit::recorded(conn, by, |conn| -> Result<_, EventError> {
            events::lock(conn, &slug)?;
            let before = events::find(conn, &slug)?;
            let event = events::update(conn, &slug, changes)?;
            let record = Record::new(action, format!("event:{}", event.slug))
                .before(&serde_json::json!({ "status": before.status.as_str() }))
                .after(&serde_json::json!({ "status": event.status.as_str() }));
            Ok((event, record))
        })
    })
    .await?;
    state.programmes.forget(&event.slug);
    tracing::info!(organiser = me.id, event = %event.slug, status = status.as_str(), "event status changed");
    Ok(redirect(&format!(
        "/organiser/events/{}?done={done}",
        event.slug
    )))
}
