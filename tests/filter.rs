//! CQL2 filters and queryables, on both stores. Each case lists the ids it
//! must return, worked out by hand from the fixture below.

#[macro_use]
mod common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};
use stacd::search::SearchLimits;

fn collection(id: &str) -> Value {
    json!({
        "type": "Collection", "stac_version": "1.0.0", "id": id, "description": "filter tests",
        "license": "CC-BY-4.0",
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                   "temporal": {"interval": [["2020-01-01T00:00:00Z", null]]}},
        "links": []
    })
}

fn square(west: f64, south: f64, size: f64) -> Value {
    json!({"type": "Polygon", "coordinates": [[[west, south], [west + size, south],
        [west + size, south + size], [west, south + size], [west, south]]]})
}

fn item(id: &str, west: f64, datetime: Option<&str>, properties: Value) -> Value {
    let mut all = json!({"datetime": datetime});
    for (key, value) in properties.as_object().unwrap() {
        all[key] = value.clone();
    }
    json!({
        "type": "Feature", "stac_version": "1.0.0", "id": id, "collection": "flights",
        "geometry": square(west, 0.0, 1.0), "properties": all, "links": [], "assets": {}
    })
}

/// Five captures: `n1`..`n3` nadir, `o1` oblique, `r1` a range item.
async fn fixture(store: &TestStore) -> axum::Router {
    let s = store.store.as_ref();
    add_collection(s, collection("flights")).await;
    add_items(
        s,
        vec![
            item("n1", 0.0, Some("2023-05-01T10:00:00Z"),
                json!({"gsd": 0.02, "platform": "Drone-A", "instruments": ["rgb"], "view:off_nadir": 0})),
            item("n2", 2.0, Some("2023-05-02T10:00:00Z"),
                json!({"gsd": 0.03, "platform": "drone-b", "instruments": ["rgb", "lidar"], "view:off_nadir": 0})),
            item("n3", 4.0, Some("2024-01-10T00:00:00Z"),
                json!({"gsd": 0.05, "platform": "Drone-A", "instruments": ["lidar"], "view:off_nadir": 0})),
            item("o1", 6.0, Some("2024-02-01T12:00:00Z"),
                json!({"gsd": 0.04, "platform": "plane", "instruments": ["rgb", "thermal"], "view:off_nadir": 30})),
            item("r1", 8.0, None,
                json!({"start_datetime": "2022-01-01T00:00:00Z", "end_datetime": "2022-12-31T00:00:00Z",
                       "gsd": 0.05, "platform": "plane"})),
        ],
    )
    .await;
    app(store.store.clone(), SearchLimits::default()).await
}

fn id_set(answer: &Answer) -> BTreeSet<String> {
    answer.json()["features"]
        .as_array()
        .unwrap_or_else(|| panic!("no features: {}", answer.json()))
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

fn expected(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

async fn text_filter(app: &axum::Router, filter: &str) -> Answer {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("filter", filter)
        .append_pair("limit", "100")
        .finish();
    get(app, &format!("/search?{query}")).await
}

async fn cql2_text_cases(store: TestStore) {
    let app = fixture(&store).await;
    let cases: &[(&str, &[&str])] = &[
        ("gsd = 0.05", &["n3", "r1"]),
        ("gsd <> 0.05", &["n1", "n2", "o1"]),
        ("gsd < 0.04", &["n1", "n2"]),
        ("gsd >= 0.04 AND platform = 'plane'", &["o1", "r1"]),
        ("platform = 'Drone-A' OR gsd > 0.045", &["n1", "n3", "r1"]),
        ("NOT (platform = 'plane')", &["n1", "n2", "n3"]),
        ("platform LIKE 'Drone%'", &["n1", "n3"]),
        ("platform LIKE 'drone_b'", &["n2"]),
        ("CASEI(platform) = CASEI('DRONE-A')", &["n1", "n3"]),
        ("gsd BETWEEN 0.03 AND 0.04", &["n2", "o1"]),
        ("platform IN ('plane', 'drone-b')", &["n2", "o1", "r1"]),
        ("id IN ('n1', 'o1', 'nope')", &["n1", "o1"]),
        ("instruments IS NULL", &["r1"]),
        ("\"view:off_nadir\" > 10", &["o1"]),
        ("gsd * 100 > 4.5", &["n3", "r1"]),
        ("gsd + gsd = 0.1", &["n3", "r1"]),
        ("S_INTERSECTS(geometry, BBOX(1.5, 0.2, 4.5, 0.8))", &["n2", "n3"]),
        ("S_INTERSECTS(geometry, POINT(6.5 0.5))", &["o1"]),
        ("S_CONTAINS(geometry, POINT(0.5 0.5))", &["n1"]),
        (
            "S_WITHIN(geometry, POLYGON((-1 -1, 3.5 -1, 3.5 2, -1 2, -1 -1)))",
            &["n1", "n2"],
        ),
        ("S_DISJOINT(geometry, BBOX(-1, -1, 4.5, 2))", &["o1", "r1"]),
        ("S_TOUCHES(geometry, LINESTRING(1 -1, 1 2))", &["n1"]),
        ("S_CROSSES(LINESTRING(-1 0.5, 2.5 0.5), geometry)", &["n1", "n2"]),
        ("S_EQUALS(geometry, POLYGON((6 0, 7 0, 7 1, 6 1, 6 0)))", &["o1"]),
        ("S_OVERLAPS(geometry, BBOX(0.5, 0.5, 2.5, 2))", &["n1", "n2"]),
        (
            "T_AFTER(datetime, TIMESTAMP('2023-12-31T00:00:00Z'))",
            &["n3", "o1"],
        ),
        ("T_BEFORE(datetime, DATE('2023-01-01'))", &["r1"]),
        (
            "T_DURING(datetime, INTERVAL('2023-01-01', '2023-12-31'))",
            &["n1", "n2"],
        ),
        (
            "T_INTERSECTS(datetime, INTERVAL('2022-06-01T00:00:00Z', '..'))",
            &["n1", "n2", "n3", "o1", "r1"],
        ),
        (
            "T_DISJOINT(datetime, INTERVAL('..', '2023-05-01T10:00:00Z'))",
            &["n2", "n3", "o1"],
        ),
        ("T_EQUALS(datetime, TIMESTAMP('2024-01-10T00:00:00Z'))", &["n3"]),
        (
            "T_CONTAINS(datetime, INTERVAL('2022-03-01', '2022-04-01'))",
            &["r1"],
        ),
        (
            "T_STARTEDBY(datetime, INTERVAL('2022-01-01T00:00:00Z', '2022-02-01T00:00:00Z'))",
            &["r1"],
        ),
        (
            "T_FINISHEDBY(datetime, INTERVAL('2022-06-01T00:00:00Z', '2022-12-31T00:00:00Z'))",
            &["r1"],
        ),
        (
            "T_MEETS(datetime, INTERVAL('2022-12-31T00:00:00Z', '2023-03-01T00:00:00Z'))",
            &["r1"],
        ),
        (
            "T_METBY(datetime, INTERVAL('2021-01-01T00:00:00Z', '2022-01-01T00:00:00Z'))",
            &["r1"],
        ),
        (
            "T_OVERLAPS(datetime, INTERVAL('2022-06-01T00:00:00Z', '2023-01-01T00:00:00Z'))",
            &["r1"],
        ),
        (
            "T_OVERLAPPEDBY(datetime, INTERVAL('2021-06-01T00:00:00Z', '2022-06-01T00:00:00Z'))",
            &["r1"],
        ),
        (
            "T_STARTS(datetime, INTERVAL('2022-01-01T00:00:00Z', '2023-01-01T00:00:00Z'))",
            &["r1"],
        ),
        (
            "T_FINISHES(datetime, INTERVAL('2021-01-01T00:00:00Z', '2022-12-31T00:00:00Z'))",
            &["r1"],
        ),
        ("A_CONTAINS(instruments, ('rgb'))", &["n1", "n2", "o1"]),
        (
            "A_CONTAINEDBY(instruments, ('rgb', 'lidar'))",
            &["n1", "n2", "n3"],
        ),
        ("A_EQUALS(instruments, ('lidar', 'rgb'))", &["n2"]),
        (
            "A_OVERLAPS(instruments, ('thermal', 'lidar'))",
            &["n2", "n3", "o1"],
        ),
        ("id = platform", &[]),
        ("true", &["n1", "n2", "n3", "o1", "r1"]),
    ];
    for (filter, ids) in cases {
        let answer = text_filter(&app, filter).await;
        assert_eq!(answer.status, StatusCode::OK, "{filter}: {}", answer.json());
        assert_eq!(id_set(&answer), expected(ids), "{filter}");
    }
}

async fn cql2_json_and_text_bodies(store: TestStore) {
    let app = fixture(&store).await;
    let json_filter = json!({"op": "and", "args": [
        {"op": ">", "args": [{"property": "gsd"}, 0.025]},
        {"op": "s_intersects", "args": [{"property": "geometry"}, {"type": "Point", "coordinates": [2.5, 0.5]}]}
    ]});
    let answer = post_json(
        &app,
        "/search",
        &json!({"filter": json_filter, "filter-lang": "cql2-json"}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(id_set(&answer), expected(&["n2"]));

    let answer = post_json(&app, "/search", &json!({"filter": json_filter})).await;
    assert_eq!(
        id_set(&answer),
        expected(&["n2"]),
        "cql2-json is the POST default"
    );

    let body = json!({"filter": "platform = 'plane'", "filter-lang": "cql2-text"});
    let answer = post_json(&app, "/search", &body).await;
    assert_eq!(id_set(&answer), expected(&["o1", "r1"]));

    let query = "filter-lang=cql2-json&filter=%7B%22op%22%3A%22%3D%22%2C%22args%22%3A%5B%7B%22property%22%3A%22id%22%7D%2C%22n3%22%5D%7D";
    let answer = get(&app, &format!("/collections/flights/items?{query}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json());
    assert_eq!(id_set(&answer), expected(&["n3"]));
}

async fn filter_pages_keep_the_filter(store: TestStore) {
    let app = fixture(&store).await;
    let first = get(&app, "/search?limit=1&filter=gsd%20%3E%3D%200.03").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.json()["numberMatched"], 4);
    let mut ids = page_through(&app, first).await;
    ids.sort();
    assert_eq!(ids, vec!["flights/n2", "flights/n3", "flights/o1", "flights/r1"]);

    let body = json!({"limit": 2, "filter": {"op": "=", "args": [{"property": "platform"}, "plane"]}});
    let first = post_json(&app, "/search", &body).await;
    let mut ids = page_through(&app, first).await;
    ids.sort();
    assert_eq!(ids, vec!["flights/o1", "flights/r1"]);
}

async fn bad_filters_are_400(store: TestStore) {
    let app = fixture(&store).await;
    let cases = [
        ("platform = 5", "InvalidParameterValue"),
        ("gsd = 'fine'", "InvalidParameterValue"),
        ("cloud_cover < 10", "InvalidParameterValue"),
        ("gsd <", "InvalidParameterValue"),
        ("pg_sleep(5) = 1", "NotSupported"),
        ("ACCENTI(platform) = ACCENTI('x')", "NotSupported"),
        ("S_INTERSECTS(gsd, POINT(0 0))", "InvalidParameterValue"),
        ("\"x'); DROP TABLE items; --\" = 1", "InvalidParameterValue"),
    ];
    for (filter, code) in cases {
        let answer = text_filter(&app, filter).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{filter}");
        assert_eq!(answer.json()["code"], code, "{filter}: {}", answer.json());
    }
    let answer = get(&app, "/search?filter=id%3D%27a%27&filter-lang=cql3").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let answer = get(&app, "/search?filter=id%3D%27a%27&filter-crs=EPSG:3857").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let answer = post_json(&app, "/search", &json!({"filter": {"op": "=", "args": [1]}})).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);

    // Strings that look like SQL are data: they match nothing and change nothing.
    let injected = "id = 'x'' OR ''1''=''1' OR platform = 'a''; DELETE FROM items; --'";
    let answer = text_filter(&app, injected).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(id_set(&answer).is_empty());
    let all = get(&app, "/search?limit=100").await;
    assert_eq!(all.json()["numberMatched"], 5);
}

async fn queryables_list_stored_properties(store: TestStore) {
    let app = fixture(&store).await;
    let answer = get(&app, "/queryables").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.content_type(), "application/schema+json");
    let schema = answer.json();
    assert_eq!(schema["$id"], "http://stac.test/queryables");
    assert_eq!(schema["properties"]["gsd"]["type"], "number");
    assert_eq!(schema["properties"]["platform"]["type"], "string");
    assert_eq!(schema["properties"]["instruments"]["type"], "array");
    assert_eq!(schema["properties"]["datetime"]["format"], "date-time");

    let etag = answer.headers.get("etag").unwrap().to_str().unwrap().to_string();
    let request = axum::http::Request::get("/queryables")
        .header("host", "stac.test")
        .header("if-none-match", etag)
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(send(&app, request).await.status, StatusCode::NOT_MODIFIED);

    let answer = get(&app, "/collections/flights/queryables").await;
    assert_eq!(
        answer.json()["$id"],
        "http://stac.test/collections/flights/queryables"
    );
    assert_eq!(
        get(&app, "/collections/nope/queryables").await.status,
        StatusCode::NOT_FOUND
    );

    let landing = get(&app, "/").await.json();
    let rel = "http://www.opengis.net/def/rel/ogc/1.0/queryables";
    let links = landing["links"].as_array().unwrap();
    assert!(
        links.iter().any(|l| l["rel"] == rel),
        "the landing page links the queryables"
    );
    let conformance = get(&app, "/conformance").await.json();
    let classes = conformance["conformsTo"].as_array().unwrap();
    assert!(
        classes
            .iter()
            .any(|c| c == "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2")
    );

    // A property written later becomes queryable.
    let mut newer = item(
        "n4",
        10.0,
        Some("2024-03-01T00:00:00Z"),
        json!({"cloud_cover": 3}),
    );
    newer["collection"] = json!("flights");
    add_items(store.store.as_ref(), vec![newer]).await;
    let answer = text_filter(&app, "cloud_cover < 10").await;
    assert_eq!(id_set(&answer), expected(&["n4"]));
}

async fn operator_schemas_override_discovered_ones(store: TestStore) {
    let _ = fixture(&store).await;
    let mut extra = serde_json::Map::new();
    extra.insert(
        "platform".into(),
        json!({"type": "string", "description": "Aircraft model", "enum": ["Drone-A", "drone-b", "plane"]}),
    );
    let state = std::sync::Arc::new(stacd::routes::AppState {
        signer: stacd::paging::TokenSigner::new(store.store.secret().await.unwrap()),
        store: store.store.clone(),
        limits: SearchLimits::default(),
        info: stacd::api::CatalogInfo {
            id: "test".into(),
            title: "Test".into(),
            description: "Test".into(),
        },
        public_url: None,
        tokens: None,
        private_reads: false,
        body_limit: 1024 * 1024,
        max_bulk_items: 100,
        checks: Default::default(),
        operations: std::sync::Arc::new(Default::default()),
        queryables: Some(extra),
    });
    let app = stacd::routes::router(state, stacd::routes::HttpOptions::default());
    let schema = get(&app, "/queryables").await.json();
    assert_eq!(schema["properties"]["platform"]["description"], "Aircraft model");
    assert_eq!(
        schema["properties"]["gsd"]["type"], "number",
        "discovered properties stay"
    );
}

on_both_stores!("stacd_filter_";
    operator_schemas_override_discovered_ones,
    cql2_text_cases,
    cql2_json_and_text_bodies,
    filter_pages_keep_the_filter,
    bad_filters_are_400,
    queryables_list_stored_properties
);
