//! The organiser sign-in limits kept in the database: failed sign-ins per account and client
//! address, per account from every address and per client address; password reset requests
//! the same three ways. Every app instance on the database shares them. The apps here allow 3
//! failures per account and address, 6 per account from everywhere and 5 per address in 15
//! minutes; 2 resets per account and address, 4 per account from everywhere and 3 per address
//! an hour. They take the client's address from `X-Forwarded-For`.

use std::num::NonZeroU32;

use chrono::Duration;
use diesel::prelude::*;
use futures_util::future::join_all;
use masterclass::config::Settings;
use masterclass::organisers::sign_in_limits::{self, AttemptError, Limits, Rule};
use masterclass::organisers::Role;

use crate::dashboard::{choose_password, outbox, sign_in, signed_in, with_db, PASSWORD};
use crate::helpers::{test_settings, Backend, TestApp};
use crate::pages::{Browser, Page};

fn small_limits(settings: &mut Settings) {
    let limit = |n| NonZeroU32::new(n).expect("non-zero");
    settings.sign_in.failures_per_account = limit(3);
    settings.sign_in.failures_per_account_everywhere = limit(6);
    settings.sign_in.failures_per_client = limit(5);
    settings.sign_in.resets_per_account = limit(2);
    settings.sign_in.resets_per_account_everywhere = limit(4);
    settings.sign_in.resets_per_client = limit(3);
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

/// A password reset asked for through the server at `address` from `client`.
async fn ask_for_reset(address: &str, client: &str, email: &str) -> Page {
    let mut browser = Browser::new(address);
    let form = browser.get("/organiser/forgot").await;
    browser
        .post_with(
            "/organiser/forgot",
            &[("csrf", form.csrf().as_str()), ("email", email)],
            &[("x-forwarded-for", client)],
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

/// Every counted attempt (not the remembered sign-ins): kind, account, client.
async fn attempts(app: &TestApp) -> Vec<(String, Option<String>, Option<String>)> {
    with_db(app, |conn| {
        use masterclass::db::schema::sign_in_attempts as table;
        table::table
            .filter(table::kind.ne("known"))
            .order(table::id)
            .select((table::kind, table::account, table::client))
            .load(conn)
            .expect("attempts")
    })
    .await
}

/// The clients of every remembered successful sign-in.
async fn known_rows(app: &TestApp) -> Vec<Option<String>> {
    with_db(app, |conn| {
        use masterclass::db::schema::sign_in_attempts as table;
        table::table
            .filter(table::kind.eq("known"))
            .select(table::client)
            .load(conn)
            .expect("known")
    })
    .await
}

/// A counted failed sign-in to `account` from `client`.
fn failure(account: &str, client: &str) -> (String, Option<String>, Option<String>) {
    (
        "sign_in".to_owned(),
        Some(account.to_owned()),
        Some(client.to_owned()),
    )
}

crate::on_both_backends_with!(super::app;
    failures_from_one_address_pause_the_account_there_while_the_owner_signs_in_from_another,
    failures_from_many_addresses_pause_the_account_everywhere_until_a_reset,
    an_address_the_owner_signed_in_from_is_not_paused_by_failures_from_everywhere,
    sign_ins_from_no_known_address_are_counted_as_one_address,
    a_client_failing_on_many_accounts_is_refused_on_all_of_them,
    two_instances_on_one_database_share_the_count,
    guesses_sent_at_once_get_no_more_than_the_limits_checked,
    signing_in_clears_the_accounts_failures_from_that_address_only,
    once_the_oldest_failure_leaves_the_window_sign_in_works_again,
    password_resets_are_limited_per_account_and_address_across_instances,
    one_address_asking_for_many_accounts_resets_is_refused_after_its_fill,
    resets_asked_for_elsewhere_do_not_stop_the_owners_own,
    nothing_of_a_password_is_kept_with_the_attempts,
);

/// Three failures from one address pause the account for that address: the right password
/// from it gets a 429 page with `Retry-After` (the whole window, as the clock stands still),
/// even after the owner has signed in from another address. The owner gets in from there, and
/// another account gets in from the paused address.
async fn failures_from_one_address_pause_the_account_there_while_the_owner_signs_in_from_another(
    app: TestApp,
) {
    signed_in(&app, "ada@example.org", Role::Admin).await;
    signed_in(&app, "bob@example.org", Role::Admin).await;
    let attacker = "192.0.2.66";
    for _ in 0..3 {
        let refused = sign_in_from(&app.address, attacker, "ada@example.org", "a guess").await;
        assert_eq!(refused.status, 401, "{}", refused.body);
    }

    let locked = sign_in_from(&app.address, attacker, "ADA@example.org", PASSWORD).await;
    let owner = sign_in_from(&app.address, "198.51.100.20", "ada@example.org", PASSWORD).await;

    assert_eq!(retry_after(&locked), 15 * 60);
    locked.shows(&[
        "Too many requests",
        "too many unsuccessful sign-ins to this account",
        "15 minutes",
    ]);
    locked.lacks(&[PASSWORD]);
    assert_eq!(owner.status, 303, "{}", owner.body);
    let still = sign_in_from(&app.address, attacker, "ada@example.org", PASSWORD).await;
    assert_eq!(retry_after(&still), 15 * 60);
    let bob = sign_in_from(&app.address, attacker, "bob@example.org", PASSWORD).await;
    assert_eq!(bob.status, 303, "{}", bob.body);
    assert_eq!(
        attempts(&app).await,
        vec![failure("ada@example.org", attacker); 3],
        "refused attempts are not counted; the sign-ins clear their own"
    );
}

/// Two failures from each of three addresses make six: the account is paused for every
/// address, one that never failed too, while other accounts sign in. A password set through an
/// emailed reset link clears them all.
async fn failures_from_many_addresses_pause_the_account_everywhere_until_a_reset(app: TestApp) {
    signed_in(&app, "ada@example.org", Role::Admin).await;
    signed_in(&app, "bob@example.org", Role::Admin).await;
    for client in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        for _ in 0..2 {
            let refused = sign_in_from(&app.address, client, "ada@example.org", "a guess").await;
            assert_eq!(refused.status, 401, "{}", refused.body);
        }
    }

    let owner = sign_in_from(&app.address, "198.51.100.20", "ada@example.org", PASSWORD).await;

    assert_eq!(retry_after(&owner), 15 * 60);
    owner.shows(&["too many unsuccessful sign-ins to this account"]);
    let guesser = sign_in_from(&app.address, "192.0.2.1", "ada@example.org", PASSWORD).await;
    assert_eq!(guesser.status, 429, "{}", guesser.body);
    let bob = sign_in_from(&app.address, "198.51.100.20", "bob@example.org", PASSWORD).await;
    assert_eq!(bob.status, 303, "{}", bob.body);

    let asked = ask_for_reset(&app.address, "198.51.100.20", "ada@example.org").await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    let link = app
        .newest_organiser_link("ada@example.org")
        .await
        .expect("a reset link");
    let chosen = choose_password(&mut Browser::of(&app), &link, None, "a new pass phrase").await;
    assert_eq!(chosen.status, 303, "{}", chosen.body);
    let again = sign_in_from(
        &app.address,
        "198.51.100.20",
        "ada@example.org",
        "a new pass phrase",
    )
    .await;
    assert_eq!(again.status, 303, "{}", again.body);
    let left = attempts(&app).await;
    assert!(
        left.iter().all(|(kind, ..)| kind == "reset"),
        "no failed sign-in is left: {left:?}"
    );
}

/// The owner signs in once from one address; failures from others fill the limit from
/// everywhere. The owner still signs in from that address (a month later it is no longer
/// known), while a new address is refused; the limit per account and address still holds there.
async fn an_address_the_owner_signed_in_from_is_not_paused_by_failures_from_everywhere(
    app: TestApp,
) {
    signed_in(&app, "ada@example.org", Role::Admin).await;
    let (known, new) = ("198.51.100.20", "198.51.100.21");
    let first = sign_in_from(&app.address, known, "ada@example.org", PASSWORD).await;
    assert_eq!(first.status, 303, "{}", first.body);
    app.clock.advance(Duration::days(2));
    for client in ["192.0.2.1", "192.0.2.2", "2001:db8:1:1::1"] {
        for _ in 0..2 {
            let refused = sign_in_from(&app.address, client, "ada@example.org", "a guess").await;
            assert_eq!(refused.status, 401, "{}", refused.body);
        }
    }

    let owner = sign_in_from(&app.address, known, "ada@example.org", PASSWORD).await;
    let elsewhere = sign_in_from(&app.address, new, "ada@example.org", PASSWORD).await;

    assert_eq!(owner.status, 303, "{}", owner.body);
    assert_eq!(retry_after(&elsewhere), 15 * 60);
    elsewhere.shows(&["too many unsuccessful sign-ins to this account"]);
    for _ in 0..3 {
        let refused = sign_in_from(&app.address, known, "ada@example.org", "a slip").await;
        assert_eq!(refused.status, 401, "{}", refused.body);
    }
    let slipped = sign_in_from(&app.address, known, "ada@example.org", PASSWORD).await;
    assert_eq!(slipped.status, 429, "{}", slipped.body);
    app.clock.advance(Duration::minutes(15));
    let again = sign_in_from(&app.address, known, "ada@example.org", PASSWORD).await;
    assert_eq!(again.status, 303, "{}", again.body);
    assert_eq!(
        known_rows(&app).await,
        [Some(known.to_owned())],
        "one remembered sign-in per account and address"
    );

    app.clock.advance(Duration::days(30));
    for client in ["192.0.2.3", "192.0.2.4", "192.0.2.5"] {
        for _ in 0..2 {
            let refused = sign_in_from(&app.address, client, "ada@example.org", "a guess").await;
            assert_eq!(refused.status, 401, "{}", refused.body);
        }
    }
    let forgotten = sign_in_from(&app.address, known, "ada@example.org", PASSWORD).await;
    assert_eq!(retry_after(&forgotten), 15 * 60);
    app.advance(Duration::minutes(1)).await;
    assert!(known_rows(&app).await.is_empty());
}

/// Sign-ins whose client address is unknown are one address of their own: three failures pause
/// the account for them, not for a known address.
async fn sign_ins_from_no_known_address_are_counted_as_one_address(app: TestApp) {
    signed_in(&app, "ada@example.org", Role::Admin).await;
    let mut settings = test_settings(&app.database_url);
    small_limits(&mut settings);
    let limits = Limits::from_settings(&settings.sign_in);
    let now = app.clock.now();

    let outcomes = with_db(&app, move |conn| {
        ["a guess", "a guess", "a guess", PASSWORD].map(|password| {
            match sign_in_limits::sign_in(conn, &limits, "ada@example.org", password, None, now) {
                Ok(_) => "signed in",
                Err(AttemptError::NotRight) => "not right",
                Err(AttemptError::Locked(refused)) => refused.rule.as_str(),
                Err(AttemptError::Db(e)) => panic!("{e}"),
            }
        })
    })
    .await;

    assert_eq!(
        outcomes,
        [
            "not right",
            "not right",
            "not right",
            Rule::AccountFromClient.as_str()
        ]
    );
    let known = sign_in_from(&app.address, "192.0.2.1", "ada@example.org", PASSWORD).await;
    assert_eq!(known.status, 303, "{}", known.body);
    assert_eq!(
        attempts(&app).await,
        vec![
            (
                "sign_in".to_owned(),
                Some("ada@example.org".to_owned()),
                None
            );
            3
        ]
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

/// Two servers on one database, as two processes behind a load balancer: failures from one
/// address through either count for both, and both refuse that address.
async fn two_instances_on_one_database_share_the_count(app: TestApp) {
    let second = app.another_instance(small_limits).await;
    signed_in(&app, "ada@example.org", Role::Admin).await;
    let client = "192.0.2.1";
    for server in [&app.address, &second, &app.address] {
        let refused = sign_in_from(server, client, "ada@example.org", "not it at all").await;
        assert_eq!(refused.status, 401, "{}", refused.body);
    }

    let on_second = sign_in_from(&second, client, "ada@example.org", PASSWORD).await;
    let on_first = sign_in_from(&app.address, client, "ada@example.org", PASSWORD).await;

    assert_eq!(retry_after(&on_second), 15 * 60);
    assert_eq!(retry_after(&on_first), 15 * 60);
}

/// Twelve guesses at one account sent at once, half through each of two servers: six from one
/// address and one from each of six others. Each limit is checked and the attempt counted in one
/// step, so six are checked (the limit from everywhere), no more than three of them from the
/// one address, and the rest refused.
async fn guesses_sent_at_once_get_no_more_than_the_limits_checked(app: TestApp) {
    let second = app.another_instance(small_limits).await;
    signed_in(&app, "ada@example.org", Role::Admin).await;
    let busy = "192.0.2.100";
    let guesses = (1..=12).map(|n| {
        let server = if n % 2 == 0 {
            app.address.clone()
        } else {
            second.clone()
        };
        let client = if n <= 6 {
            busy.to_owned()
        } else {
            format!("192.0.2.{n}")
        };
        async move {
            sign_in_from(&server, &client, "ada@example.org", "a guess")
                .await
                .status
        }
    });

    let mut statuses = join_all(guesses).await;

    statuses.sort_unstable();
    assert_eq!(statuses, [[401; 6].as_slice(), &[429; 6]].concat());
    let counted = attempts(&app).await;
    assert_eq!(counted.len(), 6, "{counted:?}");
    let from_busy = counted
        .iter()
        .filter(|(_, _, client)| client.as_deref() == Some(busy))
        .count();
    assert!(from_busy <= 3, "{counted:?}");
}

/// The right password clears the account's failures from its address, so mistakes there start
/// from none; the account's failures from another address, and the address's failures on other
/// accounts, still count.
async fn signing_in_clears_the_accounts_failures_from_that_address_only(app: TestApp) {
    signed_in(&app, "ada@example.org", Role::Admin).await;
    let (owner, other) = ("203.0.113.5", "203.0.113.6");
    for (client, email) in [
        (owner, "ada@example.org"),
        (owner, "ada@example.org"),
        (owner, "nobody@example.org"),
        (other, "ada@example.org"),
        (other, "ada@example.org"),
    ] {
        let refused = sign_in_from(&app.address, client, email, "not it at all").await;
        assert_eq!(refused.status, 401, "{}", refused.body);
    }

    let signed = sign_in_from(&app.address, owner, "ada@example.org", PASSWORD).await;

    assert_eq!(signed.status, 303, "{}", signed.body);
    assert_eq!(
        attempts(&app).await,
        [
            failure("nobody@example.org", owner),
            failure("ada@example.org", other),
            failure("ada@example.org", other),
        ],
    );
    for _ in 0..2 {
        let refused = sign_in_from(&app.address, owner, "ada@example.org", "nope").await;
        assert_eq!(refused.status, 401, "{}", refused.body);
    }
    let again = sign_in_from(&app.address, owner, "ada@example.org", PASSWORD).await;
    assert_eq!(again.status, 303, "two failures since are under the limit");
    let third = sign_in_from(&app.address, other, "ada@example.org", "nope").await;
    assert_eq!(third.status, 401, "{}", third.body);
    let paused = sign_in_from(&app.address, other, "ada@example.org", PASSWORD).await;
    assert_eq!(paused.status, 429, "{}", paused.body);
}

/// A paused account opens when its oldest counted failure leaves the window, to the second the
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

/// Two reset links an hour per account from one address, whichever server is asked, for known
/// addresses and unknown alike: the third request gets a 429 page and sends nothing; other
/// accounts are not held up, and after the hour a link can be asked for again.
async fn password_resets_are_limited_per_account_and_address_across_instances(app: TestApp) {
    let second = app.another_instance(small_limits).await;
    signed_in(&app, "ada@example.org", Role::Admin).await;
    signed_in(&app, "bob@example.org", Role::Admin).await;
    let client = "192.0.2.1";
    let first = ask_for_reset(&app.address, client, "ada@example.org").await;
    assert_eq!(first.status, 200, "{}", first.body);
    app.clock.advance(Duration::minutes(10));
    let second_one = ask_for_reset(&second, client, "Ada@Example.org").await;
    assert_eq!(second_one.status, 200, "{}", second_one.body);

    let third = ask_for_reset(&app.address, client, "ada@example.org").await;

    assert_eq!(retry_after(&third), 50 * 60);
    third.shows(&["Password reset links for this email address"]);
    assert_eq!(outbox(&app, "ada@example.org", "password_reset").await, 2);
    let bob = ask_for_reset(&second, client, "bob@example.org").await;
    assert_eq!(bob.status, 200, "{}", bob.body);
    for _ in 0..2 {
        let unknown = ask_for_reset(&second, "192.0.2.2", "nobody@example.org").await;
        assert_eq!(unknown.status, 200, "{}", unknown.body);
    }
    assert_eq!(
        ask_for_reset(&app.address, "192.0.2.2", "nobody@example.org")
            .await
            .status,
        429,
        "an unknown address is answered as a known one"
    );
    app.clock.advance(Duration::minutes(50));
    let later = ask_for_reset(&second, client, "ada@example.org").await;
    assert_eq!(later.status, 200, "{}", later.body);
    assert_eq!(outbox(&app, "ada@example.org", "password_reset").await, 3);
}

/// Three reset requests an hour from one address, whatever the accounts: the fourth, for an
/// account it has not asked about, is refused and sends nothing; another address asks for it.
async fn one_address_asking_for_many_accounts_resets_is_refused_after_its_fill(app: TestApp) {
    signed_in(&app, "ada@example.org", Role::Admin).await;
    signed_in(&app, "carol@example.org", Role::Admin).await;
    let client = "198.51.100.7";
    for email in ["ada@example.org", "bob@example.org", "nobody@example.org"] {
        let asked = ask_for_reset(&app.address, client, email).await;
        assert_eq!(asked.status, 200, "{}", asked.body);
    }

    let fourth = ask_for_reset(&app.address, client, "carol@example.org").await;

    assert_eq!(retry_after(&fourth), 60 * 60);
    fourth.shows(&["This connection has asked for several password reset links"]);
    assert_eq!(outbox(&app, "carol@example.org", "password_reset").await, 0);
    let elsewhere = ask_for_reset(&app.address, "198.51.100.8", "carol@example.org").await;
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.body);
    assert_eq!(outbox(&app, "carol@example.org", "password_reset").await, 1);
}

/// Someone using up the account's resets from one address does not stop the owner asking from
/// theirs. Four an hour from everywhere is the most the owner's inbox gets, and the links those
/// requests sent still work.
async fn resets_asked_for_elsewhere_do_not_stop_the_owners_own(app: TestApp) {
    signed_in(&app, "ada@example.org", Role::Admin).await;
    let (attacker, owner) = ("203.0.113.66", "192.0.2.10");
    for _ in 0..2 {
        let asked = ask_for_reset(&app.address, attacker, "ada@example.org").await;
        assert_eq!(asked.status, 200, "{}", asked.body);
    }
    let refused = ask_for_reset(&app.address, attacker, "ada@example.org").await;
    assert_eq!(refused.status, 429, "{}", refused.body);

    let owners = ask_for_reset(&app.address, owner, "ada@example.org").await;

    assert_eq!(owners.status, 200, "{}", owners.body);
    assert_eq!(outbox(&app, "ada@example.org", "password_reset").await, 3);
    let another = ask_for_reset(&app.address, "203.0.113.67", "ada@example.org").await;
    assert_eq!(another.status, 200, "{}", another.body);
    let capped = ask_for_reset(&app.address, owner, "ada@example.org").await;
    assert_eq!(retry_after(&capped), 60 * 60);
    assert_eq!(outbox(&app, "ada@example.org", "password_reset").await, 4);
    let link = app
        .newest_organiser_link("ada@example.org")
        .await
        .expect("a reset link");
    let chosen = choose_password(&mut Browser::of(&app), &link, None, "a new pass phrase").await;
    assert_eq!(chosen.status, 303, "{}", chosen.body);
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
