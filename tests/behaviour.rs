//! The behavioural suite: every case runs against the SQLite store and the
//! PostgreSQL + PostGIS store, and both must return the same results.

#[macro_use]
mod common;

use std::collections::HashSet;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use serde_json::{Value, json};
use stacd::search::SearchLimits;

fn collection(id: &str) -> Value {
    json!({
        "type": "Collection", "stac_version": "1.0.0", "id": id, "title": format!("Collection {id}"),
        "description": "test collection", "license": "CC-BY-4.0",
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                   "temporal": {"interval": [["2020-01-01T00:00:00Z", null]]}},
        "links": [{"rel": "license", "href": "https://creativecommons.org/licenses/by/4.0/"}]
    })
}

fn item(collection: &str, id: &str, datetime: &str, geometry: Value) -> Value {
    json!({
        "type": "Feature", "stac_version": "1.0.0", "id": id, "collection": collection,
        "geometry": geometry,
        "properties": {"datetime": datetime, "gsd": 0.03},
        "links": [{"rel": "self", "href": "https://elsewhere.example/x.json"}],
        "assets": {"ortho": {"href": format!("s3://bucket/{id}.tif"), "type": "image/tiff; application=geotiff"}}
    })
}

fn square(west: f64, south: f64, size: f64) -> Value {
    json!({"type": "Polygon", "coordinates": [[[west, south], [west + size, south],
        [west + size, south + size], [west, south + size], [west, south]]]})
}

/// Loads the shared fixture: two collections, the same id in both, a range
/// item, a triangle, and items on both sides of the antimeridian.
async fn fixture(store: &TestStore) {
    let s = store.store.as_ref();
    add_collection(s, collection("survey")).await;
    add_collection(s, collection("other")).await;
    add_items(
        s,
        vec![
            item("survey", "a1", "2021-06-01T10:00:00Z", square(10.0, 50.0, 0.01)),
            item("survey", "a2", "2021-06-02T10:00:00Z", square(10.1, 50.0, 0.01)),
            item("survey", "a3", "2022-01-15T10:00:00Z", square(10.2, 50.0, 0.01)),
            item("survey", "same", "2021-06-01T10:00:00Z", square(10.3, 50.0, 0.01)),
            item("other", "same", "2021-06-01T10:00:00Z", square(10.3, 50.0, 0.01)),
            // A right triangle whose bbox covers (20.9, 0.9) although the triangle does not.
            item("survey", "triangle", "2020-03-01T00:00:00Z",
                json!({"type": "Polygon", "coordinates": [[[20.0, 0.0], [21.0, 0.0], [20.0, 1.0], [20.0, 0.0]]]})),
            item("other", "west-of-180", "2020-05-01T00:00:00Z", square(179.5, -17.0, 0.3)),
            item("other", "east-of-minus-180", "2020-05-02T00:00:00Z", square(-179.8, -17.0, 0.3)),
        ],
    )
    .await;
    let mut range = item("other", "range", "2000-01-01T00:00:00Z", square(30.0, 30.0, 1.0));
    range["properties"] = json!({"datetime": null, "start_datetime": "2019-01-01T00:00:00Z",
        "end_datetime": "2019-12-31T23:59:59Z"});
    add_items(s, vec![range]).await;
}

async fn app_with(store: &TestStore, limits: SearchLimits) -> axum::Router {
    app(store.store.clone(), limits).await
}

async fn fixture_app(store: &TestStore) -> axum::Router {
    fixture(store).await;
    app(store.store.clone(), SearchLimits::default()).await
}

fn ids(answer: &Answer) -> Vec<String> {
    let mut ids: Vec<String> = answer.json()["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}/{}",
                f["collection"].as_str().unwrap(),
                f["id"].as_str().unwrap()
            )
        })
        .collect();
    ids.sort();
    ids
}

fn rels(value: &Value) -> Vec<String> {
    value["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["rel"].as_str().unwrap().to_string())
        .collect()
}

async fn landing_page_links(store: TestStore) {
    let app = fixture_app(&store).await;
    let answer = get(&app, "/").await;
    assert_eq!(answer.status, StatusCode::OK);
    let page = answer.json();
    let rels = rels(&page);
    for rel in [
        "self",
        "root",
        "conformance",
        "data",
        "search",
        "service-desc",
        "service-doc",
        "child",
    ] {
        assert!(rels.contains(&rel.to_string()), "missing {rel} in {rels:?}");
    }
    let methods: HashSet<&str> = page["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["rel"] == "search")
        .map(|l| l["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, HashSet::from(["GET", "POST"]));
    assert!(
        page["conformsTo"]
            .as_array()
            .unwrap()
            .contains(&json!("https://api.stacspec.org/v1.0.0/item-search"))
    );
    assert_eq!(page["links"][0]["href"], "http://stac.test/");
}

async fn collections_and_items_resolve(store: TestStore) {
    let app = fixture_app(&store).await;
    let answer = get(&app, "/collections").await;
    assert_eq!(answer.status, StatusCode::OK);
    let list = answer.json();
    let ids: Vec<&str> = list["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["other", "survey"]);

    let answer = get(&app, "/collections/survey").await;
    assert_eq!(answer.status, StatusCode::OK);
    let rels = rels(&answer.json());
    assert!(
        rels.contains(&"items".to_string()) && rels.contains(&"license".to_string()),
        "{rels:?}"
    );

    let answer = get(&app, "/collections/survey/items/a1").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.content_type(), "application/geo+json");
    let item = answer.json();
    assert_eq!(
        item["links"][0]["href"],
        "http://stac.test/collections/survey/items/a1"
    );
    assert!(
        !item["links"].to_string().contains("elsewhere.example"),
        "input self link must be replaced"
    );

    for missing in [
        "/collections/nope",
        "/collections/nope/items",
        "/collections/survey/items/nope",
        "/collections/nope/items/a1",
        "/no/such/path",
    ] {
        let answer = get(&app, missing).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(answer.json()["code"], "NotFound", "{missing}");
    }
}

async fn bbox_crossing_antimeridian(store: TestStore) {
    let app = fixture_app(&store).await;
    let answer = get(&app, "/search?bbox=179,-18,-179,-16").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(ids(&answer), vec!["other/east-of-minus-180", "other/west-of-180"]);
    let answer = post_json(&app, "/search", &json!({"bbox": [179, -18, -179, -16]})).await;
    assert_eq!(ids(&answer), vec!["other/east-of-minus-180", "other/west-of-180"]);
}

async fn intersects_is_exact(store: TestStore) {
    let app = fixture_app(&store).await;
    let outside = json!({"intersects": {"type": "Point", "coordinates": [20.9, 0.9]}});
    let answer = post_json(&app, "/search", &outside).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        ids(&answer).is_empty(),
        "bbox overlap is not intersection: {:?}",
        ids(&answer)
    );
    let inside = json!({"intersects": {"type": "Point", "coordinates": [20.1, 0.1]}});
    assert_eq!(
        ids(&post_json(&app, "/search", &inside).await),
        vec!["survey/triangle"]
    );
    // The bbox parameter is exact too.
    assert!(ids(&get(&app, "/search?bbox=20.8,0.8,20.95,0.95").await).is_empty());
    let line =
        json!({"intersects": {"type": "LineString", "coordinates": [[9.0, 50.005], [10.105, 50.005]]}});
    assert_eq!(
        ids(&post_json(&app, "/search", &line).await),
        vec!["survey/a1", "survey/a2"]
    );
    let multi = json!({"intersects": {"type": "MultiPolygon", "coordinates": [
        [[[10.0, 50.0], [10.005, 50.0], [10.005, 50.005], [10.0, 50.0]]],
        [[[30.5, 30.5], [30.6, 30.5], [30.6, 30.6], [30.5, 30.5]]]]}});
    assert_eq!(
        ids(&post_json(&app, "/search", &multi).await),
        vec!["other/range", "survey/a1"]
    );
    let encoded = "/search?intersects=%7B%22type%22%3A%22Point%22%2C%22coordinates%22%3A%5B20.1%2C0.1%5D%7D";
    assert_eq!(ids(&get(&app, encoded).await), vec!["survey/triangle"]);
}

/// Checks that a bbox or geometry with a datetime interval finds exactly the
/// items in both, at the edges of the interval too, after an item's time changes.
async fn space_and_time_together(store: TestStore) {
    let s = store.store.as_ref();
    add_collection(s, collection("survey")).await;
    let spot = |id: &str, datetime: &str| item("survey", id, datetime, square(10.0, 50.0, 0.01));
    let mut touching = spot("touching", "2000-01-01T00:00:00Z");
    touching["properties"] = json!({"datetime": null, "start_datetime": "2021-05-01T00:00:00Z",
        "end_datetime": "2021-06-01T00:00:00Z"});
    let mut later = spot("later", "2000-01-01T00:00:00Z");
    later["properties"] = json!({"datetime": null, "start_datetime": "2021-07-01T00:00:00Z",
        "end_datetime": "2021-08-01T00:00:00Z"});
    add_items(
        s,
        vec![
            spot("before", "2021-05-31T23:59:59.999999Z"),
            spot("first", "2021-06-01T00:00:00Z"),
            spot("last", "2021-06-30T23:59:59Z"),
            spot("after", "2021-06-30T23:59:59.000001Z"),
            item(
                "survey",
                "elsewhere",
                "2021-06-15T00:00:00Z",
                square(20.0, 50.0, 0.01),
            ),
            touching,
            later,
        ],
    )
    .await;
    let app = app_with(&store, SearchLimits::default()).await;
    let june = "datetime=2021-06-01T00:00:00Z/2021-06-30T23:59:59Z";
    let by_bbox = get(&app, &format!("/search?bbox=9.99,49.99,10.02,50.02&{june}")).await;
    assert_eq!(
        ids(&by_bbox),
        vec!["survey/first", "survey/last", "survey/touching"]
    );
    assert_eq!(by_bbox.json()["numberMatched"], 3);
    let body = json!({"intersects": square(9.99, 49.99, 0.03),
        "datetime": "2021-06-01T00:00:00Z/2021-06-30T23:59:59Z"});
    let by_geometry = post_json(&app, "/search", &body).await;
    assert_eq!(
        ids(&by_geometry),
        vec!["survey/first", "survey/last", "survey/touching"]
    );
    let open_end = get(
        &app,
        "/search?bbox=9.99,49.99,10.02,50.02&datetime=2021-06-30T23:59:59.000001Z/..",
    )
    .await;
    assert_eq!(ids(&open_end), vec!["survey/after", "survey/later"]);
    let open_start = get(
        &app,
        "/search?bbox=9.99,49.99,10.02,50.02&datetime=../2021-05-31T23:59:59.999999Z",
    )
    .await;
    assert_eq!(ids(&open_start), vec!["survey/before", "survey/touching"]);

    // Moving an item in time moves it between searches.
    let moved = stacd::prepare::prepare_item(spot("before", "2021-06-15T00:00:00Z"), None).unwrap();
    s.replace_item(&moved, None).await.unwrap();
    let by_bbox = get(&app, &format!("/search?bbox=9.99,49.99,10.02,50.02&{june}")).await;
    assert_eq!(
        ids(&by_bbox),
        vec!["survey/before", "survey/first", "survey/last", "survey/touching"]
    );

    // A deleted item leaves the searches with and without a datetime.
    s.delete_item("survey", "first", None).await.unwrap();
    let by_bbox = get(&app, &format!("/search?bbox=9.99,49.99,10.02,50.02&{june}")).await;
    assert_eq!(
        ids(&by_bbox),
        vec!["survey/before", "survey/last", "survey/touching"]
    );
    let all_times = get(&app, "/search?bbox=9.99,49.99,10.02,50.02").await;
    assert_eq!(
        ids(&all_times),
        vec![
            "survey/after",
            "survey/before",
            "survey/last",
            "survey/later",
            "survey/touching"
        ]
    );
}

async fn datetime_intervals(store: TestStore) {
    let app = fixture_app(&store).await;
    let june = ids(&get(&app, "/search?datetime=2021-06-01T00:00:00Z/2021-06-30T23:59:59Z").await);
    assert_eq!(june, vec!["other/same", "survey/a1", "survey/a2", "survey/same"]);
    let open_start = ids(&get(&app, "/search?datetime=../2020-01-01T00:00:00Z").await);
    assert_eq!(open_start, vec!["other/range"]);
    let open_end = ids(&get(&app, "/search?datetime=2022-01-01T00:00:00Z/").await);
    assert_eq!(open_end, vec!["survey/a3"]);
    // The range item spans 2019 and matches any interval it overlaps.
    let overlap = ids(&get(&app, "/search?datetime=2019-06-01T00:00:00Z/2019-06-02T00:00:00Z").await);
    assert_eq!(overlap, vec!["other/range"]);
    let instant = ids(&get(&app, "/search?datetime=2021-06-02T10:00:00Z").await);
    assert_eq!(instant, vec!["survey/a2"]);
    for bad in [
        "../..",
        "2021-06-02T00:00:00Z/2021-06-01T00:00:00Z",
        "tomorrow",
        "2021-06-01T00:00:00",
    ] {
        let answer = get(&app, &format!("/search?datetime={bad}")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            answer.json()["description"]
                .as_str()
                .unwrap()
                .contains("datetime"),
            "{bad}"
        );
    }
}

async fn ids_and_collections(store: TestStore) {
    let app = fixture_app(&store).await;
    assert_eq!(
        ids(&get(&app, "/search?ids=same").await),
        vec!["other/same", "survey/same"]
    );
    assert_eq!(
        ids(&get(&app, "/search?ids=same&collections=other").await),
        vec!["other/same"]
    );
    let body = json!({"ids": ["a1", "a2"], "collections": ["survey", "other"]});
    assert_eq!(
        ids(&post_json(&app, "/search", &body).await),
        vec!["survey/a1", "survey/a2"]
    );
    let items = get(&app, "/collections/other/items?limit=100").await;
    assert_eq!(items.json()["numberMatched"], 4);
    // pystac-client repeats the collection of the path as a parameter.
    let items = get(&app, "/collections/other/items?collections=other").await;
    assert_eq!(items.status, StatusCode::OK);
}

async fn paging_visits_every_item_once(store: TestStore) {
    let app = fixture_app(&store).await;
    let all: HashSet<String> = ids(&get(&app, "/search?limit=100").await).into_iter().collect();
    assert_eq!(all.len(), 9);
    for limit in [1, 2, 4] {
        let seen = page_through(&app, get(&app, &format!("/search?limit={limit}")).await).await;
        assert_eq!(seen.len(), 9, "GET limit={limit}: {seen:?}");
        assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), all);
        let seen = page_through(&app, post_json(&app, "/search", &json!({"limit": limit})).await).await;
        assert_eq!(seen.len(), 9, "POST limit={limit}: {seen:?}");
        assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), all);
    }
    // Default order: datetime descending, then collection, then id.
    let first = get(&app, "/search?limit=100").await.json();
    let order: Vec<&str> = first["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(&order[..3], &["a3", "a2", "same"]);
    assert_eq!(first["features"][2]["collection"], "other");
    let page = get(&app, "/search?limit=2").await.json();
    assert_eq!(page["numberMatched"], 9);
    assert_eq!(page["numberReturned"], 2);
}

async fn prev_link_returns_previous_page(store: TestStore) {
    let app = fixture_app(&store).await;
    let first = get(&app, "/collections/survey/items?limit=2").await.json();
    assert!(!rels(&first).contains(&"prev".to_string()));
    let next = first["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "next")
        .unwrap();
    let second = get(
        &app,
        &next["href"].as_str().unwrap().replace("http://stac.test", ""),
    )
    .await
    .json();
    let prev = second["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "prev")
        .unwrap();
    let back = get(
        &app,
        &prev["href"].as_str().unwrap().replace("http://stac.test", ""),
    )
    .await;
    assert_eq!(ids(&back), {
        let mut expected: Vec<String> = first["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| format!("survey/{}", f["id"].as_str().unwrap()))
            .collect();
        expected.sort();
        expected
    });
}

async fn paging_while_inserting(store: TestStore) {
    let app = fixture_app(&store).await;
    let before: HashSet<String> = ids(&get(&app, "/search?limit=100").await).into_iter().collect();
    let first = get(&app, "/search?limit=3").await;
    let mut seen: Vec<String> = ids(&first);
    let page = first.json();
    // New items land before, inside and after the pages already read.
    add_items(
        store.store.as_ref(),
        vec![
            item(
                "survey",
                "new-newest",
                "2030-01-01T00:00:00Z",
                square(11.0, 50.0, 0.01),
            ),
            item(
                "survey",
                "new-middle",
                "2021-06-01T10:00:00Z",
                square(11.0, 50.0, 0.01),
            ),
            item(
                "survey",
                "new-oldest",
                "1990-01-01T00:00:00Z",
                square(11.0, 50.0, 0.01),
            ),
        ],
    )
    .await;
    let next = page["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "next")
        .unwrap();
    let rest = page_through(
        &app,
        get(
            &app,
            &next["href"].as_str().unwrap().replace("http://stac.test", ""),
        )
        .await,
    )
    .await;
    seen.extend(rest);
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "an item was repeated: {seen:?}");
    assert!(
        before.is_subset(&unique),
        "an item was skipped: {:?}",
        before.difference(&unique).collect::<Vec<_>>()
    );
}

async fn bad_tokens_are_rejected(store: TestStore) {
    let app = fixture_app(&store).await;
    let page = get(&app, "/search?limit=2&collections=survey").await.json();
    let next = page["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "next")
        .unwrap();
    let href = next["href"].as_str().unwrap().replace("http://stac.test", "");
    let token = href.split("token=").nth(1).unwrap().to_string();
    let tampered = format!(
        "/search?limit=2&collections=survey&token={}x",
        &token[..token.len() - 1]
    );
    let answer = get(&app, &tampered).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.json()["description"].as_str().unwrap().contains("token"));
    let foreign = format!("/search?limit=2&collections=other&token={token}");
    assert_eq!(get(&app, &foreign).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        get(&app, "/search?token=abc").await.status,
        StatusCode::BAD_REQUEST
    );
}

async fn bad_input_gets_json_errors(store: TestStore) {
    let app = fixture_app(&store).await;
    let cases = [
        ("/search?limit=0", "limit"),
        ("/search?limit=abc", "limit"),
        ("/search?bbox=1,2,3", "bbox"),
        ("/search?bbox=0,10,1,5", "bbox"),
        ("/search?bbox=a,b,c,d", "bbox"),
        (
            "/search?bbox=0,0,1,1&intersects=%7B%22type%22%3A%22Point%22%2C%22coordinates%22%3A%5B0%2C0%5D%7D",
            "intersects",
        ),
        ("/search?intersects=notjson", "intersects"),
        ("/search?unknown=1", "unknown"),
        ("/collections/survey/items?collections=x", "collections"),
        ("/collections/survey/items?foo=bar", "foo"),
        ("/search?sortby=cloud_cover", "sortby"),
        ("/collections?limit=2&bogus=1", "bogus"),
    ];
    for (uri, named) in cases {
        let answer = get(&app, uri).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        let error = answer.json();
        assert!(error["code"].is_string(), "{uri}");
        assert!(
            error["description"].as_str().unwrap().contains(named),
            "{uri}: {error}"
        );
    }
    let answer = post_json(&app, "/search", &json!({"limit": -1})).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let answer = post_json(&app, "/search", &json!([1, 2])).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let answer = post_json(
        &app,
        "/search",
        &json!({"intersects": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let malformed = Request::post("/search")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"limit\": "))
        .unwrap();
    let answer = send(&app, malformed).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["code"], "InvalidRequestBody");
    let wrong_type = Request::post("/search")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    let answer = send(&app, wrong_type).await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(answer.json()["description"].is_string());
    let answer = send(&app, Request::delete("/search").body(Body::empty()).unwrap()).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(answer.json()["code"].is_string());
}

async fn number_matched_counts(store: TestStore) {
    let app = fixture_app(&store).await;
    assert_eq!(get(&app, "/search").await.json()["numberMatched"], 9);
    assert_eq!(
        get(&app, "/collections/survey/items").await.json()["numberMatched"],
        5
    );
    assert_eq!(
        get(&app, "/search?collections=survey,other").await.json()["numberMatched"],
        9
    );
    // Replacing an item must not count it twice.
    let again = stacd::prepare::prepare_item(
        item("survey", "a1", "2021-06-01T10:00:00Z", square(10.0, 50.0, 0.01)),
        None,
    );
    store
        .store
        .insert_items(&[again.unwrap()], stacd::store::InsertMode::Upsert)
        .await
        .unwrap();
    assert_eq!(get(&app, "/search").await.json()["numberMatched"], 9);
    assert_eq!(
        get(&app, "/search?bbox=10,50,10.5,50.1").await.json()["numberMatched"],
        5
    );

    // Above the count limit, a spatial count is flagged as an estimate and never below the bound.
    let limits = SearchLimits {
        default_limit: 10,
        max_limit: 100,
        count_limit: 2,
        ..SearchLimits::default()
    };
    let small = app_with(&store, limits).await;
    let answer = get(&small, "/search?bbox=10,50,10.5,50.1").await;
    assert_eq!(answer.headers["x-number-matched-estimate"], "true");
    assert!(answer.json()["numberMatched"].as_u64().unwrap() >= 3);
    let exact = get(&small, "/search?bbox=20.5,0.1,20.6,0.2").await;
    assert!(exact.headers.get("x-number-matched-estimate").is_none());
    assert_eq!(exact.json()["numberMatched"], 1);
}

/// A count that runs past its time budget is dropped: the page is returned in
/// full, without `numberMatched`, and the same search with time to spare has it.
async fn slow_count_is_left_out(store: TestStore) {
    fixture(&store).await;
    let items: Vec<Value> = (0..3000)
        .map(|n| {
            let x = (n % 60) as f64 * 0.01;
            let y = (n / 60) as f64 * 0.01;
            item(
                "survey",
                &format!("grid-{n:04}"),
                "2023-01-01T00:00:00Z",
                square(x, y, 0.005),
            )
        })
        .collect();
    add_items(store.store.as_ref(), items).await;
    // Every item is a candidate of the count, and each one costs 200 comparisons.
    let alternatives: Vec<Value> = (0..200)
        .map(|n| json!({"op": "like", "args": [{"property": "id"}, format!("%no-such-id-{n}%")]}))
        .chain([json!({"op": "=", "args": [{"property": "gsd"}, 0.03]})])
        .collect();
    let body = json!({"collections": ["survey"], "limit": 2, "filter-lang": "cql2-json",
        "filter": {"op": "or", "args": alternatives}});

    let hurried = SearchLimits {
        count_timeout: Some(std::time::Duration::from_millis(1)),
        ..SearchLimits::default()
    };
    let answer = post_json(&app_with(&store, hurried).await, "/search", &body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json());
    let page = answer.json();
    assert_eq!(page["numberReturned"], 2);
    assert!(page.get("numberMatched").is_none(), "{}", page["numberMatched"]);
    assert!(
        page["links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["rel"] == "next")
    );

    let patient = SearchLimits {
        count_timeout: Some(std::time::Duration::from_secs(60)),
        ..SearchLimits::default()
    };
    let answer = post_json(&app_with(&store, patient).await, "/search", &body).await;
    assert_eq!(answer.json()["numberMatched"], 3005);
}

async fn large_page_is_valid_json(store: TestStore) {
    let app = fixture_app(&store).await;
    let padding = "x".repeat(2000);
    let items: Vec<Value> = (0..400)
        .map(|n| {
            let mut value = item(
                "survey",
                &format!("bulk-{n:03}"),
                "2023-01-01T00:00:00Z",
                square(5.0, 5.0, 0.1),
            );
            value["properties"]["note"] = json!(padding);
            value
        })
        .collect();
    add_items(store.store.as_ref(), items).await;
    // About 1 MB: the body is sent in many chunks and must still be one JSON document.
    let answer = get(&app, "/search?limit=1000").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.len() > 800_000, "{}", answer.body.len());
    let page = answer.json();
    assert_eq!(page["numberReturned"], 409);
    assert_eq!(page["features"].as_array().unwrap().len(), 409);
    let seen = page_through(&app, get(&app, "/search?limit=150&bbox=4.9,4.9,5.2,5.2").await).await;
    assert_eq!(seen.len(), 400);
}

async fn etag_and_not_modified(store: TestStore) {
    let app = fixture_app(&store).await;
    for uri in [
        "/",
        "/conformance",
        "/collections",
        "/collections/survey",
        "/collections/survey/items/a1",
    ] {
        let first = get(&app, uri).await;
        let tag = first.headers[header::ETAG].to_str().unwrap().to_string();
        assert!(tag.starts_with('"'), "{uri}: {tag}");
        assert!(tag.ends_with('"'), "{uri}: {tag}");
        let request = Request::get(uri)
            .header(header::HOST, "stac.test")
            .header(header::IF_NONE_MATCH, &tag)
            .body(Body::empty())
            .unwrap();
        let again = send(&app, request).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{uri}");
        assert!(again.body.is_empty(), "{uri}");
        assert_eq!(again.headers[header::ETAG], tag.as_str(), "{uri}");
        let request = Request::get(uri)
            .header(header::HOST, "stac.test")
            .header(header::IF_NONE_MATCH, "\"other\"")
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&app, request).await.status, StatusCode::OK, "{uri}");
    }
}

async fn limit_is_clamped(store: TestStore) {
    fixture(&store).await;
    let limits = SearchLimits {
        default_limit: 2,
        max_limit: 3,
        count_limit: 10_000,
        ..SearchLimits::default()
    };
    let app = app(store.store.clone(), limits).await;
    assert_eq!(get(&app, "/search").await.json()["numberReturned"], 2);
    assert_eq!(get(&app, "/search?limit=1000").await.json()["numberReturned"], 3);
}

async fn client_parameters_are_accepted(store: TestStore) {
    let app = fixture_app(&store).await;
    for uri in [
        "/?f=json",
        "/collections?f=json",
        "/collections/survey/items?f=json&limit=1",
        "/collections/survey/items?bbox-crs=http%3A%2F%2Fwww.opengis.net%2Fdef%2Fcrs%2FOGC%2F1.3%2FCRS84&bbox=0,0,90,90",
        "/search?f=geojson",
    ] {
        assert_eq!(get(&app, uri).await.status, StatusCode::OK, "{uri}");
    }
}

async fn head_and_cors(store: TestStore) {
    let app = fixture_app(&store).await;
    let head = Request::head("/collections/survey/items")
        .body(Body::empty())
        .unwrap();
    let answer = send(&app, head).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.is_empty());
    let preflight = Request::options("/search")
        .header(header::ORIGIN, "https://browser.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
        .body(Body::empty())
        .unwrap();
    let answer = send(&app, preflight).await;
    assert!(answer.status.is_success());
    assert_eq!(answer.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let with_origin = Request::get("/")
        .header(header::ORIGIN, "https://browser.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&app, with_origin).await.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "*"
    );
}

async fn links_follow_proxy_headers(store: TestStore) {
    let app = fixture_app(&store).await;
    let request = Request::get("/collections/survey")
        .header(header::HOST, "internal:7822")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "data.example.com")
        .header("x-forwarded-prefix", "/stac/")
        .body(Body::empty())
        .unwrap();
    let collection = send(&app, request).await.json();
    assert_eq!(
        collection["links"][0]["href"],
        "https://data.example.com/stac/collections/survey"
    );
    let request = Request::get("/")
        .header("forwarded", "for=1.2.3.4;proto=https;host=cdn.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&app, request).await.json()["links"][0]["href"],
        "https://cdn.example/"
    );
    let request = Request::get("/")
        .header(header::HOST, "evil\"host")
        .body(Body::empty())
        .unwrap();
    let href = send(&app, request).await.json()["links"][0]["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!href.contains('"'), "{href}");
}

async fn ids_round_trip_in_urls(store: TestStore) {
    fixture(&store).await;
    let odd = "tile 12/34?x#y%z";
    add_items(
        store.store.as_ref(),
        vec![item("survey", odd, "2021-01-01T00:00:00Z", square(1.0, 1.0, 0.1))],
    )
    .await;
    let app = app(store.store.clone(), SearchLimits::default()).await;
    let page = get(&app, "/search?ids=tile%2012%2F34%3Fx%23y%25z").await.json();
    let href = page["features"][0]["links"][0]["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        href,
        "http://stac.test/collections/survey/items/tile%2012%2F34%3Fx%23y%25z"
    );
    let answer = get(&app, &href.replace("http://stac.test", "")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["id"], odd);
}

async fn duplicates_are_rejected_whole(store: TestStore) {
    fixture(&store).await;
    let items = vec![
        stacd::prepare::prepare_item(
            item("survey", "fresh", "2021-01-01T00:00:00Z", square(1.0, 1.0, 0.1)),
            None,
        )
        .unwrap(),
        stacd::prepare::prepare_item(
            item("survey", "a1", "2021-01-01T00:00:00Z", square(1.0, 1.0, 0.1)),
            None,
        )
        .unwrap(),
    ];
    let error = store
        .store
        .insert_items(&items, stacd::store::InsertMode::Insert)
        .await
        .unwrap_err();
    assert!(matches!(error, stacd::Error::Conflict(_)));
    assert!(error.to_string().contains("survey/a1"), "{error}");
    assert!(
        store.store.item("survey", "fresh").await.unwrap().is_none(),
        "the batch must not be partly written"
    );
    store
        .store
        .insert_items(&items, stacd::store::InsertMode::Upsert)
        .await
        .unwrap();
    assert!(store.store.item("survey", "fresh").await.unwrap().is_some());
    let orphan = vec![
        stacd::prepare::prepare_item(
            item("missing", "x", "2021-01-01T00:00:00Z", square(1.0, 1.0, 0.1)),
            None,
        )
        .unwrap(),
    ];
    let error = store
        .store
        .insert_items(&orphan, stacd::store::InsertMode::Insert)
        .await
        .unwrap_err();
    assert!(matches!(error, stacd::Error::NotFound(_)), "{error}");
}

on_both_stores!("stacd_test_";
    landing_page_links,
    collections_and_items_resolve,
    bbox_crossing_antimeridian,
    intersects_is_exact,
    datetime_intervals,
    space_and_time_together,
    ids_and_collections,
    paging_visits_every_item_once,
    prev_link_returns_previous_page,
    paging_while_inserting,
    bad_tokens_are_rejected,
    bad_input_gets_json_errors,
    limit_is_clamped,
    etag_and_not_modified,
    large_page_is_valid_json,
    number_matched_counts,
    slow_count_is_left_out,
    client_parameters_are_accepted,
    head_and_cors,
    links_follow_proxy_headers,
    ids_round_trip_in_urls,
    duplicates_are_rejected_whole,
);

/// Checks that a SQLite store made before the space-time R*Tree finds the same
/// items after the migration that builds it.
#[tokio::test]
async fn sqlite_space_time_migration_keeps_items() {
    use sqlx::{Connection, Executor};
    let store = sqlite().await;
    fixture(&store).await;
    // Put the store back in the shape of migration 3: a tree of footprints only.
    let mut connection = sqlx::SqliteConnection::connect(&store.url).await.unwrap();
    connection
        .execute(
            "DROP TABLE items_space_time;
             DELETE FROM _sqlx_migrations WHERE version = 4;",
        )
        .await
        .unwrap();
    connection.close().await.unwrap();

    store.store.migrate().await.unwrap();
    let app = app_with(&store, SearchLimits::default()).await;
    let june = get(
        &app,
        "/search?bbox=10.0,50.0,10.31,50.01&datetime=2021-06-01T00:00:00Z/2021-06-30T23:59:59Z",
    )
    .await;
    assert_eq!(
        ids(&june),
        vec!["other/same", "survey/a1", "survey/a2", "survey/same"]
    );
    let range = get(
        &app,
        "/search?bbox=30.0,30.0,31.0,31.0&datetime=2019-06-01T00:00:00Z/2019-06-02T00:00:00Z",
    )
    .await;
    assert_eq!(ids(&range), vec!["other/range"]);
    let across = get(
        &app,
        "/search?bbox=179.0,-17.5,-179.0,-16.5&datetime=2020-05-01T00:00:00Z/2020-05-31T23:59:59Z",
    )
    .await;
    assert_eq!(ids(&across), vec!["other/east-of-minus-180", "other/west-of-180"]);
}
