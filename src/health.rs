//! Liveness and readiness for load balancers and orchestrators.

use actix_web::{get, web};
use diesel::connection::SimpleConnection;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::problem::responses::Unavailable;
use crate::api::{run, AppState, Problem};
use crate::db::DbError;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(healthz).service(readyz);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the answer is 200.
    pub status: &'static str,
}

/// The process is up and answering.
#[utoipa::path(tag = "health", responses((status = 200, description = "Alive", body = Health)))]
#[get("/healthz")]
async fn healthz() -> web::Json<Health> {
    web::Json(Health { status: "ok" })
}

/// The process can reach its database.
#[utoipa::path(tag = "health", responses((status = 200, description = "Ready", body = Health), Unavailable))]
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> Result<web::Json<Health>, Problem> {
    run(&state.db, |conn| {
        conn.batch_execute("SELECT 1").map_err(DbError::from)
    })
    .await?;
    Ok(web::Json(Health { status: "ok" }))
}
