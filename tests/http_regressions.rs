//! Regression cases found by fuzzing the HTTP API with bad input. Every case
//! runs on the SQLite store and the PostgreSQL + PostGIS store, and every bad
//! request must get a client error (4xx) whose body is an OGC exception,
//! `{"code": string, "description": string}`, never a 5xx or a plain-text body.

#[macro_use]
mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use serde_json::{Value, json};
use stacd::paging::TokenSigner;
use stacd::search::SearchLimits;
use stacd::store::{Cursor, Direction, ItemQuery, SortKey};

fn collection(id: &str) -> Value {
    json!({
        "type": "Collection", "stac_version": "1.0.0", "id": id, "description": "test collection",
        "license": "CC-BY-4.0",
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                   "temporal": {"interval": [["2020-01-01T00:00:00Z", null]]}},
        "links": []
    })
}

fn item(collection: &str, id: &str, datetime: &str, west: f64) -> Value {
    json!({
        "type": "Feature", "stac_version": "1.0.0", "id": id, "collection": collection,
        "geometry": {"type": "Polygon", "coordinates": [[[west, 50.0], [west + 0.01, 50.0],
            [west + 0.01, 50.01], [west, 50.01], [west, 50.0]]]},
        "properties": {"datetime": datetime},
        "links": [],
        "assets": {}
    })
}

/// Loads collection `survey` with three items, so that `/search?limit=1` has a `next` link.
async fn fixture_app(store: &TestStore) -> Router {
    let s = store.store.as_ref();
    add_collection(s, collection("survey")).await;
    add_items(
        s,
        vec![
            item("survey", "a1", "2021-06-01T10:00:00Z", 10.0),
            item("survey", "a2", "2021-06-02T10:00:00Z", 10.1),
            item("survey", "a3", "2022-01-15T10:00:00Z", 10.2),
        ],
    )
    .await;
    app(store.store.clone(), SearchLimits::default()).await
}

/// Checks that `answer` is a 4xx with an OGC exception body. `request` names the case in messages.
fn assert_client_error(answer: &Answer, request: &str) {
    let text = String::from_utf8_lossy(&answer.body);
    assert!(
        answer.status.is_client_error(),
        "{request}: expected a 4xx, got {}: {text}",
        answer.status
    );
    assert!(
        answer.content_type().starts_with("application/json"),
        "{request}: expected a JSON error, got Content-Type '{}': {text}",
        answer.content_type()
    );
    let body: Value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|e| panic!("{request}: the error body is not JSON ({e}): {text}"));
    assert!(body["code"].is_string(), "{request}: no string 'code' in {body}");
    assert!(
        body["description"].is_string(),
        "{request}: no string 'description' in {body}"
    );
}

/// Sends a POST with a JSON Content-Type and a raw body.
async fn post_raw(app: &Router, uri: &str, body: impl Into<Body>) -> Answer {
    let request = Request::post(uri)
        .header(header::HOST, "stac.test")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap();
    send(app, request).await
}

/// Returns the `token` of the `next` link of a page.
fn next_token(page: &Value) -> String {
    let href = page["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "next")
        .unwrap_or_else(|| panic!("no next link in {page}"))["href"]
        .as_str()
        .unwrap()
        .to_string();
    let query = href.split_once('?').unwrap().1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .unwrap()
        .1
        .into_owned()
}

/// Checks path segments that decode to invalid UTF-8. Axum rejects them before
/// the handler runs, and its default rejection is a `text/plain` 400.
async fn invalid_utf8_in_path(store: TestStore) {
    let app = fixture_app(&store).await;
    for uri in [
        "/collections/%FF",
        "/collections/%C3%28",
        "/collections/%FF/items",
        "/collections/survey/items/%FF",
        "/collections/%FF/items/%FF",
    ] {
        let answer = get(&app, uri).await;
        assert_client_error(&answer, &format!("GET {uri}"));
    }
}

/// Checks a search body above the size limit. Axum's `Bytes` extractor rejected
/// it with its default `text/plain` 413 ("Failed to buffer the request body").
async fn oversized_search_body(store: TestStore) {
    let app = fixture_app(&store).await;
    // NOTE: 17 MiB must stay above `body_limit` in `common::app` (16 MiB) and above the
    // 2 MiB default of axum's `Bytes` extractor.
    let body = format!(r#"{{"conf": "{}"}}"#, "x".repeat(17 << 20));
    let answer = post_raw(&app, "/search", body).await;
    assert_client_error(&answer, "POST /search with a 17 MiB body");
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// Checks ids that contain U+0000. PostgreSQL `text` cannot store it, so binding
/// such an id failed in the database (500). No stored collection or item can
/// have such an id, and SQLite must respond the same way as PostgreSQL.
async fn nul_in_ids(store: TestStore) {
    let app = fixture_app(&store).await;
    for uri in [
        "/collections/%00",
        "/collections/a%00b/items",
        "/collections/survey/items/%00",
        "/collections/survey/items/a1%00",
        "/search?ids=%00",
        "/search?collections=%00",
        "/search?collections=survey&ids=a1%00",
    ] {
        let answer = get(&app, uri).await;
        assert_client_error(&answer, &format!("GET {uri}"));
    }
    for body in [
        json!({"ids": ["\u{0}"]}),
        json!({"collections": ["a\u{0}"]}),
        json!({"collections": ["survey"], "ids": ["a1", "a2\u{0}"]}),
    ] {
        let answer = post_json(&app, "/search", &body).await;
        assert_client_error(&answer, &format!("POST /search {body}"));
    }
}

/// Checks tokens whose HMAC tag is cut short. The server signs with a 16-byte
/// tag but accepted any prefix of it, so a 1-byte tag was forged in at most
/// 256 requests.
async fn truncated_token_tag(store: TestStore) {
    let app = fixture_app(&store).await;
    let page = get(&app, "/search?limit=1").await.json();
    let token = next_token(&page);
    let (payload, tag) = token.split_once('.').unwrap();
    let tag = URL_SAFE_NO_PAD.decode(tag).unwrap();
    assert_eq!(tag.len(), 16, "tokens carry a 16-byte tag: {token}");
    for tag_len in [1, 8, 15] {
        let truncated = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(&tag[..tag_len]));
        let uri = format!("/search?limit=1&token={truncated}");
        let answer = get(&app, &uri).await;
        assert_client_error(&answer, &format!("token with a {tag_len}-byte tag"));
    }
}

/// Checks signed cursors that the server never issues, such as one with U+0000
/// in its collection or a datetime outside PostgreSQL's timestamp range. They
/// made the PostgreSQL store fail with a 500, and they could be forged while
/// short tags were accepted, so the store must cope with any signed key.
async fn signed_cursor_with_odd_key(store: TestStore) {
    let app = fixture_app(&store).await;
    let signer = TokenSigner::new(store.store.secret().await.unwrap());
    let keys = [
        (0, "a\u{0}b", "x"),
        (0, "survey", "a\u{0}"),
        (i64::MIN, "survey", "x"),
        (i64::MAX, "survey", "x"),
    ];
    for (datetime, collection, id) in keys {
        for direction in [Direction::Next, Direction::Prev] {
            let cursor = Cursor {
                direction,
                key: SortKey {
                    datetime,
                    collection: collection.into(),
                    id: id.into(),
                    sort: Vec::new(),
                },
            };
            // `/search` without filters has the fingerprint of an empty query.
            let token = signer.encode(&cursor, &ItemQuery::default());
            let answer = get(&app, &format!("/search?token={token}")).await;
            let case = format!("cursor {cursor:?}");
            assert!(
                !answer.status.is_server_error(),
                "{case}: {} {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            );
            if !answer.status.is_success() {
                assert_client_error(&answer, &case);
            }
        }
    }
}

/// Checks a GeometryCollection inside another. The OpenAPI document states that
/// members of a GeometryCollection are not geometry collections themselves, but
/// the server accepted nested ones at any depth up to the JSON parser's
/// recursion limit.
async fn nested_geometry_collection(store: TestStore) {
    let app = fixture_app(&store).await;
    let point = json!({"type": "Point", "coordinates": [10.0, 50.0]});
    let nested = json!({"type": "GeometryCollection", "geometries": [
        {"type": "GeometryCollection", "geometries": [point]}
    ]});
    let answer = post_json(&app, "/search", &json!({"intersects": nested})).await;
    assert_client_error(&answer, "POST /search with a nested GeometryCollection");
}

on_both_stores!("stacd_regress_";
    invalid_utf8_in_path,
    oversized_search_body,
    nul_in_ids,
    truncated_token_tag,
    signed_cursor_with_odd_key,
    nested_geometry_collection,
);
