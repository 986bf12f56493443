//! Building the HTTP application: state, middleware and the one route table.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, Service, ServiceFactory, ServiceRequest};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, App, HttpMessage, HttpRequest, HttpResponse, HttpServer};
use anyhow::Context;
use tracing_actix_web::{RequestId, TracingLogger};
use utoipa::OpenApi;
use utoipa_actix_web::{scope, AppExt, UtoipaApp};

use crate::api::{ApiDoc, AppState, Kind, Problem};
use crate::bookings::Issuer;
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::Db;
use crate::mail::{Mailer, Workers};
use crate::payments::Payments;
use crate::sweeper::Sweeper;
use crate::telemetry::RequestSpan;
use crate::tokens::TokenKey;
use crate::{bookings, checkin, demo, events, health, mail, payments, sessions, waitlist};

/// A server bound to its port, not yet running.
pub struct Application {
    server: Server,
    port: u16,
    db: Db,
    /// The delivery worker, when it runs inside `serve`.
    workers: Option<Workers>,
    /// The hold and offer sweeper, when it runs inside `serve`.
    sweeper: Option<Sweeper>,
}

impl Application {
    /// Connects to the database, applies migrations, seeds the demo programme when asked, and
    /// binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Clock::system()).await
    }

    /// Like [`Application::build`], reading the time for deadlines from `clock` (tests pass a
    /// clock they move by hand).
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        let key = TokenKey::from_settings(&settings.secrets)
            .context("cannot set up the manage-link key")?;
        let issuer = Arc::new(Issuer {
            reference_prefix: settings.bookings.reference_prefix.as_str().to_owned(),
            key: key.clone(),
            hold: settings.bookings.hold(),
            offer: settings.bookings.offer(),
        });
        crate::install_crypto_provider();
        let pages = Arc::new(
            crate::pages::Pages::new(&settings, key.clone())
                .context("cannot set up the attendee pages (pages)")?,
        );
        let payments = Arc::new(
            Payments::from_settings(&settings.payments)
                .context("cannot set up card payments (payments)")?,
        );
        let db = prepare_database(&settings, &issuer).await?;
        let sweeper = settings.bookings.sweeper_in_serve.then(|| {
            Sweeper::start(
                db.clone(),
                issuer.clone(),
                payments.clone(),
                clock.clone(),
                Duration::from_millis(u64::from(settings.bookings.sweep_interval_ms.get())),
            )
        });
        let mail_workers = if settings.mail.worker_in_serve {
            let mailer = Mailer::new(&settings, key).context("cannot set up email delivery")?;
            Some(Workers::start(db.clone(), Arc::new(mailer)))
        } else {
            None
        };
        let address = (settings.server.host.as_str(), settings.server.port);
        let listener = TcpListener::bind(address).with_context(|| {
            format!(
                "cannot listen on {}:{} (server.host, server.port)",
                address.0, address.1
            )
        })?;
        let port = listener.local_addr()?.port();
        let workers = settings.server.workers;
        let state = AppState {
            db: db.clone(),
            settings: Arc::new(settings),
            issuer,
            programmes: Arc::new(sessions::ProgrammeCache::new()),
            clock,
            payments,
            pages,
        };
        let openapi = openapi_document();
        let mut server = HttpServer::new(move || {
            let doc = openapi.clone();
            let app = App::new()
                .app_data(web::Data::new(state.clone()))
                .app_data(web::PathConfig::default().error_handler(|err, _| {
                    Problem::new(Kind::NotFound, format!("No such resource: {err}")).into()
                }))
                .app_data(web::QueryConfig::default().error_handler(|err, _| {
                    Problem::from(crate::validation::ValidationError::single(
                        "query",
                        err.to_string(),
                    ))
                    .into()
                }))
                // Before the `/api/v1` scope, which would otherwise claim the path.
                .route(
                    "/api/v1/openapi.json",
                    web::get().to(move || {
                        let doc = doc.clone();
                        async move { HttpResponse::Ok().json(doc) }
                    }),
                );
            mount_routes(app.into_utoipa_app())
                .into_app()
                .configure(crate::pages::routes)
                .default_service(web::to(|req: HttpRequest| async move {
                    if crate::pages::is_page_path(req.path()) {
                        Err::<HttpResponse, actix_web::Error>(
                            crate::pages::PageError::not_found().into(),
                        )
                    } else {
                        Err(Problem::new(Kind::NotFound, "There is nothing at this address").into())
                    }
                }))
                // Pages get their security headers, and their errors are shown as pages.
                .wrap_fn(|req, srv| {
                    let pages = crate::pages::is_page_path(req.path())
                        .then(|| crate::pages::of(&req))
                        .flatten();
                    let call = srv.call(req);
                    async move {
                        let response = call.await?;
                        match pages {
                            Some(pages) => crate::pages::finish_response(response, &pages),
                            None => Ok(response),
                        }
                    }
                })
                .wrap_fn(|req, srv| {
                    let started = Instant::now();
                    let method = req.method().clone();
                    let route = req
                        .match_pattern()
                        .unwrap_or_else(|| "unmatched".to_owned());
                    let request_id = req.extensions().get::<RequestId>().map(|id| id.to_string());
                    let call = srv.call(req);
                    async move {
                        let mut response = call.await?;
                        let status = response.status().as_u16();
                        tracing::info!(
                            method = %method,
                            route = %route,
                            status,
                            ms = %format_args!("{:.2}", started.elapsed().as_secs_f64() * 1000.0),
                            "handled"
                        );
                        if let Some(value) =
                            request_id.and_then(|id| HeaderValue::from_str(&id).ok())
                        {
                            response
                                .headers_mut()
                                .insert(HeaderName::from_static("x-request-id"), value);
                        }
                        Ok(response)
                    }
                })
                .wrap(TracingLogger::<RequestSpan>::new())
        })
        .listen(listener)?;
        if workers > 0 {
            server = server.workers(workers);
        }
        Ok(Self {
            server: server.run(),
            port,
            db,
            workers: mail_workers,
            sweeper,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn db(&self) -> Db {
        self.db.clone()
    }

    /// Serves until the process is told to stop (SIGINT/SIGTERM finish in-flight requests).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        if let Some(sweeper) = self.sweeper {
            let _ = tokio::task::spawn_blocking(move || sweeper.stop()).await;
        }
        if let Some(workers) = self.workers {
            // Senders finish the message in hand and hand the rest back.
            let _ = tokio::task::spawn_blocking(move || workers.stop()).await;
        }
        served
    }
}

/// The one route table: every API route is mounted here, and the OpenAPI document is collected
/// from the same calls, so the two cannot drift apart.
fn mount_routes<T>(app: UtoipaApp<T>) -> UtoipaApp<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    app.configure(health::routes).service(
        scope::scope("/api/v1")
            .configure(events::http::public_routes)
            .configure(bookings::http::public_routes)
            .configure(waitlist::http::public_routes)
            .configure(mail::http::public_routes)
            .configure(payments::http::public_routes)
            .configure(events::http::admin_routes)
            .configure(sessions::http::admin_routes)
            .configure(bookings::http::admin_routes)
            .configure(waitlist::http::admin_routes)
            .configure(mail::http::admin_routes)
            .configure(crate::exports::http::admin_routes)
            .configure(payments::http::admin_routes)
            .configure(checkin::http::admin_routes),
    )
}

/// The OpenAPI document of every route [`mount_routes`] mounts.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    mount_routes(App::new().into_utoipa_app().openapi(ApiDoc::openapi()))
        .split_for_parts()
        .1
}

/// Opens the pool, migrates, and creates the demo programme on an empty database.
async fn prepare_database(settings: &Settings, issuer: &Arc<Issuer>) -> anyhow::Result<Db> {
    let database = settings.database.clone();
    let demo = settings.demo;
    let issuer = issuer.clone();
    let (db, demo_token) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let db = Db::connect(&database).with_context(|| {
            format!(
                "cannot open the database at {} (database.url)",
                database.url.redacted()
            )
        })?;
        db.migrate().context("cannot apply database migrations")?;
        let token = if demo {
            let mut conn = db.conn()?;
            demo::seed_if_empty(&mut conn, &issuer).context("cannot create the demo programme")?
        } else {
            None
        };
        Ok((db, token))
    })
    .await??;
    if let Some(token) = demo_token {
        // Printed, not logged: a token must not end up in log storage.
        println!("Demo programme created. Demo organiser API token (shown once): {token}");
    }
    Ok(db)
}
