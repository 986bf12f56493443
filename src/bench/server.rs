//! The server a bench run starts for itself: a scratch database, an organiser token made directly
//! in it, and `masterclass serve` as a child process on a free loopback port.

use std::net::IpAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::BenchBackend;
use crate::config::DatabaseSettings;
use crate::db::{self, DatabaseUrl};
use crate::organisers::{self, NewOrganiser, Role};

/// Where a PostgreSQL bench run may create (and drop) its scratch database.
const ADMIN_URL_VARIABLE: &str = "MASTERCLASS_BENCH_DATABASE_URL";
/// Loopback without TLS, as a server next to its database connects: on loopback TLS only costs
/// CPU (about an eighth of a booking's here, both ends counted).
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable";

/// A database that exists only for one run; removed by [`Scratch::remove`] or, failing that, on drop.
pub(super) enum Scratch {
    Sqlite {
        dir: tempfile::TempDir,
    },
    Postgres {
        admin_url: String,
        name: String,
        dropped: bool,
    },
}

impl Scratch {
    /// Blocking: call from `spawn_blocking`.
    pub(super) fn create(backend: BenchBackend) -> anyhow::Result<Self> {
        match backend {
            BenchBackend::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("mc_bench_")
                    .tempdir()
                    .context("cannot create a temporary folder for the SQLite database")?;
                warn_if_in_memory(dir.path());
                Ok(Self::Sqlite { dir })
            }
            BenchBackend::Postgres => {
                let admin_url = std::env::var(ADMIN_URL_VARIABLE)
                    .unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
                let name = format!("mc_bench_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::establish(&admin_url).with_context(|| {
                    format!(
                        "cannot reach PostgreSQL at {ADMIN_URL_VARIABLE} or {DEFAULT_ADMIN_URL}"
                    )
                })?;
                diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut conn)
                    .with_context(|| format!("cannot create the database {name}"))?;
                Ok(Self::Postgres {
                    admin_url,
                    name,
                    dropped: false,
                })
            }
        }
    }

    /// The URL the server is given.
    pub(super) fn url(&self) -> anyhow::Result<String> {
        match self {
            Self::Sqlite { dir } => Ok(format!(
                "sqlite://{}",
                dir.path().join("bench.db").display()
            )),
            Self::Postgres {
                admin_url, name, ..
            } => sibling_database_url(admin_url, name),
        }
    }

    /// Blocking: drops the PostgreSQL database even while connections to it are open.
    pub(super) fn remove(&mut self) -> anyhow::Result<()> {
        if let Self::Postgres {
            admin_url,
            name,
            dropped,
        } = self
        {
            if !*dropped {
                let mut conn = PgConnection::establish(admin_url)
                    .context("cannot reach PostgreSQL to drop the bench database")?;
                diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .with_context(|| format!("cannot drop the database {name}"))?;
                *dropped = true;
            }
        }
        // The SQLite folder goes when `dir` is dropped.
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("bench: {e:#}");
        }
    }
}

/// `masterclass serve` on a scratch database, with an organiser token for the bench.
pub struct LocalServer {
    // Declared before `database` so that an early drop kills the server before the database goes.
    child: Child,
    database: Scratch,
    pid: u32,
    base_url: String,
    token: String,
}

impl LocalServer {
    /// Creates and migrates the database, makes a token, starts the server and waits until it
    /// listens. Whatever was made is undone if this fails or is cancelled.
    pub async fn start(backend: BenchBackend, settings: DatabaseSettings) -> anyhow::Result<Self> {
        let database = tokio::task::spawn_blocking(move || Scratch::create(backend))
            .await
            .context("database set-up stopped")??;
        let url = database.url()?;
        let token = {
            let url = url.clone();
            tokio::task::spawn_blocking(move || organiser_token(&url, settings))
                .await
                .context("organiser set-up stopped")??
        };
        let exe = std::env::current_exe().context("cannot find this program's own path")?;
        let mut child = Command::new(exe)
            .arg("serve")
            // A profile could change durability or workers: the server runs on the built-in
            // defaults (`synchronous = full`, one worker per core), as a fresh install would.
            .env_remove("MASTERCLASS_ENV")
            .env_remove("RUST_LOG")
            .env("MASTERCLASS__DATABASE__URL", &url)
            .env("MASTERCLASS__SERVER__HOST", "127.0.0.1")
            .env("MASTERCLASS__SERVER__PORT", "0")
            .env("MASTERCLASS__DEMO", "false")
            .env("MASTERCLASS__LOG__LEVEL", "warn")
            // The booking benchmark measures bookings: their confirmation jobs are written to the
            // outbox in the same transaction, as always, but not delivered during the run.
            .env("MASTERCLASS__MAIL__WORKER_IN_SERVE", "false")
            // A key of its own, so nothing is written next to wherever the bench was started.
            .env(
                "MASTERCLASS__SECRETS__TOKEN_KEY",
                crate::tokens::random_token("bench-key-"),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start `masterclass serve`")?;
        let pid = child.id().context("the server exited at once")?;
        let stdout = child
            .stdout
            .take()
            .context("the server's output is not readable")?;
        let mut lines = BufReader::new(stdout).lines();
        let base_url = loop {
            let line = lines
                .next_line()
                .await
                .context("cannot read the server's output")?;
            let Some(line) = line else {
                anyhow::bail!(
                    "`masterclass serve` stopped before it listened (its messages are above)"
                );
            };
            if let Some(rest) = line.strip_prefix("masterclass listening on ") {
                let address = rest.split_whitespace().next().unwrap_or_default();
                break loopback_address(address)?;
            }
        };
        // Keep reading so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            database,
            pid,
            base_url,
            token,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The scratch PostgreSQL database's name, to pick out its backends.
    pub fn postgres_database(&self) -> Option<&str> {
        match &self.database {
            Scratch::Postgres { name, .. } => Some(name),
            Scratch::Sqlite { .. } => None,
        }
    }

    /// Stops the server, then removes the database; problems are reported, not returned, so
    /// they never hide the run's own outcome.
    pub async fn shutdown(self) {
        let Self {
            mut child,
            mut database,
            ..
        } = self;
        if let Err(e) = child.start_kill() {
            eprintln!("bench: cannot stop the server: {e}");
        }
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            eprintln!("bench: the server did not stop within 10 s");
        }
        let removed = tokio::task::spawn_blocking(move || database.remove()).await;
        match removed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("bench: {e:#}"),
            Err(e) => eprintln!("bench: dropping the database stopped: {e}"),
        }
    }
}

/// Migrates the new database and makes an owner with an API token in it. Blocking.
fn organiser_token(url: &str, settings: DatabaseSettings) -> anyhow::Result<String> {
    let settings = DatabaseSettings {
        url: DatabaseUrl::parse(url).context("bench database URL")?,
        ..settings
    };
    let mut conn = db::connect_once(&settings).context("cannot open the bench database")?;
    db::migrate(&mut conn)?;
    let organiser = NewOrganiser::parse("bench@example.org", "Benchmark", Role::Owner)?;
    let (_, token) = organisers::create_with_token(&mut conn, &organiser, "bench")?;
    Ok(token.0)
}

/// The admin URL with its database name replaced, keeping any `?options`.
fn sibling_database_url(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let (location, query) = match admin_url.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (admin_url, None),
    };
    let scheme_end = location.find("://").map_or(0, |i| i + 3);
    let base = match location.rfind('/') {
        Some(slash) if slash >= scheme_end => &location[..slash],
        _ => location,
    };
    anyhow::ensure!(
        base.len() > scheme_end,
        "{ADMIN_URL_VARIABLE} is not a postgres:// URL"
    );
    Ok(match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    })
}

/// Checks that the server's announced address is on this machine, and returns it.
fn loopback_address(address: &str) -> anyhow::Result<String> {
    let url = reqwest::Url::parse(address)
        .with_context(|| format!("the server announced an odd address {address:?}"))?;
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host == "localhost",
    };
    anyhow::ensure!(loopback, "the server listens on {address}, not on loopback");
    Ok(address.trim_end_matches('/').to_owned())
}

/// SQLite on a RAM file system never waits for a disk, which would flatter its figures.
fn warn_if_in_memory(path: &std::path::Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return;
    };
    let fs_type = mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _device = fields.next()?;
            let mount_point = fields.next()?;
            let fs_type = fields.next()?;
            path.starts_with(mount_point)
                .then_some((mount_point.len(), fs_type))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, fs_type)| fs_type.to_owned());
    if let Some(fs_type @ ("tmpfs" | "ramfs")) = fs_type.as_deref() {
        eprintln!(
            "bench: WARNING: {} is on {fs_type}; SQLite commits will not touch a disk. Set TMPDIR to a folder on disk for honest figures.",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{loopback_address, sibling_database_url};

    #[test]
    fn the_bench_database_sits_beside_the_admin_database() {
        assert_eq!(
            sibling_database_url("postgres://postgres@127.0.0.1:5432/postgres", "mc_bench_x")
                .ok()
                .as_deref(),
            Some("postgres://postgres@127.0.0.1:5432/mc_bench_x")
        );
        assert_eq!(
            sibling_database_url("postgres://u:p@db:5432/admin?sslmode=disable", "b")
                .ok()
                .as_deref(),
            Some("postgres://u:p@db:5432/b?sslmode=disable")
        );
        assert_eq!(
            sibling_database_url("postgres://u@db", "b").ok().as_deref(),
            Some("postgres://u@db/b")
        );
    }

    #[test]
    fn only_a_loopback_server_is_accepted() {
        assert!(loopback_address("http://127.0.0.1:4321").is_ok());
        assert!(loopback_address("http://[::1]:4321").is_ok());
        assert!(loopback_address("http://192.0.2.7:4321").is_err());
    }
}
