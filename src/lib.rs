//! masterclass: registration and ticketing for PMO Masterclasses.
//!
//! Domain modules (`events`, `sessions`, `bookings`, `organisers`) own their rules, queries and
//! HTTP handlers; `db` holds everything that differs between SQLite and PostgreSQL; `api` the
//! shared HTTP plumbing; `startup` the one route table.

pub mod api;
pub mod audit;
pub mod bench;
pub mod bookings;
pub mod certificates;
pub mod checkin;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod demo;
pub mod events;
pub mod exports;
pub mod health;
pub mod idempotency;
pub mod mail;
pub mod organisers;
pub mod pages;
pub mod payments;
pub mod sessions;
pub mod startup;
pub mod stats;
pub mod sweeper;
pub mod telemetry;
pub mod tokens;
pub mod validation;
pub mod waitlist;

/// Installs the process-wide crypto provider every rustls client uses (SMTP and Stripe), once;
/// later calls change nothing.
pub fn install_crypto_provider() {
    // An error only says that a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
