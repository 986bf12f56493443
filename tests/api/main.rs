//! Integration tests: the real HTTP application against real SQLite and PostgreSQL databases.

mod helpers;
mod smtp;
mod stripe;

mod bookings;
mod cli;
mod concurrency;
mod errors;
mod events;
mod invoices;
mod lifecycle;
mod mail;
mod openapi;
mod pages;
mod payments;
mod programme_cache;
mod sessions;
mod simulation;
