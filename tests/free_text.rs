//! Free-text search on items and collection search, on both stores.

#[macro_use]
mod common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};
use stacd::search::SearchLimits;

fn collection(id: &str, title: &str, keywords: &[&str], bbox: [f64; 4], interval: [&str; 2]) -> Value {
    json!({
        "type": "Collection", "stac_version": "1.0.0", "id": id, "title": title,
        "description": format!("{title} flown by drone"), "keywords": keywords, "license": "CC-BY-4.0",
        "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [interval]}},
        "links": []
    })
}

fn item(collection: &str, id: &str, title: &str, keywords: &[&str]) -> Value {
    json!({
        "type": "Feature", "stac_version": "1.0.0", "id": id, "collection": collection,
        "geometry": {"type": "Point", "coordinates": [1.0, 2.0]},
        "properties": {"datetime": "2024-05-14T10:00:00Z", "title": title, "keywords": keywords},
        "links": [], "assets": {}
    })
}

async fn fixture(store: &TestStore) -> axum::Router {
    let s = store.store.as_ref();
    add_collection(
        s,
        collection(
            "tavira",
            "Tavira old town",
            &["orthomosaic", "heritage"],
            [-7.7, 37.1, -7.6, 37.2],
            ["2024-05-01T00:00:00Z", "2024-05-31T00:00:00Z"],
        ),
    )
    .await;
    add_collection(
        s,
        collection(
            "fiji",
            "Suva harbour",
            &["lidar", "coast"],
            [178.0, -18.5, -179.5, -17.5],
            ["2023-01-01T00:00:00Z", "2023-12-31T00:00:00Z"],
        ),
    )
    .await;
    add_collection(
        s,
        collection(
            "alps",
            "Glacier survey",
            &["lidar", "snow"],
            [7.0, 45.8, 8.0, 46.5],
            ["2022-06-01T00:00:00Z", "2022-09-30T00:00:00Z"],
        ),
    )
    .await;
    add_items(
        s,
        vec![
            item("tavira", "t1", "Old town nadir capture", &["nadir", "rgb"]),
            item("tavira", "t2", "Old town oblique capture", &["oblique", "rgb"]),
            item("tavira", "t3", "Salt pans mosaic", &["orthomosaic"]),
            item("fiji", "f1", "Harbour lidar strip", &["lidar"]),
        ],
    )
    .await;
    app(store.store.clone(), SearchLimits::default()).await
}

fn item_ids(answer: &Answer) -> BTreeSet<String> {
    answer.json()["features"]
        .as_array()
        .unwrap_or_else(|| panic!("no features: {}", answer.json()))
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

fn collection_ids(answer: &Answer) -> Vec<String> {
    answer.json()["collections"]
        .as_array()
        .unwrap_or_else(|| panic!("no collections: {}", answer.json()))
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

async fn items_by_free_text(store: TestStore) {
    let app = fixture(&store).await;
    let cases: &[(&str, &[&str])] = &[
        ("q=lidar", &["f1"]),
        ("q=OLD%20TOWN", &["t1", "t2"]),
        ("q=town%20old", &[]),
        ("q=oblique,mosaic", &["t2", "t3"]),
        ("q=%22old%20town%22%20-oblique", &["t1"]),
        ("q=%2Brgb%20%2Bnadir", &["t1"]),
        ("q=(salt%20OR%20harbour)%20AND%20mosaic", &["t3"]),
        ("q=t3", &["t3"]),
        ("q=capt", &[]),
    ];
    for (query, expected) in cases {
        let answer = get(&app, &format!("/search?{query}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.json());
        assert_eq!(item_ids(&answer), set(expected), "{query}");
    }
    let answer = get(&app, "/collections/tavira/items?q=rgb").await;
    assert_eq!(item_ids(&answer), set(&["t1", "t2"]));
    let answer = post_json(&app, "/search", &json!({"q": ["harbour", "salt pans"]})).await;
    assert_eq!(item_ids(&answer), set(&["f1", "t3"]));

    // Paging keeps the query.
    let first = get(&app, "/search?q=capture,mosaic&limit=1").await;
    let mut all = page_through(&app, first).await;
    all.sort();
    assert_eq!(all, ["tavira/t1", "tavira/t2", "tavira/t3"]);

    for bad in ["q=(open", "q=-only", "q=%20"] {
        assert_eq!(
            get(&app, &format!("/search?{bad}")).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
}

async fn collection_search(store: TestStore) {
    let app = fixture(&store).await;
    let all = get(&app, "/collections").await;
    assert_eq!(collection_ids(&all), ["alps", "fiji", "tavira"]);
    assert_eq!(all.json()["numberMatched"], 3);

    let cases: &[(&str, &[&str])] = &[
        ("q=lidar", &["alps", "fiji"]),
        ("q=old%20town", &["tavira"]),
        ("q=glacier,harbour", &["alps", "fiji"]),
        // The Fiji extent crosses the antimeridian.
        ("bbox=-179.9,-18,-179.8,-17.9", &["fiji"]),
        ("bbox=-8,37,-7,38", &["tavira"]),
        (
            "datetime=2022-07-01T00:00:00Z/2023-02-01T00:00:00Z",
            &["alps", "fiji"],
        ),
        ("filter=title%20LIKE%20%27%25survey%25%27", &["alps"]),
        ("sortby=-title", &["tavira", "fiji", "alps"]),
    ];
    for (query, expected) in cases {
        let answer = get(&app, &format!("/collections?{query}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.json());
        assert_eq!(collection_ids(&answer), *expected, "{query}");
    }

    // Paging with limit and next links visits each collection once.
    let mut answer = get(&app, "/collections?limit=2&sortby=title").await;
    let mut seen = collection_ids(&answer);
    while let Some(next) = answer.json()["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "next")
        .map(|l| l["href"].as_str().unwrap().replace("http://stac.test", ""))
    {
        answer = get(&app, &next).await;
        seen.extend(collection_ids(&answer));
    }
    assert_eq!(seen, ["alps", "fiji", "tavira"]);

    let projected = get(&app, "/collections?fields=title&q=lidar").await.json();
    let first = projected["collections"][0].as_object().unwrap();
    assert!(first.contains_key("title"));
    assert!(!first.contains_key("extent"));
    assert!(first.contains_key("links"));

    for bad in [
        "bogus=1",
        "limit=0",
        "bbox=1,2",
        "token=%%%",
        "filter=title%20%3D",
    ] {
        let answer = get(&app, &format!("/collections?{bad}")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(answer.json()["code"].is_string());
    }
}

on_both_stores!("stacd_free_text_";
    items_by_free_text,
    collection_search
);
