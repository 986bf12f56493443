//! What attendees do, in a real browser against the real server, the real SMTP server and
//! localstripe (with its Stripe.js stand-in for the Payment Element): book a free session and
//! open the emailed link; join a waitlist and claim the offer; pay by card; book with an
//! invoice; cancel a paid seat and see the refund; a timetable clash; a form with errors. Every
//! page on the way is checked with axe-core (serious and critical violations fail the test), and
//! the key ones are photographed at desktop and phone widths.

use std::time::Duration;

use mail_parser::MessageParser;
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::axe::axe;
use crate::harness::Browser;
use crate::helpers::{event_body, expect_json, merged, Backend, TestApp};
use crate::screenshots::screenshots;
use crate::smtp::{self, SmtpServer};
use crate::stripe::{self, PUBLISHABLE_KEY, SECRET_KEY};

/// The service as attendees meet it: a server whose links point at itself, delivering its emails
/// to a real SMTP server and taking cards through localstripe, and a browser.
struct Site {
    app: TestApp,
    browser: Browser,
    smtp: SmtpServer,
}

impl Site {
    async fn spawn(backend: Backend) -> Option<Site> {
        crate::tools::tools()?;
        if !smtp::available() {
            return None;
        }
        let stripe = stripe::localstripe()?;
        let smtp = SmtpServer::start_on(smtp::free_port());
        let port = smtp::free_port();
        let webhook_secret = format!("whsec_{}", uuid::Uuid::new_v4().simple());
        let secret = webhook_secret.clone();
        let smtp_port = smtp.port;
        let (app, browser) = tokio::join!(
            TestApp::spawn_with(backend, |s| {
                // Emailed links must lead back here.
                s.server.port = port;
                s.server.public_base_url = format!("http://127.0.0.1:{port}");
                s.mail.worker_in_serve = true;
                s.mail.smtp_host = "127.0.0.1".to_owned();
                s.mail.smtp_port = smtp_port;
                s.mail.smtp_tls = masterclass::config::SmtpTls::None;
                s.payments.stripe_secret_key = Some(SecretString::from(SECRET_KEY.to_owned()));
                s.payments.stripe_publishable_key = PUBLISHABLE_KEY.to_owned();
                s.payments.stripe_api_base = stripe.base_url.clone();
                s.payments.stripe_webhook_secret = Some(SecretString::from(secret));
                s.pages.stripe_js_url = format!("{}/js.stripe.com/v3/", stripe.base_url);
                // Every view shows the seats as they are now.
                s.pages.programme_cache_ms = 0;
            }),
            Browser::open()
        );
        let (app, browser) = (app?, browser?);
        stripe
            .register_webhook(
                &uuid::Uuid::new_v4().simple().to_string(),
                &app.url("/api/v1/webhooks/stripe"),
                &webhook_secret,
            )
            .await;
        Some(Site { app, browser, smtp })
    }

    /// Opens a page of the site.
    async fn open(&self, path: &str) {
        self.browser.goto(&self.app.url(path)).await;
    }

    /// Checks the page with axe-core, and photographs it when `shot` names it.
    async fn looked_at(&self, page: &str, shot: bool) {
        let summary = axe(&self.browser, page).await;
        println!("axe on {page}: {summary}");
        if shot {
            screenshots(&self.browser, page).await;
        }
    }

    /// The first email to `to` whose text contains `needle`, waiting for it to arrive.
    async fn email_to(&self, to: &str, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let found = self.smtp.messages().iter().find_map(|raw| {
                let message = MessageParser::default().parse(raw)?;
                let addressed = message
                    .to()
                    .and_then(|a| a.first())
                    .and_then(|a| a.address())
                    .is_some_and(|a| a.eq_ignore_ascii_case(to));
                let text = message.body_text(0)?.into_owned();
                (addressed && text.contains(needle)).then_some(text)
            });
            if let Some(text) = found {
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no email to {to} containing {needle:?} arrived"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The first link in `text` that starts with this site's address and then `prefix`.
    fn link_in(&self, text: &str, prefix: &str) -> String {
        let start = format!("{}{prefix}", self.app.address);
        let at = text
            .find(&start)
            .unwrap_or_else(|| panic!("no link to {start} in:\n{text}"));
        text[at..]
            .split(|c: char| c.is_whitespace() || matches!(c, '>' | '<' | '"' | ')'))
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// A published event with 20 % VAT, invoices, and 100 % back until the day of a session.
    async fn event(&self, slug: &str, allow_clashes: bool) -> String {
        let body = merged(
            event_body(slug),
            json!({
                "allow_clashes": allow_clashes,
                "vat_rate_bp": 2000,
                "invoices_allowed": true,
                "refund_policy": [{"days_before": 1, "percent": 100}]
            }),
        );
        expect_json(
            self.app.admin_post("/api/v1/admin/events", &body).await,
            201,
        )
        .await;
        slug.to_owned()
    }

    /// Books through the form: on the booking page with `session_id` ticked, fills in the
    /// attendee and sends it.
    async fn book(&self, slug: &str, session_id: i64, name: &str, email: &str) {
        self.open(&format!("/events/{slug}/book?session={session_id}"))
            .await;
        self.browser.fill("Full name", name).await;
        self.browser.fill("Email address", email).await;
    }

    /// The booking the browser is looking at (its manage token taken from the address).
    async fn booking_in_view(&self) -> (String, Value) {
        let url = self.browser.current_url().await;
        let token = url
            .split("/bookings/")
            .nth(1)
            .and_then(|rest| rest.split(['/', '?']).next())
            .unwrap_or_else(|| panic!("not a booking page: {url}"))
            .to_owned();
        let booking = self.app.booking(&token).await;
        (token, booking)
    }
}

crate::on_both_backends_with!(super::Site::spawn;
    an_attendee_books_a_free_session_and_opens_the_emailed_link,
    a_waiting_attendee_claims_a_freed_seat_from_the_offer_email,
    an_attendee_pays_by_card_through_stripe_js,
    an_attendee_books_with_an_invoice,
    an_attendee_cancels_a_paid_seat_and_sees_the_refund,
    a_timetable_clash_is_explained_before_and_refused_after_sending,
    a_form_with_errors_says_what_to_fix_and_keeps_what_was_entered,
    a_session_can_be_booked_with_the_keyboard_alone,
);

/// Programme → session → booking form → confirmation; the confirmation email's manage link
/// opens the booking.
async fn an_attendee_books_a_free_session_and_opens_the_emailed_link(site: Site) {
    let b = &site.browser;
    let slug = site.event("free-flow", true).await;
    let free = site
        .app
        .session(&slug, "Setting up a PMO that lasts", 30, 0)
        .await;
    site.app.next_day_session(&slug, 3, 14_500).await;

    site.open("/").await;
    b.wait_for_text("Setting up a PMO that lasts").await;
    assert!(
        b.text().await.contains("30 seats left"),
        "{}",
        b.text().await
    );
    assert!(
        b.text().await.contains("Only 3 seats left") || b.text().await.contains("3 seats left")
    );
    site.looked_at("programme", true).await;

    b.click_link("Setting up a PMO that lasts").await;
    b.wait_for_text("A hands-on masterclass.").await;
    assert!(b.text().await.contains("Priya Natarajan"));
    site.looked_at("session", true).await;

    b.click_button("Book this session").await;
    b.wait_for_text("Book your places").await;
    assert!(
        b.find(&format!("input[name=session][value='{free}']"))
            .await
            .is_selected()
            .await
            .expect("checked state"),
        "the session chosen is ticked"
    );
    site.looked_at("booking-form", true).await;
    b.fill("Full name", "Ada Lovelace").await;
    b.fill("Email address", "ada@example.org").await;
    b.fill("Organisation", "Analytical Engines Ltd").await;
    b.click_button("Book").await;
    b.wait_for_text("You are booked").await;
    site.looked_at("confirmation", true).await;
    let (_, booking) = site.booking_in_view().await;
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["seats"][0]["session_id"], free);

    let email = site
        .email_to("ada@example.org", "Setting up a PMO that lasts")
        .await;
    let link = site.link_in(&email, "/bookings/");
    b.goto(&link).await;
    b.wait_for_text("Your booking").await;
    let page = b.text().await;
    assert!(
        page.contains(booking["reference"].as_str().expect("reference")),
        "{page}"
    );
    assert!(page.contains("Confirmed"), "{page}");
    site.looked_at("manage-booking", true).await;
}

/// A full session's waitlist joined in the browser; another attendee cancels; the offer email's
/// link leads to the claim, which books the seat.
async fn a_waiting_attendee_claims_a_freed_seat_from_the_offer_email(site: Site) {
    let b = &site.browser;
    let slug = site.event("waitlist-flow", true).await;
    let session = site.app.session(&slug, "Portfolio governance", 1, 0).await;
    let holder = site
        .app
        .booked(&slug, "grace@example.org", &[session])
        .await;

    site.open(&format!("/events/{slug}")).await;
    b.wait_for_text("Full – join the waitlist").await;
    b.click_link("Join the waitlist for Portfolio governance")
        .await;
    b.wait_for_text("Join the waitlist").await;
    site.looked_at("waitlist-join", true).await;
    b.fill("Full name", "Ada Lovelace").await;
    b.fill("Email address", "ada@example.org").await;
    b.click_button("Join the waitlist").await;
    b.wait_for_text("You are number 1 in the queue").await;
    site.looked_at("waitlist-place", true).await;

    let token = holder["manage_token"].as_str().expect("token");
    assert_eq!(site.app.cancel(token, None).await.status(), 200);

    let offer = site.email_to("ada@example.org", "claim").await;
    let link = site.link_in(&offer, "/waitlist/");
    b.goto(&link).await;
    b.wait_for_text("A seat is yours if you claim it by").await;
    site.looked_at("waitlist-offer", true).await;
    b.click_button("Claim the seat").await;
    b.wait_for_text("You are booked").await;
    let (_, booking) = site.booking_in_view().await;
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["attendee"]["email"], "ada@example.org");
    assert_eq!(site.app.seats_left(&slug, session).await, 0);
}

/// Booking a priced session by card: the Stripe.js card form, a decline said on the page, then
/// a card that works, and the return page saying "confirmed" once the booking is.
async fn an_attendee_pays_by_card_through_stripe_js(site: Site) {
    let b = &site.browser;
    let slug = site.event("card-flow", true).await;
    let session = site
        .app
        .session(&slug, "Benefits realisation", 10, 14_500)
        .await;
    pay_by_card(&site, &slug, session, "ada@example.org").await;
    let (_, booking) = site.booking_in_view().await;
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["payment_status"], "paid");
    assert_eq!(booking["paid_minor"], 14_500);
    site.email_to("ada@example.org", "£145.00").await;
    assert!(b.text().await.contains("Payment received: £145.00"));
}

/// Books `session` for `email` and pays by card in the browser, ending on the return page.
async fn pay_by_card(site: &Site, slug: &str, session: i64, email: &str) {
    let b = &site.browser;
    site.book(slug, session, "Ada Lovelace", email).await;
    b.check("Card, now").await;
    b.click_button("Book").await;
    b.wait_for_text("Pay for your booking").await;
    b.wait_for("#payment-element input").await;
    site.looked_at("pay", true).await;

    // A declined card is said on the page, and nothing changes.
    b.fill("Card number", "4000 0000 0000 0002").await;
    b.fill("Expiry date (MM / YY)", "12 / 34").await;
    b.fill("Security code (CVC)", "123").await;
    b.click_button("Pay £145.00").await;
    b.wait_for_text("declined").await;
    let (_, held) = site.booking_in_view().await;
    assert_eq!(held["status"], "held");

    b.fill("Card number", "4242 4242 4242 4242").await;
    b.click_button("Pay £145.00").await;
    b.wait_for_text("Payment received").await;
    site.looked_at("payment-received", true).await;
}

/// Paying by invoice from the booking form: confirmed at once, invoice number and PDF.
async fn an_attendee_books_with_an_invoice(site: Site) {
    let b = &site.browser;
    let slug = site.event("invoice-flow", true).await;
    let session = site.app.session(&slug, "P3O in practice", 10, 29_000).await;
    site.book(&slug, session, "Ada Lovelace", "ada@example.org")
        .await;
    b.check("Invoice to my organisation").await;
    b.fill(
        "Company or organisation to invoice",
        "Analytical Engines Ltd",
    )
    .await;
    b.fill("Billing address", "1 Babbage Street\nLondon EC1 2AB")
        .await;
    b.fill("Purchase order number", "PO-4471").await;
    b.click_button("Book").await;
    b.wait_for_text("You are booked").await;
    site.looked_at("booked-by-invoice", true).await;
    let (token, booking) = site.booking_in_view().await;
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["payment_status"], "invoiced");
    let link = b.find("ul.invoices a").await;
    let href = link.attr("href").await.expect("href").expect("a link");
    assert!(
        href.starts_with(&format!("/api/v1/bookings/{token}/invoices/")),
        "{href}"
    );
    let pdf = site.app.get(&href).await;
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    site.email_to("ada@example.org", "PO-4471").await;
}

/// A paid seat cancelled from the manage page: the confirmation step says what comes back, and
/// the refund reaches the card at localstripe.
async fn an_attendee_cancels_a_paid_seat_and_sees_the_refund(site: Site) {
    let b = &site.browser;
    let slug = site.event("refund-flow", true).await;
    let session = site
        .app
        .session(&slug, "Benefits realisation", 10, 14_500)
        .await;
    pay_by_card(&site, &slug, session, "ada@example.org").await;
    let (token, _) = site.booking_in_view().await;

    site.open(&format!("/bookings/{token}")).await;
    b.wait_for_text("Paid: £145.00.").await;
    b.click_link("Cancel Benefits realisation").await;
    b.wait_for_text("You will get £145.00 back to the card you paid with.")
        .await;
    site.looked_at("cancel-confirmation", true).await;
    b.click_button("Yes, cancel my booking").await;
    b.wait_for_text("Cancelled. We have sent you an email about it.")
        .await;
    // The refund goes to Stripe (here localstripe) after the cancellation commits; once Stripe
    // has made it, the booking counts it and the page says so.
    b.wait_until("the refund is shown as made", async |b: &Browser| {
        if b.text().await.contains("Refunded to your card: £145.00.") {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        b.goto(&b.current_url().await).await;
        false
    })
    .await;
    site.looked_at("after-cancelling", true).await;
    let booking = site.app.booking(&token).await;
    assert_eq!(booking["status"], "cancelled");
    assert_eq!(booking["refunded_minor"], 14_500);
    site.email_to("ada@example.org", "refunded").await;
}

/// Two overlapping sessions: the programme and the form say so before anything is sent, and
/// the server refuses the booking, keeping what was entered.
async fn a_timetable_clash_is_explained_before_and_refused_after_sending(site: Site) {
    let b = &site.browser;
    let slug = site.event("clash-flow", false).await;
    let first = site
        .app
        .session(&slug, "Setting up a PMO that lasts", 30, 0)
        .await;
    let second = site
        .app
        .session_at(
            &slug,
            "Portfolio governance",
            30,
            0,
            "2027-03-10T10:00:00+00:00",
            "2027-03-10T11:00:00+00:00",
        )
        .await;

    site.open(&format!("/events/{slug}")).await;
    b.find(&format!("input[name=session][value='{first}']"))
        .await
        .click()
        .await
        .expect("tick the first");
    b.find(&format!("input[name=session][value='{second}']"))
        .await
        .click()
        .await
        .expect("tick the second");
    b.wait_for_text("overlap in time").await;
    b.click_button("Book selected sessions").await;
    b.wait_for_text("Book your places").await;
    assert!(b.text_of(".clash-box").await.contains("overlap in time"));
    b.fill("Full name", "Ada Lovelace").await;
    b.fill("Email address", "ada@example.org").await;
    b.click_button("Book").await;
    b.wait_for_text("There is a problem").await;
    let text = b.text().await;
    assert!(text.contains("overlaps"), "{text}");
    assert_eq!(
        b.find("#email")
            .await
            .prop("value")
            .await
            .expect("value")
            .as_deref(),
        Some("ada@example.org")
    );
    site.looked_at("timetable-clash", true).await;
    assert_eq!(
        site.app.seats_left(&slug, first).await,
        30,
        "nothing booked"
    );
    assert_eq!(
        site.app.seats_left(&slug, second).await,
        30,
        "nothing booked"
    );
}

/// Sent with mistakes: every message next to its field, listed above the form, what was
/// entered kept; fixed, it books.
async fn a_form_with_errors_says_what_to_fix_and_keeps_what_was_entered(site: Site) {
    let b = &site.browser;
    let slug = site.event("errors-flow", true).await;
    let session = site
        .app
        .session(&slug, "Setting up a PMO that lasts", 30, 0)
        .await;
    site.book(&slug, session, "", "ada@example").await;
    b.fill("Organisation", "Analytical Engines Ltd").await;
    b.click_button("Book").await;
    b.wait_for_text("There is a problem").await;
    assert!(!b.text_of("#name-error").await.is_empty());
    assert!(!b.text_of("#email-error").await.is_empty());
    assert_eq!(
        b.find("#email")
            .await
            .prop("value")
            .await
            .expect("value")
            .as_deref(),
        Some("ada@example")
    );
    assert_eq!(
        b.find("#organisation")
            .await
            .prop("value")
            .await
            .expect("value")
            .as_deref(),
        Some("Analytical Engines Ltd")
    );
    site.looked_at("form-errors", true).await;
    assert_eq!(
        site.app.seats_left(&slug, session).await,
        30,
        "nothing booked"
    );

    b.fill("Full name", "Ada Lovelace").await;
    b.fill("Email address", "ada@example.org").await;
    b.click_button("Book").await;
    b.wait_for_text("You are booked").await;

    site.open("/no-such-page").await;
    b.wait_for_text("Page not found").await;
    site.looked_at("not-found", true).await;
    site.open("/bookings/not-a-real-link-at-all-0000000").await;
    b.wait_for_text("This link is not valid").await;
    site.looked_at("link-not-valid", false).await;
}

const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";

/// What has the focus: its tag, its text (or value, or label) and whether the focus shows.
async fn focused(b: &Browser) -> (String, String, bool) {
    let seen = b
        .execute(
            "const e = document.activeElement; const s = getComputedStyle(e);
             const text = (e.labels && e.labels[0] ? e.labels[0].innerText : '') || e.innerText || e.value || '';
             return [e.tagName.toLowerCase() + (e.type ? ':' + e.type : ''), text.trim(),
                     (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none'];",
            vec![],
        )
        .await;
    (
        seen[0].as_str().unwrap_or_default().to_owned(),
        seen[1].as_str().unwrap_or_default().to_owned(),
        seen[2].as_bool().unwrap_or(false),
    )
}

/// Presses `keys` on whatever has the focus.
async fn press(b: &Browser, keys: &str) {
    let active = b.execute("return document.activeElement;", vec![]).await;
    let [element] = b
        .elements(&json!([active]))
        .try_into()
        .unwrap_or_else(|_| panic!("one element has the focus"));
    element.send_keys(keys).await.expect("keys pressed");
}

/// Tabs forward until what has the focus is `tag` with text starting with `text`; every stop on
/// the way shows its focus.
async fn tab_to(b: &Browser, tag: &str, text: &str) {
    for _ in 0..60 {
        press(b, TAB).await;
        let (at, says, visible) = focused(b).await;
        assert!(visible, "the focus on {at} {says:?} is not visible");
        if at == tag && says.starts_with(text) {
            return;
        }
    }
    panic!("no {tag} {text:?} reached with the Tab key");
}

/// From the programme to the confirmation with the keyboard alone, the focus visible at every
/// stop: skip link, a session's checkbox ticked with the space bar, the booking form typed in.
async fn a_session_can_be_booked_with_the_keyboard_alone(site: Site) {
    let b = &site.browser;
    let slug = site.event("keyboard-flow", true).await;
    site.app
        .session(&slug, "Setting up a PMO that lasts", 30, 0)
        .await;
    site.open(&format!("/events/{slug}")).await;
    b.wait_for_text("Setting up a PMO that lasts").await;

    press(b, TAB).await;
    let (at, says, visible) = focused(b).await;
    assert_eq!(
        (at.as_str(), says.as_str(), visible),
        ("a", "Skip to main content", true)
    );
    press(b, ENTER).await;
    b.wait_until("the main content has the focus", async |b: &Browser| {
        b.execute("return document.activeElement.id;", vec![]).await == "main"
    })
    .await;
    tab_to(b, "input:checkbox", "Select").await;
    press(b, " ").await;
    tab_to(b, "button:submit", "Book selected sessions").await;
    press(b, ENTER).await;
    b.wait_for_text("Book your places").await;

    tab_to(b, "input:text", "Full name").await;
    press(b, "Ada Lovelace").await;
    press(b, TAB).await;
    assert_eq!(focused(b).await.1, "Email address");
    press(b, "ada@example.org").await;
    tab_to(b, "button:submit", "Book").await;
    press(b, ENTER).await;
    b.wait_for_text("You are booked").await;
    let (_, booking) = site.booking_in_view().await;
    assert_eq!(booking["attendee"]["name"], "Ada Lovelace");
    assert_eq!(booking["status"], "confirmed");
}

/// The pages no flow above passes through, each checked with axe-core too: the list of events,
/// a closed registration, the 429 page, a waitlist place given up, and an expired offer.
mod other_pages {
    use super::*;

    /// A server that takes one form a minute from a client, and a browser.
    async fn strict(backend: Backend) -> Option<(TestApp, Browser)> {
        crate::tools::tools()?;
        let (app, browser) = tokio::join!(
            TestApp::spawn_with(backend, |s| {
                s.pages.submissions_per_minute = std::num::NonZeroU32::MIN;
                s.pages.programme_cache_ms = 0;
            }),
            Browser::open()
        );
        Some((app?, browser?))
    }

    async fn every_other_page_passes_axe((app, b): (TestApp, Browser)) {
        let later = app.clock.now() + chrono::Duration::days(3);
        let first = app.published_event("spring-school").await;
        let second = app
            .created_event(&merged(
                event_body("autumn-school"),
                json!({"name": "Autumn School", "registration_opens_at": later.to_rfc3339()}),
            ))
            .await;
        let full = app.session(&first, "Portfolio governance", 1, 0).await;
        let closed = app.session(&second, "Agile PMO", 10, 0).await;
        app.booked(&first, "grace@example.org", &[full]).await;

        b.goto(&app.url("/")).await;
        b.wait_for_text("Autumn School").await;
        axe(&b, "event list").await;
        screenshots(&b, "event-list").await;

        b.goto(&app.url(&format!("/events/{second}/book?session={closed}")))
            .await;
        b.wait_for_text("Registration is closed").await;
        axe(&b, "registration closed").await;
        screenshots(&b, "registration-closed").await;

        // One form a minute: joining the waitlist is the one; leaving is the next, refused.
        b.goto(&app.url(&format!("/events/{first}/sessions/{full}/waitlist")))
            .await;
        b.fill("Full name", "Ada Lovelace").await;
        b.fill("Email address", "ada@example.org").await;
        b.click_button("Join the waitlist").await;
        b.wait_for_text("You are number 1 in the queue").await;
        let place = b.current_url().await;
        b.click_button("Leave the waitlist").await;
        b.wait_for_text("Too many requests").await;
        axe(&b, "too many requests").await;
        screenshots(&b, "too-many-requests").await;

        // A seat is offered, and the offer runs out unclaimed: the place's page says so.
        let grace = app.admin_bookings(&first).await;
        let token = grace
            .iter()
            .find(|b| b["attendee"]["email"] == "grace@example.org")
            .map(|b| {
                app.issuer
                    .key
                    .manage_token(b["reference"].as_str().unwrap_or_default())
            })
            .expect("grace's booking");
        assert_eq!(app.cancel(&token, None).await.status(), 200);
        b.goto(&place).await;
        b.wait_for_text("A seat is yours if you claim it by").await;
        app.advance(chrono::Duration::hours(25)).await;
        b.goto(&place).await;
        b.wait_for_text("The offer ran out before it was claimed")
            .await;
        axe(&b, "offer expired").await;
        screenshots(&b, "offer-expired").await;
    }

    crate::on_both_backends_with!(super::strict; every_other_page_passes_axe);
}
