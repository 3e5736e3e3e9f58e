//! Write endpoints: the STAC API Transaction and Collection Transaction
//! extensions, which follow OGC API Features Part 4 (create, replace, update
//! and delete). They exist only when the server has write tokens.
//!
//! Every write is checked with the same rules as `stacd load`. PUT, PATCH and
//! DELETE honour `If-Match` against the strong entity tag sent in `ETag`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::{self, GEOJSON, Urls};
use crate::error::{Error, Result};
use crate::prepare::{PreparedCollection, PreparedItem, prepare_collection, prepare_item_with};
use crate::routes::{AppState, JsonBody, PathParams, base_url};
use crate::store::{InsertMode, SortKey, StoredCollection, StoredItem};

/// Conformance classes of the write endpoints.
pub const CONFORMANCE: &[&str] = &[
    "https://api.stacspec.org/v1.0.0/ogcapi-features/extensions/transaction",
    "https://api.stacspec.org/v1.0.0/collections/extensions/transaction",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/features",
];

/// Attempts of a PATCH without `If-Match` when a concurrent write changes the
/// document between its read and its write.
const PATCH_ATTEMPTS: usize = 5;

/// Adds the write routes.
pub fn routes(router: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    router
        .route("/collections", post(create_collection))
        .route(
            "/collections/{collection_id}",
            put(replace_collection)
                .patch(patch_collection)
                .delete(delete_collection),
        )
        .route("/collections/{collection_id}/items", post(create_items))
        .route(
            "/collections/{collection_id}/items/{item_id}",
            put(replace_item).patch(patch_item).delete(delete_item),
        )
}

/// Reads `If-Match`. `*` matches any current version, so it is no condition
/// beyond existence; a weak tag never matches, because If-Match compares strongly.
fn if_match(headers: &HeaderMap) -> Result<Option<String>> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| Error::InvalidParameter("the If-Match header is not valid text".into()))?
        .trim();
    if text == "*" {
        return Ok(None);
    }
    if text.starts_with("W/") {
        return Err(Error::PreconditionFailed(
            "If-Match needs a strong entity tag, as sent in ETag, not a weak one".into(),
        ));
    }
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(tag) if !tag.contains('"') => Ok(Some(tag.to_string())),
        _ => Err(Error::InvalidParameter(format!(
            "invalid If-Match header '{text}': expected a quoted entity tag such as \"0123abcd\""
        ))),
    }
}

/// Tells whether the client asked for the stored document back.
fn wants_representation(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("return=representation"))
}

fn etag_value(etag: &str) -> HeaderValue {
    // Entity tags are hex digests, so they are always valid header text.
    HeaderValue::from_str(&format!("\"{etag}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

fn object(value: Value, what: &str) -> Result<Map<String, Value>> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(Error::InvalidBody(format!(
            "the request body must be a JSON object ({what})"
        ))),
    }
}

/// Checks that a body's `field` agrees with the URL, and fills it in when missing.
fn match_url(body: &mut Map<String, Value>, field: &str, expected: &str) -> Result<()> {
    match body.get(field) {
        None | Some(Value::Null) => {
            body.insert(field.into(), Value::String(expected.to_string()));
            Ok(())
        }
        Some(Value::String(given)) if given == expected => Ok(()),
        Some(given) => Err(Error::InvalidParameter(format!(
            "the body's '{field}' is {given} but the URL names '{expected}'; they must agree"
        ))),
    }
}

fn stored_item(item: &PreparedItem) -> StoredItem {
    StoredItem {
        key: SortKey {
            datetime: item.datetime,
            collection: item.collection.clone(),
            id: item.id.clone(),
            sort: Vec::new(),
        },
        content: item.content.clone(),
        extra_links: item.extra_links.clone(),
        etag: item.etag.clone(),
    }
}

fn stored_collection(collection: &PreparedCollection) -> StoredCollection {
    StoredCollection {
        id: collection.id.clone(),
        content: collection.content.clone(),
        extra_links: collection.extra_links.clone(),
        etag: collection.etag.clone(),
    }
}

fn item_response(status: StatusCode, urls: &Urls, item: &StoredItem, location: bool) -> Response {
    let mut body = String::with_capacity(item.content.len() + 1024);
    api::write_item(urls, item, &mut body);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(GEOJSON))],
        body,
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag_value(&item.etag));
    if location && let Ok(href) = HeaderValue::from_str(&urls.item(&item.key.collection, &item.key.id)) {
        response.headers_mut().insert(header::LOCATION, href);
    }
    response
}

fn collection_response(
    status: StatusCode,
    urls: &Urls,
    collection: &StoredCollection,
    location: bool,
) -> Response {
    let mut body = String::with_capacity(collection.content.len() + 1024);
    api::write_collection(urls, collection, &mut body);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag_value(&collection.etag));
    if location && let Ok(href) = HeaderValue::from_str(&urls.collection(&collection.id)) {
        response.headers_mut().insert(header::LOCATION, href);
    }
    response
}

/// Builds the response to a successful PUT or PATCH: 204, or 200 with the document
/// when the client sent `Prefer: return=representation`.
fn replaced(headers: &HeaderMap, etag: &str, full: impl FnOnce() -> Response) -> Response {
    if wants_representation(headers) {
        return full();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::ETAG, etag_value(etag));
    response
}

/// Rebuilds the stored document as a client sent it: content plus its kept links.
fn full_document(content: &str, extra_links: &str) -> Result<Value> {
    let mut document: Value = serde_json::from_str(content)
        .map_err(|e| Error::Internal(format!("a stored document is not JSON: {e}")))?;
    let links: Value = serde_json::from_str(extra_links)
        .map_err(|e| Error::Internal(format!("stored links are not JSON: {e}")))?;
    document["links"] = links;
    Ok(document)
}

/// Applies a PATCH body: JSON Patch (RFC 6902) for `application/json-patch+json`,
/// else JSON Merge Patch (RFC 7396) for `application/merge-patch+json` and `application/json`.
fn apply_patch(document: &mut Value, headers: &HeaderMap, body: &Value) -> Result<()> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media_type == "application/json-patch+json" {
        let patch: json_patch::Patch = serde_json::from_value(body.clone())
            .map_err(|e| Error::InvalidBody(format!("the body is not a JSON Patch (RFC 6902): {e}")))?;
        json_patch::patch(document, &patch)
            .map_err(|e| Error::InvalidBody(format!("the JSON Patch cannot be applied: {e}")))?;
    } else {
        if !body.is_object() {
            return Err(Error::InvalidBody(
                "a merge patch (RFC 7396) must be a JSON object; send application/json-patch+json for RFC 6902"
                    .into(),
            ));
        }
        json_patch::merge(document, body);
    }
    Ok(())
}

/// Adds to a duplicate-id conflict how to replace an item over HTTP.
fn replace_hint(error: Error) -> Error {
    match error {
        Error::Conflict(message) => Error::Conflict(format!(
            "{message}; replace an item with PUT /collections/{{collectionId}}/items/{{itemId}}"
        )),
        other => other,
    }
}

/// `POST /collections`: creates a collection (201, or 409 when the id exists).
async fn create_collection(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response> {
    let value = body.json(&headers)?;
    let prepared = prepare_collection(value).map_err(Error::InvalidDocument)?;
    state.store.create_collection(&prepared).await?;
    tracing::info!(stac.collection = %prepared.id, "collection created");
    let urls = Urls::new(&base_url(&state, &headers));
    Ok(collection_response(
        StatusCode::CREATED,
        &urls,
        &stored_collection(&prepared),
        true,
    ))
}

/// `PUT /collections/{collectionId}`: replaces a collection.
async fn replace_collection(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    PathParams(collection_id): PathParams<String>,
    body: JsonBody,
) -> Result<Response> {
    let condition = if_match(&headers)?;
    let mut value = object(body.json(&headers)?, "a STAC Collection")?;
    match_url(&mut value, "id", &collection_id)?;
    let prepared = prepare_collection(Value::Object(value)).map_err(Error::InvalidDocument)?;
    state
        .store
        .replace_collection(&prepared, condition.as_deref())
        .await?;
    let urls = Urls::new(&base_url(&state, &headers));
    let stored = stored_collection(&prepared);
    Ok(replaced(&headers, &prepared.etag, || {
        collection_response(StatusCode::OK, &urls, &stored, false)
    }))
}

/// `PATCH /collections/{collectionId}`: updates a collection with a merge patch or a JSON Patch.
async fn patch_collection(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    PathParams(collection_id): PathParams<String>,
    body: JsonBody,
) -> Result<Response> {
    let condition = if_match(&headers)?;
    let patch = body.json_any(&headers, true)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = state
            .store
            .latest_collection(&collection_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("collection '{collection_id}' not found")))?;
        let mut document = full_document(&current.content, &current.extra_links)?;
        apply_patch(&mut document, &headers, &patch)?;
        let mut value = object(document, "the patched collection")?;
        match_url(&mut value, "id", &collection_id)?;
        let prepared = prepare_collection(Value::Object(value)).map_err(Error::InvalidDocument)?;
        let expected = condition.clone().unwrap_or(current.etag);
        match state.store.replace_collection(&prepared, Some(&expected)).await {
            Err(Error::PreconditionFailed(_)) if condition.is_none() && attempt < PATCH_ATTEMPTS => continue,
            Err(e) => return Err(e),
            Ok(()) => {
                let urls = Urls::new(&base_url(&state, &headers));
                let stored = stored_collection(&prepared);
                return Ok(replaced(&headers, &prepared.etag, || {
                    collection_response(StatusCode::OK, &urls, &stored, false)
                }));
            }
        }
    }
}

/// Query parameters of `DELETE /collections/{collectionId}`.
#[derive(Debug, Deserialize)]
struct DeleteCollectionParams {
    /// Also delete the collection's items; without it, a collection with items is a 409.
    #[serde(default)]
    cascade: bool,
}

/// `DELETE /collections/{collectionId}`: 409 while it has items, unless `?cascade=true`.
async fn delete_collection(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    PathParams(collection_id): PathParams<String>,
    params: std::result::Result<Query<DeleteCollectionParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let Query(params) = params.map_err(|e| {
        Error::InvalidParameter(format!(
            "invalid query for a collection delete: {e}; the only parameter is cascade=true|false"
        ))
    })?;
    let condition = if_match(&headers)?;
    state
        .store
        .delete_collection(&collection_id, condition.as_deref(), params.cascade)
        .await?;
    tracing::info!(stac.collection = %collection_id, cascade = params.cascade, "collection deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /collections/{collectionId}/items`: creates one item, or all items
/// of an ItemCollection in one transaction.
async fn create_items(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    PathParams(collection_id): PathParams<String>,
    body: JsonBody,
) -> Result<Response> {
    let value = object(body.json(&headers)?, "a STAC Item or an ItemCollection")?;
    if state.store.latest_collection(&collection_id).await?.is_none() {
        return Err(Error::NotFound(format!(
            "collection '{collection_id}' not found; create it before adding items"
        )));
    }
    let urls = Urls::new(&base_url(&state, &headers));
    if value.get("type").and_then(Value::as_str) == Some("FeatureCollection") {
        let features = match value.get("features") {
            Some(Value::Array(features)) => features,
            _ => {
                return Err(Error::InvalidDocument(
                    "'features' is missing or not an array".into(),
                ));
            }
        };
        if features.len() > state.max_bulk_items {
            return Err(Error::PayloadTooLarge(format!(
                "{} items in one request; at most {} are accepted, so split the ItemCollection",
                features.len(),
                state.max_bulk_items
            )));
        }
        let mut prepared = Vec::with_capacity(features.len());
        for (index, feature) in features.iter().enumerate() {
            let item = prepare_item_with(feature.clone(), Some(&collection_id), state.checks)
                .map_err(|e| Error::InvalidDocument(format!("feature {}: {e}", index + 1)))?;
            prepared.push(item);
        }
        let mut seen = std::collections::HashSet::new();
        let repeated: Vec<&str> = prepared
            .iter()
            .filter(|i| !seen.insert(i.id.as_str()))
            .map(|i| i.id.as_str())
            .collect();
        if !repeated.is_empty() {
            return Err(Error::InvalidDocument(format!(
                "ids repeated in the ItemCollection: {}",
                repeated.join(", ")
            )));
        }
        let created = state
            .store
            .insert_items(&prepared, InsertMode::Insert)
            .await
            .map_err(replace_hint)?;
        tracing::info!(stac.collection = %collection_id, items = created, "items created");
        let listed: Vec<Value> = prepared
            .iter()
            .map(|i| json!({"id": i.id, "href": urls.item(&i.collection, &i.id)}))
            .collect();
        let body = json!({"numberCreated": created, "items": listed});
        return Ok((StatusCode::CREATED, axum::Json(body)).into_response());
    }
    let prepared = prepare_item_with(Value::Object(value), Some(&collection_id), state.checks)
        .map_err(Error::InvalidDocument)?;
    state
        .store
        .insert_items(std::slice::from_ref(&prepared), InsertMode::Insert)
        .await
        .map_err(replace_hint)?;
    tracing::info!(stac.collection = %collection_id, stac.item = %prepared.id, "item created");
    Ok(item_response(
        StatusCode::CREATED,
        &urls,
        &stored_item(&prepared),
        true,
    ))
}

/// `PUT /collections/{collectionId}/items/{itemId}`: replaces an item.
async fn replace_item(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    PathParams((collection_id, item_id)): PathParams<(String, String)>,
    body: JsonBody,
) -> Result<Response> {
    let condition = if_match(&headers)?;
    let mut value = object(body.json(&headers)?, "a STAC Item")?;
    match_url(&mut value, "id", &item_id)?;
    match_url(&mut value, "collection", &collection_id)?;
    let prepared = prepare_item_with(Value::Object(value), Some(&collection_id), state.checks)
        .map_err(Error::InvalidDocument)?;
    state.store.replace_item(&prepared, condition.as_deref()).await?;
    let urls = Urls::new(&base_url(&state, &headers));
    let stored = stored_item(&prepared);
    Ok(replaced(&headers, &prepared.etag, || {
        item_response(StatusCode::OK, &urls, &stored, false)
    }))
}

/// `PATCH /collections/{collectionId}/items/{itemId}`: updates an item with a merge patch or a JSON Patch.
async fn patch_item(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    PathParams((collection_id, item_id)): PathParams<(String, String)>,
    body: JsonBody,
) -> Result<Response> {
    let condition = if_match(&headers)?;
    let patch = body.json_any(&headers, true)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = state
            .store
            .latest_item(&collection_id, &item_id)
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "item '{item_id}' not found in collection '{collection_id}'"
                ))
            })?;
        let mut document = full_document(&current.content, &current.extra_links)?;
        apply_patch(&mut document, &headers, &patch)?;
        let mut value = object(document, "the patched item")?;
        match_url(&mut value, "id", &item_id)?;
        match_url(&mut value, "collection", &collection_id)?;
        let prepared = prepare_item_with(Value::Object(value), Some(&collection_id), state.checks)
            .map_err(Error::InvalidDocument)?;
        let expected = condition.clone().unwrap_or(current.etag);
        match state.store.replace_item(&prepared, Some(&expected)).await {
            Err(Error::PreconditionFailed(_)) if condition.is_none() && attempt < PATCH_ATTEMPTS => continue,
            Err(e) => return Err(e),
            Ok(()) => {
                let urls = Urls::new(&base_url(&state, &headers));
                let stored = stored_item(&prepared);
                return Ok(replaced(&headers, &prepared.etag, || {
                    item_response(StatusCode::OK, &urls, &stored, false)
                }));
            }
        }
    }
}

/// `DELETE /collections/{collectionId}/items/{itemId}`.
async fn delete_item(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    PathParams((collection_id, item_id)): PathParams<(String, String)>,
) -> Result<Response> {
    let condition = if_match(&headers)?;
    state
        .store
        .delete_item(&collection_id, &item_id, condition.as_deref())
        .await?;
    tracing::info!(stac.collection = %collection_id, stac.item = %item_id, "item deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}
