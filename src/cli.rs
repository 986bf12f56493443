//! The `masterclass` command line: `serve` (the default), `migrate`, `organiser create`, `check`,
//! `bench`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::bench;
use crate::bookings::{check, Issuer};
use crate::clock::Clock;
use crate::config::Settings;
use crate::db;
use crate::mail::{Mailer, Workers};
use crate::organisers::{self, NewOrganiser, Role};
use crate::startup::Application;
use crate::sweeper::{self, Sweeper};
use crate::telemetry;
use crate::tokens::TokenKey;

#[derive(Debug, Parser)]
#[command(
    name = "masterclass",
    version,
    about = "Registration and ticketing for PMO Masterclasses"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web application and API (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage organiser accounts.
    Organiser {
        #[command(subcommand)]
        command: OrganiserCommand,
    },
    /// Recount every session's seats from the seat rows; exit code 1 on any drift.
    Check,
    /// Run the background tasks (email delivery) until stopped with SIGINT or SIGTERM.
    Worker {
        /// Deliver what is due now, then exit.
        #[arg(long)]
        once: bool,
    },
    /// Measure bookings under load: a flash sale and a steady stream, against a running server
    /// or one started on a temporary database.
    Bench(bench::BenchArgs),
}

#[derive(Debug, Subcommand)]
pub enum OrganiserCommand {
    /// Create an organiser and print a new API token (shown once).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value_t = Role::Owner)]
        role: Role,
    },
}

/// Runs the command line; the exit code says how it went.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("masterclass: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log);
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Migrate => migrate(&settings),
        Command::Organiser {
            command: OrganiserCommand::Create { email, name, role },
        } => create_organiser(&settings, &email, &name, role),
        Command::Check => return check(&settings),
        Command::Worker { once } => worker(&settings, once),
        Command::Bench(args) => bench::run(args, &settings.database),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("masterclass: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let host = settings.server.host.clone();
        let backend = settings.database.url.redacted();
        let app = Application::build(settings).await?;
        println!(
            "masterclass listening on http://{host}:{} (database {backend})",
            app.port()
        );
        app.run_until_stopped()
            .await
            .context("server stopped with an error")
    })
}

fn worker(settings: &Settings, once: bool) -> anyhow::Result<()> {
    let key =
        TokenKey::from_settings(&settings.secrets).context("cannot set up the manage-link key")?;
    let db =
        db::Db::connect(&settings.database).context("cannot open the database (database.url)")?;
    db.migrate()?;
    let issuer = Arc::new(Issuer {
        reference_prefix: settings.bookings.reference_prefix.as_str().to_owned(),
        key: key.clone(),
        hold: settings.bookings.hold(),
        offer: settings.bookings.offer(),
    });
    let mailer = Mailer::new(settings, key).context("cannot set up email delivery")?;
    crate::install_crypto_provider();
    let payments = Arc::new(
        crate::payments::Payments::from_settings(&settings.payments)
            .context("cannot set up card payments (payments)")?,
    );
    if once {
        let swept = sweeper::sweep(&db, &issuer, &payments, &Clock::system())?;
        println!(
            "holds expired {}, offers lapsed {}, payments checked {}, settled {}, refunds sent {}",
            swept.holds_expired,
            swept.offers_lapsed,
            swept.payments.checked,
            swept.payments.settled,
            swept.payments.refunds_sent
        );
        let round = mailer.drain(&db)?;
        println!(
            "claimed {}, sent {}, retrying {}, dead {}",
            round.claimed, round.sent, round.retrying, round.dead
        );
        return Ok(());
    }
    let sweeper = Sweeper::start(
        db.clone(),
        issuer,
        payments,
        Clock::system(),
        std::time::Duration::from_millis(u64::from(settings.bookings.sweep_interval_ms.get())),
    );
    let workers = Workers::start(db, Arc::new(mailer));
    println!("masterclass worker running; stop with SIGINT or SIGTERM");
    wait_for_stop_signal()?;
    workers.stop();
    sweeper.stop();
    println!("masterclass worker stopped");
    Ok(())
}

/// Blocks until SIGINT or SIGTERM.
fn wait_for_stop_signal() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted,
            _ = terminate.recv() => Ok(()),
        }
    })?;
    Ok(())
}

fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let mut conn =
        db::connect_once(&settings.database).context("cannot open the database (database.url)")?;
    let applied = db::migrate(&mut conn)?;
    if applied.is_empty() {
        println!("database is up to date");
    } else {
        println!("applied migrations: {}", applied.join(", "));
    }
    Ok(())
}

fn create_organiser(
    settings: &Settings,
    email: &str,
    name: &str,
    role: Role,
) -> anyhow::Result<()> {
    let new = NewOrganiser::parse(email, name, role)?;
    let mut conn =
        db::connect_once(&settings.database).context("cannot open the database (database.url)")?;
    db::migrate(&mut conn)?;
    let (organiser, token) = organisers::create_with_token(&mut conn, &new, "cli")?;
    println!(
        "created organiser {} <{}> ({})",
        organiser.name,
        organiser.email,
        organiser.role.as_str()
    );
    println!("API token (shown once, keep it safe): {}", token.0);
    // And a link to choose a dashboard password (also emailed to them).
    let key = crate::tokens::TokenKey::from_settings(&settings.secrets)
        .context("cannot set up the link key (secrets)")?;
    let link = organisers::accounts::invite_link(
        &mut conn,
        &key,
        &organiser,
        &settings.pages.site_name,
        chrono::Utc::now(),
    )?;
    println!(
        "Choose a dashboard password within {} days: {}/organiser/password/{}",
        organisers::accounts::INVITE_DAYS,
        settings.server.public_base_url.trim_end_matches('/'),
        organisers::accounts::link_token(&key, link)
    );
    Ok(())
}

fn check(settings: &Settings) -> ExitCode {
    let counts =
        db::connect_once(&settings.database).and_then(|mut conn| check::recount(&mut conn));
    let counts = match counts {
        Ok(c) => c,
        Err(e) => {
            eprintln!("masterclass: cannot recount seats: {e:#}");
            return ExitCode::from(2);
        }
    };
    let drifted: Vec<_> = counts.iter().filter(|c| c.drifted()).collect();
    for c in &drifted {
        println!(
            "DRIFT session {} \"{}\": counter {} but {} seats and offers, capacity {}",
            c.session_id, c.title, c.taken, c.counted, c.capacity
        );
    }
    let stuck: Vec<_> = counts.iter().filter(|c| c.stuck()).collect();
    for c in &stuck {
        println!(
            "STUCK session {} \"{}\": {} of {} seats taken while {} people wait",
            c.session_id, c.title, c.taken, c.capacity, c.waiting
        );
    }
    println!(
        "checked {} sessions: {} with drift, {} with a free seat nobody waiting was offered",
        counts.len(),
        drifted.len(),
        stuck.len()
    );
    if drifted.is_empty() && stuck.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
