//! Card payments end to end: the real HTTP API, localstripe as Stripe (its signed webhooks coming
//! back to the service), the reconciler, refunds, and the receipt at a real SMTP server. Webhook
//! paths localstripe cannot produce (repeats, out-of-order events, refunds made at Stripe) are
//! driven with payloads the tests sign themselves, as Stripe signs them.

use std::time::{Duration, Instant};

use mail_parser::MessageParser;
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::helpers::{expect_json, expect_problem, merged, Backend, TestApp};
use crate::mail::{drain, mailer};
use crate::smtp::{self, SmtpServer};
use crate::stripe::{self, LocalStripe, CARD_DECLINED, CARD_OK, PUBLISHABLE_KEY, SECRET_KEY};

/// A test app that takes card payments through localstripe.
pub struct Paying {
    pub app: TestApp,
    pub stripe: &'static LocalStripe,
    pub webhook_secret: String,
}

impl Paying {
    /// With localstripe delivering its webhooks to the app (or not, to test the reconciler).
    async fn spawn(backend: Backend, webhooks: bool) -> Option<Paying> {
        Self::spawn_with(backend, webhooks, |_| {}).await
    }

    async fn spawn_with(
        backend: Backend,
        webhooks: bool,
        adjust: impl FnOnce(&mut masterclass::config::Settings),
    ) -> Option<Paying> {
        let stripe = stripe::localstripe()?;
        let webhook_secret = format!("whsec_{}", uuid::Uuid::new_v4().simple());
        let secret = webhook_secret.clone();
        let app = TestApp::spawn_with(backend, |s| {
            s.payments.stripe_secret_key = Some(SecretString::from(SECRET_KEY.to_owned()));
            s.payments.stripe_publishable_key = PUBLISHABLE_KEY.to_owned();
            s.payments.stripe_api_base = stripe.base_url.clone();
            s.payments.stripe_webhook_secret = Some(SecretString::from(secret));
            adjust(s);
        })
        .await?;
        if webhooks {
            let endpoint = app.url("/api/v1/webhooks/stripe");
            stripe
                .register_webhook(
                    &uuid::Uuid::new_v4().simple().to_string(),
                    &endpoint,
                    &webhook_secret,
                )
                .await;
        }
        Some(Paying {
            app,
            stripe,
            webhook_secret,
        })
    }

    /// A published event with 20 % VAT and a priced session of `capacity`; returns (slug,
    /// session id).
    async fn programme(&self, slug: &str, capacity: i32, price: i64) -> (String, i64) {
        let body = merged(
            crate::helpers::event_body(slug),
            json!({
                "allow_clashes": true,
                "vat_rate_bp": 2000,
                "refund_policy": [
                    {"days_before": 14, "percent": 100},
                    {"days_before": 7, "percent": 50}
                ]
            }),
        );
        expect_json(
            self.app.admin_post("/api/v1/admin/events", &body).await,
            201,
        )
        .await;
        let session = self
            .app
            .session(slug, "Portfolio prioritisation", capacity, price)
            .await;
        (slug.to_owned(), session)
    }

    /// Books and returns the manage token of a held booking.
    async fn held(&self, slug: &str, email: &str, session: i64) -> String {
        let booked = expect_json(self.app.book(slug, email, &[session]).await, 201).await;
        assert_eq!(booked["status"], "held");
        booked["manage_token"]
            .as_str()
            .expect("manage token")
            .to_owned()
    }

    async fn start_card(&self, token: &str) -> Value {
        expect_json(
            self.app
                .post(
                    &format!("/api/v1/bookings/{token}/payments/stripe"),
                    &json!({}),
                )
                .await,
            200,
        )
        .await
    }

    /// Starts paying by card; returns the PaymentIntent's id.
    async fn intent_for(&self, token: &str) -> String {
        self.start_card(token).await["payment_intent_id"]
            .as_str()
            .expect("intent")
            .to_owned()
    }

    /// Posts `event` to the webhook endpoint signed with the app's secret, as Stripe would.
    async fn deliver(&self, event: &Value) -> reqwest::Response {
        post_signed(&self.app, event, &self.webhook_secret, now()).await
    }

    /// Waits (up to 30 s: webhooks come a second later, and later on a busy machine) until the
    /// booking satisfies `done`; returns it.
    async fn until(&self, token: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let booking = self.app.booking(token).await;
            if done(&booking) {
                return booking;
            }
            assert!(
                Instant::now() < deadline,
                "the booking never got there: {booking}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn post_signed(app: &TestApp, event: &Value, secret: &str, at: i64) -> reqwest::Response {
    let payload = event.to_string();
    app.client
        .post(app.url("/api/v1/webhooks/stripe"))
        .header("content-type", "application/json")
        .header("stripe-signature", stripe::signature(&payload, secret, at))
        .body(payload)
        .send()
        .await
        .expect("webhook delivered")
}

/// A Stripe event as Stripe's webhook carries it.
fn event(id: &str, kind: &str, object: Value) -> Value {
    json!({
        "id": id, "object": "event", "type": kind, "api_version": "2025-09-30.clover",
        "created": now(), "livemode": false, "pending_webhooks": 1,
        "data": {"object": object}
    })
}

/// Templates of the emails written so far, oldest first.
async fn emails(app: &TestApp) -> Vec<String> {
    let jobs = expect_json(app.admin_get("/api/v1/admin/emails").await, 200).await;
    let mut jobs: Vec<(i64, String)> = jobs
        .as_array()
        .expect("a list")
        .iter()
        .map(|j| {
            (
                j["id"].as_i64().unwrap_or_default(),
                j["template"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    jobs.sort();
    jobs.into_iter().map(|(_, t)| t).collect()
}

async fn until_email(app: &TestApp, template: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !emails(app).await.iter().any(|t| t == template) {
        assert!(Instant::now() < deadline, "no {template} email");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A [`Paying`] app whose webhooks localstripe delivers.
async fn paying(backend: Backend) -> Option<Paying> {
    Paying::spawn(backend, true).await
}

/// The backend itself, for tests that make their apps themselves.
async fn backend(backend: Backend) -> Option<Backend> {
    Some(backend)
}

crate::on_both_backends_with!(
    super::paying;
    a_card_payment_confirms_the_booking_and_the_receipt_arrives,
    a_declined_card_keeps_the_hold_and_tells_the_attendee,
    a_late_payment_takes_the_seats_again_while_they_are_free,
    a_late_payment_is_refunded_when_the_seat_has_gone,
    repeated_and_out_of_order_events_act_once,
    a_refund_made_at_stripe_is_counted_and_told,
    a_payment_for_a_cancelled_booking_is_refunded,
    an_intent_no_longer_wanted_is_cancelled_at_stripe,
    an_intent_for_the_total_before_a_move_is_cancelled_at_stripe,
    cancelled_paid_places_are_refunded_by_the_policy_paid_under,
    a_cancelled_session_refunds_its_paid_places_in_full,
    organisers_refund_any_amount_up_to_what_was_paid,
    concurrent_deliveries_of_one_success_confirm_once,
    a_double_click_starts_one_payment,
    cancelling_two_places_at_once_leaves_nothing_to_pay,
);

async fn a_card_payment_confirms_the_booking_and_the_receipt_arrives(p: Paying) {
    let (slug, session) = p.programme("pay-by-card", 10, 14_500).await;
    let token = p.held(&slug, "ada@example.org", session).await;
    let options = expect_json(
        p.app
            .get(&format!("/api/v1/bookings/{token}/payments"))
            .await,
        200,
    )
    .await;
    assert_eq!(options["methods"], json!(["card"]));
    assert_eq!(options["amount_due_minor"], 14_500);

    let checkout = p.start_card(&token).await;
    let intent = checkout["payment_intent_id"].as_str().expect("intent id");
    assert!(checkout["client_secret"]
        .as_str()
        .is_some_and(|s| s.starts_with(&format!("{intent}_secret_"))));
    assert_eq!(checkout["publishable_key"], PUBLISHABLE_KEY);
    assert_eq!(checkout["amount_minor"], 14_500);
    assert_eq!(checkout["currency"], "GBP");
    assert_eq!(checkout["status"], "requires_payment");
    // Asking again resumes the same payment: no second intent.
    let again = p.start_card(&token).await;
    assert_eq!(again["payment_intent_id"], intent);
    assert_eq!(p.stripe.intent(intent).await["amount"], 14_500);
    assert_eq!(
        p.stripe.intent(intent).await["metadata"]["booking_reference"],
        p.app.booking(&token).await["reference"]
    );

    let (status, paid) = p.stripe.pay(intent, CARD_OK).await;
    assert_eq!((status, paid["status"].as_str()), (200, Some("succeeded")));
    let booking = p.until(&token, |b| b["status"] == "confirmed").await;

    assert_eq!(booking["payment_status"], "paid");
    assert_eq!(booking["paid_minor"], 14_500);
    assert_eq!(booking["seats"][0]["state"], "confirmed");
    assert!(booking["hold_expires_at"].is_null());
    let options = expect_json(
        p.app
            .get(&format!("/api/v1/bookings/{token}/payments"))
            .await,
        200,
    )
    .await;
    assert_eq!(options["methods"], json!([]));
    assert_eq!(options["payments"][0]["state"], "succeeded");
    expect_problem(
        p.app
            .post(
                &format!("/api/v1/bookings/{token}/payments/stripe"),
                &json!({}),
            )
            .await,
        409,
        "not-payable",
    )
    .await;
    p.app.assert_no_drift();

    // The receipt, at a real SMTP server: what was paid, with its VAT.
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_on(smtp::free_port());
    drain(&p.app, &mailer(&p.app, server.port, |_| {})).await;
    let messages = server.wait_for(2, Duration::from_secs(5));
    let receipt = messages
        .iter()
        .filter_map(|m| MessageParser::default().parse(m))
        .find(|m| {
            m.subject()
                .is_some_and(|s| s.starts_with("Booking confirmed"))
        })
        .expect("the receipt arrived");
    let text = receipt.body_text(0).expect("plain text");
    assert!(text.contains("Payment received: £145.00"), "{text}");
    assert!(text.contains("VAT at 20%: £24.17 (net £120.83)"), "{text}");
    let html = receipt.body_html(0).expect("html");
    assert!(html.contains("£24.17") && html.contains("£120.83"));
}

async fn a_declined_card_keeps_the_hold_and_tells_the_attendee(p: Paying) {
    let (slug, session) = p.programme("declined-card", 10, 9_000).await;
    let token = p.held(&slug, "bo@example.org", session).await;
    let intent = p.intent_for(&token).await;

    let (status, body) = p.stripe.pay(&intent, CARD_DECLINED).await;
    assert_eq!(status, 402, "declined: {body}");

    until_email(&p.app, "payment_failed").await;
    let booking = p.app.booking(&token).await;
    assert_eq!(booking["status"], "held");
    assert_eq!(booking["payment_status"], "unpaid");
    let options = expect_json(
        p.app
            .get(&format!("/api/v1/bookings/{token}/payments"))
            .await,
        200,
    )
    .await;
    assert_eq!(options["methods"], json!(["card"]), "still payable");
    assert_eq!(options["payments"][0]["state"], "open");
    assert_eq!(
        options["payments"][0]["last_error"],
        "Your card was declined."
    );
    assert_eq!(p.app.seats_left(&slug, session).await, 9);
}

async fn a_late_payment_takes_the_seats_again_while_they_are_free(p: Paying) {
    let (slug, session) = p.programme("late-but-free", 5, 5_000).await;
    let token = p.held(&slug, "cy@example.org", session).await;
    let intent = p.intent_for(&token).await;
    let swept = p.app.advance(chrono::Duration::minutes(16)).await;
    assert_eq!(swept.holds_expired, 1);
    assert_eq!(p.app.booking(&token).await["status"], "expired");
    assert_eq!(p.app.seats_left(&slug, session).await, 5);

    let (status, _) = p.stripe.pay(&intent, CARD_OK).await;
    assert_eq!(status, 200);
    let booking = p.until(&token, |b| b["status"] == "confirmed").await;

    assert_eq!(booking["payment_status"], "paid");
    assert_eq!(booking["seats"][0]["state"], "confirmed");
    assert_eq!(p.app.seats_left(&slug, session).await, 4);
    assert!(p.stripe.refunds(&intent).await.is_empty());
    p.app.assert_no_drift();
}

async fn a_late_payment_is_refunded_when_the_seat_has_gone(p: Paying) {
    let (slug, session) = p.programme("late-and-gone", 1, 5_000).await;
    let token = p.held(&slug, "di@example.org", session).await;
    let intent = p.intent_for(&token).await;
    p.app.advance(chrono::Duration::minutes(16)).await;
    let other = p.held(&slug, "ed@example.org", session).await;

    let (status, _) = p.stripe.pay(&intent, CARD_OK).await;
    assert_eq!(status, 200);
    let booking = p.until(&token, |b| b["refunded_minor"] == 5_000).await;

    assert_eq!(booking["status"], "expired");
    assert_eq!(booking["payment_status"], "refunded");
    assert_eq!(
        booking["paid_minor"], 5_000,
        "received, and all of it given back"
    );
    let refunds = p.stripe.refunds(&intent).await;
    assert_eq!(refunds.len(), 1, "one refund at Stripe: {refunds:?}");
    assert_eq!(refunds[0]["amount"], 5_000);
    until_email(&p.app, "payment_refunded").await;
    assert_eq!(p.app.booking(&other).await["status"], "held");
    assert_eq!(p.app.seats_left(&slug, session).await, 0);
    p.app.assert_no_drift();
}

async fn repeated_and_out_of_order_events_act_once(p: Paying) {
    let (slug, session) = p.programme("repeats", 10, 7_000).await;
    let token = p.held(&slug, "fe@example.org", session).await;
    let intent = p.intent_for(&token).await;
    p.stripe.pay(&intent, CARD_OK).await;
    p.until(&token, |b| b["status"] == "confirmed").await;
    let object = p.stripe.intent(&intent).await;

    // The same event again, and another event of the same success.
    let first = event("evt_repeat_1", "payment_intent.succeeded", object.clone());
    let answer = expect_json(p.deliver(&first).await, 200).await;
    assert_eq!(answer["outcome"], "duplicate");
    let answer = expect_json(p.deliver(&first).await, 200).await;
    assert_eq!(answer["outcome"], "duplicate");
    let second = event("evt_repeat_2", "payment_intent.succeeded", object.clone());
    assert_eq!(
        expect_json(p.deliver(&second).await, 200).await["outcome"],
        "duplicate"
    );
    // A failure reported after the success (out of order) changes nothing.
    let mut failed = object.clone();
    failed["status"] = json!("requires_payment_method");
    failed["last_payment_error"] =
        json!({"type": "card_error", "message": "Your card was declined."});
    let late_failure = event("evt_late_failure", "payment_intent.payment_failed", failed);
    assert_eq!(
        expect_json(p.deliver(&late_failure).await, 200).await["outcome"],
        "ignored"
    );
    // Unknown types are acknowledged and ignored.
    let other = event("evt_other", "customer.created", json!({"id": "cus_1"}));
    assert_eq!(
        expect_json(p.deliver(&other).await, 200).await["outcome"],
        "ignored"
    );

    let booking = p.app.booking(&token).await;
    assert_eq!(booking["paid_minor"], 7_000, "counted once");
    let sent = emails(&p.app).await;
    assert_eq!(
        sent.iter().filter(|t| *t == "booking_confirmed").count(),
        1,
        "{sent:?}"
    );
    assert!(!sent.iter().any(|t| t == "payment_failed"), "{sent:?}");
    assert!(p.stripe.refunds(&intent).await.is_empty());
}

async fn a_refund_made_at_stripe_is_counted_and_told(p: Paying) {
    let (slug, session) = p.programme("refund-at-stripe", 10, 12_000).await;
    let token = p.held(&slug, "gu@example.org", session).await;
    let intent = p.intent_for(&token).await;
    p.stripe.pay(&intent, CARD_OK).await;
    p.until(&token, |b| b["status"] == "confirmed").await;
    let charge = json!({
        "id": "ch_1", "object": "charge", "amount": 12_000, "amount_refunded": 5_000,
        "payment_intent": intent, "refunded": false, "currency": "gbp"
    });

    let answer = expect_json(
        p.deliver(&event("evt_refund_1", "charge.refunded", charge.clone()))
            .await,
        200,
    )
    .await;
    assert_eq!(answer["outcome"], "refund_updated");
    let booking = p.app.booking(&token).await;
    assert_eq!(booking["refunded_minor"], 5_000);
    assert_eq!(booking["payment_status"], "paid", "part refunded");
    // Stripe's next report of the same running total tells nobody twice.
    p.deliver(&event("evt_refund_2", "charge.refunded", charge.clone()))
        .await;
    let mut all = charge.clone();
    all["amount_refunded"] = json!(12_000);
    p.deliver(&event("evt_refund_3", "charge.refunded", all))
        .await;

    let booking = p.app.booking(&token).await;
    assert_eq!(booking["refunded_minor"], 12_000);
    assert_eq!(booking["payment_status"], "refunded");
    let sent = emails(&p.app).await;
    assert_eq!(
        sent.iter().filter(|t| *t == "payment_refunded").count(),
        2,
        "£50 then the remaining £70: {sent:?}"
    );
    let unknown = json!({"id": "re_unknown", "object": "refund", "status": "succeeded"});
    assert_eq!(
        expect_json(
            p.deliver(&event("evt_refund_4", "refund.updated", unknown))
                .await,
            200
        )
        .await["outcome"],
        "ignored"
    );
}

async fn a_payment_for_a_cancelled_booking_is_refunded(p: Paying) {
    let (slug, session) = p.programme("cancelled-then-paid", 10, 6_000).await;
    let token = p.held(&slug, "ha@example.org", session).await;
    let intent = p.intent_for(&token).await;
    expect_json(p.app.cancel(&token, None).await, 200).await;

    p.stripe.pay(&intent, CARD_OK).await;
    let booking = p.until(&token, |b| b["refunded_minor"] == 6_000).await;

    assert_eq!(booking["status"], "cancelled");
    assert_eq!(p.stripe.refunds(&intent).await.len(), 1);
    assert_eq!(p.app.seats_left(&slug, session).await, 10);
    until_email(&p.app, "payment_refunded").await;
}

async fn an_intent_no_longer_wanted_is_cancelled_at_stripe(p: Paying) {
    let (slug, session) = p.programme("unwanted-intent", 10, 6_000).await;
    let token = p.held(&slug, "la@example.org", session).await;
    let intent = p.intent_for(&token).await;
    expect_json(p.app.cancel(&token, None).await, 200).await;

    let swept = p.app.advance(chrono::Duration::zero()).await;

    assert_eq!(swept.payments.cancelled, 1);
    assert_eq!(p.stripe.intent(&intent).await["status"], "canceled");
    let options = expect_json(
        p.app
            .get(&format!("/api/v1/bookings/{token}/payments"))
            .await,
        200,
    )
    .await;
    assert_eq!(options["payments"][0]["state"], "cancelled");
    let again = p.app.advance(chrono::Duration::days(2)).await;
    assert_eq!(
        again.payments.checked, 0,
        "a cancelled intent is not looked up again"
    );
}

/// An organiser moves a held seat to a dearer session while its card payment is open: that
/// intent (for the old total) is cancelled at Stripe, and the next one is for the new total.
async fn an_intent_for_the_total_before_a_move_is_cancelled_at_stripe(p: Paying) {
    let (slug, session) = p.programme("moved-intent", 10, 6_000).await;
    let dearer = p.app.next_day_session(&slug, 10, 9_000).await;
    let token = p.held(&slug, "mo@example.org", session).await;
    let intent = p.intent_for(&token).await;
    let reference = p.app.booking(&token).await["reference"]
        .as_str()
        .expect("reference")
        .to_owned();
    let moved = expect_json(
        p.app
            .admin_post(
                &format!("/api/v1/admin/bookings/{reference}/move"),
                &json!({"from_session_id": session, "to_session_id": dearer}),
            )
            .await,
        200,
    )
    .await;
    assert_eq!(moved["total_minor"], 9_000);

    let swept = p.app.advance(chrono::Duration::zero()).await;
    assert_eq!(swept.payments.cancelled, 1);
    assert_eq!(p.stripe.intent(&intent).await["status"], "canceled");
    let again = p.start_card(&token).await;
    assert_ne!(
        again["payment_intent_id"]
            .as_str()
            .expect("a new payment intent"),
        intent.as_str()
    );
    assert_eq!(again["amount_minor"], 9_000, "{again}");
}

async fn concurrent_deliveries_of_one_success_confirm_once(p: Paying) {
    let (slug, session) = p.programme("concurrent-events", 10, 4_000).await;
    let token = p.held(&slug, "mo@example.org", session).await;
    let intent = p.intent_for(&token).await;
    let mut object = p.stripe.intent(&intent).await;
    object["status"] = json!("succeeded");
    object["amount_received"] = json!(4_000);
    // Eight deliveries of one event and four other events of the same success, all at once.
    let same = event("evt_storm", "payment_intent.succeeded", object.clone());
    let p = &p;
    let mut deliveries = Vec::new();
    for i in 0..12 {
        let body = if i < 8 {
            same.clone()
        } else {
            event(
                &format!("evt_storm_{i}"),
                "payment_intent.succeeded",
                object.clone(),
            )
        };
        deliveries.push(async move { p.deliver(&body).await });
    }
    let answers = futures_util::future::join_all(deliveries).await;

    let mut outcomes = Vec::new();
    for answer in answers {
        outcomes.push(expect_json(answer, 200).await["outcome"].clone());
    }
    assert_eq!(
        outcomes.iter().filter(|o| **o == "confirmed").count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == "duplicate").count(),
        11,
        "{outcomes:?}"
    );
    let booking = p.app.booking(&token).await;
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["paid_minor"], 4_000);
    let sent = emails(&p.app).await;
    assert_eq!(
        sent.iter().filter(|t| *t == "booking_confirmed").count(),
        1,
        "{sent:?}"
    );
    p.app.assert_no_drift();
}

async fn a_double_click_starts_one_payment(p: Paying) {
    let (slug, session) = p.programme("double-click", 10, 3_000).await;
    let token = p.held(&slug, "ni@example.org", session).await;

    let (a, b) = tokio::join!(p.start_card(&token), p.start_card(&token));

    assert_eq!(a["payment_intent_id"], b["payment_intent_id"]);
    let options = expect_json(
        p.app
            .get(&format!("/api/v1/bookings/{token}/payments"))
            .await,
        200,
    )
    .await;
    assert_eq!(options["payments"].as_array().map(Vec::len), Some(1));
}

/// Two requests cancelling the two places of one held booking at the same moment: the booking
/// ends cancelled with nothing to pay and its payment given up, every time.
async fn cancelling_two_places_at_once_leaves_nothing_to_pay(p: Paying) {
    let (slug, first) = p.programme("two-cancels", 50, 2_000).await;
    let second = p.app.next_day_session(&slug, 50, 3_000).await;
    for round in 0..8 {
        let booked = expect_json(
            p.app
                .book(
                    &slug,
                    &format!("round{round}@example.org"),
                    &[first, second],
                )
                .await,
            201,
        )
        .await;
        let token = booked["manage_token"].as_str().expect("token").to_owned();
        p.start_card(&token).await;

        let (one, other) = (
            json!({"session_ids": [first]}),
            json!({"session_ids": [second]}),
        );
        let (a, b) = tokio::join!(
            p.app.cancel(&token, Some(&one)),
            p.app.cancel(&token, Some(&other))
        );

        assert_eq!(
            (a.status().as_u16(), b.status().as_u16()),
            (200, 200),
            "round {round}"
        );
        let booking = p.app.booking(&token).await;
        assert_eq!(booking["status"], "cancelled", "round {round}: {booking}");
        assert_eq!(booking["total_minor"], 0, "round {round}: {booking}");
        let options = expect_json(
            p.app
                .get(&format!("/api/v1/bookings/{token}/payments"))
                .await,
            200,
        )
        .await;
        assert_eq!(
            options["payments"][0]["state"], "cancelled",
            "round {round}"
        );
        assert_eq!(options["methods"], json!([]));
    }
    p.app.assert_no_drift();
}

/// Books and pays `sessions` for `email`; returns the manage token and the intent.
async fn paid(p: &Paying, slug: &str, email: &str, sessions: &[i64]) -> (String, String) {
    let booked = expect_json(p.app.book(slug, email, sessions).await, 201).await;
    let token = booked["manage_token"].as_str().expect("token").to_owned();
    let intent = p.intent_for(&token).await;
    let (status, _) = p.stripe.pay(&intent, CARD_OK).await;
    assert_eq!(status, 200);
    p.until(&token, |b| b["payment_status"] == "paid").await;
    (token, intent)
}

async fn cancelled_paid_places_are_refunded_by_the_policy_paid_under(p: Paying) {
    let (slug, first) = p.programme("refund-policy", 10, 10_000).await;
    // 2027-03-10 and 2027-03-11: far ahead of the test clock.
    let second = p.app.next_day_session(&slug, 10, 10_000).await;
    let (token, intent) = paid(&p, &slug, "qa@example.org", &[first, second]).await;
    // A later change of policy does not alter what was promised.
    expect_json(
        p.app
            .admin_patch(
                &format!("/api/v1/admin/events/{slug}"),
                &json!({"refund_policy": []}),
            )
            .await,
        200,
    )
    .await;

    // More than 14 days ahead: everything back.
    expect_json(
        p.app
            .cancel(&token, Some(&json!({"session_ids": [first]})))
            .await,
        200,
    )
    .await;
    p.until(&token, |b| b["refunded_minor"] == 10_000).await;
    // Ten days before the second session: half back.
    let start = chrono::DateTime::parse_from_rfc3339("2027-03-11T09:00:00+00:00")
        .expect("time")
        .with_timezone(&chrono::Utc);
    let ahead = start - chrono::Duration::days(10) - p.app.clock.now();
    p.app.clock.advance(ahead);
    expect_json(
        p.app
            .cancel(&token, Some(&json!({"session_ids": [second]})))
            .await,
        200,
    )
    .await;
    let booking = p.until(&token, |b| b["refunded_minor"] == 15_000).await;

    assert_eq!(booking["status"], "cancelled");
    assert_eq!(booking["paid_minor"], 20_000);
    assert_eq!(
        booking["payment_status"], "paid",
        "not everything came back"
    );
    let mut amounts: Vec<i64> = p
        .stripe
        .refunds(&intent)
        .await
        .iter()
        .filter_map(|r| r["amount"].as_i64())
        .collect();
    amounts.sort_unstable();
    assert_eq!(amounts, vec![5_000, 10_000]);
    until_email(&p.app, "payment_refunded").await;
}

async fn a_cancelled_session_refunds_its_paid_places_in_full(p: Paying) {
    let (slug, session) = p.programme("session-cancelled", 10, 9_900).await;
    let (token, intent) = paid(&p, &slug, "ra@example.org", &[session]).await;
    // No refunds for the attendee under this policy so late: the organisers' cancellation
    // refunds in full all the same.
    expect_json(
        p.app
            .admin_patch(
                &format!("/api/v1/admin/sessions/{session}"),
                &json!({"status": "cancelled"}),
            )
            .await,
        200,
    )
    .await;

    let booking = p.until(&token, |b| b["refunded_minor"] == 9_900).await;

    assert_eq!(booking["payment_status"], "refunded");
    assert_eq!(p.stripe.refunds(&intent).await.len(), 1);
}

async fn organisers_refund_any_amount_up_to_what_was_paid(p: Paying) {
    let (slug, session) = p.programme("organiser-refund", 10, 12_000).await;
    let (token, intent) = paid(&p, &slug, "sa@example.org", &[session]).await;
    let reference = p.app.booking(&token).await["reference"]
        .as_str()
        .expect("reference")
        .to_owned();
    let path = format!("/api/v1/admin/bookings/{reference}/refund");

    let answer = expect_json(
        p.app
            .admin_post(
                &path,
                &json!({"amount_minor": 3_000, "note": "Sorry about the room"}),
            )
            .await,
        201,
    )
    .await;
    assert_eq!(answer["refundable_minor"], 9_000);
    expect_problem(
        p.app
            .admin_post(&path, &json!({"amount_minor": 9_001}))
            .await,
        422,
        "validation",
    )
    .await;
    expect_problem(
        p.app.admin_post(&path, &json!({"amount_minor": 0})).await,
        422,
        "validation",
    )
    .await;
    expect_problem(
        p.app
            .admin_post(
                "/api/v1/admin/bookings/PMO-ZZZZZZ/refund",
                &json!({"amount_minor": 1}),
            )
            .await,
        404,
        "not-found",
    )
    .await;
    let booking = p.until(&token, |b| b["refunded_minor"] == 3_000).await;

    assert_eq!(booking["status"], "confirmed", "places kept");
    assert_eq!(p.stripe.refunds(&intent).await.len(), 1);
    expect_json(
        p.app
            .admin_post(&path, &json!({"amount_minor": 9_000}))
            .await,
        201,
    )
    .await;
    let booking = p.until(&token, |b| b["refunded_minor"] == 12_000).await;
    assert_eq!(booking["payment_status"], "refunded");
    // The attendee hears of it, with the organisers' note.
    if smtp::available() {
        let server = SmtpServer::start_on(smtp::free_port());
        drain(&p.app, &mailer(&p.app, server.port, |_| {})).await;
        let texts: Vec<String> = server
            .wait_for(4, Duration::from_secs(5))
            .iter()
            .filter_map(|m| MessageParser::default().parse(m))
            .filter(|m| m.subject().is_some_and(|s| s.starts_with("Refund of")))
            .filter_map(|m| m.body_text(0).map(|t| t.into_owned()))
            .collect();
        assert_eq!(texts.len(), 2, "two refund emails");
        assert!(
            texts
                .iter()
                .any(|t| t.contains("£30.00") && t.contains("Sorry about the room")),
            "{texts:?}"
        );
    }
}

mod reconciler {
    use super::*;

    /// With no webhook coming, the sweep's reconciler finds the payment at Stripe.
    async fn confirms_a_payment_whose_webhook_never_came(backend: Backend) {
        let Some(p) = Paying::spawn(backend, false).await else {
            return;
        };
        let (slug, session) = p.programme("no-webhooks", 10, 8_000).await;
        let token = p.held(&slug, "io@example.org", session).await;
        let intent = p.intent_for(&token).await;
        p.stripe.pay(&intent, CARD_OK).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(p.app.booking(&token).await["status"], "held");
        // Not looked at before `reconcile_after_seconds` (300 s).
        let early = p.app.advance(chrono::Duration::minutes(2)).await;
        assert_eq!(early.payments.checked, 0);

        let swept = p.app.advance(chrono::Duration::minutes(4)).await;

        assert_eq!((swept.payments.checked, swept.payments.settled), (1, 1));
        let booking = p.app.booking(&token).await;
        assert_eq!(booking["status"], "confirmed");
        assert_eq!(booking["paid_minor"], 8_000);
        let later = p.app.advance(chrono::Duration::minutes(10)).await;
        assert_eq!(
            later.payments.checked, 0,
            "a settled payment is not looked up again"
        );
        p.app.assert_no_drift();
    }

    /// Paid in time, its webhook lost: the hold's deadline makes the reconciler ask Stripe
    /// before the hold may expire, so the booking is confirmed rather than released.
    async fn asks_stripe_before_a_paid_hold_expires(backend: Backend) {
        // Its regular look would come long after the hold's 15 minutes.
        let Some(p) = Paying::spawn_with(backend, false, |s| {
            s.payments.reconcile_after_seconds = std::num::NonZeroU32::new(3600).expect("non-zero");
        })
        .await
        else {
            return;
        };
        let (slug, session) = p.programme("paid-at-the-deadline", 1, 8_000).await;
        let token = p.held(&slug, "ol@example.org", session).await;
        let intent = p.intent_for(&token).await;
        p.stripe.pay(&intent, CARD_OK).await;

        let swept = p.app.advance(chrono::Duration::minutes(16)).await;

        assert_eq!(swept.holds_expired, 0, "{swept:?}");
        assert_eq!(swept.payments.settled, 1, "{swept:?}");
        let booking = p.app.booking(&token).await;
        assert_eq!(booking["status"], "confirmed");
        assert_eq!(p.app.seats_left(&slug, session).await, 0);
        p.app.assert_no_drift();
    }

    /// The reconciler and a late webhook settle the same payment at once: one confirmation.
    async fn and_a_webhook_at_once_confirm_once(backend: Backend) {
        let Some(p) = Paying::spawn(backend, false).await else {
            return;
        };
        let (slug, session) = p.programme("race-reconciler", 10, 5_500).await;
        let token = p.held(&slug, "pa@example.org", session).await;
        let intent = p.intent_for(&token).await;
        p.stripe.pay(&intent, CARD_OK).await;
        let object = p.stripe.intent(&intent).await;
        let late = event("evt_late_webhook", "payment_intent.succeeded", object);

        let (swept, answer) = tokio::join!(
            p.app.advance(chrono::Duration::minutes(6)),
            p.deliver(&late)
        );

        assert_eq!(answer.status(), 200);
        assert!(swept.payments.checked <= 1);
        let booking = p.app.booking(&token).await;
        assert_eq!(booking["status"], "confirmed");
        assert_eq!(booking["paid_minor"], 5_500);
        let sent = emails(&p.app).await;
        assert_eq!(
            sent.iter().filter(|t| *t == "booking_confirmed").count(),
            1,
            "{sent:?}"
        );
        assert!(p.stripe.refunds(&intent).await.is_empty());
        p.app.assert_no_drift();
    }

    crate::on_both_backends_with!(super::super::backend;
        confirms_a_payment_whose_webhook_never_came,
        asks_stripe_before_a_paid_hold_expires,
        and_a_webhook_at_once_confirm_once,
    );
}

mod signatures {
    use super::*;

    async fn app_with_secrets(backend: Backend) -> Option<TestApp> {
        TestApp::spawn_with(backend, |s| {
            s.payments.stripe_webhook_secret = Some(SecretString::from("whsec_current".to_owned()));
            s.payments.stripe_previous_webhook_secret =
                Some(SecretString::from("whsec_previous".to_owned()));
        })
        .await
    }

    async fn are_checked_before_anything_is_read(backend: Backend) {
        let Some(app) = app_with_secrets(backend).await else {
            return;
        };
        let body = event("evt_sig_1", "customer.created", json!({"id": "cus_1"}));
        let payload = body.to_string();
        let send = |signature: Option<String>, payload: String| {
            let mut request = app
                .client
                .post(app.url("/api/v1/webhooks/stripe"))
                .header("content-type", "application/json")
                .body(payload);
            if let Some(signature) = signature {
                request = request.header("stripe-signature", signature);
            }
            request.send()
        };
        let refused = [
            (None, payload.clone(), "missing"),
            (
                Some(stripe::signature(&payload, "whsec_forged", now())),
                payload.clone(),
                "forged",
            ),
            (
                // A minute beyond the five-minute tolerance either way: the requests go out one
                // after the other, seconds after these are signed on a busy machine.
                Some(stripe::signature(&payload, "whsec_current", now() - 360)),
                payload.clone(),
                "too old",
            ),
            (
                Some(stripe::signature(&payload, "whsec_current", now() + 360)),
                payload.clone(),
                "from the future",
            ),
            (
                Some(stripe::signature(&payload, "whsec_current", now())),
                payload.replace("customer.created", "payment_intent.succeeded"),
                "body changed after signing",
            ),
            (Some("t=abc,v1=00".to_owned()), payload.clone(), "malformed"),
            (
                Some(
                    stripe::signature(&payload, "whsec_current", now() - 400).replacen(
                        &format!("t={}", now() - 400),
                        &format!("t={}", now()),
                        1,
                    ),
                ),
                payload.clone(),
                "timestamp replaced",
            ),
        ];
        for (signature, payload, case) in refused {
            let response = send(signature, payload).await.expect("sent");
            assert_eq!(response.status(), 400, "{case}");
            let problem: Value = response.json().await.expect("problem");
            assert_eq!(problem["type"], "/problems/bad-signature", "{case}");
        }

        // The previous secret is still accepted while the new one rolls out.
        let previous = stripe::signature(&payload, "whsec_previous", now());
        let answer = expect_json(
            send(Some(previous), payload.clone()).await.expect("sent"),
            200,
        )
        .await;
        assert_eq!(answer["outcome"], "ignored");
        // The same delivery again (a replay within the tolerance) has no second effect.
        let current = stripe::signature(&payload, "whsec_current", now());
        let answer = expect_json(
            send(Some(current), payload.clone()).await.expect("sent"),
            200,
        )
        .await;
        assert_eq!(answer["outcome"], "duplicate");
        // Signed, but not an event.
        let junk = "[1, 2, 3]".to_owned();
        let signed = stripe::signature(&junk, "whsec_current", now());
        expect_problem(
            send(Some(signed), junk).await.expect("sent"),
            400,
            "malformed-json",
        )
        .await;

        // Without any secret configured, nothing is accepted.
        let Some(bare) = TestApp::spawn(backend).await else {
            return;
        };
        expect_problem(
            post_signed(&bare, &body, "whsec_current", now()).await,
            503,
            "card-payments-unavailable",
        )
        .await;
    }

    crate::on_both_backends_with!(super::super::backend;are_checked_before_anything_is_read);
}

mod without_stripe {
    use super::*;

    /// Without keys the card method is not offered, and the service says so; free bookings
    /// are untouched.
    async fn cards_are_not_offered(backend: Backend) {
        let Some(app) = TestApp::spawn(backend).await else {
            return;
        };
        let slug = app.published_event("no-cards").await;
        let priced = app.session(&slug, "Resource management", 10, 9_500).await;
        let free = app.session(&slug, "PMO maturity", 10, 0).await;
        let held = expect_json(app.book(&slug, "jo@example.org", &[priced]).await, 201).await;
        let token = held["manage_token"].as_str().expect("token");

        let options = expect_json(
            app.get(&format!("/api/v1/bookings/{token}/payments")).await,
            200,
        )
        .await;
        assert_eq!(options["methods"], json!([]));
        assert!(options["card_unavailable"]
            .as_str()
            .is_some_and(|m| m.contains("not set up")));
        let problem = expect_problem(
            app.post(
                &format!("/api/v1/bookings/{token}/payments/stripe"),
                &json!({}),
            )
            .await,
            503,
            "card-payments-unavailable",
        )
        .await;
        assert!(problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("held")));

        let confirmed = expect_json(app.book(&slug, "ka@example.org", &[free]).await, 201).await;
        assert_eq!(confirmed["status"], "confirmed");
        let free_token = confirmed["manage_token"].as_str().expect("token");
        expect_problem(
            app.post(
                &format!("/api/v1/bookings/{free_token}/payments/stripe"),
                &json!({}),
            )
            .await,
            409,
            "not-payable",
        )
        .await;
        expect_problem(
            app.post(
                "/api/v1/bookings/mt_nonexistenttoken000000000000000000000000/payments/stripe",
                &json!({}),
            )
            .await,
            404,
            "not-found",
        )
        .await;
        // A hold that has run out cannot be paid, before the sweep releases its seats and after.
        app.clock.advance(chrono::Duration::minutes(16));
        expect_problem(
            app.post(
                &format!("/api/v1/bookings/{token}/payments/stripe"),
                &json!({}),
            )
            .await,
            409,
            "hold-expired",
        )
        .await;
        app.advance(chrono::Duration::zero()).await;
        expect_problem(
            app.post(
                &format!("/api/v1/bookings/{token}/payments/stripe"),
                &json!({}),
            )
            .await,
            409,
            "not-payable",
        )
        .await;
    }

    crate::on_both_backends_with!(super::super::backend;cards_are_not_offered);
}
