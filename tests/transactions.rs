//! Transactions through the HTTP API: status codes, ETags and If-Match, bulk
//! writes, and token checks, on both stores.

#[macro_use]
mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use serde_json::{Value, json};
use stacd::auth::{Scope, new_token};

const HOST: &str = "stac.test";

fn collection(id: &str) -> Value {
    json!({"type": "Collection", "stac_version": "1.0.0", "id": id, "description": "survey",
        "license": "CC-BY-4.0", "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]},
        "temporal": {"interval": [["2024-01-01T00:00:00Z", null]]}}, "links": []})
}

fn item(id: &str) -> Value {
    json!({"type": "Feature", "stac_version": "1.0.0", "id": id,
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [0.1, 0], [0.1, 0.1], [0, 0.1], [0, 0]]]},
        "properties": {"datetime": "2024-05-14T10:00:00Z", "gsd": 0.03},
        "assets": {"ortho": {"href": format!("s3://bucket/{id}.tif")}}})
}

/// A writable app with a write token and a read token.
struct Writable {
    app: Router,
    write: String,
    read: String,
    _dir: tempfile::TempDir,
}

async fn writable(store: &TestStore, private_reads: bool) -> Writable {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens");
    let write = new_token(&path, Scope::Write, "writer").unwrap();
    let read = new_token(&path, Scope::Read, "reader").unwrap();
    let app = writable_app(store.store.clone(), &path, private_reads).await;
    Writable {
        app,
        write,
        read,
        _dir: dir,
    }
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, HOST);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if body.is_some()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    for (key, value) in headers {
        request = request.header(*key, *value);
    }
    let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
    send(app, request.body(body).unwrap()).await
}

fn etag(answer: &Answer) -> String {
    answer.headers[header::ETAG].to_str().unwrap().to_string()
}

fn assert_error(answer: &Answer, status: StatusCode, needle: &str) {
    assert_eq!(answer.status, status, "{}", String::from_utf8_lossy(&answer.body));
    let body = answer.json();
    assert!(body["code"].is_string(), "{body}");
    let description = body["description"].as_str().unwrap();
    assert!(description.contains(needle), "'{needle}' not in: {description}");
}

async fn with_collection(store: &TestStore) -> Writable {
    let w = writable(store, false).await;
    let created = call(
        &w.app,
        "POST",
        "/collections",
        Some(&w.write),
        &[],
        Some(&collection("survey")),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    w
}

async fn item_lifecycle(store: TestStore) {
    let w = with_collection(&store).await;
    let token = Some(w.write.as_str());

    let created = call(
        &w.app,
        "POST",
        "/collections/survey/items",
        token,
        &[],
        Some(&item("a")),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(
        created.headers[header::LOCATION],
        "http://stac.test/collections/survey/items/a"
    );
    assert_eq!(
        created.json()["collection"],
        "survey",
        "the server fills collection from the URL"
    );
    let first_tag = etag(&created);

    let fetched = get(&w.app, "/collections/survey/items/a").await;
    assert_eq!(etag(&fetched), first_tag);

    let duplicate = call(
        &w.app,
        "POST",
        "/collections/survey/items",
        token,
        &[],
        Some(&item("a")),
    )
    .await;
    assert_error(&duplicate, StatusCode::CONFLICT, "survey/a");

    let mut changed = item("a");
    changed["properties"]["gsd"] = json!(0.02);
    let put = call(
        &w.app,
        "PUT",
        "/collections/survey/items/a",
        token,
        &[],
        Some(&changed),
    )
    .await;
    assert_eq!(put.status, StatusCode::NO_CONTENT);
    assert!(put.body.is_empty());
    let after_put = get(&w.app, "/collections/survey/items/a").await;
    assert_eq!(after_put.json()["properties"]["gsd"], 0.02);
    assert_ne!(etag(&after_put), first_tag, "a write changes the ETag");

    let merge = json!({"properties": {"gsd": 0.05, "platform": "quadcopter"}});
    let patched = call(
        &w.app,
        "PATCH",
        "/collections/survey/items/a",
        token,
        &[("prefer", "return=representation")],
        Some(&merge),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.json()["properties"]["platform"], "quadcopter");
    assert_eq!(patched.json()["properties"]["datetime"], "2024-05-14T10:00:00Z");

    let json_patch = json!([{"op": "remove", "path": "/properties/platform"},
        {"op": "replace", "path": "/properties/gsd", "value": 0.04}]);
    let patched = call(
        &w.app,
        "PATCH",
        "/collections/survey/items/a",
        token,
        &[("content-type", "application/json-patch+json")],
        Some(&json_patch),
    )
    .await;
    assert_eq!(patched.status, StatusCode::NO_CONTENT);
    let after_patch = get(&w.app, "/collections/survey/items/a").await.json();
    assert_eq!(after_patch["properties"]["gsd"], 0.04);
    assert!(after_patch["properties"].get("platform").is_none());

    let deleted = call(&w.app, "DELETE", "/collections/survey/items/a", token, &[], None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        get(&w.app, "/collections/survey/items/a").await.status,
        StatusCode::NOT_FOUND
    );
    let again = call(&w.app, "DELETE", "/collections/survey/items/a", token, &[], None).await;
    assert_error(&again, StatusCode::NOT_FOUND, "'a'");
}

async fn missing_and_mismatched(store: TestStore) {
    let w = with_collection(&store).await;
    let token = Some(w.write.as_str());
    let put = call(
        &w.app,
        "PUT",
        "/collections/survey/items/nope",
        token,
        &[],
        Some(&item("nope")),
    )
    .await;
    assert_error(&put, StatusCode::NOT_FOUND, "nope");
    let patch = call(
        &w.app,
        "PATCH",
        "/collections/survey/items/nope",
        token,
        &[],
        Some(&json!({})),
    )
    .await;
    assert_error(&patch, StatusCode::NOT_FOUND, "nope");
    let orphan = call(
        &w.app,
        "POST",
        "/collections/absent/items",
        token,
        &[],
        Some(&item("x")),
    )
    .await;
    assert_error(&orphan, StatusCode::NOT_FOUND, "absent");

    call(
        &w.app,
        "POST",
        "/collections/survey/items",
        token,
        &[],
        Some(&item("a")),
    )
    .await;
    let wrong_id = call(
        &w.app,
        "PUT",
        "/collections/survey/items/a",
        token,
        &[],
        Some(&item("b")),
    )
    .await;
    assert_error(&wrong_id, StatusCode::BAD_REQUEST, "'a'");
    assert!(wrong_id.json()["description"].as_str().unwrap().contains("\"b\""));
    let mut other = item("a");
    other["collection"] = json!("elsewhere");
    let wrong_collection = call(
        &w.app,
        "PUT",
        "/collections/survey/items/a",
        token,
        &[],
        Some(&other),
    )
    .await;
    assert_error(&wrong_collection, StatusCode::BAD_REQUEST, "elsewhere");

    let mut open_ring = item("bad");
    open_ring["geometry"]["coordinates"] = json!([[[0, 0], [1, 0], [1, 1], [0, 1]]]);
    let invalid = call(
        &w.app,
        "POST",
        "/collections/survey/items",
        token,
        &[],
        Some(&open_ring),
    )
    .await;
    assert_error(&invalid, StatusCode::BAD_REQUEST, "closed");
    assert_eq!(
        get(&w.app, "/collections/survey/items/bad").await.status,
        StatusCode::NOT_FOUND
    );

    let no_type = call(&w.app, "POST", "/collections/survey/items", token, &[], None).await;
    assert_error(&no_type, StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type");
    let array = call(
        &w.app,
        "POST",
        "/collections/survey/items",
        token,
        &[],
        Some(&json!([1])),
    )
    .await;
    assert_error(&array, StatusCode::BAD_REQUEST, "JSON object");
    let text = call(
        &w.app,
        "PUT",
        "/collections/survey/items/a",
        token,
        &[("content-type", "text/plain")],
        Some(&item("a")),
    )
    .await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

async fn if_match_prevents_lost_updates(store: TestStore) {
    let w = with_collection(&store).await;
    let token = Some(w.write.as_str());
    let created = call(
        &w.app,
        "POST",
        "/collections/survey/items",
        token,
        &[],
        Some(&item("a")),
    )
    .await;
    let tag = etag(&created);

    let mut first = item("a");
    first["properties"]["editor"] = json!("first");
    let ok = call(
        &w.app,
        "PUT",
        "/collections/survey/items/a",
        token,
        &[("if-match", &tag)],
        Some(&first),
    )
    .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);

    let mut second = item("a");
    second["properties"]["editor"] = json!("second");
    let stale = call(
        &w.app,
        "PUT",
        "/collections/survey/items/a",
        token,
        &[("if-match", &tag)],
        Some(&second),
    )
    .await;
    assert_error(&stale, StatusCode::PRECONDITION_FAILED, "If-Match");
    let stale_patch = call(
        &w.app,
        "PATCH",
        "/collections/survey/items/a",
        token,
        &[("if-match", &tag)],
        Some(&json!({"properties": {"editor": "third"}})),
    )
    .await;
    assert_eq!(stale_patch.status, StatusCode::PRECONDITION_FAILED);
    let stale_delete = call(
        &w.app,
        "DELETE",
        "/collections/survey/items/a",
        token,
        &[("if-match", &tag)],
        None,
    )
    .await;
    assert_eq!(stale_delete.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        get(&w.app, "/collections/survey/items/a").await.json()["properties"]["editor"],
        "first"
    );

    let current = etag(&get(&w.app, "/collections/survey/items/a").await);
    let weak = format!("W/{current}");
    let weak_put = call(
        &w.app,
        "PUT",
        "/collections/survey/items/a",
        token,
        &[("if-match", &weak)],
        Some(&second),
    )
    .await;
    assert_eq!(weak_put.status, StatusCode::PRECONDITION_FAILED);
    let fresh = call(
        &w.app,
        "DELETE",
        "/collections/survey/items/a",
        token,
        &[("if-match", &current)],
        None,
    )
    .await;
    assert_eq!(fresh.status, StatusCode::NO_CONTENT);
}

async fn bulk_is_all_or_nothing(store: TestStore) {
    let w = with_collection(&store).await;
    let token = Some(w.write.as_str());
    call(
        &w.app,
        "POST",
        "/collections/survey/items",
        token,
        &[],
        Some(&item("taken")),
    )
    .await;
    let clash = json!({"type": "FeatureCollection", "features": [item("n1"), item("n2"), item("taken")]});
    let answer = call(
        &w.app,
        "POST",
        "/collections/survey/items",
        token,
        &[],
        Some(&clash),
    )
    .await;
    assert_error(&answer, StatusCode::CONFLICT, "survey/taken");
    assert_eq!(
        get(&w.app, "/collections/survey/items/n1").await.status,
        StatusCode::NOT_FOUND
    );

    let mut broken = item("n3");
    broken["properties"]["datetime"] = json!("soon");
    let invalid = json!({"type": "FeatureCollection", "features": [item("n1"), broken]});
    let answer = call(
        &w.app,
        "POST",
        "/collections/survey/items",
        token,
        &[],
        Some(&invalid),
    )
    .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "feature 2");
    assert_eq!(
        get(&w.app, "/collections/survey/items/n1").await.status,
        StatusCode::NOT_FOUND
    );

    let repeated = json!({"type": "FeatureCollection", "features": [item("n1"), item("n1")]});
    let answer = call(
        &w.app,
        "POST",
        "/collections/survey/items",
        token,
        &[],
        Some(&repeated),
    )
    .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "n1");

    let good = json!({"type": "FeatureCollection", "features": [item("n1"), item("n2")]});
    let answer = call(
        &w.app,
        "POST",
        "/collections/survey/items",
        token,
        &[],
        Some(&good),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.json()["numberCreated"], 2);
    assert_eq!(
        get(&w.app, "/collections/survey/items?limit=10").await.json()["numberMatched"],
        3
    );

    let too_many = json!({"type": "FeatureCollection",
        "features": (0..51).map(|n| item(&format!("m{n}"))).collect::<Vec<_>>()});
    let answer = call(
        &w.app,
        "POST",
        "/collections/survey/items",
        token,
        &[],
        Some(&too_many),
    )
    .await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, "at most 50");

    let mut huge = item("huge");
    huge["properties"]["note"] = json!("x".repeat(100 * 1024));
    let answer = call(
        &w.app,
        "POST",
        "/collections/survey/items",
        token,
        &[],
        Some(&huge),
    )
    .await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, "larger");
}

async fn collection_lifecycle(store: TestStore) {
    let w = with_collection(&store).await;
    let token = Some(w.write.as_str());
    let duplicate = call(
        &w.app,
        "POST",
        "/collections",
        token,
        &[],
        Some(&collection("survey")),
    )
    .await;
    assert_error(&duplicate, StatusCode::CONFLICT, "survey");

    let mut renamed = collection("survey");
    renamed["title"] = json!("Harbour survey");
    let put = call(&w.app, "PUT", "/collections/survey", token, &[], Some(&renamed)).await;
    assert_eq!(put.status, StatusCode::NO_CONTENT);
    let fetched = get(&w.app, "/collections/survey").await;
    assert_eq!(fetched.json()["title"], "Harbour survey");
    let tag = etag(&fetched);
    let patch = call(
        &w.app,
        "PATCH",
        "/collections/survey",
        token,
        &[("if-match", &tag)],
        Some(&json!({"description": "patched"})),
    )
    .await;
    assert_eq!(patch.status, StatusCode::NO_CONTENT);
    let stale = call(
        &w.app,
        "PUT",
        "/collections/survey",
        token,
        &[("if-match", &tag)],
        Some(&renamed),
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let wrong = call(
        &w.app,
        "PUT",
        "/collections/survey",
        token,
        &[],
        Some(&collection("other")),
    )
    .await;
    assert_error(&wrong, StatusCode::BAD_REQUEST, "survey");
    let missing = call(
        &w.app,
        "PUT",
        "/collections/none",
        token,
        &[],
        Some(&collection("none")),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    call(
        &w.app,
        "POST",
        "/collections/survey/items",
        token,
        &[],
        Some(&item("a")),
    )
    .await;
    let refused = call(&w.app, "DELETE", "/collections/survey", token, &[], None).await;
    assert_error(&refused, StatusCode::CONFLICT, "cascade=true");
    let cascaded = call(
        &w.app,
        "DELETE",
        "/collections/survey?cascade=true",
        token,
        &[],
        None,
    )
    .await;
    assert_eq!(cascaded.status, StatusCode::NO_CONTENT);
    assert_eq!(
        get(&w.app, "/collections/survey").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(get(&w.app, "/search").await.json()["numberMatched"], 0);
    let gone = call(&w.app, "DELETE", "/collections/survey", token, &[], None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

async fn ids_with_slashes_round_trip(store: TestStore) {
    let w = with_collection(&store).await;
    let token = Some(w.write.as_str());
    let created = call(
        &w.app,
        "POST",
        "/collections/survey/items",
        token,
        &[],
        Some(&item("flight 7/tile 3")),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let location = created.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .replace("http://stac.test", "");
    assert_eq!(location, "/collections/survey/items/flight%207%2Ftile%203");
    assert_eq!(get(&w.app, &location).await.json()["id"], "flight 7/tile 3");
    let deleted = call(&w.app, "DELETE", &location, token, &[], None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
}

async fn tokens_are_enforced(store: TestStore) {
    let w = with_collection(&store).await;
    let answer = call(
        &w.app,
        "POST",
        "/collections/survey/items",
        None,
        &[],
        Some(&item("a")),
    )
    .await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "bearer token");
    assert!(
        answer.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let wrong = call(
        &w.app,
        "DELETE",
        "/collections/survey",
        Some("stacd_wrong"),
        &[],
        None,
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let reader = call(
        &w.app,
        "POST",
        "/collections/survey/items",
        Some(&w.read),
        &[],
        Some(&item("a")),
    )
    .await;
    assert_error(&reader, StatusCode::FORBIDDEN, "'read'");
    // Reads stay public, and POST /search is a read.
    assert_eq!(get(&w.app, "/collections/survey").await.status, StatusCode::OK);
    assert_eq!(
        post_json(&w.app, "/search", &json!({})).await.status,
        StatusCode::OK
    );
    let classes = get(&w.app, "/conformance").await.json()["conformsTo"].to_string();
    assert!(classes.contains("ogcapi-features/extensions/transaction"));
    // A method that no route has is a 405 even without a token, never a 401.
    for (method, uri) in [
        ("PUT", "/"),
        ("DELETE", "/search"),
        ("PUT", "/collections"),
        ("POST", "/collections/survey"),
    ] {
        let answer = call(&w.app, method, uri, None, &[], None).await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
    }

    let private = writable(&store, true).await;
    assert_eq!(
        get(&private.app, "/collections").await.status,
        StatusCode::UNAUTHORIZED
    );
    let with_read = call(
        &private.app,
        "GET",
        "/collections",
        Some(&private.read),
        &[],
        None,
    )
    .await;
    assert_eq!(with_read.status, StatusCode::OK);
}

async fn read_only_without_tokens(store: TestStore) {
    let app = app(store.store.clone(), stacd::search::SearchLimits::default()).await;
    let request = Request::post("/collections")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(collection("x").to_string()))
        .unwrap();
    let answer = send(&app, request).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(answer.json()["code"].is_string());
    let classes = get(&app, "/conformance").await.json()["conformsTo"].to_string();
    assert!(!classes.contains("transaction"), "{classes}");
}

on_both_stores!("stacd_tx_";
    item_lifecycle,
    missing_and_mismatched,
    if_match_prevents_lost_updates,
    bulk_is_all_or_nothing,
    collection_lifecycle,
    ids_with_slashes_round_trip,
    tokens_are_enforced,
    read_only_without_tokens,
);
