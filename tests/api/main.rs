//! Integration tests: the real HTTP application against real SQLite and PostgreSQL databases.

mod helpers;
mod smtp;
mod stripe;

mod audit;
mod authorisation;
mod bookings;
mod checkin;
mod cli;
mod concurrency;
mod dashboard;
mod dashboard_checkin;
mod dashboard_insights;
mod dashboard_people;
mod dashboard_programme;
mod errors;
mod events;
mod exports;
mod invoices;
mod lifecycle;
mod mail;
mod moves;
mod openapi;
mod pages;
mod payments;
mod programme_cache;
mod revisions;
mod sessions;
mod sign_in_limits;
mod simulation;
