//! Integration tests: the real HTTP application against real SQLite and PostgreSQL databases.

mod helpers;

mod concurrency;
