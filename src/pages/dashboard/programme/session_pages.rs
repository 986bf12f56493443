//! The session form, to add a session to an event or change one, and duplicating a session.

use super::*;
use crate::audit::{self, Record};
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
    /// The session's revision the form was filled in against (empty for a new session).
    revision: String,
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
            revision: s.revision.to_string(),
        }
    }

    fn read(form: &FormData) -> Self {
        let text = |name: &str| form.text(name);
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
            revision: text("revision"),
        }
    }

    /// Each field whose value saved now differs from what was entered, saying what it is now:
    /// for an organiser whose form was overtaken by someone else's change.
    fn overtaken_by(&self, now: &Self) -> Vec<FieldMessage> {
        let mut said = overtaken_texts([
            ("title", "Title", &self.title, &now.title),
            (
                "abstract",
                "Abstract",
                &self.abstract_text,
                &now.abstract_text,
            ),
            ("speakers", "Speakers", &self.speakers, &now.speakers),
            ("track", "Track", &self.track, &now.track),
            ("room", "Room", &self.room, &now.room),
            ("starts_at", "Starts", &self.starts_at, &now.starts_at),
            ("ends_at", "Ends", &self.ends_at, &now.ends_at),
            ("capacity", "Capacity", &self.capacity, &now.capacity),
            ("price", "Price", &self.price, &now.price),
            ("cpd_hours", "CPD hours", &self.cpd_hours, &now.cpd_hours),
        ]);
        said.extend(overtaken_ticks([
            (
                "waitlist_enabled",
                "The waitlist",
                self.waitlist_enabled,
                now.waitlist_enabled,
            ),
            ("published", "Published", self.published, now.published),
        ]));
        said
    }

    fn status(&self) -> SessionStatus {
        if self.published {
            SessionStatus::Published
        } else {
            SessionStatus::Draft
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
        let (n, errors) = self.parsed(zone);
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
            status: Some(self.status()),
        };
        accepted(NewSession::try_from(input), errors)
    }

    /// The changes as entered, made against `revision` (the form's, when it carries one).
    fn changes(
        &self,
        zone: Tz,
        current: &Session,
        revision: Option<i32>,
    ) -> Result<SessionChanges, Vec<FieldMessage>> {
        let (n, errors) = self.parsed(zone);
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
            status: (current.status != SessionStatus::Cancelled).then_some(self.status()),
            waitlist_enabled: Some(self.waitlist_enabled),
        };
        let changes = accepted(SessionChanges::try_from(patch), errors)?;
        Ok(SessionChanges {
            if_revision: revision,
            ..changes
        })
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
    problem: Option<&'static str>,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn session_page(
    state: &AppState,
    req: &HttpRequest,
    me: &Organiser,
    event: &Event,
    current: Option<&Session>,
    values: SessionValues,
    said: Said,
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
        errors: said.errors,
        problem: said.problem,
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
    me: Admin,
    slug: web::Path<String>,
) -> Result<HttpResponse, PageError> {
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
        Said::default(),
        StatusCode::OK,
    )
}

pub(super) async fn create_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    PostedBy { form, me }: AdminPost,
    slug: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let event = find_event(&state, slug.into_inner()).await?;
    let values = SessionValues::read(&form);
    let errors = match values.new_session(event.time_zone) {
        Ok(new) => {
            let (slug, waitlist) = (event.slug.clone(), values.waitlist_enabled);
            let (issuer, now, by) = (state.issuer.clone(), state.clock.now(), Some(me.id));
            let made = run(&state.db, move |conn| {
                Ok::<_, Problem>(audit::recorded(
                    conn,
                    by,
                    |conn| -> Result<_, SessionError> {
                        let (event, session) =
                            create_with_waitlist(conn, &slug, &new, waitlist, &issuer, now)?;
                        let record =
                            Record::new("session.create", format!("session:{}", session.id))
                                .after(&SessionView::new(&session, &event));
                        Ok((session, record))
                    },
                ))
            })
            .await?;
            match made {
                Ok(session) => {
                    state.programmes.forget(&event.slug);
                    tracing::info!(organiser = me.id, session = session.id, "session created");
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
        errors.into(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

/// Changes a session for an organiser, with the audit row `record` makes of it (from the
/// session before and after) in the same transaction. A refusal comes back for the form.
pub(super) async fn change(
    state: &AppState,
    me: &Organiser,
    id: i64,
    changes: SessionChanges,
    record: fn(&Session, &Session, &Event) -> Record,
) -> Result<Result<(Event, Session), SessionError>, PageError> {
    let (issuer, now, by) = (state.issuer.clone(), state.clock.now(), Some(me.id));
    Ok(run(&state.db, move |conn| {
        Ok::<_, Problem>(audit::recorded(
            conn,
            by,
            |conn| -> Result<_, SessionError> {
                // Locked first, so `before` is what the update changes.
                sessions::lock(conn, id)?;
                let before = sessions::find(conn, id)?;
                let (event, session) = sessions::update(conn, id, changes, &issuer, now)?;
                let record = record(&before, &session, &event);
                Ok(((event, session), record))
            },
        ))
    })
    .await?)
}

/// Creates a session, with its waitlist switched off when asked (new sessions have one). Called
/// inside a write transaction, so the session and its waitlist setting commit together.
pub(super) fn create_with_waitlist(
    conn: &mut crate::db::DbConn,
    slug: &str,
    new: &NewSession,
    waitlist: bool,
    issuer: &crate::bookings::Issuer,
    now: DateTime<Utc>,
) -> Result<(Event, Session), SessionError> {
    let (event, session) = sessions::create(conn, slug, new)?;
    if waitlist == session.waitlist_enabled {
        return Ok((event, session));
    }
    let changes = SessionChanges {
        waitlist_enabled: Some(waitlist),
        ..SessionChanges::default()
    };
    sessions::update(conn, session.id, changes, issuer, now)
}

pub(super) async fn session(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: Admin,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let (event, session) = find_session(&state, id.into_inner()).await?;
    let values = SessionValues::of(&session, event.time_zone);
    session_page(
        &state,
        &req,
        &me,
        &event,
        Some(&session),
        values,
        Said::default(),
        StatusCode::OK,
    )
}

pub(super) async fn update_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    PostedBy { form, me }: AdminPost,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let (event, current) = find_session(&state, id.into_inner()).await?;
    let mut values = SessionValues::read(&form);
    let revision = form_revision(&values.revision)?;
    let said = match values.changes(event.time_zone, &current, revision) {
        Ok(changes) => {
            let changed = change(&state, &me, current.id, changes, |before, after, event| {
                Record::new("session.update", format!("session:{}", after.id))
                    .before(&SessionView::new(before, event))
                    .after(&SessionView::new(after, event))
            })
            .await?;
            match changed {
                Ok((event, session)) => {
                    state.programmes.forget(&event.slug);
                    tracing::info!(organiser = me.id, session = session.id, "session changed");
                    return Ok(redirect(&format!(
                        "/organiser/events/{}?done=session-saved",
                        event.slug
                    )));
                }
                Err(SessionError::Changed { .. }) => {
                    // Shown again against the session as it is now: saving once more keeps
                    // what this organiser entered, knowingly.
                    let (event, now) = find_session(&state, current.id).await?;
                    let saved = SessionValues::of(&now, event.time_zone);
                    let errors = values.overtaken_by(&saved);
                    values.revision = saved.revision;
                    return session_page(
                        &state,
                        &req,
                        &me,
                        &event,
                        Some(&now),
                        values,
                        Said {
                            errors,
                            problem: Some(OVERTAKEN),
                        },
                        StatusCode::CONFLICT,
                    );
                }
                Err(e) => session_refusal(e)?.into(),
            }
        }
        Err(errors) => errors.into(),
    };
    session_page(
        &state,
        &req,
        &me,
        &event,
        Some(&current),
        values,
        said,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

pub(super) async fn duplicate_session(
    state: web::Data<AppState>,
    PostedBy { me, .. }: AdminPost,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
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
    let (issuer, now, by, from) = (
        state.issuer.clone(),
        state.clock.now(),
        Some(me.id),
        original.id,
    );
    let made = run(&state.db, move |conn| {
        audit::recorded(conn, by, |conn| -> Result<_, SessionError> {
            let (event, made) = create_with_waitlist(conn, &slug, &copy, waitlist, &issuer, now)?;
            let record = Record::new("session.duplicate", format!("session:{}", made.id))
                .before(&serde_json::json!({ "from": format!("session:{from}") }))
                .after(&SessionView::new(&made, &event));
            Ok((made, record))
        })
    })
    .await?;
    tracing::info!(
        organiser = me.id,
        from = original.id,
        session = made.id,
        "session duplicated"
    );
    state.programmes.forget(&event.slug);
    Ok(redirect(&format!(
        "/organiser/events/{}?done=duplicated",
        event.slug
    )))
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
