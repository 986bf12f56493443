//! Integration tests: the real HTTP application against real SQLite and PostgreSQL databases.

mod helpers;

mod bookings;
mod cli;
mod concurrency;
mod errors;
mod events;
mod openapi;
mod sessions;
