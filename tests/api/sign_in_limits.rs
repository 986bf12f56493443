//! The organiser sign-in limits kept in the database: failed sign-ins per account and per client
//! address, password reset requests per account, shared by every app instance on the database.
//! The apps here allow 3 failures per account and 5 per client in 15 minutes, and 2 resets per
//! account an hour, and take the client's address from `X-Forwarded-For`.

use std::num::NonZeroU32;

use chrono::Duration;
use diesel::prelude::*;
use futures_util::future::join_all;
use masterclass::config::Settings;
use masterclass::organisers::Role;

use crate::dashboard::{outbox, sign_in, signed_in, with_db, PASSWORD};
use crate::helpers::{Backend, TestApp};
use crate::pages::{Browser, Page};

fn small_limits(settings: &mut Settings) {
    let limit = |n| NonZeroU32::new(n).expect("non-zero");
    settings.sign_in.failures_per_account = limit(3);
    settings.sign_in.failures_per_client = limit(5);
    settings.sign_in.resets_per_account = limit(2);
    settings.pages.trust_forwarded_for = true;
}

async fn app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, small_limits).await
}

/// A sign-in through the server at `address` from `client` (as the proxy in front reports it).
async fn sign_in_from(address: &str, client: &str, email: &str, password: &str) -> Page {
    let mut browser = Browser::new(address);
    let form = browser.get("/organiser/login").await;
    browser
        .post_with(
            "/organiser/login",
            &[
                ("csrf", form.csrf().as_str()),
                ("email", email),
                ("password", password),
                ("next", "/organiser"),
            ],
            &[("x-forwarded-for", client)],
        )
        .await
}

/// A password reset asked for through the server at `address`.
async fn ask_for_reset(address: &str, email: &str) -> Page {
    let mut browser = Browser::new(address);
    let form = browser.get("/organiser/forgot").await;
    browser
        .post(
            "/organiser/forgot",
            &[("csrf", form.csrf().as_str()), ("email", email)],
        )
        .await
}

/// The `Retry-After` of a refusal, in seconds.
fn retry_after(page: &Page) -> u64 {
    assert_eq!(page.status, 429, "{}", page.body);
    page.header("retry-after")
        .and_then(|s| s.parse().ok())
        .expect("a Retry-After in seconds")
}

/// Every counted attempt: kind, account, client.
async fn attempts(app: &TestApp) -> Vec<(String, Option<String>, Option<String>)> {
    with_db(app, |conn| {
        use masterclass::db::schema::sign_in_attempts as table;
        table::table
            .order(table::id)
            .select((table::kind, table::account, table::client))
            .load(conn)
            .expect("attempts")
    })
    .await
}

crate::on_both_backends_with!(super::app;
    after_the_account_limit_even_the_right_password_waits_and_others_still_sign_in,
    a_client_failing_on_many_accounts_is_refused_on_all_of_them,
    two_instances_on_one_database_share_the_count,
    guesses_sent_at_once_get_no_more_than_the_limit_checked,
    signing_in_clears_the_accounts_failures_but_not_the_clients,
    once_the_oldest_failure_leaves_the_window_sign_in_works_again,
    password_resets_are_limited_per_account_across_instances,
    nothing_of_a_password_is_kept_with_the_attempts,
);

/// Three failures from three addresses lock the account: the right password then gets a 429
/// page with `Retry-After` (the whole window, as the clock stands still), from a fourth
/// address too; another account signs in as usual.
async fn after_the_account_limit_even_the_right_password_waits_and_others_still_sign_in(
    app: TestApp,
) {
    signed_in(&app, "ada@example.org", Role::Admin).await;
    signed_in(&app, "bob@example.org", Role::Admin).await;
    for client in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        let refused = sign_in_from(&app.address, client, "ada@example.org", "not it at all").await;
        assert_eq!(refused.status, 401, "{}", refused.body);
    }

    let locked = sign_in_from(&app.address, "192.0.2.4", "ADA@example.org", PASSWORD).await;

    assert_eq!(retry_after(&locked), 15 * 60);
    locked.shows(&[
        "Too many requests",
        "too many unsuccessful sign-ins to this account",
        "15 minutes",
    ]);
    locked.lacks(&[PASSWORD]);
    let bob = sign_in_from(&app.address, "192.0.2.4", "bob@example.org", PASSWORD).await;
    assert_eq!(bob.status, 303, "{}", bob.body);
    let counted = attempts(&app).await;
    assert_eq!(
        counted.len(),
        3,
        "the refused attempt is not counted: {counted:?}"
    );
}

/// Five failures from one address, each on another account (known or not), and that address
/// may try no more, even the right password of an account with no failures; other addresses
/// can. An IPv6 client counts by its /64.
async fn a_client_failing_on_many_accounts_is_refused_on_all_of_them(app: TestApp) {
    signed_in(&app, "ada@example.org", Role::Admin).await;
    for n in 1..=5 {
        let email = format!("guess{n}@example.org");
        let refused = sign_in_from(&app.address, "198.51.100.7", &email, "a guess").await;
        assert_eq!(refused.status, 401, "{}", refused.body);
    }

    let locked = sign_in_from(&app.address, "198.51.100.7", "ada@example.org", PASSWORD).await;

    assert_eq!(retry_after(&locked), 15 * 60);
    locked.shows(&["from this connection"]);
    let elsewhere = sign_in_from(&app.address, "198.51.100.8", "ada@example.org", PASSWORD).await;
    assert_eq!(elsewhere.status, 303, "{}", elsewhere.body);

    for n in 1..=5 {
        let client = format!("2001:db8:7:7::{n}");
        let email = format!("v6guess{n}@example.org");
        let refused = sign_in_from(&app.address, &client, &email, "a guess").await;
        assert_eq!(refused.status, 401, "{}", refused.body);
    }
    let same_prefix = sign_in_from(
        &app.address,
        "2001:db8:7:7:ffff::1",
        "ada@example.org",
        PASSWORD,
    )
    .await;
    assert_eq!(same_prefix.status, 429, "{}", same_prefix.body);
    let next_prefix =
        sign_in_from(&app.address, "2001:db8:7:8::1", "ada@example.org", PASSWORD).await;
    assert_eq!(next_prefix.status, 303, "{}", next_prefix.body);
}

/// Two servers on one database, as two processes behind a load balancer: failures through
/// either count for both, and the locked account is refused by both.
async fn two_instances_on_one_database_share_the_count(app: TestApp) {
    let second = app.another_instance(small_limits).await;
    signed_in(&app, "ada@example.org", Role::Admin).await;
    let tries = [
        (&app.address, "192.0.2.1"),
        (&second, "192.0.2.2"),
        (&app.address, "192.0.2.3"),
    ];
    for (server, client) in tries {
        let refused = sign_in_from(server, client, "ada@example.org", "not it at all").await;
        assert_eq!(refused.status, 401, "{}", refused.body);
    }

    let on_second = sign_in_from(&second, "192.0.2.9", "ada@example.org", PASSWORD).await;
    let on_first = sign_in_from(&app.address, "192.0.2.9", "ada@example.org", PASSWORD).await;

    assert_eq!(retry_after(&on_second), 15 * 60);
    assert_eq!(retry_after(&on_first), 15 * 60);
}

/// Twelve guesses at one account sent at once, half through each of two servers: the limit is
/// checked and the attempt counted in one step, so three are checked and the rest refused.
async fn guesses_sent_at_once_get_no_more_than_the_limit_checked(app: TestApp) {
    let second = app.another_instance(small_limits).await;
    signed_in(&app, "ada@example.org", Role::Admin).await;
    let guesses = (1..=12).map(|n| {
        let server = if n % 2 == 0 {
            app.address.clone()
        } else {
            second.clone()
        };
        async move {
            let client = format!("192.0.2.{n}");
            sign_in_from(&server, &client, "ada@example.org", "a guess")
                .await
                .status
        }
    });

    let mut statuses = join_all(guesses).await;

    statuses.sort_unstable();
    assert_eq!(statuses, [[401; 3].as_slice(), &[429; 9]].concat());
    assert_eq!(attempts(&app).await.len(), 3);
}

/// The right password clears the account's failures, so its next mistakes start from none; the
/// failures its client made on other accounts still count.
async fn signing_in_clears_the_accounts_failures_but_not_the_clients(app: TestApp) {
    signed_in(&app, "ada@example.org", Role::Admin).await;
    let client = "203.0.113.5";
    for email in ["ada@example.org", "ada@example.org", "nobody@example.org"] {
        let refused = sign_in_from(&app.address, client, email, "not it at all").await;
        assert_eq!(refused.status, 401, "{}", refused.body);
    }

    let signed = sign_in_from(&app.address, "192.0.2.1", "ada@example.org", PASSWORD).await;

    assert_eq!(signed.status, 303, "{}", signed.body);
    let left = attempts(&app).await;
    assert_eq!(
        left,
        [(
            "sign_in".to_owned(),
            Some("nobody@example.org".to_owned()),
            Some(client.to_owned())
        )],
    );
    for _ in 0..2 {
        let refused = sign_in_from(&app.address, "192.0.2.2", "ada@example.org", "nope").await;
        assert_eq!(refused.status, 401, "{}", refused.body);
    }
    let again = sign_in_from(&app.address, "192.0.2.3", "ada@example.org", PASSWORD).await;
    assert_eq!(again.status, 303, "two failures since are under the limit");
}

/// A locked account opens when its oldest counted failure leaves the window, to the second the
/// `Retry-After` gave; the sweeper later forgets the attempts.
async fn once_the_oldest_failure_leaves_the_window_sign_in_works_again(app: TestApp) {
    signed_in(&app, "ada@example.org", Role::Admin).await;
    let mut browser = Browser::of(&app);
    sign_in(&mut browser, "ada@example.org", "first mistake").await;
    app.clock.advance(Duration::minutes(5));
    for _ in 0..2 {
        let refused = sign_in(&mut browser, "ada@example.org", "later mistake").await;
        assert_eq!(refused.status, 401, "{}", refused.body);
    }
    let locked = sign_in(&mut browser, "ada@example.org", PASSWORD).await;
    assert_eq!(retry_after(&locked), 10 * 60);

    app.clock.advance(Duration::seconds(10 * 60 - 1));
    let almost = sign_in(&mut browser, "ada@example.org", PASSWORD).await;
    assert_eq!(retry_after(&almost), 1);
    app.clock.advance(Duration::seconds(1));
    let signed = sign_in(&mut browser, "ada@example.org", PASSWORD).await;

    assert_eq!(signed.status, 303, "{}", signed.body);
    sign_in(&mut Browser::of(&app), "nobody@example.org", "a guess").await;
    let swept = app.advance(Duration::hours(24)).await;
    assert_eq!(swept.sign_in_attempts_forgotten, 1);
    assert!(attempts(&app).await.is_empty());
}

/// Two reset links an hour per account, whichever server is asked, for known addresses and
/// unknown alike: the third request gets a 429 page and sends nothing; other accounts are not
/// held up, and after the hour a link can be asked for again.
async fn password_resets_are_limited_per_account_across_instances(app: TestApp) {
    let second = app.another_instance(small_limits).await;
    signed_in(&app, "ada@example.org", Role::Admin).await;
    signed_in(&app, "bob@example.org", Role::Admin).await;
    assert_eq!(
        ask_for_reset(&app.address, "ada@example.org").await.status,
        200
    );
    app.clock.advance(Duration::minutes(10));
    assert_eq!(ask_for_reset(&second, "Ada@Example.org").await.status, 200);

    let third = ask_for_reset(&app.address, "ada@example.org").await;

    assert_eq!(retry_after(&third), 50 * 60);
    third.shows(&["Password reset links for this address"]);
    assert_eq!(outbox(&app, "ada@example.org", "password_reset").await, 2);
    assert_eq!(ask_for_reset(&second, "bob@example.org").await.status, 200);
    for _ in 0..2 {
        let unknown = ask_for_reset(&second, "nobody@example.org").await;
        assert_eq!(unknown.status, 200, "{}", unknown.body);
    }
    assert_eq!(
        ask_for_reset(&app.address, "nobody@example.org")
            .await
            .status,
        429,
        "an unknown address is answered as a known one"
    );
    app.clock.advance(Duration::minutes(50));
    assert_eq!(ask_for_reset(&second, "ada@example.org").await.status, 200);
    assert_eq!(outbox(&app, "ada@example.org", "password_reset").await, 3);
}

/// Failed, refused and successful sign-ins, one with the password typed in the email field:
/// the table holds addresses, clients and kinds, never a password.
async fn nothing_of_a_password_is_kept_with_the_attempts(app: TestApp) {
    signed_in(&app, "ada@example.org", Role::Admin).await;
    let secret = "my other secret passphrase";
    let client = "192.0.2.44";
    let in_the_wrong_field = sign_in_from(&app.address, client, secret, secret).await;
    assert_eq!(in_the_wrong_field.status, 401);
    for _ in 0..3 {
        sign_in_from(&app.address, client, "ada@example.org", secret).await;
    }
    let locked = sign_in_from(&app.address, client, "ada@example.org", PASSWORD).await;
    assert_eq!(locked.status, 429);

    let kept = attempts(&app).await;

    assert_eq!(kept.len(), 4, "{kept:?}");
    assert_eq!(
        kept[0],
        ("sign_in".to_owned(), None, Some(client.to_owned())),
        "what is no email address is not kept"
    );
    let everything = format!("{kept:?}");
    for part in ["secret", "passphrase", "staple", "horse"] {
        assert!(!everything.contains(part), "{part} in {everything}");
    }
}
