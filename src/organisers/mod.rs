//! Organisers and their API tokens. A token is shown once when made; only its hash is stored.
//! Signing in to the dashboard is in [`accounts`].

pub mod accounts;
pub mod sign_in_limits;

use diesel::prelude::*;

use crate::db::schema::{api_tokens, organisers};
use crate::db::{self, DbConn, DbError};
use crate::tokens::{hash_token, plausible, random_token};
use crate::validation::{required_text, Email, Fields, ValidationError};

/// What an organiser may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Role {
    /// Check attendees in, nothing else.
    Checkin,
    /// Events, sessions, bookings, payments.
    Admin,
    /// Everything, including organisers.
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Checkin => "checkin",
        }
    }

    fn from_db(raw: &str) -> Self {
        match raw {
            "owner" => Self::Owner,
            "admin" => Self::Admin,
            _ => Self::Checkin,
        }
    }

    /// Whether this role includes everything `needed` allows.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

#[derive(Debug, Clone)]
pub struct Organiser {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = organisers)]
pub(crate) struct OrganiserRow {
    id: i64,
    email: String,
    name: String,
    role: String,
}

impl From<OrganiserRow> for Organiser {
    fn from(row: OrganiserRow) -> Self {
        Self {
            id: row.id,
            email: row.email,
            name: row.name,
            role: Role::from_db(&row.role),
        }
    }
}

/// A new organiser, valid by construction.
#[derive(Debug, Clone)]
pub struct NewOrganiser {
    pub email: Email,
    pub name: String,
    pub role: Role,
}

impl NewOrganiser {
    pub fn parse(email: &str, name: &str, role: Role) -> Result<Self, ValidationError> {
        let mut fields = Fields::new();
        let email = fields.check("email", Email::parse(email));
        let name = fields.check("name", required_text(name, 200));
        fields.finish()?;
        match (email, name) {
            (Some(email), Some(name)) => Ok(Self { email, name, role }),
            _ => Err(ValidationError::single("organiser", "is not valid")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OrganiserError {
    #[error("an organiser with email {0} exists already")]
    EmailTaken(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for OrganiserError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Db(err.into())
    }
}

/// A freshly made API token, in the clear; it cannot be shown again.
pub struct IssuedToken(pub String);

/// Creates an organiser and a first API token for them.
pub fn create_with_token(
    conn: &mut DbConn,
    new: &NewOrganiser,
    label: &str,
) -> Result<(Organiser, IssuedToken), OrganiserError> {
    db::write_transaction(conn, |conn| insert_with_token(conn, new, label))
}

/// [`create_with_token`] inside the caller's transaction.
pub fn insert_with_token(
    conn: &mut DbConn,
    new: &NewOrganiser,
    label: &str,
) -> Result<(Organiser, IssuedToken), OrganiserError> {
    let organiser = insert(conn, new)?;
    let token = issue_token(conn, organiser.id, label)?;
    Ok((organiser, token))
}

/// Creates an organiser (without password or token) inside the caller's transaction.
pub fn insert(conn: &mut DbConn, new: &NewOrganiser) -> Result<Organiser, OrganiserError> {
    let inserted = diesel::insert_into(organisers::table)
        .values((
            organisers::email.eq(new.email.normalized()),
            organisers::name.eq(&new.name),
            organisers::role.eq(new.role.as_str()),
            organisers::created_at.eq(db::now()),
        ))
        .returning(organisers::id)
        .get_result::<i64>(conn);
    let organiser: Organiser = match inserted {
        Ok(id) => organisers::table
            .find(id)
            .select(OrganiserRow::as_select())
            .first(conn)?
            .into(),
        Err(e) if db::is_unique_violation(&e) => {
            return Err(OrganiserError::EmailTaken(new.email.normalized()))
        }
        Err(e) => return Err(e.into()),
    };
    Ok(organiser)
}

/// Makes another API token for an organiser.
pub fn issue_token(
    conn: &mut DbConn,
    organiser_id: i64,
    label: &str,
) -> Result<IssuedToken, DbError> {
    let token = random_token("mct_");
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::organiser_id.eq(organiser_id),
            api_tokens::token_hash.eq(hash_token(&token)),
            api_tokens::label.eq(label),
            api_tokens::created_at.eq(db::now()),
        ))
        .execute(conn)?;
    Ok(IssuedToken(token))
}

/// The organiser a bearer token belongs to, if it is known and not revoked.
pub fn authenticate(conn: &mut DbConn, token: &str) -> Result<Option<Organiser>, DbError> {
    if !plausible(token) {
        return Ok(None);
    }
    let found = api_tokens::table
        .inner_join(organisers::table)
        .filter(api_tokens::token_hash.eq(hash_token(token)))
        .filter(api_tokens::revoked_at.is_null())
        .select(OrganiserRow::as_select())
        .first(conn)
        .optional()?;
    Ok(found.map(Organiser::from))
}

/// An API token as its owner sees it (never the token itself).
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub id: i64,
    pub label: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// An organiser's API tokens, newest first.
pub fn tokens_of(conn: &mut DbConn, organiser_id: i64) -> Result<Vec<TokenInfo>, DbError> {
    let rows: Vec<(
        i64,
        String,
        chrono::NaiveDateTime,
        Option<chrono::NaiveDateTime>,
    )> = api_tokens::table
        .filter(api_tokens::organiser_id.eq(organiser_id))
        .order(api_tokens::id.desc())
        .select((
            api_tokens::id,
            api_tokens::label,
            api_tokens::created_at,
            api_tokens::revoked_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, label, created_at, revoked_at)| TokenInfo {
            id,
            label,
            created_at: created_at.and_utc(),
            revoked_at: revoked_at.map(|t| t.and_utc()),
        })
        .collect())
}

/// Revokes one of the organiser's own API tokens; whether it was theirs and still in use.
pub fn revoke_token(
    conn: &mut DbConn,
    organiser_id: i64,
    token_id: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, DbError> {
    let changed = diesel::update(api_tokens::table.find(token_id))
        .filter(api_tokens::organiser_id.eq(organiser_id))
        .filter(api_tokens::revoked_at.is_null())
        .set(api_tokens::revoked_at.eq(Some(db::stored(now))))
        .execute(conn)?;
    Ok(changed > 0)
}

/// The organiser with this email, if any.
pub fn find_by_email(conn: &mut DbConn, email: &str) -> Result<Option<Organiser>, DbError> {
    let found = organisers::table
        .filter(organisers::email.eq(email.to_lowercase()))
        .select(OrganiserRow::as_select())
        .first(conn)
        .optional()?;
    Ok(found.map(Organiser::from))
}
