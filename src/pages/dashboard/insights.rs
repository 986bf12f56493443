//! `/organiser/audit` (owners and admins): the audit trail, newest first, filtered by organiser,
//! action and subject, with what each change changed. `/organiser/stats` (admins): one event's
//! figures as server-drawn SVG charts, each with the same figures in a table.

use actix_web::http::StatusCode;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::{encode, Admin, Me};
use crate::api::{run, AppState, Problem};
use crate::audit::{self, Change, Filter};
use crate::mail::compose::money;
use crate::pages::booking::FieldMessage;
use crate::pages::{csrf, html_page, FormData, PageError};
use crate::stats::chart::{self, Series};
use crate::stats::RevenueDay;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/organiser/audit", crate::pages::get().to(audit_page))
        .route("/organiser/stats", crate::pages::get().to(stats_page));
}

#[derive(Serialize)]
struct AuditPage {
    title: &'static str,
    csrf: String,
    me: Me,
    organisers: Vec<Choice>,
    action: String,
    subject: String,
    organiser: String,
    errors: Vec<FieldMessage>,
    rows: Vec<AuditRow>,
    page: i64,
    previous: Option<String>,
    next: Option<String>,
}

#[derive(Serialize)]
struct Choice {
    id: i64,
    name: String,
    selected: bool,
}

#[derive(Serialize)]
struct AuditRow {
    at: String,
    at_iso: String,
    who: String,
    action: String,
    subject: String,
    changes: Vec<Change>,
}

async fn audit_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: Admin,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let query = FormData(query.into_inner());
    let text = |name: &str| query.text(name);
    let (action, subject, organiser) = (text("action"), text("subject"), text("organiser"));
    let mut errors = Vec::new();
    let organiser_id = match organiser.as_str() {
        "" => None,
        raw => match raw.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(FieldMessage {
                    field: "organiser".to_owned(),
                    message: "Choose an organiser from the list".to_owned(),
                });
                None
            }
        },
    };
    let page = match text("page").as_str() {
        "" => 0,
        raw => raw.parse::<i64>().unwrap_or(1).clamp(1, 1_000_000) - 1,
    };
    let filter = Filter {
        organiser_id,
        action_prefix: Some(action.clone()).filter(|a| !a.is_empty()),
        subject: Some(subject.clone()).filter(|s| !s.is_empty()),
    };
    let (names, (entries, more)) = run(&state.db, move |conn| -> Result<_, Problem> {
        Ok((audit::organisers(conn)?, audit::list(conn, &filter, page)?))
    })
    .await?;
    let link = |to: i64| {
        let number = (to + 1).to_string();
        let pairs: Vec<(&str, &str)> = [
            ("organiser", organiser.as_str()),
            ("action", action.as_str()),
            ("subject", subject.as_str()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .chain([("page", number.as_str())])
        .collect();
        format!("/organiser/audit?{}", url_query(&pairs))
    };
    let form = csrf::form_token(&req, &state.pages);
    let view = AuditPage {
        title: "Audit trail",
        csrf: form.token,
        me: Me::from(&*me),
        organisers: names
            .into_iter()
            .map(|(id, name)| Choice {
                id,
                name,
                selected: Some(id) == organiser_id,
            })
            .collect(),
        previous: (page > 0).then(|| link(page - 1)),
        next: more.then(|| link(page + 1)),
        action: action.clone(),
        subject: subject.clone(),
        organiser: organiser.clone(),
        errors,
        page: page + 1,
        rows: entries
            .iter()
            .map(|e| AuditRow {
                at: e.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                at_iso: e.at.to_rfc3339(),
                who: e
                    .organiser
                    .clone()
                    .unwrap_or_else(|| "System or command line".to_owned()),
                action: e.action.clone(),
                subject: e.subject.clone(),
                changes: e.changes(),
            })
            .collect(),
    };
    let html = state.pages.render("dashboard/insights/audit.html", view)?;
    Ok(html_page(StatusCode::OK, html, form.set_cookie))
}

/// `pairs` as a query string.
fn url_query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[derive(Serialize)]
struct StatsPage {
    title: &'static str,
    csrf: String,
    me: Me,
    events: Vec<EventChoice>,
    event: Option<EventFigures>,
    errors: Vec<FieldMessage>,
}

#[derive(Serialize)]
struct EventChoice {
    slug: String,
    name: String,
    selected: bool,
}

#[derive(Serialize)]
struct EventFigures {
    name: String,
    time_zone: String,
    fill_chart: String,
    fills: Vec<FillRow>,
    days_chart: String,
    days: Vec<(String, i64)>,
    revenue_chart: String,
    revenue_days: Vec<(String, String, String)>,
    received: String,
    refunded: String,
    net: String,
    invoiced: String,
    invoices_paid: String,
    waitlist_chart: String,
    waitlists: Vec<(String, i64, i64)>,
}

#[derive(Serialize)]
struct FillRow {
    title: String,
    taken: i64,
    capacity: i64,
    percent: i64,
}

const BLUE: &str = "#1d70b8";
const GREEN: &str = "#00703c";
const RED: &str = "#d4351c";
const ORANGE: &str = "#b35900";

async fn stats_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: Admin,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let query = FormData(query.into_inner());
    let wanted = query
        .get("event")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let (all, chosen) = run(&state.db, move |conn| -> Result<_, Problem> {
        let all = crate::events::list(conn, true)?;
        let event = match &wanted {
            Some(slug) => all.iter().find(|e| e.slug == *slug).cloned(),
            None => crate::stats::default_event(conn)?,
        };
        let figures = match event {
            Some(event) => {
                let stats = crate::stats::for_event(conn, &event)?;
                Some((event, stats))
            }
            None => None,
        };
        Ok((all, figures.ok_or(wanted)))
    })
    .await?;
    let mut errors = Vec::new();
    let (selected, event) = match chosen {
        Ok((event, stats)) => (Some(event.slug.clone()), Some(figures(&event, &stats))),
        Err(Some(_)) => {
            errors.push(FieldMessage {
                field: "event".to_owned(),
                message: "Choose an event from the list".to_owned(),
            });
            (None, None)
        }
        Err(None) => (None, None),
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    let form = csrf::form_token(&req, &state.pages);
    let view = StatsPage {
        title: "Statistics",
        csrf: form.token,
        me: Me::from(&*me),
        events: all
            .into_iter()
            .rev()
            .map(|e| EventChoice {
                selected: selected.as_deref() == Some(e.slug.as_str()),
                slug: e.slug,
                name: e.name,
            })
            .collect(),
        event,
        errors,
    };
    let html = state.pages.render("dashboard/insights/stats.html", view)?;
    Ok(html_page(status, html, form.set_cookie))
}

/// The figures of one event as the page shows them: charts and table rows.
fn figures(event: &crate::events::Event, stats: &crate::stats::EventStats) -> EventFigures {
    let currency = event.currency.as_str();
    let titles: Vec<String> = stats.sessions.iter().map(|s| s.title.clone()).collect();
    let fill = Series::new(
        "taken",
        BLUE,
        stats.sessions.iter().map(|s| s.percent()).collect(),
    )
    .with_captions(
        stats
            .sessions
            .iter()
            .map(|s| format!("{}/{} ({} %)", s.taken, s.capacity, s.percent()))
            .collect(),
    );
    let day_names: Vec<String> = stats
        .bookings_per_day
        .iter()
        .map(|d| d.day.format("%Y-%m-%d").to_string())
        .collect();
    let per_day = Series::new(
        "bookings",
        BLUE,
        stats.bookings_per_day.iter().map(|d| d.count).collect(),
    );
    let revenue = &stats.revenue;
    let money_days: Vec<String> = revenue
        .days
        .iter()
        .map(|d| d.day.format("%Y-%m-%d").to_string())
        .collect();
    // A day's amount as a series, each bar captioned with the amount as money.
    let amounts = |name, colour, amount: fn(&RevenueDay) -> i64| {
        let values: Vec<i64> = revenue.days.iter().map(amount).collect();
        let captions = values.iter().map(|&n| money(n, currency)).collect();
        Series::new(name, colour, values).with_captions(captions)
    };
    let received = amounts("received", GREEN, |d| d.received_minor);
    let refunded = amounts("refunded", RED, |d| d.refunded_minor);
    let waiting = Series::new(
        "waiting",
        ORANGE,
        stats.waitlists.iter().map(|w| w.waiting).collect(),
    );
    let offered = Series::new(
        "offered",
        BLUE,
        stats.waitlists.iter().map(|w| w.offered).collect(),
    );
    EventFigures {
        name: event.name.clone(),
        time_zone: event.time_zone.name().to_owned(),
        fill_chart: chart::bars(
            "Fill rate per session",
            "Seats taken (confirmed, held and offered) as a share of each session's capacity",
            &titles,
            &[fill],
            Some(100),
        ),
        fills: stats
            .sessions
            .iter()
            .map(|s| FillRow {
                title: s.title.clone(),
                taken: s.taken,
                capacity: s.capacity,
                percent: s.percent(),
            })
            .collect(),
        days_chart: chart::columns(
            "Bookings per day",
            "Bookings made each day, expired holds left out",
            &day_names,
            &[per_day],
            |n| n.to_string(),
        ),
        days: stats
            .bookings_per_day
            .iter()
            .map(|d| (d.day.format("%Y-%m-%d").to_string(), d.count))
            .collect(),
        revenue_chart: chart::columns(
            "Money received and refunded per day",
            "Card payments and paid invoices received, and refunds made, each day",
            &money_days,
            &[received, refunded],
            |n| money(n, currency),
        ),
        revenue_days: revenue
            .days
            .iter()
            .map(|d| {
                (
                    d.day.format("%Y-%m-%d").to_string(),
                    money(d.received_minor, currency),
                    money(d.refunded_minor, currency),
                )
            })
            .collect(),
        received: money(revenue.received_minor, currency),
        refunded: money(revenue.refunded_minor, currency),
        net: money(revenue.net_minor(), currency),
        invoiced: money(revenue.invoiced_minor, currency),
        invoices_paid: money(revenue.invoices_paid_minor, currency),
        waitlist_chart: chart::bars(
            "Waitlist demand per session",
            "People waiting and people holding an offer, per session",
            &titles,
            &[waiting, offered],
            None,
        ),
        waitlists: stats
            .waitlists
            .iter()
            .map(|w| (w.title.clone(), w.waiting, w.offered))
            .collect(),
    }
}
