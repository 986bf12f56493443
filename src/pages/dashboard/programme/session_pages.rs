//! The session form, to add a session to an event or change one, and duplicating a session.

use super::*;
use crate::sessions::http::SessionView;

/// The session form as entered.
#[derive(Serialize, Default)]
pub(super) struct SessionValues {
    title: String,
    #[serde(rename = "abstract")]
    abstract_text: String,
    speakers: String,
    track: String,
    room: String,
    starts_at: String,
    ends_at: String,
    capacity: String,
    price: String,
    /// CPD hours, e.g. "1.5".
    cpd_hours: String,
    waitlist_enabled: bool,
    published: bool,
}

impl SessionValues {
    fn of(s: &Session, zone: Tz) -> Self {
        Self {
            title: s.title.clone(),
            abstract_text: s.abstract_text.clone(),
            speakers: s.speakers.join("\n"),
            track: s.track.clone().unwrap_or_default(),
            room: s.room.clone().unwrap_or_default(),
            starts_at: local_input(s.starts_at, zone),
            ends_at: local_input(s.ends_at, zone),
            capacity: s.capacity.to_string(),
            price: price_text(s.price_minor),
            cpd_hours: crate::certificates::hours(s.cpd_tenths),
            waitlist_enabled: s.waitlist_enabled,
            published: s.status == SessionStatus::Published,
        }
    }

    fn read(form: &FormData) -> Self {
        let text = |name: &str| form.get(name).unwrap_or_default().trim().to_owned();
        Self {
            title: text("title"),
            abstract_text: text("abstract"),
            speakers: text("speakers"),
            track: text("track"),
            room: text("room"),
            starts_at: text("starts_at"),
            ends_at: text("ends_at"),
            capacity: text("capacity"),
            price: text("price"),
            cpd_hours: text("cpd_hours"),
            waitlist_enabled: checked(form, "waitlist_enabled"),
            published: checked(form, "published"),
        }
    }

    fn speaker_list(&self) -> Vec<String> {
        self.speakers
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn optional(raw: &str) -> Option<String> {
        (!raw.is_empty()).then(|| raw.to_owned())
    }

    /// Times, capacity and price as the API types take them, and what cannot be read.
    fn parsed(&self, zone: Tz) -> (SessionNumbers, Vec<FieldMessage>) {
        let mut errors = Vec::new();
        let mut time = |name: &str, raw: &str| match parse_local(raw, zone) {
            Ok(Some(t)) => Some(t),
            Ok(None) => {
                errors.push(message(name, "enter a date and time"));
                None
            }
            Err(m) => {
                errors.push(message(name, m));
                None
            }
        };
        let starts = time("starts_at", &self.starts_at);
        let ends = time("ends_at", &self.ends_at);
        let capacity = whole_number(&self.capacity)
            .map_err(|m| errors.push(message("capacity", m)))
            .ok();
        let price = parse_price(&self.price)
            .map_err(|m| errors.push(message("price", m)))
            .ok();
        let cpd_tenths = cpd_tenths(&self.cpd_hours)
            .map_err(|m| errors.push(message("cpd_hours", m)))
            .ok();
        (
            SessionNumbers {
                starts,
                ends,
                capacity,
                price,
                cpd_tenths,
            },
            errors,
        )
    }

    fn new_session(&self, zone: Tz) -> Result<NewSession, Vec<FieldMessage>> {
        let (n, mut errors) = self.parsed(zone);
        let placeholder = Utc::now().fixed_offset();
        let input = SessionInput {
            title: self.title.clone(),
            abstract_text: self.abstract_text.clone(),
            speakers: self.speaker_list(),
            track: Self::optional(&self.track),
            room: Self::optional(&self.room),
            starts_at: n.starts.unwrap_or(placeholder),
            ends_at: n.ends.unwrap_or(placeholder),
            capacity: n.capacity.unwrap_or(0),
            price_minor: n.price.unwrap_or(0),
            cpd_tenths: n.cpd_tenths.unwrap_or(0),
            status: Some(if self.published {
                SessionStatus::Published
            } else {
                SessionStatus::Draft
            }),
        };
        match NewSession::try_from(input) {
            Ok(new) if errors.is_empty() => Ok(new),
            Ok(_) => Err(errors),
            Err(e) => {
                merge(&mut errors, messages(&e));
                Err(errors)
            }
        }
    }

    fn changes(&self, zone: Tz, current: &Session) -> Result<SessionChanges, Vec<FieldMessage>> {
        let (n, mut errors) = self.parsed(zone);
        let patch = SessionPatch {
            title: Some(self.title.clone()),
            abstract_text: Some(self.abstract_text.clone()),
            speakers: Some(self.speaker_list()),
            track: Some(Self::optional(&self.track)),
            room: Some(Self::optional(&self.room)),
            starts_at: n.starts,
            ends_at: n.ends,
            capacity: n.capacity,
            price_minor: n.price,
            cpd_tenths: n.cpd_tenths,
            // A cancelled session stays cancelled.
            status: (current.status != SessionStatus::Cancelled).then_some(if self.published {
                SessionStatus::Published
            } else {
                SessionStatus::Draft
            }),
            waitlist_enabled: Some(self.waitlist_enabled),
        };
        match SessionChanges::try_from(patch) {
            Ok(changes) if errors.is_empty() => Ok(changes),
            Ok(_) => Err(errors),
            Err(e) => {
                merge(&mut errors, messages(&e));
                Err(errors)
            }
        }
    }
}

pub(super) struct SessionNumbers {
    starts: Option<DateTime<FixedOffset>>,
    ends: Option<DateTime<FixedOffset>>,
    capacity: Option<i32>,
    price: Option<i64>,
    cpd_tenths: Option<i32>,
}

/// CPD hours as typed ("", "2", "1.5") in tenths of an hour, at most 100 hours.
fn cpd_tenths(raw: &str) -> Result<i32, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(0);
    }
    let (whole, tenth) = raw.split_once('.').unwrap_or((raw, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(tenth) || tenth.len() > 1 || whole.len() > 3 {
        return Err("enter hours like 2 or 1.5".to_owned());
    }
    let tenths = whole.parse::<i32>().unwrap_or(i32::MAX).saturating_mul(10)
        + tenth.parse::<i32>().unwrap_or(0);
    if tenths > 1000 {
        return Err("enter at most 100 hours".to_owned());
    }
    Ok(tenths)
}

/// A session's refusal as a message next to the field it concerns; other failures as pages.
pub(super) fn session_refusal(err: SessionError) -> Result<Vec<FieldMessage>, PageError> {
    Ok(match err {
        SessionError::CapacityBelowTaken { taken, .. } => vec![message(
            "capacity",
            format!(
                "cannot be below the {taken} seats taken (held, confirmed or offered to the waitlist)"
            ),
        )],
        SessionError::Invalid(v) => messages(&v),
        other => return Err(Problem::from(other).into()),
    })
}

#[derive(Serialize)]
pub(super) struct SessionPage {
    title: String,
    csrf: String,
    me: Me,
    event_slug: String,
    event_name: String,
    time_zone: String,
    currency: String,
    /// `None` for a new session.
    id: Option<i64>,
    cancelled: bool,
    values: SessionValues,
    errors: Vec<FieldMessage>,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn session_page(
    state: &AppState,
    req: &HttpRequest,
    me: &Organiser,
    event: &Event,
    current: Option<&Session>,
    values: SessionValues,
    errors: Vec<FieldMessage>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let form = csrf::form_token(req, &state.pages);
    let page = SessionPage {
        title: current.map_or_else(|| "New session".to_owned(), |s| s.title.clone()),
        csrf: form.token,
        me: Me::from(me),
        event_slug: event.slug.clone(),
        event_name: event.name.clone(),
        time_zone: event.time_zone.name().to_owned(),
        currency: event.currency.clone(),
        id: current.map(|s| s.id),
        cancelled: current.is_some_and(|s| s.status == SessionStatus::Cancelled),
        values,
        errors,
    };
    let html = state
        .pages
        .render("dashboard/programme/session.html", page)?;
    Ok(html_page(status, html, form.set_cookie))
}

pub(super) async fn find_event(state: &AppState, slug: String) -> Result<Event, PageError> {
    Ok(run(&state.db, move |conn| events::find(conn, &slug)).await?)
}

pub(super) async fn find_session(state: &AppState, id: i64) -> Result<(Event, Session), PageError> {
    Ok(run(&state.db, move |conn| -> Result<_, Problem> {
        let session = sessions::find(conn, id)?;
        let event = events::by_id(conn, session.event_id)?;
        Ok((event, session))
    })
    .await?)
}

pub(super) async fn new_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let me = admin!(state, req);
    let event = find_event(&state, slug.into_inner()).await?;
    let values = SessionValues {
        capacity: "30".to_owned(),
        price: "0".to_owned(),
        waitlist_enabled: true,
        published: true,
        ..SessionValues::default()
    };
    session_page(
        &state,
        &req,
        &me,
        &event,
        None,
        values,
        Vec::new(),
        StatusCode::OK,
    )
}

pub(super) async fn create_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let form = FormData(body.into_inner());
    csrf::check(&req, &state.pages, form.get(csrf::FIELD))?;
    let me = admin!(state, req);
    let event = find_event(&state, slug.into_inner()).await?;
    let values = SessionValues::read(&form);
    let errors = match values.new_session(event.time_zone) {
        Ok(new) => {
            let (slug, waitlist) = (event.slug.clone(), values.waitlist_enabled);
            let (issuer, now) = (state.issuer.clone(), state.clock.now());
            let made = run(&state.db, move |conn| {
                Ok::<_, Problem>(create_with_waitlist(
                    conn, &slug, &new, waitlist, &issuer, now,
                ))
            })
            .await?;
            match made {
                Ok(session) => {
                    state.programmes.forget(&event.slug);
                    tracing::info!(organiser = me.id, session = session.id, "session created");
                    // `create` commits on its own, so the audit row follows it.
                    crate::audit::committed(
                        &state.db,
                        Some(me.id),
                        "session.create",
                        format!("session:{}", session.id),
                        None::<&()>,
                        Some(&SessionView::new(&session, &event)),
                    )
                    .await;
                    return Ok(redirect(&format!(
                        "/organiser/events/{}?done=session-created",
                        event.slug
                    )));
                }
                Err(e) => session_refusal(e)?,
            }
        }
        Err(errors) => errors,
    };
    session_page(
        &state,
        &req,
        &me,
        &event,
        None,
        values,
        errors,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

/// Creates a session, with its waitlist switched off when asked (new sessions have one).
pub(super) fn create_with_waitlist(
    conn: &mut crate::db::DbConn,
    slug: &str,
    new: &NewSession,
    waitlist: bool,
    issuer: &crate::bookings::Issuer,
    now: DateTime<Utc>,
) -> Result<Session, SessionError> {
    let (_, session) = sessions::create(conn, slug, new)?;
    if waitlist == session.waitlist_enabled {
        return Ok(session);
    }
    let changes = SessionChanges {
        waitlist_enabled: Some(waitlist),
        ..SessionChanges::default()
    };
    Ok(sessions::update(conn, session.id, changes, issuer, now)?.1)
}

pub(super) async fn session(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let me = admin!(state, req);
    let (event, session) = find_session(&state, id.into_inner()).await?;
    let values = SessionValues::of(&session, event.time_zone);
    session_page(
        &state,
        &req,
        &me,
        &event,
        Some(&session),
        values,
        Vec::new(),
        StatusCode::OK,
    )
}

pub(super) async fn update_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let form = FormData(body.into_inner());
    csrf::check(&req, &state.pages, form.get(csrf::FIELD))?;
    let me = admin!(state, req);
    let (event, current) = find_session(&state, id.into_inner()).await?;
    let values = SessionValues::read(&form);
    let errors = match values.changes(event.time_zone, &current) {
        Ok(changes) => {
            let (id, issuer, now) = (current.id, state.issuer.clone(), state.clock.now());
            let changed = run(&state.db, move |conn| {
                Ok::<_, Problem>(sessions::update(conn, id, changes, &issuer, now))
            })
            .await?;
            match changed {
                Ok((event, session)) => {
                    state.programmes.forget(&event.slug);
                    tracing::info!(organiser = me.id, session = session.id, "session changed");
                    // `update` runs its own write transaction, so the audit row follows it.
                    crate::audit::committed(
                        &state.db,
                        Some(me.id),
                        "session.update",
                        format!("session:{}", session.id),
                        Some(&SessionView::new(&current, &event)),
                        Some(&SessionView::new(&session, &event)),
                    )
                    .await;
                    return Ok(redirect(&format!(
                        "/organiser/events/{}?done=session-saved",
                        event.slug
                    )));
                }
                Err(e) => session_refusal(e)?,
            }
        }
        Err(errors) => errors,
    };
    session_page(
        &state,
        &req,
        &me,
        &event,
        Some(&current),
        values,
        errors,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

pub(super) async fn duplicate_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let form = FormData(body.into_inner());
    csrf::check(&req, &state.pages, form.get(csrf::FIELD))?;
    let me = admin!(state, req);
    let (event, original) = find_session(&state, id.into_inner()).await?;
    let copy = NewSession {
        title: original.title.clone(),
        abstract_text: original.abstract_text.clone(),
        speakers: original.speakers.clone(),
        track: original.track.clone(),
        room: original.room.clone(),
        starts_at: original.starts_at,
        ends_at: original.ends_at,
        capacity: original.capacity,
        price_minor: original.price_minor,
        status: SessionStatus::Draft,
        cpd_tenths: original.cpd_tenths,
    };
    let (slug, waitlist) = (event.slug.clone(), original.waitlist_enabled);
    let (issuer, now) = (state.issuer.clone(), state.clock.now());
    let made = run(&state.db, move |conn| {
        create_with_waitlist(conn, &slug, &copy, waitlist, &issuer, now)
    })
    .await?;
    tracing::info!(
        organiser = me.id,
        from = original.id,
        session = made.id,
        "session duplicated"
    );
    // The copy commits on its own, so the audit row follows it.
    crate::audit::committed(
        &state.db,
        Some(me.id),
        "session.duplicate",
        format!("session:{}", made.id),
        Some(&serde_json::json!({ "from": format!("session:{}", original.id) })),
        Some(&SessionView::new(&made, &event)),
    )
    .await;
    state.programmes.forget(&event.slug);
    Ok(redirect(&format!(
        "/organiser/events/{}?done=duplicated",
        event.slug
    )))
}

/// Changes only a session's capacity, from the event page's table.
pub(super) fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A session patch that changes nothing.
pub(super) fn empty_patch() -> SessionPatch {
    SessionPatch {
        title: None,
        abstract_text: None,
        speakers: None,
        track: None,
        room: None,
        starts_at: None,
        ends_at: None,
        capacity: None,
        price_minor: None,
        status: None,
        waitlist_enabled: None,
        cpd_tenths: None,
    }
}

#[cfg(test)]
mod cpd_tests {
    use super::cpd_tenths;

    #[test]
    fn cpd_hours_are_read_to_the_tenth() {
        assert_eq!(cpd_tenths(""), Ok(0));
        assert_eq!(cpd_tenths("2"), Ok(20));
        assert_eq!(cpd_tenths(" 1.5 "), Ok(15));
        assert_eq!(cpd_tenths("100"), Ok(1000));
        assert!(cpd_tenths("100.1").is_err());
        assert!(cpd_tenths("1.25").is_err());
        assert!(cpd_tenths("-1").is_err());
        assert!(cpd_tenths("1,5").is_err());
        assert!(cpd_tenths(".5").is_err());
    }
}
