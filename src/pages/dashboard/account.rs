//! Signing in and out, forgotten passwords, invitation and reset links, the dashboard's front
//! page, the team and API tokens.

use actix_web::http::StatusCode;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::{
    ended_cookie, safe_next, session_cookie, signed_in, Anyone, AnyonePost, Me, Owner, OwnerPost,
    Posted, PostedBy, SESSION_COOKIE,
};
use crate::api::{run, AppState, Kind, Problem};
use crate::audit::{self, Record};
use crate::db::DbError;
use crate::organisers::accounts::{self, LinkError, LinkKind, Password};
use crate::organisers::{NewOrganiser, Organiser, OrganiserError, Role};
use crate::pages::booking::FieldMessage;
use crate::pages::{csrf, html_page, redirect, FormData, PageError};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/organiser", crate::pages::get().to(home))
        .route("/organiser/login", crate::pages::get().to(login_form))
        .route("/organiser/login", web::post().to(login))
        .route("/organiser/logout", web::post().to(logout))
        .route("/organiser/forgot", crate::pages::get().to(forgot_form))
        .route("/organiser/forgot", web::post().to(forgot))
        .route(
            "/organiser/password/{token}",
            crate::pages::get().to(password_form),
        )
        .route("/organiser/password/{token}", web::post().to(password))
        .route("/organiser/team", crate::pages::get().to(team))
        .route("/organiser/team", web::post().to(invite))
        .route("/organiser/tokens", crate::pages::get().to(tokens))
        .route("/organiser/tokens", web::post().to(new_token))
        .route("/organiser/tokens/{id}/revoke", web::post().to(revoke));
}

#[derive(Serialize)]
struct LoginPage {
    title: &'static str,
    csrf: String,
    email: String,
    next: String,
    errors: Vec<FieldMessage>,
    problem: Option<String>,
    notice: Option<&'static str>,
}

fn login_page(
    state: &AppState,
    req: &HttpRequest,
    page: LoginPage,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let form = csrf::form_token(req, &state.pages);
    let html = state.pages.render(
        "dashboard/login.html",
        LoginPage {
            csrf: form.token,
            ..page
        },
    )?;
    Ok(html_page(status, html, form.set_cookie))
}

async fn login_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let query = FormData(query.into_inner());
    if signed_in(&state, &req).await?.is_some() {
        return Ok(redirect(&safe_next(query.get("next"))));
    }
    let notice = match query.get("done") {
        Some("out") => Some("You have signed out."),
        _ => None,
    };
    login_page(
        &state,
        &req,
        LoginPage {
            title: "Organiser sign-in",
            csrf: String::new(),
            email: String::new(),
            next: safe_next(query.get("next")),
            errors: Vec::new(),
            problem: None,
            notice,
        },
        StatusCode::OK,
    )
}

/// Who sent `req`, for the log: the key the sign-in limits count it under (behind a trusted
/// proxy, the address the proxy saw, not the proxy's).
fn client(state: &AppState, req: &HttpRequest) -> String {
    state
        .pages
        .sign_in_limiter
        .client(req)
        .map_or_else(|| "unknown".to_owned(), |c| c.to_string())
}

async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    Posted(form): Posted,
) -> Result<HttpResponse, PageError> {
    use crate::organisers::sign_in_limits::{self, Account, AttemptError, Limits};
    // Each attempt costs an argon2 hash: this per-process limit guards the process's CPU. Failed
    // sign-ins are limited across every instance by the database (see `sign_in_limits`).
    state.pages.sign_in_limiter.check(&req)?;
    let email = form.text("email");
    let password = form.get("password").unwrap_or_default().to_owned();
    let next = safe_next(form.get("next"));
    let shown_email = crate::validation::Email::normalize(&email);
    // Text that is no email address may be a password typed in the wrong field: never logged.
    let account = Account::typed(&email);
    let from = state.pages.sign_in_limiter.client(&req);
    let limits = Limits::from_settings(&state.settings.sign_in);
    let now = state.clock.now();
    let outcome = run(&state.db, move |conn| -> Result<_, Problem> {
        match sign_in_limits::sign_in(conn, &limits, &email, &password, from, now) {
            Ok(signed) => Ok(Ok(signed)),
            Err(AttemptError::Db(e)) => Err(e.into()),
            Err(refused) => Ok(Err(refused)),
        }
    })
    .await?;
    match outcome {
        Err(AttemptError::Locked(refused)) => {
            // Who tried, from where, and which limit; never the password.
            match &account {
                Some(account) => tracing::warn!(
                    account = %account,
                    client = %client(&state, &req),
                    limit = refused.rule.as_str(),
                    "organiser sign-in refused unchecked: too many failures"
                ),
                None => tracing::warn!(
                    client = %client(&state, &req),
                    limit = refused.rule.as_str(),
                    "organiser sign-in refused unchecked: too many failures; what was typed is not an email address"
                ),
            }
            Err(crate::pages::limit::paused(&refused))
        }
        Ok(signed) => {
            tracing::info!(organiser = signed.organiser.id, "organiser signed in");
            let mut answer = redirect(&next);
            let cookie = session_cookie(&state.pages, signed.token, signed.expires_at, now);
            answer
                .add_cookie(&cookie)
                .map_err(|_| PageError::internal())?;
            Ok(answer)
        }
        Err(_) => {
            // Who tried, from where; never the password.
            match &account {
                Some(account) => tracing::warn!(
                    account = %account,
                    client = %client(&state, &req),
                    "organiser sign-in refused"
                ),
                None => tracing::warn!(
                    client = %client(&state, &req),
                    "organiser sign-in refused: what was typed is not an email address"
                ),
            }
            login_page(
                &state,
                &req,
                LoginPage {
                    title: "Organiser sign-in",
                    csrf: String::new(),
                    email: shown_email,
                    next,
                    errors: Vec::new(),
                    problem: Some(
                        "The email address or password is not right. Please try again, or reset your password."
                            .to_owned(),
                    ),
                    notice: None,
                },
                StatusCode::UNAUTHORIZED,
            )
        }
    }
}

async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    _: Posted,
) -> Result<HttpResponse, PageError> {
    if let Some(token) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()) {
        let now = state.clock.now();
        run(&state.db, move |conn| accounts::sign_out(conn, &token, now)).await?;
    }
    let mut answer = redirect("/organiser/login?done=out");
    answer
        .add_cookie(&ended_cookie(&state.pages))
        .map_err(|_| PageError::internal())?;
    Ok(answer)
}

#[derive(Serialize)]
struct ForgotPage {
    title: &'static str,
    csrf: String,
    email: String,
    sent: bool,
    errors: Vec<FieldMessage>,
}

async fn forgot_form(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let form = csrf::form_token(&req, &state.pages);
    let page = ForgotPage {
        title: "Forgotten password",
        csrf: form.token,
        email: String::new(),
        sent: false,
        errors: Vec::new(),
    };
    let html = state.pages.render("dashboard/forgot.html", page)?;
    Ok(html_page(StatusCode::OK, html, form.set_cookie))
}

async fn forgot(
    state: web::Data<AppState>,
    req: HttpRequest,
    Posted(form): Posted,
) -> Result<HttpResponse, PageError> {
    use crate::organisers::sign_in_limits::{self, Account, Limits, ResetError};
    // A cheap guard of this process; reset emails are limited across every instance by the
    // database (see `sign_in_limits`).
    state.pages.sign_in_limiter.check(&req)?;
    let email = form.text("email");
    let errors = match crate::validation::Email::parse(&email) {
        Ok(_) => Vec::new(),
        Err(m) => vec![FieldMessage::new("email", &m)],
    };
    // An address whose normal form is no address can be no organiser's: nothing to send.
    if let (true, Some(account)) = (errors.is_empty(), Account::typed(&email)) {
        let (key, site, now) = (
            state.issuer.key.clone(),
            state.pages.site_name.clone(),
            state.clock.now(),
        );
        let from = state.pages.sign_in_limiter.client(&req);
        let limits = Limits::from_settings(&state.settings.sign_in);
        let asked = account.clone();
        let link = run(&state.db, move |conn| -> Result<_, Problem> {
            match sign_in_limits::request_reset(conn, &limits, &key, &asked, from, &site, now) {
                Ok(link) => Ok(Ok(link)),
                Err(ResetError::Locked(refused)) => Ok(Err(refused)),
                Err(ResetError::Db(e)) => Err(e.into()),
            }
        })
        .await?;
        match link {
            Ok(Some(_)) => tracing::info!("password reset link emailed"),
            Ok(None) => {}
            Err(refused) => {
                tracing::warn!(
                    account = %account,
                    client = %client(&state, &req),
                    limit = refused.rule.as_str(),
                    "password reset refused: too many asked for"
                );
                return Err(crate::pages::limit::paused(&refused));
            }
        }
    }
    let form_token = csrf::form_token(&req, &state.pages);
    let sent = errors.is_empty();
    let page = ForgotPage {
        title: "Forgotten password",
        csrf: form_token.token,
        email,
        sent,
        errors,
    };
    let html = state.pages.render("dashboard/forgot.html", page)?;
    let status = if sent {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(html_page(status, html, form_token.set_cookie))
}

#[derive(Serialize)]
struct PasswordPage {
    title: &'static str,
    csrf: String,
    invite: bool,
    name: String,
    email: String,
    errors: Vec<FieldMessage>,
}

fn link_refused(e: LinkError) -> PageError {
    let (title, message) = match e {
        LinkError::Used => (
            "This link has been used",
            "A link to choose a password works once. Sign in with the password you chose, or ask for a new link.",
        ),
        LinkError::Expired => (
            "This link has expired",
            "Ask for a new link: from the sign-in page for a forgotten password, or from an owner for an invitation.",
        ),
        LinkError::Db(e) => return Problem::from(e).into(),
        LinkError::Unknown | LinkError::Invalid(_) => (
            "This link is not valid",
            "Please open the link again from the email, in full; or ask for a new one.",
        ),
    };
    PageError::new(StatusCode::NOT_FOUND, title, message)
        .with_next("Go to sign-in", "/organiser/login")
}

async fn password_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let token = token.into_inner();
    let now = state.clock.now();
    let link = run(&state.db, move |conn| -> Result<_, Problem> {
        Ok(accounts::open_link(conn, &token, now))
    })
    .await?
    .map_err(link_refused)?;
    password_page(
        &state,
        &req,
        &link.organiser,
        link.kind,
        Vec::new(),
        StatusCode::OK,
    )
}

fn password_page(
    state: &AppState,
    req: &HttpRequest,
    organiser: &Organiser,
    kind: LinkKind,
    errors: Vec<FieldMessage>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let form = csrf::form_token(req, &state.pages);
    let page = PasswordPage {
        title: if kind == LinkKind::Invite {
            "Join the organisers"
        } else {
            "Choose a new password"
        },
        csrf: form.token,
        invite: kind == LinkKind::Invite,
        name: organiser.name.clone(),
        email: organiser.email.clone(),
        errors,
    };
    let html = state.pages.render("dashboard/password.html", page)?;
    Ok(html_page(status, html, form.set_cookie))
}

async fn password(
    state: web::Data<AppState>,
    req: HttpRequest,
    Posted(form): Posted,
    token: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    // Setting a password costs an argon2 hash: this per-process limit guards the process's CPU.
    state.pages.sign_in_limiter.check(&req)?;
    let token = token.into_inner();
    let now = state.clock.now();
    let link = {
        let token = token.clone();
        run(&state.db, move |conn| -> Result<_, Problem> {
            Ok(accounts::open_link(conn, &token, now))
        })
        .await?
        .map_err(link_refused)?
    };
    let name =
        (link.kind == LinkKind::Invite).then(|| form.get("name").unwrap_or_default().to_owned());
    let password = match Password::parse(
        form.get("password").unwrap_or_default(),
        form.get("repeat_password").unwrap_or_default(),
        &link.organiser.email,
    ) {
        Ok(password) => password,
        Err(e) => {
            let errors = FieldMessage::all(&e);
            return password_page(
                &state,
                &req,
                &link.organiser,
                link.kind,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let by = Some(link.organiser.id);
    // Hashed before a connection is taken: hashing takes a while, and nobody should wait on it.
    let hash = web::block(move || accounts::hash_password(&password))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing task failed");
            PageError::internal()
        })?
        .map_err(|e| PageError::from(Problem::from(e)))?;
    let used = run(&state.db, move |conn| -> Result<_, Problem> {
        Ok(audit::recorded(conn, by, |conn| -> Result<_, LinkError> {
            let signed = accounts::use_link(conn, &token, name.as_deref(), &hash, now)?;
            // The emailed link proves the account's owner: its failed sign-ins stop counting.
            crate::organisers::sign_in_limits::forget_failures(conn, &signed.organiser)?;
            let record = Record::new(
                "organiser.password",
                format!("organiser:{}", signed.organiser.id),
            );
            Ok((signed, record))
        }))
    })
    .await?;
    let signed = match used {
        Ok(signed) => signed,
        Err(LinkError::Invalid(e)) => {
            let errors = FieldMessage::all(&e);
            return password_page(
                &state,
                &req,
                &link.organiser,
                link.kind,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
        Err(e) => return Err(link_refused(e)),
    };
    tracing::info!(organiser = signed.organiser.id, "organiser password set");
    let mut answer = redirect("/organiser");
    answer
        .add_cookie(&session_cookie(
            &state.pages,
            signed.token,
            signed.expires_at,
            now,
        ))
        .map_err(|_| PageError::internal())?;
    Ok(answer)
}

#[derive(Serialize)]
struct HomePage {
    title: &'static str,
    csrf: String,
    me: Me,
}

async fn home(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: Anyone,
) -> Result<HttpResponse, PageError> {
    let form = csrf::form_token(&req, &state.pages);
    let page = HomePage {
        title: "Dashboard",
        csrf: form.token,
        me: Me::from(&me),
    };
    let html = state.pages.render("dashboard/home.html", page)?;
    Ok(html_page(StatusCode::OK, html, form.set_cookie))
}

#[derive(Serialize)]
struct Member {
    name: String,
    email: String,
    role: &'static str,
    active: bool,
}

#[derive(Serialize)]
struct TeamPage {
    title: &'static str,
    csrf: String,
    me: Me,
    members: Vec<Member>,
    values: InviteValues,
    errors: Vec<FieldMessage>,
    notice: Option<String>,
}

#[derive(Serialize, Default)]
struct InviteValues {
    email: String,
    name: String,
    role: String,
}

async fn team_page(
    state: &AppState,
    req: &HttpRequest,
    me: &Organiser,
    values: InviteValues,
    errors: Vec<FieldMessage>,
    notice: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let members = run(&state.db, accounts::team).await?;
    let form = csrf::form_token(req, &state.pages);
    let page = TeamPage {
        title: "Team",
        csrf: form.token,
        me: Me::from(me),
        members: members
            .into_iter()
            .map(|(o, active)| Member {
                name: o.name,
                email: o.email,
                role: o.role.as_str(),
                active,
            })
            .collect(),
        values,
        errors,
        notice,
    };
    let html = state.pages.render("dashboard/team.html", page)?;
    Ok(html_page(status, html, form.set_cookie))
}

async fn team(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: Owner,
) -> Result<HttpResponse, PageError> {
    let values = InviteValues {
        role: "admin".to_owned(),
        ..Default::default()
    };
    team_page(&state, &req, &me, values, Vec::new(), None, StatusCode::OK).await
}

fn role_named(raw: &str) -> Option<Role> {
    match raw {
        "owner" => Some(Role::Owner),
        "admin" => Some(Role::Admin),
        "checkin" => Some(Role::Checkin),
        _ => None,
    }
}

async fn invite(
    state: web::Data<AppState>,
    req: HttpRequest,
    PostedBy { form, me }: OwnerPost,
) -> Result<HttpResponse, PageError> {
    let text = |name: &str| form.text(name);
    let values = InviteValues {
        email: text("email"),
        name: text("name"),
        role: text("role"),
    };
    let mut errors = Vec::new();
    let role = role_named(&values.role);
    if role.is_none() {
        errors.push(FieldMessage {
            field: "role".to_owned(),
            message: "Choose a role.".to_owned(),
        });
    }
    let new = match NewOrganiser::parse(&values.email, &values.name, role.unwrap_or(Role::Checkin))
    {
        Ok(new) if errors.is_empty() => new,
        Ok(_) => {
            return team_page(
                &state,
                &req,
                &me,
                values,
                errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => {
            errors.extend(FieldMessage::all(&e));
            return team_page(
                &state,
                &req,
                &me,
                values,
                errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let (key, site, now) = (
        state.issuer.key.clone(),
        state.pages.site_name.clone(),
        state.clock.now(),
    );
    let inviter = me.clone();
    let by = Some(me.id);
    let made = run(&state.db, move |conn| -> Result<_, Problem> {
        Ok(audit::recorded(
            conn,
            by,
            |conn| -> Result<_, OrganiserError> {
                let (invited, _) = accounts::invite(conn, &key, &inviter, &new, &site, now)?;
                let record = Record::new("organiser.invite", format!("organiser:{}", invited.id))
                    .after(&serde_json::json!({
                        "name": invited.name,
                        "email": invited.email,
                        "role": invited.role.as_str(),
                    }));
                Ok((invited, record))
            },
        ))
    })
    .await?;
    match made {
        Ok(invited) => {
            tracing::info!(organiser = invited.id, by = me.id, "organiser invited");
            let notice = format!(
                "{} has been invited as {}; the link is on its way to {}.",
                invited.name,
                invited.role.as_str(),
                invited.email
            );
            team_page(
                &state,
                &req,
                &me,
                InviteValues {
                    role: "admin".to_owned(),
                    ..Default::default()
                },
                Vec::new(),
                Some(notice),
                StatusCode::OK,
            )
            .await
        }
        Err(OrganiserError::EmailTaken(email)) => {
            let errors = vec![FieldMessage {
                field: "email".to_owned(),
                message: format!("{email} is an organiser already."),
            }];
            team_page(
                &state,
                &req,
                &me,
                values,
                errors,
                None,
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(OrganiserError::Db(e)) => Err(Problem::from(e).into()),
    }
}

#[derive(Serialize)]
struct TokenLine {
    id: i64,
    label: String,
    created: String,
    revoked: Option<String>,
}

#[derive(Serialize)]
struct TokensPage {
    title: &'static str,
    csrf: String,
    me: Me,
    tokens: Vec<TokenLine>,
    /// A token just made, shown this once.
    new_token: Option<String>,
    label: String,
    errors: Vec<FieldMessage>,
}

async fn tokens_page(
    state: &AppState,
    req: &HttpRequest,
    me: &Organiser,
    new_token: Option<String>,
    label: String,
    errors: Vec<FieldMessage>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let id = me.id;
    let list = run(&state.db, move |conn| {
        crate::organisers::tokens_of(conn, id)
    })
    .await?;
    let form = csrf::form_token(req, &state.pages);
    let when = |t: chrono::DateTime<chrono::Utc>| t.format("%-d %B %Y, %H:%M UTC").to_string();
    let page = TokensPage {
        title: "API tokens",
        csrf: form.token,
        me: Me::from(me),
        tokens: list
            .into_iter()
            .map(|t| TokenLine {
                id: t.id,
                label: t.label,
                created: when(t.created_at),
                revoked: t.revoked_at.map(when),
            })
            .collect(),
        new_token,
        label,
        errors,
    };
    let html = state.pages.render("dashboard/tokens.html", page)?;
    Ok(html_page(status, html, form.set_cookie))
}

async fn tokens(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: Anyone,
) -> Result<HttpResponse, PageError> {
    tokens_page(
        &state,
        &req,
        &me,
        None,
        String::new(),
        Vec::new(),
        StatusCode::OK,
    )
    .await
}

async fn new_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    PostedBy { form, me }: AnyonePost,
) -> Result<HttpResponse, PageError> {
    let raw = form.get("label").unwrap_or_default().to_owned();
    let label = match crate::validation::required_text(&raw, 100) {
        Ok(label) => label,
        Err(m) => {
            let errors = vec![FieldMessage::new("label", &m)];
            return tokens_page(
                &state,
                &req,
                &me,
                None,
                raw,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let id = me.id;
    let issued = run(&state.db, move |conn| {
        audit::recorded(conn, Some(id), |conn| -> Result<_, DbError> {
            let issued = crate::organisers::issue_token(conn, id, &label)?;
            // The label only: the token itself is never stored in the clear.
            let record = Record::new("token.create", format!("organiser:{id}"))
                .after(&serde_json::json!({ "label": label }));
            Ok((issued, record))
        })
    })
    .await?;
    tracing::info!(organiser = me.id, "API token made");
    tokens_page(
        &state,
        &req,
        &me,
        Some(issued.0),
        String::new(),
        Vec::new(),
        StatusCode::OK,
    )
    .await
}

async fn revoke(
    state: web::Data<AppState>,
    PostedBy { me, .. }: AnyonePost,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let token_id: i64 = path.parse().map_err(|_| PageError::not_found())?;
    let (id, now) = (me.id, state.clock.now());
    let revoked = run(&state.db, move |conn| {
        audit::recorded(conn, Some(id), |conn| -> Result<_, DbError> {
            let revoked = crate::organisers::revoke_token(conn, id, token_id, now)?;
            // A token that was not in use is left as it was: nothing to record.
            let record = revoked.then(|| Record::new("token.revoke", format!("token:{token_id}")));
            Ok((revoked, record))
        })
    })
    .await?;
    if !revoked {
        return Err(PageError::from(Problem::new(
            Kind::NotFound,
            "You have no such token in use.",
        )));
    }
    tracing::info!(organiser = me.id, token = token_id, "API token revoked");
    Ok(redirect("/organiser/tokens"))
}
