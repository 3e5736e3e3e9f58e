//! The Query and Fields extensions, on both stores.

#[macro_use]
mod common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};
use stacd::search::SearchLimits;

fn collection() -> Value {
    json!({
        "type": "Collection", "stac_version": "1.0.0", "id": "c", "description": "query tests",
        "license": "CC-BY-4.0",
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                   "temporal": {"interval": [["2020-01-01T00:00:00Z", null]]}},
        "links": []
    })
}

fn item(id: &str, gsd: f64, year: &str) -> Value {
    json!({
        "type": "Feature", "stac_version": "1.0.0", "id": id, "collection": "c",
        "geometry": {"type": "Point", "coordinates": [1.0, 2.0]}, "bbox": [1.0, 2.0, 1.0, 2.0],
        "properties": {"datetime": "2021-01-01T00:00:00Z", "gsd": gsd, "year": year, "note": "50%_off"},
        "links": [], "assets": {"ortho": {"href": format!("s3://b/{id}.tif")}}
    })
}

async fn fixture(store: &TestStore) -> axum::Router {
    add_collection(store.store.as_ref(), collection()).await;
    add_items(
        store.store.as_ref(),
        vec![
            item("a", 0.3, "2019"),
            item("b", 0.6, "2020"),
            item("c", 0.6, "2021"),
            item("d", 1.0, "2021"),
        ],
    )
    .await;
    app(store.store.clone(), SearchLimits::default()).await
}

fn ids(answer: &Answer) -> BTreeSet<String> {
    answer.json()["features"]
        .as_array()
        .unwrap_or_else(|| panic!("no features: {}", answer.json()))
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

async fn query_operators(store: TestStore) {
    let app = fixture(&store).await;
    let cases: &[(Value, &[&str])] = &[
        (json!({"gsd": {"eq": 0.6}}), &["b", "c"]),
        // Numbers sent as strings, as stac-api-validator does, still compare as numbers.
        (json!({"gsd": {"eq": "0.6"}}), &["b", "c"]),
        (json!({"gsd": {"neq": 0.6}}), &["a", "d"]),
        (json!({"gsd": {"lt": 1, "gt": 0.3}}), &["b", "c"]),
        (json!({"gsd": {"lte": 0.6}}), &["a", "b", "c"]),
        (json!({"gsd": {"gte": "0.6"}}), &["b", "c", "d"]),
        (json!({"year": {"startsWith": "20"}}), &["a", "b", "c", "d"]),
        (json!({"year": {"endsWith": "21"}}), &["c", "d"]),
        (json!({"year": {"contains": "02"}}), &["b", "c", "d"]),
        // The values are literal text, not LIKE patterns.
        (json!({"note": {"contains": "%_"}}), &["a", "b", "c", "d"]),
        (json!({"note": {"contains": "0_o"}}), &[]),
        // "in" on a string property: the items whose value is one of the list.
        (json!({"year": {"in": ["2019", "2021"]}}), &["a", "c", "d"]),
        (json!({"year": {"in": ["2019"]}, "gsd": {"gt": 0.5}}), &[]),
    ];
    for (query, expected) in cases {
        let answer = post_json(&app, "/search", &json!({"query": query})).await;
        assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.json());
        assert_eq!(ids(&answer), set(expected), "POST {query}");

        let encoded: String = form_urlencoded::byte_serialize(query.to_string().as_bytes()).collect();
        let answer = get(&app, &format!("/search?query={encoded}")).await;
        assert_eq!(ids(&answer), set(expected), "GET {query}");
    }

    // Query and filter combine with AND.
    let body = json!({"query": {"gsd": {"eq": 0.6}}, "filter": "year = '2021'"});
    assert_eq!(ids(&post_json(&app, "/search", &body).await), set(&["c"]));

    for bad in [
        json!({"gsd": {"like": 1}}),
        json!({"gsd": 5}),
        json!(["gsd"]),
        json!({"year": {"in": "2019"}}),
    ] {
        let answer = post_json(&app, "/search", &json!({"query": bad})).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

async fn fields_select_members(store: TestStore) {
    let app = fixture(&store).await;
    let first = |answer: Answer| answer.json()["features"][0].as_object().unwrap().clone();

    let default = first(get(&app, "/search?fields=&ids=a").await);
    assert_eq!(default["properties"], json!({"datetime": "2021-01-01T00:00:00Z"}));
    assert!(default.contains_key("geometry"));
    assert!(default.contains_key("links"));

    let only = first(get(&app, "/search?fields=properties.gsd&ids=a").await);
    let mut keys: Vec<&String> = only.keys().collect();
    keys.sort();
    assert_eq!(keys, ["collection", "id", "links", "properties", "type"]);
    assert_eq!(only["properties"], json!({"gsd": 0.3}));

    let without = first(get(&app, "/search?fields=-geometry,-links&ids=a").await);
    assert!(!without.contains_key("geometry"));
    assert!(!without.contains_key("links"));
    assert_eq!(without["properties"]["year"], "2019");

    let body = json!({"ids": ["a"], "fields": {"include": ["properties"], "exclude": ["properties.note"]}});
    let nested = first(post_json(&app, "/search", &body).await);
    assert!(nested["properties"].get("note").is_none());
    assert_eq!(nested["properties"]["gsd"], 0.3);

    // Pages keep the projection on every page.
    let first_page = get(&app, "/collections/c/items?limit=1&fields=id").await;
    assert_eq!(first_page.content_type(), "application/geo+json");
    let next = first_page.json()["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "next")
        .map(|l| l["href"].as_str().unwrap().replace("http://stac.test", ""))
        .unwrap();
    let second = first(get(&app, &next).await);
    assert!(!second.contains_key("assets"), "{second:?}");

    let answer = post_json(&app, "/search", &json!({"fields": null})).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let answer = get(&app, "/search?fields=properties..gsd").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
}

on_both_stores!("stacd_query_fields_";
    query_operators,
    fields_select_members
);
