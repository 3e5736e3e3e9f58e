//! Checks incoming STAC documents and splits them into what the stores index
//! and what they keep verbatim.
//!
//! The server writes its own `self`, `root`, `parent`, `collection` and
//! `items` links, so those are dropped here; every other link is kept and
//! sent back after the server's links.

use geo::Geometry;
use serde_json::{Map, Value};

use crate::datetime::parse_instant;
use crate::geometry::{envelope, parse_geojson, to_wkb};

/// Link relations the server writes itself and therefore drops on input.
const SERVER_RELS: &[&str] = &["self", "root", "parent", "collection", "items", "child", "item"];

/// An item checked and ready to store.
#[derive(Debug, Clone)]
pub struct PreparedItem {
    /// Item id.
    pub id: String,
    /// Collection id.
    pub collection: String,
    /// Sort datetime: `datetime`, or `start_datetime` when `datetime` is null.
    pub datetime: i64,
    /// Start of the time span, microseconds since the Unix epoch.
    pub start: i64,
    /// End of the time span, microseconds since the Unix epoch.
    pub end: i64,
    /// The geometry, or `None` for an item with a null geometry.
    pub geometry: Option<Geometry<f64>>,
    /// Envelope of the geometry `[west, south, east, north]`.
    pub envelope: Option<[f64; 4]>,
    /// The geometry as WKB.
    pub wkb: Option<Vec<u8>>,
    /// The item JSON object without `links`.
    pub content: String,
    /// Links kept from the input, as a JSON array.
    pub extra_links: String,
    /// Strong entity tag of `content` and `extra_links`.
    pub etag: String,
}

/// A collection checked and ready to store.
#[derive(Debug, Clone)]
pub struct PreparedCollection {
    /// Collection id.
    pub id: String,
    /// The collection JSON object without `links`.
    pub content: String,
    /// Links kept from the input, as a JSON array.
    pub extra_links: String,
    /// Strong entity tag of `content` and `extra_links`.
    pub etag: String,
}

/// Computes the entity tag of a stored document: a hash of what the server
/// sends back for it, apart from the server's own links.
pub fn etag(content: &str, extra_links: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(content.as_bytes());
    hasher.update([0]);
    hasher.update(extra_links.as_bytes());
    let digest = hasher.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks that can be relaxed by configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checks {
    /// Accept geometries that are not valid simple features, such as
    /// self-intersecting polygons. Structure and coordinate ranges are still checked.
    pub allow_invalid_geometry: bool,
}

/// Largest distance, in degrees, by which a geometry may stick out of the
/// item's `bbox` (about 1 m), to allow for rounding in the producer.
const BBOX_TOLERANCE: f64 = 1e-5;

/// Checks a STAC Item with the default checks; see [`prepare_item_with`].
pub fn prepare_item(value: Value, collection: Option<&str>) -> Result<PreparedItem, String> {
    prepare_item_with(value, collection, Checks::default())
}

/// Checks a STAC Item and prepares it for storage. `collection` fills the
/// item's `collection` member when it has none and must agree when it has one.
pub fn prepare_item_with(
    value: Value,
    collection: Option<&str>,
    checks: Checks,
) -> Result<PreparedItem, String> {
    let Value::Object(mut object) = value else {
        return Err("an item must be a JSON object".into());
    };
    match object.get("type").and_then(Value::as_str) {
        Some("Feature") => {}
        Some(other) => return Err(format!("'type' must be \"Feature\", found \"{other}\"")),
        None => return Err("'type' is missing; an item has \"type\": \"Feature\"".into()),
    }
    let id = required_id(&object, "item")?;
    if object.get("stac_version").and_then(Value::as_str).is_none() {
        return Err(format!("item '{id}': 'stac_version' is missing or not a string"));
    }
    let collection = match (object.get("collection"), collection) {
        (Some(Value::String(own)), Some(expected)) if own != expected => {
            return Err(format!(
                "item '{id}': 'collection' is '{own}' but the item is written to collection '{expected}'"
            ));
        }
        (Some(Value::String(own)), _) => own.clone(),
        (None | Some(Value::Null), Some(expected)) => {
            object.insert("collection".into(), Value::String(expected.to_string()));
            expected.to_string()
        }
        (None | Some(Value::Null), None) => {
            return Err(format!("item '{id}': 'collection' is missing"));
        }
        (Some(_), _) => return Err(format!("item '{id}': 'collection' must be a string")),
    };

    let properties = match object.get("properties") {
        Some(Value::Object(p)) => p,
        _ => return Err(format!("item '{id}': 'properties' is missing or not an object")),
    };
    let (datetime, start, end) = item_times(properties).map_err(|e| format!("item '{id}': {e}"))?;

    let geometry = match object.get("geometry") {
        None => return Err(format!("item '{id}': 'geometry' is missing (use null for none)")),
        Some(Value::Null) => None,
        Some(value) => Some(parse_geojson(value, "geometry").map_err(|e| format!("item '{id}': {e}"))?),
    };
    if let Some(geometry) = &geometry
        && !checks.allow_invalid_geometry
    {
        use geo::Validation;
        if let Err(problem) = geometry.check_validation() {
            return Err(format!(
                "item '{id}': 'geometry' is not a valid simple feature: {problem} \
                 (the server accepts it only with --allow-invalid-geometry)"
            ));
        }
    }
    let envelope = geometry.as_ref().and_then(envelope);
    if let (Some(Value::Array(bbox)), Some(env)) = (object.get("bbox"), envelope) {
        check_bbox(bbox, env).map_err(|e| format!("item '{id}': {e}"))?;
    }
    match (object.get("bbox"), envelope) {
        (None | Some(Value::Null), Some(env)) => {
            object.insert("bbox".into(), serde_json::json!(env));
        }
        (Some(Value::Array(b)), _) if !(b.len() == 4 || b.len() == 6) || b.iter().any(|v| !v.is_number()) => {
            return Err(format!("item '{id}': 'bbox' must be an array of 4 or 6 numbers"));
        }
        (Some(Value::Array(_)) | None | Some(Value::Null), _) => {}
        (Some(_), _) => return Err(format!("item '{id}': 'bbox' must be an array of 4 or 6 numbers")),
    }
    if !matches!(object.get("assets"), Some(Value::Object(_))) {
        return Err(format!("item '{id}': 'assets' is missing or not an object"));
    }
    let wkb = geometry.as_ref().map(to_wkb).transpose()?;
    let extra_links = take_links(&mut object).map_err(|e| format!("item '{id}': {e}"))?;
    let content = Value::Object(object).to_string();
    reject_nul(&content, &extra_links).map_err(|e| format!("item '{id}': {e}"))?;
    Ok(PreparedItem {
        etag: etag(&content, &extra_links),
        id,
        collection,
        datetime,
        start,
        end,
        geometry,
        envelope,
        wkb,
        content,
        extra_links,
    })
}

/// Checks a STAC Collection and prepares it for storage.
pub fn prepare_collection(value: Value) -> Result<PreparedCollection, String> {
    let Value::Object(mut object) = value else {
        return Err("a collection must be a JSON object".into());
    };
    match object.get("type").and_then(Value::as_str) {
        Some("Collection") => {}
        Some(other) => return Err(format!("'type' must be \"Collection\", found \"{other}\"")),
        None => return Err("'type' is missing; a collection has \"type\": \"Collection\"".into()),
    }
    let id = required_id(&object, "collection")?;
    for field in ["stac_version", "description", "license"] {
        if object.get(field).and_then(Value::as_str).is_none() {
            return Err(format!("collection '{id}': '{field}' is missing or not a string"));
        }
    }
    if !matches!(object.get("extent"), Some(Value::Object(_))) {
        return Err(format!("collection '{id}': 'extent' is missing or not an object"));
    }
    let extra_links = take_links(&mut object).map_err(|e| format!("collection '{id}': {e}"))?;
    let content = Value::Object(object).to_string();
    reject_nul(&content, &extra_links).map_err(|e| format!("collection '{id}': {e}"))?;
    Ok(PreparedCollection {
        id,
        etag: etag(&content, &extra_links),
        content,
        extra_links,
    })
}

/// Checks that a `bbox` of 4 or 6 numbers contains the geometry's envelope. A
/// bbox whose west edge is east of its east edge crosses the antimeridian, so
/// only its latitudes are compared.
fn check_bbox(bbox: &[Value], envelope: [f64; 4]) -> Result<(), String> {
    let numbers: Vec<f64> = bbox.iter().filter_map(Value::as_f64).collect();
    let [west, south, east, north] = match numbers.as_slice() {
        [w, s, e, n] => [*w, *s, *e, *n],
        [w, s, _, e, n, _] => [*w, *s, *e, *n],
        _ => return Err("'bbox' must be an array of 4 or 6 numbers".into()),
    };
    let [min_x, min_y, max_x, max_y] = envelope;
    let latitudes_fit = min_y >= south - BBOX_TOLERANCE && max_y <= north + BBOX_TOLERANCE;
    let longitudes_fit = west > east || (min_x >= west - BBOX_TOLERANCE && max_x <= east + BBOX_TOLERANCE);
    if latitudes_fit && longitudes_fit {
        Ok(())
    } else {
        Err(format!(
            "'bbox' {numbers:?} does not contain the geometry, whose extent is {envelope:?}; \
             fix the bbox or leave it out to have it computed"
        ))
    }
}

/// Rejects documents with a NUL character in any string or key: PostgreSQL's
/// `jsonb` cannot store one, and both stores must accept the same documents.
fn reject_nul(content: &str, extra_links: &str) -> Result<(), String> {
    fn has_nul(value: &Value) -> bool {
        match value {
            Value::String(text) => text.contains('\0'),
            Value::Array(values) => values.iter().any(has_nul),
            Value::Object(map) => map
                .iter()
                .any(|(key, value)| key.contains('\0') || has_nul(value)),
            _ => false,
        }
    }
    // serde_json always writes U+0000 escaped, so documents without that
    // escape, which is nearly all of them, are not parsed again.
    for text in [content, extra_links] {
        if text.contains("\\u0000") && serde_json::from_str::<Value>(text).is_ok_and(|v| has_nul(&v)) {
            return Err("a string contains a NUL character (U+0000), which cannot be stored".into());
        }
    }
    Ok(())
}

fn required_id(object: &Map<String, Value>, what: &str) -> Result<String, String> {
    match object.get("id") {
        Some(Value::String(id)) if id.contains('\0') => Err(format!("{what} 'id' contains a NUL character")),
        Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
        Some(Value::String(_)) => Err(format!("{what} 'id' must not be empty")),
        Some(_) => Err(format!("{what} 'id' must be a string")),
        None => Err(format!("{what} 'id' is missing")),
    }
}

/// Returns (sort datetime, start, end) of an item's properties.
fn item_times(properties: &Map<String, Value>) -> Result<(i64, i64, i64), String> {
    let read = |name: &str| -> Result<Option<i64>, String> {
        match properties.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => parse_instant(text)
                .map(Some)
                .map_err(|e| format!("'{name}': {e}")),
            Some(_) => Err(format!("'{name}' must be an RFC 3339 string")),
        }
    };
    let datetime = read("datetime")?;
    let start = read("start_datetime")?;
    let end = read("end_datetime")?;
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return Err("'start_datetime' is after 'end_datetime'".into());
    }
    if !properties.contains_key("datetime") {
        return Err(
            "'properties.datetime' is missing (use null with start_datetime and end_datetime)".into(),
        );
    }
    match (datetime, start, end) {
        (Some(dt), Some(s), Some(e)) => Ok((dt, s, e)),
        (Some(dt), _, _) => Ok((dt, dt, dt)),
        (None, Some(s), Some(e)) => Ok((s, s, e)),
        (None, _, _) => {
            Err("'datetime' is null, so both 'start_datetime' and 'end_datetime' are required".into())
        }
    }
}

/// Removes `links` from a document and returns the links to keep as a JSON array.
fn take_links(object: &mut Map<String, Value>) -> Result<String, String> {
    let links = match object.remove("links") {
        None | Some(Value::Null) => return Ok("[]".into()),
        Some(Value::Array(links)) => links,
        Some(_) => return Err("'links' must be an array".into()),
    };
    let mut kept = Vec::new();
    for link in links {
        let Value::Object(fields) = &link else {
            return Err("each link must be an object".into());
        };
        let rel = fields.get("rel").and_then(Value::as_str);
        if rel.is_none() || fields.get("href").and_then(Value::as_str).is_none() {
            return Err("each link needs string 'rel' and 'href'".into());
        }
        if rel.is_some_and(|r| SERVER_RELS.contains(&r)) {
            continue;
        }
        kept.push(link);
    }
    Ok(Value::Array(kept).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item() -> Value {
        json!({
            "type": "Feature", "stac_version": "1.0.0", "id": "a", "collection": "c",
            "geometry": {"type": "Point", "coordinates": [1.0, 2.0]},
            "properties": {"datetime": "2021-06-01T00:00:00Z"},
            "links": [{"rel": "self", "href": "x"}, {"rel": "license", "href": "https://example.com/l"}],
            "assets": {}
        })
    }

    #[test]
    fn item_drops_server_links_and_fills_bbox() {
        let prepared = prepare_item(item(), None).unwrap();
        let kept: Value = serde_json::from_str(&prepared.extra_links).unwrap();
        assert_eq!(kept, json!([{"rel": "license", "href": "https://example.com/l"}]));
        let content: Value = serde_json::from_str(&prepared.content).unwrap();
        assert_eq!(content["bbox"], json!([1.0, 2.0, 1.0, 2.0]));
        assert!(content.get("links").is_none());
        assert_eq!(prepared.start, prepared.end);
    }

    #[test]
    fn item_collection_must_agree() {
        let error = prepare_item(item(), Some("other")).unwrap_err();
        assert!(error.contains("'c'"), "{error}");
        assert!(error.contains("'other'"), "{error}");
        let mut orphan = item();
        orphan.as_object_mut().unwrap().remove("collection");
        assert_eq!(prepare_item(orphan, Some("d")).unwrap().collection, "d");
    }

    #[test]
    fn range_item_uses_start_and_end() {
        let mut value = item();
        value["properties"] = json!({"datetime": null, "start_datetime": "2021-01-01T00:00:00Z",
            "end_datetime": "2021-12-31T00:00:00Z"});
        let prepared = prepare_item(value, None).unwrap();
        assert!(prepared.start < prepared.end);
        assert_eq!(prepared.datetime, prepared.start);
    }

    #[test]
    fn item_errors_name_the_field() {
        let mut value = item();
        value["properties"] = json!({"datetime": null});
        assert!(prepare_item(value, None).unwrap_err().contains("start_datetime"));
        let mut value = item();
        value["properties"]["datetime"] = json!("June");
        assert!(prepare_item(value, None).unwrap_err().contains("'datetime'"));
        let mut value = item();
        value["type"] = json!("Collection");
        assert!(prepare_item(value, None).unwrap_err().contains("Feature"));
        assert!(prepare_item(json!([]), None).is_err());
    }

    #[test]
    fn self_intersecting_polygon_is_rejected_unless_allowed() {
        let mut value = item();
        value["geometry"] =
            json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]});
        value.as_object_mut().unwrap().remove("bbox");
        let error = prepare_item(value.clone(), None).unwrap_err();
        assert!(error.contains("not a valid simple feature"), "{error}");
        let relaxed = Checks {
            allow_invalid_geometry: true,
        };
        assert!(prepare_item_with(value, None, relaxed).is_ok());
    }

    #[test]
    fn bbox_must_contain_geometry() {
        let mut value = item();
        value["bbox"] = json!([5.0, 5.0, 6.0, 6.0]);
        assert!(
            prepare_item(value.clone(), None)
                .unwrap_err()
                .contains("does not contain")
        );
        value["bbox"] = json!([1.0, 2.0, 1.0, 2.0]);
        assert!(prepare_item(value.clone(), None).is_ok());
        value["bbox"] = json!([0.9, 1.9, 0.0, 1.1, 2.1, 10.0]);
        assert!(prepare_item(value.clone(), None).is_ok(), "a 3D bbox");
        value["bbox"] = json!([179.0, 1.0, -179.0, 3.0]);
        assert!(
            prepare_item(value, None).is_ok(),
            "an antimeridian bbox compares latitudes only"
        );
    }

    #[test]
    fn nul_characters_are_rejected() {
        let mut value = item();
        value["properties"]["note"] = json!("a\u{0}b");
        assert!(prepare_item(value, None).unwrap_err().contains("NUL"));
        let mut value = item();
        value["properties"]["path"] = json!("C:\\u0000");
        assert!(
            prepare_item(value, None).is_ok(),
            "a backslash before u0000 is not a NUL"
        );
    }

    #[test]
    fn collection_requires_core_fields() {
        let value = json!({"type": "Collection", "id": "c", "stac_version": "1.0.0",
            "description": "d", "license": "CC-BY-4.0", "extent": {}, "links": []});
        assert_eq!(prepare_collection(value.clone()).unwrap().id, "c");
        let mut missing = value;
        missing.as_object_mut().unwrap().remove("license");
        assert!(prepare_collection(missing).unwrap_err().contains("license"));
    }
}
