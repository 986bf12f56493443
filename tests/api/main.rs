//! Integration tests: the real HTTP application against real SQLite and PostgreSQL databases.

mod helpers;
mod smtp;

mod bookings;
mod cli;
mod concurrency;
mod errors;
mod events;
mod lifecycle;
mod mail;
mod openapi;
mod programme_cache;
mod sessions;
mod simulation;
