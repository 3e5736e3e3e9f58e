//! The Sort extension with keyset paging, on both stores: every sort order
//! pages through every item once, forward and back, including items that
//! lack the sort field.

#[macro_use]
mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};
use stacd::search::SearchLimits;

fn collection(id: &str) -> Value {
    json!({
        "type": "Collection", "stac_version": "1.0.0", "id": id, "description": "sort tests",
        "license": "CC-BY-4.0",
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                   "temporal": {"interval": [["2020-01-01T00:00:00Z", null]]}},
        "links": []
    })
}

/// Items with repeated and missing values, so ties and missing values are exercised.
fn items() -> Vec<Value> {
    let gsd = [
        Some(0.3),
        Some(0.1),
        None,
        Some(0.3),
        Some(0.2),
        None,
        Some(0.1),
        Some(0.5),
        Some(0.3),
    ];
    let platform = ["b", "a", "c", "a", "b", "c", "b", "a", "c"];
    (0..9)
        .map(|n| {
            let mut properties = json!({
                "datetime": format!("2021-01-{:02}T00:00:00Z", 1 + n % 4),
                "platform": platform[n],
            });
            if let Some(gsd) = gsd[n] {
                properties["gsd"] = json!(gsd);
            }
            json!({
                "type": "Feature", "stac_version": "1.0.0", "id": format!("i{n}"),
                "collection": if n % 2 == 0 { "even" } else { "odd" },
                "geometry": {"type": "Point", "coordinates": [n as f64, 0.0]},
                "properties": properties, "links": [], "assets": {}
            })
        })
        .collect()
}

async fn fixture(store: &TestStore) -> axum::Router {
    add_collection(store.store.as_ref(), collection("even")).await;
    add_collection(store.store.as_ref(), collection("odd")).await;
    add_items(store.store.as_ref(), items()).await;
    app(store.store.clone(), SearchLimits::default()).await
}

/// The expected order of a sort, computed here from the fixture: the
/// fields in order, missing values last, then collection and id.
fn expected_order(fields: &[(&str, bool)]) -> Vec<String> {
    let mut rows: Vec<Value> = items();
    rows.sort_by(|a, b| {
        for (field, descending) in fields {
            let value = |item: &Value| item["properties"].get(*field).cloned().unwrap_or(Value::Null);
            let (x, y) = (value(a), value(b));
            let ordering = match (x.is_null(), y.is_null()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                (false, false) => {
                    let ordering = match (x.as_f64(), y.as_f64()) {
                        (Some(p), Some(q)) => p.partial_cmp(&q).unwrap(),
                        _ => x.as_str().unwrap().cmp(y.as_str().unwrap()),
                    };
                    if *descending { ordering.reverse() } else { ordering }
                }
            };
            if ordering != std::cmp::Ordering::Equal {
                return ordering;
            }
        }
        let key = |item: &Value| {
            (
                item["collection"].as_str().unwrap().to_string(),
                item["id"].as_str().unwrap().to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    rows.iter()
        .map(|item| {
            format!(
                "{}/{}",
                item["collection"].as_str().unwrap(),
                item["id"].as_str().unwrap()
            )
        })
        .collect()
}

fn link(answer: &Answer, rel: &str) -> Option<String> {
    answer.json()["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == rel)
        .map(|l| l["href"].as_str().unwrap().replace("http://stac.test", ""))
}

fn page_ids(answer: &Answer) -> Vec<String> {
    answer.json()["features"]
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
        .collect()
}

async fn sorted_paging(store: TestStore) {
    let app = fixture(&store).await;
    let cases: &[(&str, &[(&str, bool)])] = &[
        ("gsd", &[("gsd", false)]),
        ("-gsd", &[("gsd", true)]),
        ("platform,-gsd", &[("platform", false), ("gsd", true)]),
        (
            "-properties.platform,+datetime",
            &[("platform", true), ("datetime", false)],
        ),
        ("datetime", &[("datetime", false)]),
    ];
    for (sortby, fields) in cases {
        let expected = expected_order(fields);
        // Forward, two items per page.
        let mut answer = get(&app, &format!("/search?limit=2&sortby={sortby}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{sortby}: {}", answer.json());
        let mut seen = page_ids(&answer);
        let mut pages = vec![answer.json()];
        while let Some(next) = link(&answer, "next") {
            answer = get(&app, &next).await;
            assert_eq!(answer.status, StatusCode::OK, "{sortby}: {next}");
            seen.extend(page_ids(&answer));
            pages.push(answer.json());
        }
        assert_eq!(seen, expected, "forward pages of sortby={sortby}");

        // Back from the last page, every page matches the one seen going forward.
        let mut back = Vec::new();
        while let Some(prev) = link(&answer, "prev") {
            answer = get(&app, &prev).await;
            back.push(page_ids(&answer));
        }
        let forward: Vec<Vec<String>> = pages
            .iter()
            .rev()
            .skip(1)
            .map(|p| {
                p["features"]
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
                    .collect()
            })
            .collect();
        assert_eq!(back, forward, "backward pages of sortby={sortby}");
    }
}

async fn post_sortby_and_errors(store: TestStore) {
    let app = fixture(&store).await;
    let body = json!({"limit": 3, "sortby": [{"field": "properties.gsd", "direction": "desc"},
                                              {"field": "id", "direction": "asc"}]});
    let first = post_json(&app, "/search", &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.json());
    let all = page_through(&app, first).await;
    // gsd descending, ties by id: 0.5, 0.3 (i0, i3, i8), 0.2, 0.1 (i1, i6), then the two without gsd.
    let expected = [
        "odd/i7", "even/i0", "odd/i3", "even/i8", "even/i4", "odd/i1", "even/i6", "even/i2", "odd/i5",
    ];
    assert_eq!(all, expected);

    // A search that is counted (not whole collections) with a sort on a property:
    // the count has the condition's parameters only.
    let answer = get(&app, "/search?bbox=-0.5,-1,4.5,1&sortby=-gsd,id&limit=2").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json());
    assert_eq!(answer.json()["numberMatched"], 5);
    assert_eq!(page_ids(&answer), ["even/i0", "odd/i3"]);
    let answer = get(&app, "/search?q=i4&sortby=platform&limit=2").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json());
    assert_eq!(answer.json()["numberMatched"], 1);

    let answer = get(&app, "/collections/even/items?sortby=-gsd&limit=100").await;
    assert_eq!(answer.status, StatusCode::OK);
    let expected: Vec<String> = expected_order(&[("gsd", true)])
        .into_iter()
        .filter(|i| i.starts_with("even/"))
        .collect();
    assert_eq!(page_ids(&answer), expected);

    for bad in ["cloud_cover", "gsd,,id", "-"] {
        let answer = get(&app, &format!("/search?sortby={bad}")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let answer = post_json(
        &app,
        "/search",
        &json!({"sortby": [{"field": "gsd", "direction": "sideways"}]}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);

    // A token of one sort is rejected by another.
    let first = get(&app, "/search?limit=2&sortby=gsd").await;
    let next = link(&first, "next").unwrap();
    let token = next
        .split("token=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let answer = get(&app, &format!("/search?limit=2&sortby=-gsd&token={token}")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);

    let sortables = get(&app, "/sortables").await;
    assert_eq!(sortables.status, StatusCode::OK);
    assert_eq!(sortables.json()["properties"]["gsd"]["type"], "number");
    assert_eq!(sortables.json()["properties"]["platform"]["type"], "string");
    assert_eq!(
        get(&app, "/collections/odd/sortables").await.status,
        StatusCode::OK
    );
}

on_both_stores!("stacd_sort_";
    sorted_paging,
    post_sortby_and_errors
);
