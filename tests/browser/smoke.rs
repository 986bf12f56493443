//! The harness itself, on pages written here: a labelled form that is filled in and sent to the
//! real server, and a page with faults that axe-core must fail.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::json;

use crate::axe::{axe, axe_report, Impact};
use crate::harness::{self, Browser, DESKTOP};
use crate::helpers::Backend;
use crate::screenshots::{screenshots, PHONE};
use crate::webdriver::By;

/// A page served by the browser itself.
fn data_url(html: &str) -> String {
    format!(
        "data:text/html;charset=utf-8,{}",
        utf8_percent_encode(html, NON_ALPHANUMERIC)
    )
}

/// A small accessible form that sends its fields to `action` with GET, and a link to `programme`.
fn form_page(action: &str, programme: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en-GB">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Register – harness check</title>
<style>body {{ font: 16px/1.5 sans-serif; margin: 0 auto; max-width: 40rem; padding: 1rem; }}
label, legend {{ display: block; margin-top: 1rem; }} .hint {{ color: #444; }}</style></head>
<body>
<header><p>PMO Masterclasses</p></header>
<main>
<h1>Register for a session</h1>
<p>Read <a href="{programme}">the programme</a> first.</p>
<form method="get" action="{action}">
  <label for="name">Full name</label>
  <input id="name" name="name" autocomplete="name" required>
  <label for="email">Email address <span class="hint">(your tickets go here)</span></label>
  <input id="email" name="email" type="email" autocomplete="email" required>
  <label for="diet">Dietary requirements</label>
  <select id="diet" name="diet">
    <option value="none">None</option><option value="vegetarian">Vegetarian</option>
  </select>
  <label for="day">Day</label>
  <input id="day" name="day" type="date">
  <fieldset><legend>How will you attend?</legend>
    <label><input type="radio" name="attend" value="room" checked> In the room</label>
    <label><input type="radio" name="attend" value="online"> Online</label>
  </fieldset>
  <label><input type="checkbox" name="terms" value="yes"> I accept the terms</label>
  <p>{filler}</p>
  <button type="submit">Register</button>
</form>
</main>
</body>
</html>"#,
        filler = "Seats are held for fifteen minutes while you pay. ".repeat(30)
    )
}

/// Faults axe-core rates serious or critical: no language, no title, an image without text, a
/// field without a label, and pale text.
const FAULTY_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"></head>
<body>
<img src="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='40' height='40'/%3E">
<input type="text" id="who">
<p style="color: #ccc; background: #fff">Hard to read</p>
</body></html>"#;

/// Width and height from a PNG's header.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    let side = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().expect("4 bytes"));
    (side(16), side(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_labelled_form_is_checked_photographed_filled_in_and_sent_to_the_server() {
    let Some((app, browser)) = harness::spawn(Backend::Sqlite).await else {
        return;
    };
    app.published_event("harness-2027").await;
    let programme = app.url("/api/v1/events/harness-2027");
    let page = data_url(&form_page(&app.url("/api/v1/events"), &programme));
    browser.goto(&page).await;
    browser.wait_for("form").await;
    assert_eq!(browser.title().await, "Register – harness check");
    assert_eq!(browser.find_all("input[type=radio]").await.len(), 2);

    let summary = axe(&browser, "registration form").await;
    println!("registration form: {summary}");
    assert_eq!(
        summary.count(Impact::Critical) + summary.count(Impact::Serious),
        0
    );
    assert!(
        summary.rules_passed > 10,
        "axe-core ran its rules: {summary}"
    );

    let window = browser.window_size().await;
    let shots = screenshots(&browser, "harness-registration-form").await;
    let desktop = png_size(&std::fs::read(&shots.desktop).expect("desktop screenshot"));
    let phone = png_size(&std::fs::read(&shots.phone).expect("phone screenshot"));
    assert_eq!(desktop.0, DESKTOP.0, "desktop screenshot width");
    assert!(
        desktop.1 >= DESKTOP.1,
        "desktop screenshot height {}",
        desktop.1
    );
    assert_eq!(phone.0, PHONE.0, "phone screenshot width");
    assert!(
        phone.1 > desktop.1 && phone.1 > PHONE.1,
        "the phone screenshot has the whole, longer page: {phone:?}"
    );
    assert_eq!(browser.window_size().await, window, "window size restored");

    browser.fill("Full name", "Ada Lovelace").await;
    browser.fill("Email address", "ada@example.org").await;
    browser.fill("diet", "Vegetarian").await;
    browser.fill("Day", "2027-03-10").await;
    browser.check("Online").await;
    browser.check("I accept the terms").await;
    browser.uncheck("I accept the terms").await;
    browser.check("terms").await;
    browser.click_button("Register").await;

    browser.wait_for_text("harness-2027").await;
    let url = browser.current_url().await;
    assert!(url.starts_with(&app.url("/api/v1/events?")), "{url}");
    for field in [
        "name=Ada+Lovelace",
        "email=ada%40example.org",
        "diet=vegetarian",
        "day=2027-03-10",
        "attend=online",
        "terms=yes",
    ] {
        assert!(url.contains(field), "{field} sent: {url}");
    }
    assert!(browser.text().await.contains("PMO Masterclasses 2027"));

    browser.goto(&page).await;
    browser.click_link("the programme").await;
    browser
        .wait_until("the programme is shown", async |b| {
            b.current_url().await == programme
        })
        .await;
    assert!(browser
        .text_of("body")
        .await
        .contains("Riverside Conference Centre"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_fails_a_page_with_serious_faults_and_names_them() {
    let Some(browser) = Browser::open().await else {
        return;
    };
    browser.goto(&data_url(FAULTY_PAGE)).await;

    let report = axe_report(&browser, "faulty page").await;
    let failing: Vec<&str> = report.failing().map(|v| v.id.as_str()).collect();
    for rule in ["html-has-lang", "document-title", "image-alt", "label"] {
        assert!(failing.contains(&rule), "{rule} fails: {failing:?}");
    }
    let summary = report.summary();
    assert!(summary.count(Impact::Critical) >= 2, "{summary}");

    let failed = AssertUnwindSafe(axe(&browser, "faulty page"))
        .catch_unwind()
        .await
        .expect_err("axe fails the test");
    let message = failed
        .downcast_ref::<String>()
        .expect("a formatted message");
    for part in [
        "\"faulty page\"",
        "image-alt (critical): Images must have alternative text",
        "https://dequeuniversity.com/rules/axe/",
        "      img\n",
        "label (critical)",
        "      #who\n",
    ] {
        assert!(message.contains(part), "{part:?} in:\n{message}");
    }
}

/// Elements of every kind the client reads, one that turns up late, and a link and a button far
/// down a page that scrolls smoothly.
const ELEMENTS_PAGE: &str = r##"<!doctype html>
<html lang="en-GB"><head><meta charset="utf-8"><title>Elements</title>
<style>html { scroll-behavior: smooth; }
.visually-hidden { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }</style></head>
<body>
<ul id="list" data-kind="sessions"><li>Morning</li><li class="late">Afternoon</li></ul>
<p id="hidden" hidden>Not shown</p>
<label><input id="tick" type="checkbox" checked> Tick</label>
<input id="word" value="first">
<div style="height: 3000px"></div>
<p><a href="#end" onclick="document.title = 'Skipped'">Skip<span class="visually-hidden"> to the end</span></a>
  <a href="#list">Back to the top</a></p>
<button type="button" id="far" onclick="this.textContent = 'Clicked'">Far down</button>
<div style="height: 3000px"></div>
<h2 id="end">The end</h2>
<script>
setTimeout(() => {
  const p = document.createElement("p");
  p.id = "later";
  p.textContent = "Here now";
  document.body.append(p);
}, 300);
</script>
</body></html>"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webdriver_client_reads_elements_and_tells_missing_from_failing() {
    let Some(browser) = Browser::open().await else {
        return;
    };
    browser.goto(&data_url(ELEMENTS_PAGE)).await;
    let client = browser.client();

    let list = browser.find("#list").await;
    assert_eq!(list.tag_name().await.expect("tag name"), "ul");
    assert_eq!(
        list.attr("data-kind").await.expect("attribute").as_deref(),
        Some("sessions")
    );
    assert_eq!(list.attr("title").await.expect("attribute"), None);
    let items = list.find_all(By::Css("li")).await.expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].text().await.expect("text"), "Morning");
    let late = list
        .find(By::XPath(".//li[@class='late']"))
        .await
        .expect("found by XPath");
    assert_eq!(late.text().await.expect("text"), "Afternoon");
    assert_eq!(
        late.prop("className").await.expect("property").as_deref(),
        Some("late")
    );
    assert!(list
        .find_all(By::Css("p"))
        .await
        .expect("none is no error")
        .is_empty());

    // An element passed to a script and back is the same element.
    let same = browser
        .execute("return arguments[0];", vec![harness::element_json(&late)])
        .await;
    assert_eq!(
        browser.elements(&json!([same]))[0].element_id(),
        late.element_id()
    );

    assert!(browser
        .find("#list")
        .await
        .is_displayed()
        .await
        .expect("shown"));
    assert!(!browser
        .find("#hidden")
        .await
        .is_displayed()
        .await
        .expect("shown"));
    let tick = browser.find("#tick").await;
    assert!(tick.is_selected().await.expect("checked"));
    assert_eq!(
        tick.prop("checked").await.expect("property").as_deref(),
        Some("true")
    );
    let word = browser.find("#word").await;
    word.clear().await.expect("cleared");
    word.send_keys("second").await.expect("typed");
    assert_eq!(
        word.prop("value").await.expect("property").as_deref(),
        Some("second")
    );
    assert_eq!(
        word.attr("value").await.expect("attribute").as_deref(),
        Some("first")
    );

    let missing = client
        .find(By::Css("#nowhere"))
        .await
        .expect_err("nothing found");
    assert!(missing.is_no_such_element(), "{missing}");
    assert!(missing.to_string().contains("Find Element"), "{missing}");
    let broken = client
        .find(By::Css("[["))
        .await
        .expect_err("not a selector");
    assert!(!broken.is_no_such_element(), "{broken}");
    assert_eq!(broken.code(), Some("invalid selector"), "{broken}");
    assert!(browser.find_all("#nowhere").await.is_empty());

    // Far down a smoothly scrolling page, the click still lands.
    browser.click_button("Far down").await;
    assert_eq!(browser.text_of("#far").await, "Clicked");
    let top = client
        .find(By::LinkText("Back to the top"))
        .await
        .expect("a link by its text");
    assert_eq!(
        top.attr("href").await.expect("attribute").as_deref(),
        Some("#list")
    );
    browser.click_link("Skip to the end").await;
    // A fragment of a `data:` page goes nowhere; the link says it was followed.
    assert_eq!(browser.title().await, "Skipped");

    assert_eq!(
        browser.wait_for("#later").await.text().await.expect("text"),
        "Here now"
    );
    let answer = client
        .execute_async("arguments[1](arguments[0] * 2);", vec![json!(21)])
        .await
        .expect("an async script");
    assert_eq!(answer, json!(42));
    let thrown = client
        .execute("throw new Error('on purpose');", vec![])
        .await
        .expect_err("the script throws");
    assert_eq!(thrown.code(), Some("javascript error"), "{thrown}");
    assert!(thrown.to_string().contains("on purpose"), "{thrown}");
}
