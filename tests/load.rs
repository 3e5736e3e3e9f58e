//! The loader: every accepted input shape, batch rejection with the place of
//! the bad record, and duplicate handling, on both stores.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{Value, json};
use stacd::load::{LoadOptions, LoadSummary, load_paths};
use stacd::store::{Backend, InsertMode, ItemQuery};

fn collection(id: &str) -> Value {
    json!({"type": "Collection", "stac_version": "1.0.0", "id": id, "description": "d",
        "license": "CC-BY-4.0", "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]},
        "temporal": {"interval": [[null, null]]}}, "links": []})
}

fn item(collection: Option<&str>, id: &str) -> Value {
    let mut value = json!({"type": "Feature", "stac_version": "1.0.0", "id": id,
        "geometry": {"type": "Point", "coordinates": [0.5, 0.5]},
        "properties": {"datetime": "2022-02-02T00:00:00Z"}, "links": [], "assets": {}});
    if let Some(collection) = collection {
        value["collection"] = json!(collection);
    }
    value
}

fn write(path: &Path, value: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

fn options(mode: InsertMode, batch_size: usize) -> LoadOptions {
    LoadOptions {
        mode,
        batch_size,
        progress: false,
        checks: Default::default(),
    }
}

async fn count(store: &dyn Backend, collection: &str) -> u64 {
    let query = ItemQuery {
        collections: vec![collection.into()],
        limit: 1,
        count_limit: 1_000_000,
        ..ItemQuery::default()
    };
    store.search(&query).await.unwrap().number_matched.unwrap()
}

async fn load(store: &dyn Backend, paths: &[PathBuf], options: LoadOptions) -> LoadSummary {
    load_paths(store, paths, options).await.unwrap()
}

async fn every_input_shape(store: TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // A folder with collection.json and item files in a subfolder, items without `collection`.
    write(&root.join("folder/collection.json"), &collection("folder"));
    write(&root.join("folder/items/a.json"), &item(None, "a"));
    write(&root.join("folder/items/b.json"), &item(None, "b"));
    // A collection file, then an ItemCollection and NDJSON for it.
    write(&root.join("flat.json"), &collection("flat"));
    write(
        &root.join("fc.json"),
        &json!({"type": "FeatureCollection",
        "features": [item(Some("flat"), "fc1"), item(Some("flat"), "fc2")]}),
    );
    let lines = [
        item(Some("flat"), "nd1"),
        item(Some("flat"), "nd2"),
        item(Some("flat"), "nd3"),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    std::fs::write(root.join("items.ndjson"), format!("{lines}\n\n")).unwrap();
    // A static catalog: catalog -> collection -> item links, followed on disk.
    write(
        &root.join("static/catalog.json"),
        &json!({"type": "Catalog", "id": "cat", "stac_version": "1.0.0",
        "description": "d", "links": [{"rel": "child", "href": "./col/collection.json"}]}),
    );
    let mut linked = collection("linked");
    linked["links"] =
        json!([{"rel": "item", "href": "./x/x.json"}, {"rel": "root", "href": "../catalog.json"}]);
    write(&root.join("static/col/collection.json"), &linked);
    write(&root.join("static/col/x/x.json"), &item(None, "x"));
    // Not linked from the collection, so the loader must not read it.
    write(&root.join("static/col/stray.json"), &item(None, "stray"));

    let paths: Vec<PathBuf> = ["folder", "flat.json", "fc.json", "items.ndjson", "static"]
        .iter()
        .map(|p| root.join(p))
        .collect();
    let summary = load(store.store.as_ref(), &paths, options(InsertMode::Insert, 2)).await;
    assert_eq!(summary.errors, Vec::<String>::new());
    assert_eq!(summary.collections, 3);
    assert_eq!(summary.items, 8);
    assert_eq!(count(store.store.as_ref(), "folder").await, 2);
    assert_eq!(count(store.store.as_ref(), "flat").await, 5);
    assert_eq!(count(store.store.as_ref(), "linked").await, 1);
}

async fn bad_record_rejects_its_batch(store: TestStore) {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("c.json"), &collection("c"));
    let mut bad = item(Some("c"), "broken");
    bad["properties"]["datetime"] = json!("not a date");
    let records = [
        item(Some("c"), "1"),
        item(Some("c"), "2"),
        item(Some("c"), "3"),
        bad,
        item(Some("c"), "5"),
        item(Some("c"), "6"),
    ];
    let text = records
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    let ndjson = dir.path().join("items.ndjson");
    std::fs::write(&ndjson, text).unwrap();

    let paths = vec![dir.path().join("c.json"), ndjson];
    let summary = load(store.store.as_ref(), &paths, options(InsertMode::Insert, 2)).await;
    // Batches: [1, 2] written, [3, broken] rejected, [5, 6] written.
    assert_eq!(summary.items, 4);
    assert_eq!(summary.rejected, 2);
    let report = summary.errors.join("\n");
    assert!(report.contains("items.ndjson:4"), "{report}");
    assert!(report.contains("'broken'"), "{report}");
    assert!(report.contains("datetime"), "{report}");
    assert!(
        store.store.item("c", "3").await.unwrap().is_none(),
        "item 3 shares the bad batch"
    );
    assert!(store.store.item("c", "5").await.unwrap().is_some());
}

async fn duplicates_named_unless_upsert(store: TestStore) {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("c.json"), &collection("c"));
    write(&dir.path().join("one.json"), &item(Some("c"), "one"));
    let paths = vec![dir.path().join("c.json"), dir.path().join("one.json")];
    let first = load(store.store.as_ref(), &paths, options(InsertMode::Insert, 100)).await;
    assert_eq!(first.items, 1);
    let again = load(store.store.as_ref(), &paths, options(InsertMode::Insert, 100)).await;
    assert_eq!(again.items, 0);
    assert_eq!(again.rejected, 1);
    assert!(again.errors.join("\n").contains("c/one"), "{:?}", again.errors);
    let upsert = load(store.store.as_ref(), &paths, options(InsertMode::Upsert, 100)).await;
    assert_eq!(upsert.items, 1);
    assert_eq!(upsert.rejected, 0);
}

/// Batches are written two at a time, yet a key repeated across batches behaves
/// as in a serial load. The last record wins an upsert. The first record wins
/// an insert, and every later batch that repeats the key is rejected.
async fn repeated_keys_across_batches_keep_input_order(store: TestStore) {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("c.json"), &collection("c"));
    let mut lines = Vec::new();
    for round in 0..10 {
        let mut repeated = item(Some("c"), "x");
        repeated["properties"]["round"] = json!(round);
        lines.push(repeated.to_string());
        lines.push(item(Some("c"), &format!("y{round}")).to_string());
    }
    let ndjson = dir.path().join("items.ndjson");
    std::fs::write(&ndjson, lines.join("\n")).unwrap();
    let paths = vec![dir.path().join("c.json"), ndjson];

    let round_of_x = |content: String| -> i64 {
        let value: Value = serde_json::from_str(&content).unwrap();
        value["properties"]["round"].as_i64().unwrap()
    };

    // Insert, batches of two (x, y): the first batch is written, and every
    // later batch contains x again and is rejected as a whole.
    let insert = load(store.store.as_ref(), &paths, options(InsertMode::Insert, 2)).await;
    assert_eq!(insert.items, 2, "{:?}", insert.errors);
    assert_eq!(insert.rejected, 18);
    assert_eq!(insert.errors.len(), 9, "{:?}", insert.errors);
    assert!(insert.errors[0].contains("items.ndjson:3"), "{:?}", insert.errors);
    let stored = store.store.item("c", "x").await.unwrap().unwrap();
    assert_eq!(round_of_x(stored.content), 0);

    // Upsert: every batch is written, in input order, so the last x wins.
    let upsert = load(store.store.as_ref(), &paths, options(InsertMode::Upsert, 2)).await;
    assert_eq!(upsert.items, 20, "{:?}", upsert.errors);
    assert_eq!(upsert.rejected, 0);
    let stored = store.store.item("c", "x").await.unwrap().unwrap();
    assert_eq!(round_of_x(stored.content), 9);
    assert_eq!(count(store.store.as_ref(), "c").await, 11);
}

async fn items_before_their_collection_fail_clearly(store: TestStore) {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("orphan.json"), &item(Some("absent"), "o"));
    let summary = load(
        store.store.as_ref(),
        &[dir.path().join("orphan.json")],
        options(InsertMode::Insert, 10),
    )
    .await;
    assert_eq!(summary.rejected, 1);
    assert!(
        summary
            .errors
            .join("\n")
            .contains("collection 'absent' does not exist"),
        "{:?}",
        summary.errors
    );
}

async fn example_catalog_loads(store: TestStore) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let paths = vec![
        root.join("examples/drone-survey"),
        root.join("tests/fixtures/antimeridian"),
    ];
    let summary = load(store.store.as_ref(), &paths, options(InsertMode::Insert, 1000)).await;
    assert_eq!(summary.errors, Vec::<String>::new());
    assert_eq!(summary.items, 15);
    assert_eq!(count(store.store.as_ref(), "drone-survey").await, 12);
}

async fn broken_files_do_not_stop_a_load(store: TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mission");
    write(&root.join("collection.json"), &collection("mission"));
    write(&root.join("items/a.json"), &item(None, "a"));
    write(&root.join("items/b.json"), &item(None, "b"));
    std::fs::write(root.join("items/broken.json"), "{\"type\": \"Feature\", ").unwrap();
    let summary = load(store.store.as_ref(), &[root], options(InsertMode::Insert, 1)).await;
    assert_eq!(summary.items, 2, "{:?}", summary.errors);
    assert_eq!(summary.rejected, 1);
    assert!(
        summary.errors.join("\n").contains("broken.json"),
        "{:?}",
        summary.errors
    );

    // An invalid NDJSON line fills its own batch and leaves the next one alone.
    write(&dir.path().join("c.json"), &collection("c"));
    let lines = [
        item(Some("c"), "1").to_string(),
        "not json".into(),
        item(Some("c"), "3").to_string(),
    ];
    let ndjson = dir.path().join("mixed.ndjson");
    std::fs::write(&ndjson, lines.join("\n")).unwrap();
    let paths = vec![dir.path().join("c.json"), ndjson];
    let summary = load(store.store.as_ref(), &paths, options(InsertMode::Insert, 1)).await;
    assert_eq!(summary.items, 2, "{:?}", summary.errors);
    assert_eq!(summary.rejected, 1);
    assert!(store.store.item("c", "3").await.unwrap().is_some());
    let report = summary.errors.join("\n");
    assert!(report.contains("mixed.ndjson:2"), "{report}");
}

on_both_stores!("stacd_load_";
    every_input_shape,
    bad_record_rejects_its_batch,
    duplicates_named_unless_upsert,
    repeated_keys_across_batches_keep_input_order,
    items_before_their_collection_fail_clearly,
    example_catalog_loads,
    broken_files_do_not_stop_a_load,
);
