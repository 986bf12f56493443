//! The OpenAPI document is generated from the handlers as they are mounted; these tests check it
//! names every route of the API and that every operation it names is served.

use serde_json::Value;

use crate::helpers::{Backend, TestApp};

/// Every route the API offers, as (method, path template).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/api/v1/events"),
    ("get", "/api/v1/events/{slug}"),
    ("post", "/api/v1/events/{slug}/bookings"),
    ("get", "/api/v1/bookings/{manage_token}"),
    ("post", "/api/v1/bookings/{manage_token}/cancel"),
    ("post", "/api/v1/admin/events"),
    ("patch", "/api/v1/admin/events/{slug}"),
    ("post", "/api/v1/admin/events/{slug}/sessions"),
    ("patch", "/api/v1/admin/sessions/{id}"),
    ("get", "/api/v1/admin/sessions/{id}/attendees"),
    ("get", "/api/v1/admin/events/{slug}/bookings"),
    ("get", "/api/v1/bookings/{manage_token}/agenda.ics"),
    ("get", "/api/v1/admin/emails"),
    ("post", "/api/v1/admin/emails/{id}/retry"),
    ("post", "/api/v1/events/{slug}/sessions/{id}/waitlist"),
    ("get", "/api/v1/waitlist/{manage_token}"),
    ("post", "/api/v1/waitlist/{manage_token}/leave"),
    ("post", "/api/v1/waitlist/{manage_token}/decline"),
    ("post", "/api/v1/waitlist/{manage_token}/claim"),
    ("get", "/api/v1/admin/sessions/{id}/waitlist"),
    (
        "post",
        "/api/v1/admin/sessions/{id}/waitlist/{entry_id}/promote",
    ),
    ("post", "/api/v1/admin/bookings/{reference}/cancel"),
    ("post", "/api/v1/admin/bookings/{reference}/move"),
    ("get", "/api/v1/bookings/{manage_token}/payments"),
    ("post", "/api/v1/bookings/{manage_token}/payments/stripe"),
    ("post", "/api/v1/webhooks/stripe"),
    ("post", "/api/v1/admin/bookings/{reference}/refund"),
    ("post", "/api/v1/bookings/{manage_token}/payments/invoice"),
    ("get", "/api/v1/bookings/{manage_token}/invoices/{number}"),
    ("get", "/api/v1/admin/invoices"),
    ("post", "/api/v1/admin/invoices/{number}/paid"),
    ("get", "/api/v1/admin/invoices/{number}"),
    ("get", "/api/v1/admin/sessions/{id}/attendees.csv"),
    ("get", "/api/v1/admin/sessions/{id}/sign-in-sheet"),
    ("get", "/api/v1/admin/events/{slug}/bookings.csv"),
    ("get", "/api/v1/admin/events/{slug}/invoices.csv"),
    ("post", "/api/v1/admin/sessions/{id}/checkin"),
    ("get", "/api/v1/admin/sessions/{id}/checkin"),
    ("delete", "/api/v1/admin/sessions/{id}/checkin/{seat_id}"),
];

async fn document(app: &TestApp) -> Value {
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("openapi json")
}

fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                found.push((method.to_owned(), path.clone()));
            }
        }
    }
    found.sort();
    found
}

#[tokio::test]
async fn the_openapi_document_is_version_3_1_and_names_every_route() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let doc = document(&app).await;

    assert!(
        doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.1"),
        "OpenAPI 3.1"
    );
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(
        operations(&doc),
        expected,
        "the document names exactly the API's routes"
    );
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][&method];
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path} documents its responses"
        );
        if path.starts_with("/api/v1/admin") {
            assert!(
                op["security"].is_array(),
                "{method} {path} documents its bearer token"
            );
        }
    }
    assert!(
        doc["components"]["schemas"]["Problem"].is_object(),
        "errors are documented"
    );
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let doc = document(&app).await;

    for (method, template) in operations(&doc) {
        let path = template
            .replace("{slug}", "no-such-event")
            .replace("{id}", "999999")
            .replace("{manage_token}", "no-such-token");
        let request = match method.as_str() {
            "get" => app.client.get(app.url(&path)),
            "post" => app.client.post(app.url(&path)),
            "patch" => app.client.patch(app.url(&path)),
            "delete" => app.client.delete(app.url(&path)),
            other => panic!("unexpected method {other}"),
        };
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_ne!(status, 405, "{method} {template} is routed");
        assert_ne!(
            body["detail"], "There is nothing at this address",
            "{method} {template} reaches a handler, not the fallback"
        );
    }
}

/// Every `$ref` in the document points at a schema it defines (a schema only an extractor
/// would have contributed is easy to lose).
#[tokio::test]
async fn every_reference_in_the_document_resolves() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let doc = document(&app).await;
    let defined = doc["components"]["schemas"]
        .as_object()
        .expect("schemas")
        .clone();
    let mut refs = Vec::new();
    let mut stack = vec![&doc];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    refs.push(target.clone());
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    assert!(!refs.is_empty());
    let missing: Vec<&String> = refs
        .iter()
        .filter(|r| {
            r.strip_prefix("#/components/schemas/")
                .is_none_or(|name| !defined.contains_key(name))
        })
        .collect();
    assert!(missing.is_empty(), "unresolved references: {missing:?}");
}
