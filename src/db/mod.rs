//! Everything that differs between SQLite and PostgreSQL lives here: connecting, connection set-up,
//! migrations and how a write transaction begins. Domain code sees one connection type, [`DbConn`].

pub mod schema;

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{NaiveDateTime, SubsecRound, Utc};
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use secrecy::{ExposeSecret, SecretString};

use crate::config::DatabaseSettings;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Serialises concurrent `migrate` runs of several processes on one PostgreSQL database.
const MIGRATION_LOCK_KEY: i64 = 0x6d61_7374_6572;

/// One connection to either backend; queries written once run on both.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database location, parsed from the configured URL.
#[derive(Clone)]
pub struct DatabaseUrl {
    backend: Backend,
    /// What the driver is given: the URL itself for PostgreSQL, the file path for SQLite.
    target: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("the URL is empty")]
    Empty,
    #[error("unsupported scheme (use postgres://, postgresql:// or sqlite://)")]
    UnknownScheme,
    #[error("an in-memory SQLite database cannot be shared by a connection pool; name a file")]
    InMemory,
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let url = url.trim();
        if url.is_empty() {
            return Err(UrlError::Empty);
        }
        let (backend, target) =
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                (Backend::Postgres, url.to_owned())
            } else if let Some(path) = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
            {
                if path.is_empty() || path.contains(":memory:") || path.contains("mode=memory") {
                    return Err(UrlError::InMemory);
                }
                (Backend::Sqlite, path.to_owned())
            } else if url.contains("://") {
                return Err(UrlError::UnknownScheme);
            } else {
                // A bare path is an SQLite file, as `sqlite3 FILE` would take it.
                (Backend::Sqlite, url.to_owned())
            };
        Ok(Self {
            backend,
            target: SecretString::from(target),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The SQLite file path, for creating its folder; `None` for PostgreSQL.
    pub fn sqlite_path(&self) -> Option<&str> {
        match self.backend {
            Backend::Sqlite => Some(self.target.expose_secret()),
            Backend::Postgres => None,
        }
    }

    /// The URL without any password (nor query string, which may hold one), for logs.
    pub fn redacted(&self) -> String {
        let raw = self.target.expose_secret();
        let raw = raw.split('?').next().unwrap_or(raw);
        match self.backend {
            Backend::Sqlite => format!("sqlite://{raw}"),
            Backend::Postgres => match (raw.find("://"), raw.rfind('@')) {
                (Some(scheme_end), Some(at)) if at > scheme_end => {
                    let userinfo = &raw[scheme_end + 3..at];
                    let user = userinfo.split(':').next().unwrap_or_default();
                    format!("{}{}:***{}", &raw[..scheme_end + 3], user, &raw[at..])
                }
                _ => raw.to_owned(),
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no database connection available")]
    Pool(#[from] r2d2::PoolError),
    #[error("cannot connect to the database")]
    Connect(#[from] r2d2::Error),
    #[error("database query failed")]
    Query(#[from] diesel::result::Error),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("cannot create the folder for the SQLite database")]
    Folder(#[source] std::io::Error),
    /// Stored data that breaks a rule the code relies on; a bug or a hand edit.
    #[error("inconsistent data: {0}")]
    Inconsistent(String),
}

/// Opens connections of the configured backend and prepares each one for use.
#[derive(Clone)]
pub struct Manager {
    url: DatabaseUrl,
    sqlite_busy_timeout_ms: u32,
    sqlite_synchronous: String,
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        let target = self.url.target.expose_secret();
        match self.url.backend {
            Backend::Postgres => PgConnection::establish(target)
                .map(DbConn::Pg)
                .map_err(r2d2::Error::ConnectionError),
            Backend::Sqlite => {
                let mut conn =
                    SqliteConnection::establish(target).map_err(r2d2::Error::ConnectionError)?;
                // WAL lets readers run beside the one writer; the busy timeout makes a second writer
                // wait for the first instead of failing; foreign keys are off by default in SQLite.
                conn.batch_execute(&format!(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON;",
                    self.sqlite_synchronous, self.sqlite_busy_timeout_ms
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConn::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        <DbConn as Connection>::TransactionManager::is_broken_transaction_manager(conn)
    }
}

pub type PooledConn = r2d2::PooledConnection<Manager>;

/// The connection pool every request, worker and command goes through.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<Manager>,
    backend: Backend,
}

impl Db {
    /// Builds the pool and checks that one connection can be made.
    pub fn connect(settings: &DatabaseSettings) -> Result<Self, DbError> {
        create_sqlite_folder(&settings.url)?;
        let manager = manager(settings);
        let pool = r2d2::Pool::builder()
            .max_size(settings.pool_size)
            .min_idle(Some(1))
            // A broken connection shows itself on use (and `has_broken` drops it); testing each
            // one on checkout would add a round trip to every request.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(settings.connect_timeout_seconds))
            .build(manager)?;
        Ok(Self {
            pool,
            backend: settings.url.backend(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A connection from the pool. Blocking: call from `web::block` or `spawn_blocking`.
    pub fn conn(&self) -> Result<PooledConn, DbError> {
        Ok(self.pool.get()?)
    }

    /// Applies every migration not yet applied; safe to run from several processes at once.
    pub fn migrate(&self) -> Result<Vec<String>, DbError> {
        let mut conn = self.conn()?;
        migrate(&mut conn)
    }
}

/// One connection outside any pool, for short commands (`migrate`, `check`): no pool threads
/// are left connecting in the background when the process exits.
pub fn connect_once(settings: &DatabaseSettings) -> Result<DbConn, DbError> {
    create_sqlite_folder(&settings.url)?;
    Ok(manager(settings).connect()?)
}

/// Applies every migration not yet applied on `conn`.
pub fn migrate(conn: &mut DbConn) -> Result<Vec<String>, DbError> {
    let applied = match conn {
        DbConn::Pg(pg) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                .execute(pg)?;
            let result = pg
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|v| versions(&v));
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                .execute(pg)?;
            result
        }
        DbConn::Sqlite(lite) => lite
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|v| versions(&v)),
    };
    applied.map_err(|e| DbError::Migration(e.to_string()))
}

fn manager(settings: &DatabaseSettings) -> Manager {
    Manager {
        sqlite_busy_timeout_ms: settings.sqlite_busy_timeout_ms,
        sqlite_synchronous: settings.sqlite_synchronous.as_pragma().to_owned(),
        url: settings.url.clone(),
    }
}

fn create_sqlite_folder(url: &DatabaseUrl) -> Result<(), DbError> {
    if let Some(path) = url.sqlite_path() {
        if let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(DbError::Folder)?;
        }
    }
    Ok(())
}

fn versions(applied: &[diesel::migration::MigrationVersion<'_>]) -> Vec<String> {
    applied.iter().map(|v| v.to_string()).collect()
}

/// Runs `f` in a transaction meant to write.
///
/// On SQLite the transaction starts with `BEGIN IMMEDIATE`, so it takes the write lock before
/// reading: two writers then queue on the busy timeout instead of one failing with SQLITE_BUSY
/// when it tries to upgrade a read lock. PostgreSQL needs nothing special: the conditional updates
/// and row locks inside `f` do the work.
///
/// Called inside another write transaction, `f` runs in a savepoint of it: its changes commit
/// with the outer transaction, and an error rolls back `f`'s changes only. That is how a caller
/// makes one unit of a domain change and what it records about it (the audit row). Never call it
/// inside [`read_snapshot`], which is read-only.
pub fn write_transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    if in_transaction(conn) {
        // The outer transaction holds SQLite's write lock (and this process's writer lock)
        // already; taking them again would wait on ourselves.
        <DbConn as Connection>::TransactionManager::begin_transaction(conn)?;
        return finish(conn, f);
    }
    let _writer = match conn {
        DbConn::Sqlite(lite) => {
            let guard = SQLITE_WRITER.lock().unwrap_or_else(PoisonError::into_inner);
            AnsiTransactionManager::begin_transaction_sql(lite, "BEGIN IMMEDIATE")?;
            Some(guard)
        }
        DbConn::Pg(_) => {
            <DbConn as Connection>::TransactionManager::begin_transaction(conn)?;
            None
        }
    };
    finish(conn, f)
}

/// Runs `f` in a read-only transaction that sees one consistent snapshot of the database
/// (PostgreSQL: REPEATABLE READ; SQLite: any read transaction in WAL mode), for reports that
/// compare several tables.
pub fn read_snapshot<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    if in_transaction(conn) {
        // A caller's transaction is no snapshot (READ COMMITTED on PostgreSQL): refused rather
        // than reporting from a moving state.
        return Err(diesel::result::Error::AlreadyInTransaction.into());
    }
    match conn {
        DbConn::Pg(pg) => AnsiTransactionManager::begin_transaction_sql(
            pg,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        )?,
        DbConn::Sqlite(lite) => {
            AnsiTransactionManager::begin_transaction_sql(lite, "BEGIN DEFERRED")?
        }
    }
    finish(conn, f)
}

/// Whether `conn` is inside a transaction.
pub fn in_transaction(conn: &mut DbConn) -> bool {
    <DbConn as Connection>::TransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .is_ok_and(|depth| depth.is_some())
}

/// Runs `f` in the transaction just begun: commit on `Ok`, roll back on `Err`.
fn finish<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match f(conn) {
        Ok(value) => {
            <DbConn as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(err) => {
            if let Err(rollback) =
                <DbConn as Connection>::TransactionManager::rollback_transaction(conn)
            {
                tracing::error!(error = %rollback, "rollback failed");
            }
            Err(err)
        }
    }
}

/// SQLite takes one writer at a time. Writers of this process queue on this lock instead of on
/// SQLite's busy handler, which sleeps and polls: under load a writer could lose that race for
/// seconds. The busy timeout still covers writers in other processes.
static SQLITE_WRITER: Mutex<()> = Mutex::new(());

/// Whether a failed statement broke a unique constraint.
pub fn is_unique_violation(err: &diesel::result::Error) -> bool {
    matches!(
        err,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Whether `err` is a unique violation of an index on `column` (PostgreSQL names the index,
/// SQLite the column), so one insert can tell which of its unique columns clashed without a
/// further query (which PostgreSQL would refuse in the failed transaction).
pub fn is_unique_violation_of(err: &diesel::result::Error, column: &str) -> bool {
    match err {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            info,
        ) => {
            info.constraint_name().is_some_and(|c| c.contains(column))
                || info.message().contains(column)
        }
        _ => false,
    }
}

/// The current time as stored: UTC, to the microsecond (PostgreSQL's precision).
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// A time as stored: UTC, to the microsecond.
pub fn stored(at: chrono::DateTime<Utc>) -> NaiveDateTime {
    at.naive_utc().trunc_subsecs(6)
}

diesel::define_sql_function! {
    /// SQL `lower()`, for searches in any case on both backends (PostgreSQL's `LIKE` minds case).
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

diesel::define_sql_function! {
    /// SQL `lower()` of a column that may be empty.
    #[sql_name = "lower"]
    fn lower_nullable(
        text: diesel::sql_types::Nullable<diesel::sql_types::Text>,
    ) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// `text` for a `LIKE … ESCAPE '\'` pattern with its wildcards (`%`, `_`) and the escape
/// character taken literally, the same on SQLite and PostgreSQL.
pub fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
