//! Email: the outbox (jobs written in the transaction of the change that owes them), the
//! templates in `emails/`, calendar files, and the worker that delivers jobs over SMTP (or to
//! `.eml` files on a laptop) with retries.

pub mod calendar;
pub mod compose;
pub mod data;
pub mod http;
pub mod outbox;
pub mod reminders;
pub mod templates;
pub mod tickets;
pub mod transport;
pub mod worker;

pub use data::{MailData, Template};
pub use outbox::enqueue;
pub use worker::{Mailer, Workers};
