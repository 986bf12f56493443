//! End-to-end tests in a real browser: headless Chromium, driven through chromedriver, against the
//! real server (the API tests' `TestApp`). A page a test visits can be checked with axe-core and
//! photographed at desktop and phone widths.
//!
//! Needs Debian's `chromium` and `chromium-driver`, and axe-core from npm; see `tools.rs`.

// The API tests' harness, of which these tests use a part.
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

// The SMTP server and the Stripe test peer of the API tests.
#[allow(dead_code)]
#[path = "../api/smtp.rs"]
mod smtp;
#[allow(dead_code)]
#[path = "../api/stripe.rs"]
mod stripe;

mod axe;
mod forms;
mod harness;
mod organisers;
mod screenshots;
mod tools;
mod webdriver;

mod dashboard;
mod dashboard_checkin;
mod dashboard_insights;
mod dashboard_people;
mod dashboard_programme;
mod flows;
mod smoke;
