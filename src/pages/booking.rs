//! `/events/{slug}/book`: choosing sessions, the attendee's details and how to pay, then
//! booking them all or none. Every refusal comes back as the same form with the entered values
//! and a message next to each field at fault (or above the form for a refusal about sessions).

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::programme::{price, EventSummary, SessionCard};
use super::{csrf, html_page, redirect, FormData, PageError};
use crate::api::idempotency::{self, Guarded};
use crate::api::{run, AppState, Kind, Problem};
use crate::bookings::http::{AttendeeInput, BookingInput, BookingView};
use crate::bookings::{BookingRequest, BookingStatus};
use crate::events::Event;
use crate::idempotency::Key;
use crate::payments::http::InvoiceInput;
use crate::sessions::Session;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/events/{slug}/book", super::get().to(form))
        .route("/events/{slug}/book", web::post().to(submit));
}

/// What the person entered, shown again when the form comes back.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Values {
    pub name: String,
    pub email: String,
    pub organisation: String,
    pub payment: String,
    pub company: String,
    pub billing_address: String,
    pub vat_number: String,
    pub po_number: String,
}

/// A message for one field, and the summary above the form linking to it.
#[derive(Debug, Serialize)]
pub struct FieldMessage {
    pub field: String,
    pub message: String,
}

impl FieldMessage {
    /// The message `text` for `field`, written as a sentence.
    pub fn new(field: &str, text: &str) -> Self {
        Self {
            field: field.to_owned(),
            message: sentence(text),
        }
    }

    /// A message for every field refused input names, under the same field names.
    pub fn all(err: &crate::validation::ValidationError) -> Vec<Self> {
        err.0
            .iter()
            .map(|f| Self::new(&f.field, &f.message))
            .collect()
    }
}

#[derive(Serialize)]
struct BookPage {
    title: String,
    event: EventSummary,
    csrf: String,
    form_id: String,
    sessions: Vec<Choice>,
    values: Values,
    errors: Vec<FieldMessage>,
    /// A refusal about the sessions (full, clash, already booked), above the form.
    problem: Option<String>,
    /// Where to join the waitlist of the session that was full.
    waitlist_href: Option<String>,
    /// Selected sessions that overlap, explained before anything is sent.
    clashes: Vec<String>,
    /// Selected sessions that cannot be booked any more.
    unavailable: Vec<SessionCard>,
    cards: bool,
    invoices: bool,
    any_priced: bool,
    total: String,
}

#[derive(Serialize)]
struct Choice {
    #[serde(flatten)]
    card: SessionCard,
    selected: bool,
}

/// The sessions of a booking form: every bookable one, those in `selected` ticked.
fn choices(
    event: &Event,
    sessions: &[Session],
    selected: &BTreeSet<i64>,
    now: chrono::DateTime<chrono::Utc>,
) -> (Vec<Choice>, Vec<SessionCard>) {
    let mut choices = Vec::new();
    let mut unavailable = Vec::new();
    for session in sessions {
        let card = SessionCard::new(session, event, now);
        let ticked = selected.contains(&session.id);
        if card.bookable {
            choices.push(Choice {
                card,
                selected: ticked,
            });
        } else if ticked {
            unavailable.push(card);
        }
    }
    (choices, unavailable)
}

/// Pairs of selected sessions that overlap in time, as sentences (when the event forbids it).
fn clashes(event: &Event, sessions: &[Session], selected: &BTreeSet<i64>) -> Vec<String> {
    if event.allow_clashes {
        return Vec::new();
    }
    let picked: Vec<&Session> = sessions
        .iter()
        .filter(|s| selected.contains(&s.id))
        .collect();
    let mut out = Vec::new();
    for (i, a) in picked.iter().enumerate() {
        for b in &picked[i + 1..] {
            if a.starts_at < b.ends_at && b.starts_at < a.ends_at {
                out.push(format!(
                    "“{}” and “{}” overlap in time: one person can book only one of them.",
                    a.title, b.title
                ));
            }
        }
    }
    out
}

struct Render<'a> {
    event: &'a Event,
    sessions: &'a [Session],
    selected: BTreeSet<i64>,
    values: Values,
    errors: Vec<FieldMessage>,
    problem: Option<String>,
    waitlist_href: Option<String>,
    form_id: Option<String>,
}

fn render(
    state: &AppState,
    req: &HttpRequest,
    r: Render<'_>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let (sessions, unavailable) = choices(r.event, r.sessions, &r.selected, now);
    let total: i64 = sessions
        .iter()
        .filter(|c| c.selected)
        .map(|c| c.card.price_minor)
        .sum();
    let token = csrf::form_token(req, &state.pages);
    let page = BookPage {
        title: format!("Book – {}", r.event.name),
        event: EventSummary::new(r.event, r.sessions, now),
        csrf: token.token,
        form_id: r
            .form_id
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        any_priced: sessions.iter().any(|c| c.card.price_minor > 0),
        clashes: clashes(r.event, r.sessions, &r.selected),
        sessions,
        unavailable,
        values: r.values,
        errors: r.errors,
        problem: r.problem,
        waitlist_href: r.waitlist_href,
        cards: state.payments.cards_offered(),
        invoices: r.event.invoices_allowed,
        total: price(total, &r.event.currency),
    };
    let html = state.pages.render("book.html", page)?;
    Ok(html_page(status, html, token.set_cookie))
}

async fn load(state: &AppState, slug: String) -> Result<(Event, Vec<Session>), PageError> {
    let (event, sessions) = run(&state.db, move |conn| {
        crate::sessions::programme(conn, &slug)
    })
    .await?;
    if !event.registration_open(state.clock.now()) {
        let summary = EventSummary::new(&event, &sessions, state.clock.now());
        return Err(PageError::new(
            StatusCode::CONFLICT,
            "Registration is closed",
            format!("{} {}", event.name, summary.registration.to_lowercase()),
        )
        .with_next("See the programme", summary.href));
    }
    Ok((event, sessions))
}

fn selected_ids(values: &[&str]) -> BTreeSet<i64> {
    values
        .iter()
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

async fn form(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let query = FormData(query.into_inner());
    let (event, sessions) = load(&state, slug.into_inner()).await?;
    let selected = selected_ids(&query.all("session"));
    let mut values = Values::default();
    if state.payments.cards_offered() {
        values.payment = "card".to_owned();
    } else if event.invoices_allowed {
        values.payment = "invoice".to_owned();
    }
    render(
        &state,
        &req,
        Render {
            event: &event,
            sessions: &sessions,
            selected,
            values,
            errors: Vec::new(),
            problem: None,
            waitlist_href: None,
            form_id: None,
        },
        StatusCode::OK,
    )
}

/// Field names of the API's validation messages, as the form names its fields.
fn form_field(api_field: &str) -> &str {
    match api_field {
        "attendee.name" => "name",
        "attendee.email" => "email",
        "attendee.organisation" => "organisation",
        "session_ids" => "sessions",
        "invoice" | "invoice.company" => "company",
        "invoice.billing_address" => "billing_address",
        "invoice.vat_number" => "vat_number",
        "invoice.po_number" => "po_number",
        other => other,
    }
}

async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let form = FormData(body.into_inner());
    csrf::check(&req, &state.pages, form.get("csrf"))?;
    state.pages.limiter.check(&req)?;
    let slug = slug.into_inner();
    let (event, sessions) = load(&state, slug.clone()).await?;
    let raw_ids = form.all("session");
    let selected = selected_ids(&raw_ids);
    let text = |name: &str| form.get(name).unwrap_or_default().to_owned();
    let values = Values {
        name: text("name"),
        email: text("email"),
        organisation: text("organisation"),
        payment: text("payment"),
        company: text("company"),
        billing_address: text("billing_address"),
        vat_number: text("vat_number"),
        po_number: text("po_number"),
    };
    let form_id = form.get("form_id").map(str::to_owned);
    let mut errors = Vec::new();
    if raw_ids.is_empty() {
        errors.push(FieldMessage {
            field: "sessions".to_owned(),
            message: "Choose at least one session.".to_owned(),
        });
    } else if selected.len() != raw_ids.len() {
        errors.push(FieldMessage {
            field: "sessions".to_owned(),
            message: "One of the chosen sessions is not on the programme; please choose again."
                .to_owned(),
        });
    }
    let total: i64 = sessions
        .iter()
        .filter(|s| selected.contains(&s.id))
        .map(|s| s.price_minor)
        .sum();
    let cards = state.payments.cards_offered();
    let by_invoice = total > 0 && values.payment == "invoice";
    if total > 0 {
        match values.payment.as_str() {
            "card" if cards => {}
            "invoice" if event.invoices_allowed => {}
            "" if !cards && !event.invoices_allowed => {}
            _ => errors.push(FieldMessage {
                field: "payment".to_owned(),
                message: "Choose how you will pay.".to_owned(),
            }),
        }
    }
    let optional = |v: &str| (!v.trim().is_empty()).then(|| v.to_owned());
    let input = BookingInput {
        attendee: AttendeeInput {
            name: values.name.clone(),
            email: values.email.clone(),
            organisation: optional(&values.organisation),
        },
        session_ids: selected.iter().copied().collect(),
        invoice: by_invoice.then(|| InvoiceInput {
            company: values.company.clone(),
            billing_address: values.billing_address.clone(),
            vat_number: optional(&values.vat_number),
            po_number: optional(&values.po_number),
        }),
    };
    let key = form_id
        .as_deref()
        .and_then(|id| super::form_key(format!("POST /events/{slug}/book"), id, &input));
    let request = BookingRequest::try_from(input);
    if let Err(e) = &request {
        for err in &e.0 {
            let field = form_field(&err.field);
            if !errors.iter().any(|m| m.field == field) {
                errors.push(FieldMessage {
                    field: field.to_owned(),
                    message: sentence(&err.message),
                });
            }
        }
    }
    let again = |refused: Refusal| {
        render(
            &state,
            &req,
            Render {
                event: &event,
                sessions: &sessions,
                selected: selected.clone(),
                values: values.clone(),
                errors: refused.errors,
                problem: refused.message,
                waitlist_href: refused.waitlist_href,
                form_id: form_id.clone(),
            },
            refused.status,
        )
    };
    let request = match request {
        Ok(request) if errors.is_empty() => request,
        _ => {
            return again(Refusal {
                errors,
                message: None,
                waitlist_href: None,
                status: StatusCode::UNPROCESSABLE_ENTITY,
            })
        }
    };
    let book = |key: Option<Key>| {
        let (issuer, programmes, db, slug) = (
            state.issuer.clone(),
            state.programmes.clone(),
            state.db.clone(),
            slug.clone(),
        );
        let request = request.clone();
        let now = state.clock.now();
        idempotency::guarded(&state, key, move |key| async move {
            run(&db, move |conn| {
                let finish = idempotency::answer_with(key, BookingView::of);
                crate::bookings::book(conn, &programmes, &slug, &request, &issuer, now, finish)
            })
            .await
        })
    };
    let mut outcome = book(key).await;
    if matches!(&outcome, Ok(Guarded::Replayed(answer)) if !answer.status().is_success()) {
        // The same form was refused before, and a refusal booked nothing: ask again, so the
        // answer is today's (a seat may have freed up) and says all it said the first time.
        outcome = book(None).await;
    }
    let (token, held) = match outcome {
        Ok(Guarded::Done(booked)) => {
            tracing::info!(reference = %booked.booking.reference, seats = booked.booking.seats.len(), "booked on the web");
            (
                booked.manage_token,
                booked.booking.status == BookingStatus::Held,
            )
        }
        Ok(Guarded::Replayed(answer)) => match replayed(&state, answer).await {
            Ok(found) => found,
            Err(problem) => return again(refusal(&problem, &slug)),
        },
        Err(problem) if problem.status().is_server_error() => return Err(problem.into()),
        Err(problem) => return again(refusal(&problem, &slug)),
    };
    if held && values.payment == "card" && cards {
        Ok(redirect(&format!("/bookings/{token}/pay")))
    } else {
        Ok(redirect(&format!("/bookings/{token}/booked")))
    }
}

/// A refusal as the form shows it: field messages next to their fields, other refusals above
/// it (with the waitlist of a session that was full), and the status to answer with.
struct Refusal {
    errors: Vec<FieldMessage>,
    message: Option<String>,
    waitlist_href: Option<String>,
    status: StatusCode,
}

fn refusal(problem: &Problem, slug: &str) -> Refusal {
    let doc = problem.document();
    let errors: Vec<FieldMessage> = problem
        .field_errors()
        .iter()
        .map(|e| FieldMessage {
            field: form_field(&e.field).to_owned(),
            message: sentence(&e.message),
        })
        .collect();
    let nothing = || {
        let detail = sentence(problem.detail());
        if detail.to_lowercase().contains("nothing was booked") {
            detail
        } else {
            format!("{detail} Nothing was booked.")
        }
    };
    let message =
        match (problem.kind(), doc.session_title, doc.other_session_title) {
            (Kind::Validation, _, _) => None,
            (Kind::SessionFull, Some(title), _) => Some(format!(
            "“{title}” has just filled up, so nothing was booked. Untick it to book the others{}.",
            if doc.waitlist.is_some() { ", or join its waitlist" } else { "" }
        )),
            (Kind::TimetableClash, Some(a), Some(b)) => Some(format!(
            "“{a}” overlaps “{b}” in time, and one person can book only one of them. Nothing was \
             booked: untick one (if you already hold a seat in the other, cancel that first)."
        )),
            (Kind::AlreadyBooked, Some(title), _) => Some(format!(
            "This email address already has a seat in “{title}”. Nothing was booked: untick it to \
             book the others. Your confirmation email has a link to your booking."
        )),
            _ => Some(nothing()),
        };
    let waitlist_href = doc
        .waitlist
        .and(doc.session_id)
        .map(|id| format!("/events/{slug}/sessions/{id}/waitlist"));
    Refusal {
        errors,
        message,
        waitlist_href,
        status: if problem.kind() == Kind::Validation {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            problem.status()
        },
    }
}

/// A validation message ("is required") as a sentence ("Is required.").
pub fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// The manage token and hold state of the booking a kept answer describes, or the refusal it was.
async fn replayed(state: &AppState, answer: HttpResponse) -> Result<(String, bool), Problem> {
    let json = super::kept_answer(answer).await?;
    let reference = json["reference"].as_str().unwrap_or_default();
    let held = json["status"].as_str() == Some("held");
    Ok((state.issuer.key.manage_token(reference), held))
}
