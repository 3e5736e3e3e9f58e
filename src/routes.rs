//! HTTP routes. Handlers extract, call the framework-free layers and wrap the
//! result; the API documents themselves are built in [`crate::api`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Path, RawQuery, Request, State,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::api::{self, CatalogInfo, GEOJSON, Urls};
use crate::auth::{Scope, Tokens, authorize};
use crate::error::{Error, Result};
use crate::paging::{PageBounds, Repeat, TokenSigner, page_links};
use crate::prepare::Checks;
use crate::search::{self, Endpoint, RawSearch, SearchLimits};
use crate::store::{Backend, Direction, ItemQuery, ItemStream, SortKey, StoredItem};
use futures::StreamExt;

/// The OpenAPI document; `{{SERVER_URL}}` is replaced with the base URL.
const OPENAPI: &str = include_str!("../schemas/openapi.json");
/// The interactive API page.
const API_HTML: &str = include_str!("../schemas/api.html");

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Everything a request handler needs.
pub struct AppState {
    /// The catalog store.
    pub store: Arc<dyn Backend>,
    /// Signs and checks pagination tokens.
    pub signer: TokenSigner,
    /// Page size bounds.
    pub limits: SearchLimits,
    /// Landing page fields.
    pub info: CatalogInfo,
    /// Base URL for links; when `None` it is taken from the request headers.
    pub public_url: Option<String>,
    /// Accepted bearer tokens; writes are enabled only when this is set.
    pub tokens: Option<Tokens>,
    /// Require a token with the read scope for reads too.
    pub private_reads: bool,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// Most items in one bulk write.
    pub max_bulk_items: usize,
    /// Checks on written items, the same as the loader's.
    pub checks: Checks,
}

impl AppState {
    /// Tells whether the write endpoints are served.
    pub fn writes_enabled(&self) -> bool {
        self.tokens.is_some()
    }

    /// Lists the conformance classes, with the write classes when writes are enabled.
    pub fn conformance(&self) -> Vec<&'static str> {
        let mut classes = api::CONFORMANCE.to_vec();
        if self.writes_enabled() {
            classes.extend_from_slice(crate::transactions::CONFORMANCE);
        }
        classes
    }
}

/// Allowed CORS origins.
#[derive(Debug, Clone)]
pub enum CorsOrigins {
    /// Any origin (`*`).
    Any,
    /// Only these origins.
    List(Vec<HeaderValue>),
}

/// Builds the application router with its middleware.
pub fn router(state: Arc<AppState>, cors: CorsOrigins) -> Router {
    let cors = CorsLayer::new()
        .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
        ])
        .expose_headers([header::ETAG, header::LOCATION, REQUEST_ID.clone()])
        .max_age(Duration::from_secs(3600))
        .allow_origin(match cors {
            CorsOrigins::Any => AllowOrigin::any(),
            CorsOrigins::List(origins) => AllowOrigin::list(origins),
        });
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map_or("(unmatched)", MatchedPath::as_str);
            let request_id = request
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("request", method = %request.method(), route, request_id,
                status = tracing::field::Empty)
        })
        .on_response(|response: &Response, latency: Duration, span: &Span| {
            span.record("status", response.status().as_u16());
            tracing::info!(
                status = response.status().as_u16(),
                duration_ms = latency.as_secs_f64() * 1e3,
                "response"
            );
        });

    let body_limit = state.body_limit;
    let mut routes = Router::new()
        .route("/", get(landing_page))
        .route("/conformance", get(conformance))
        .route("/api", get(openapi))
        .route("/api.html", get(api_html))
        .route("/health", get(health))
        .route("/collections", get(collections))
        .route("/collections/{collection_id}", get(collection))
        .route("/collections/{collection_id}/items", get(items))
        .route("/collections/{collection_id}/items/{item_id}", get(item))
        .route("/search", get(search_get).post(search_post));
    if state.writes_enabled() {
        routes = crate::transactions::routes(routes);
    }
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
        .layer(cors)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(trace)
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
}

/// Wraps a JSON text in a response with an explicit media type.
fn json_response(media_type: &'static str, body: String) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(media_type))],
        body,
    )
        .into_response()
}

/// Adds a strong `ETag` header.
fn with_etag(mut response: Response, etag: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// Checks bearer tokens: writes need the write scope, and reads need the read
/// scope when reads are private. Searches by POST are reads.
async fn require_token(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let method = request.method();
    let is_write = matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) && !(method == Method::POST && request.uri().path() == "/search");
    let needed = if is_write {
        Some(Scope::Write)
    } else if state.private_reads {
        Some(Scope::Read)
    } else {
        None
    };
    if let (Some(needed), Some(tokens)) = (needed, &state.tokens) {
        let header = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if let Err(e) = authorize(tokens, header, needed) {
            return e.into_response();
        }
    }
    next.run(request).await
}

async fn not_found() -> Error {
    Error::NotFound("no resource at this path; the landing page at / links to every endpoint".into())
}

async fn method_not_allowed(method: Method) -> Error {
    Error::MethodNotAllowed(format!("method {method} is not allowed on this path"))
}

/// Reads the base URL from `--public-url`, else from the proxy headers, else from `Host`.
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let header_str = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_string())
    };
    let (mut proto, mut host) = (None, None);
    if let Some(forwarded) = header_str("forwarded") {
        for pair in forwarded.split(';') {
            if let Some((key, value)) = pair.split_once('=') {
                let value = value.trim().trim_matches('"').to_string();
                match key.trim().to_ascii_lowercase().as_str() {
                    "proto" => proto = Some(value),
                    "host" => host = Some(value),
                    _ => {}
                }
            }
        }
    }
    let proto = proto
        .or_else(|| header_str("x-forwarded-proto"))
        .filter(|p| p == "http" || p == "https")
        .unwrap_or_else(|| "http".into());
    let host = host
        .or_else(|| header_str("x-forwarded-host"))
        .or_else(|| header_str("host"))
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c))
        })
        .unwrap_or_else(|| "localhost".into());
    let prefix = header_str("x-forwarded-prefix")
        .filter(|p| p.starts_with('/') && !p.contains(['?', '#', '"', '<', '>', ' ']))
        .map(|p| p.trim_end_matches('/').to_string())
        .unwrap_or_default();
    format!("{proto}://{host}{prefix}")
}

/// Rejects query parameters on endpoints that take none besides `f`.
fn check_no_parameters(query: Option<&str>) -> Result<()> {
    let unknown: Vec<String> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, _)| k.into_owned())
        .filter(|k| k != "f")
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Error::UnknownParameter(format!(
            "unknown query parameter(s): {}; this endpoint accepts only f",
            unknown.join(", ")
        )))
    }
}

/// `GET /`: the landing page (STAC API Core, OGC API Features `/req/core/root-success`).
async fn landing_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    check_no_parameters(query.as_deref())?;
    let urls = Urls::new(&base_url(&state, &headers));
    let collections = state.store.collections().await?;
    Ok(Json(api::landing_page(
        &urls,
        &state.info,
        &state.conformance(),
        &collections,
    ))
    .into_response())
}

/// `GET /conformance` (OGC API Features `/req/core/conformance-success`).
async fn conformance(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Result<Response> {
    check_no_parameters(query.as_deref())?;
    Ok(Json(json!({ "conformsTo": state.conformance() })).into_response())
}

/// `GET /api`: the OpenAPI 3.0 definition (`service-desc`).
async fn openapi(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let body = OPENAPI.replace("{{SERVER_URL}}", &base_url(&state, &headers));
    json_response(api::OPENAPI, body)
}

/// `GET /api.html`: the interactive API documentation (`service-doc`).
async fn api_html() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], API_HTML).into_response()
}

/// `GET /health`: 200 when a store query succeeds, 503 otherwise.
async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(json!({"status": "ok", "store": state.store.kind()})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            Error::Unavailable(e.to_string()).into_response()
        }
    }
}

/// `GET /collections` (OGC API Features `/req/core/fc-md-success`).
async fn collections(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response> {
    let urls = Urls::new(&base_url(&state, &headers));
    let collections = state.store.collections().await?;
    Ok(json_response(
        "application/json",
        api::collections(&urls, &collections),
    ))
}

/// `GET /collections/{collectionId}` (OGC API Features `/req/core/sfc-md-success`).
async fn collection(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    PathParams(collection_id): PathParams<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    check_no_parameters(query.as_deref())?;
    let urls = Urls::new(&base_url(&state, &headers));
    let collection = state
        .store
        .collection(&collection_id)
        .await?
        .ok_or_else(|| collection_not_found(&collection_id))?;
    let mut body = String::with_capacity(collection.content.len() + 1024);
    api::write_collection(&urls, &collection, &mut body);
    Ok(with_etag(
        json_response("application/json", body),
        &collection.etag,
    ))
}

fn collection_not_found(id: &str) -> Error {
    Error::NotFound(format!(
        "collection '{id}' not found; /collections lists the collections"
    ))
}

/// `GET /collections/{collectionId}/items/{featureId}` (OGC API Features `/req/core/f-success`).
async fn item(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    PathParams((collection_id, item_id)): PathParams<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    check_no_parameters(query.as_deref())?;
    let urls = Urls::new(&base_url(&state, &headers));
    let Some(item) = state.store.item(&collection_id, &item_id).await? else {
        if state.store.collection(&collection_id).await?.is_none() {
            return Err(collection_not_found(&collection_id));
        }
        return Err(Error::NotFound(format!(
            "item '{item_id}' not found in collection '{collection_id}'"
        )));
    };
    let mut body = String::with_capacity(item.content.len() + 1024);
    api::write_item(&urls, &item, &mut body);
    Ok(with_etag(json_response(GEOJSON, body), &item.etag))
}

/// Runs a validated search and sends the item collection. Pages read forward
/// stream: items go out as the store reads them, and the links, which need the
/// last item, close the document.
async fn run_search(
    state: &AppState,
    urls: &Urls,
    raw: RawSearch,
    mut query: ItemQuery,
    repeat: Repeat,
    collection: Option<&str>,
) -> Result<Response> {
    if let Some(token) = raw.token.as_deref().filter(|t| !t.is_empty()) {
        query.cursor = Some(state.signer.decode(token, &query)?);
    }
    let backward = query
        .cursor
        .as_ref()
        .is_some_and(|c| c.direction == Direction::Prev);
    let collection = collection.map(str::to_string);
    let (body, estimate) = if backward {
        // A page before the cursor is read in reverse, so it is flipped in memory.
        let page = state.store.search(&query).await?;
        let bounds = PageBounds::of(&page);
        let links = page_links(
            &state.signer,
            urls,
            &query,
            &bounds,
            &repeat,
            collection.as_deref(),
        );
        let estimate = page.matched_is_estimate;
        (Body::from(api::item_collection(urls, &page, &links)), estimate)
    } else {
        let counting = {
            let (store, query) = (state.store.clone(), query.clone());
            tokio::spawn(async move { store.count(&query).await })
        };
        let mut rows = state.store.page_items(&query);
        // The first row is awaited here so that a failing query still gets an error status.
        let first = rows.next().await.transpose()?;
        let (matched, estimate) = counting
            .await
            .map_err(|e| Error::Internal(format!("count task failed: {e}")))??;
        let writer = PageWriter {
            rows,
            pending: first,
            urls: urls.clone(),
            signer: state.signer.clone(),
            query,
            repeat,
            collection,
            matched,
            returned: 0,
            first_key: None,
            last_key: None,
            done: false,
        };
        (Body::from_stream(writer.into_stream()), estimate)
    };
    let mut response = ([(header::CONTENT_TYPE, HeaderValue::from_static(GEOJSON))], body).into_response();
    if estimate {
        response
            .headers_mut()
            .insert("x-number-matched-estimate", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Bytes collected before a chunk of a streamed page is sent.
const CHUNK_SIZE: usize = 64 * 1024;

/// Writes a forward page as a stream of JSON chunks.
struct PageWriter {
    rows: ItemStream,
    /// An item already read from `rows`.
    pending: Option<StoredItem>,
    urls: Urls,
    signer: TokenSigner,
    query: ItemQuery,
    repeat: Repeat,
    collection: Option<String>,
    matched: u64,
    returned: usize,
    first_key: Option<SortKey>,
    last_key: Option<SortKey>,
    done: bool,
}

impl PageWriter {
    fn into_stream(self) -> impl futures::Stream<Item = std::result::Result<Bytes, std::io::Error>> + Send {
        futures::stream::unfold(self, |mut writer| async move {
            if writer.done {
                return None;
            }
            let chunk = writer.next_chunk().await;
            Some((chunk, writer))
        })
    }

    /// Writes the next chunk: the head with the first items, more items, or the closing links.
    async fn next_chunk(&mut self) -> std::result::Result<Bytes, std::io::Error> {
        let mut chunk = String::with_capacity(CHUNK_SIZE + 4096);
        if self.returned == 0 && self.first_key.is_none() {
            chunk.push_str(api::ITEM_COLLECTION_HEAD);
        }
        loop {
            let next = match self.pending.take() {
                Some(item) => Some(Ok(item)),
                None => self.rows.next().await,
            };
            match next {
                Some(Ok(item)) if self.returned < self.query.limit => {
                    if self.returned > 0 {
                        chunk.push(',');
                    }
                    api::write_item(&self.urls, &item, &mut chunk);
                    self.returned += 1;
                    if self.first_key.is_none() {
                        self.first_key = Some(item.key.clone());
                    }
                    self.last_key = Some(item.key);
                    if chunk.len() >= CHUNK_SIZE {
                        return Ok(Bytes::from(chunk));
                    }
                }
                Some(Ok(_)) => {
                    // One item beyond the page: more follow.
                    self.finish(true, &mut chunk);
                    return Ok(Bytes::from(chunk));
                }
                None => {
                    self.finish(false, &mut chunk);
                    return Ok(Bytes::from(chunk));
                }
                Some(Err(e)) => {
                    // The status line is already sent, so the only way left to
                    // signal the failure is to abort the body.
                    tracing::error!(error = %e, "a streamed page failed");
                    self.done = true;
                    return Err(std::io::Error::other("the page could not be completed"));
                }
            }
        }
    }

    fn finish(&mut self, has_next: bool, chunk: &mut String) {
        let bounds = PageBounds {
            has_next,
            has_prev: self.query.cursor.is_some(),
            first: self.first_key.as_ref(),
            last: self.last_key.as_ref(),
        };
        let links = page_links(
            &self.signer,
            &self.urls,
            &self.query,
            &bounds,
            &self.repeat,
            self.collection.as_deref(),
        );
        api::write_item_collection_tail(&links, Some(self.matched), self.returned, chunk);
        self.done = true;
    }
}

/// Returns the original query pairs without `token`, for page links.
fn repeat_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k != "token")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `GET /collections/{collectionId}/items` (OGC API Features `/req/core/fc-op`).
async fn items(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    PathParams(collection_id): PathParams<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let query_string = query.unwrap_or_default();
    let raw = search::from_query_string(&query_string, Endpoint::Items(&collection_id))?;
    if state.store.collection(&collection_id).await?.is_none() {
        return Err(collection_not_found(&collection_id));
    }
    let mut query = search::validate(&raw, &state.limits)?;
    query.collections = vec![collection_id.clone()];
    let urls = Urls::new(&base_url(&state, &headers));
    let path = format!("/collections/{}/items", api::segment(&collection_id));
    let repeat = Repeat::Get {
        path,
        query: repeat_pairs(&query_string),
    };
    run_search(&state, &urls, raw, query, repeat, Some(&collection_id)).await
}

/// `GET /search` (STAC API Item Search).
async fn search_get(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let query_string = query.unwrap_or_default();
    let raw = search::from_query_string(&query_string, Endpoint::Search)?;
    let query = search::validate(&raw, &state.limits)?;
    let urls = Urls::new(&base_url(&state, &headers));
    let repeat = Repeat::Get {
        path: "/search".into(),
        query: repeat_pairs(&query_string),
    };
    run_search(&state, &urls, raw, query, repeat, None).await
}

/// `POST /search` (STAC API Item Search) with a JSON body.
async fn search_post(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response> {
    let body = match body.json(&headers)? {
        Value::Object(map) => map,
        _ => {
            return Err(Error::InvalidBody(
                "the request body must be a JSON object".into(),
            ));
        }
    };
    let raw = search::from_body(&body)?;
    let query = search::validate(&raw, &state.limits)?;
    let urls = Urls::new(&base_url(&state, &headers));
    let mut repeat_body = body;
    repeat_body.remove("token");
    run_search(
        &state,
        &urls,
        raw,
        query,
        Repeat::Post { body: repeat_body },
        None,
    )
    .await
}

/// Path parameters, whose failures use the JSON error shape. A path with an
/// escaped NUL (`%00`) is rejected here, because no id can contain one.
pub struct PathParams<T>(pub T);

impl<S, T> FromRequestParts<S> for PathParams<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> std::result::Result<Self, Self::Rejection> {
        if parts.uri.path().to_ascii_lowercase().contains("%00") {
            return Err(Error::InvalidParameter(
                "the path contains an escaped NUL character (%00), which no id can contain".into(),
            ));
        }
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(PathParams(value)),
            Err(rejection) => Err(Error::InvalidParameter(format!(
                "invalid path: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// A request body read under the configured size limit. Its failures use the
/// same JSON error shape as everything else.
pub struct JsonBody(Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> std::result::Result<Self, Self::Rejection> {
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(JsonBody(bytes)),
            Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(Error::PayloadTooLarge(
                    "the request body is larger than the server accepts (see --body-limit)".into(),
                ))
            }
            Err(rejection) => Err(Error::InvalidBody(format!(
                "cannot read the request body: {rejection}"
            ))),
        }
    }
}

impl JsonBody {
    /// Parses the body as JSON after checking that its media type is JSON.
    pub fn json(&self, headers: &HeaderMap) -> Result<Value> {
        self.json_any(headers, false)
    }

    /// Parses the body as JSON; `patch` also accepts the JSON Patch and JSON
    /// Merge Patch media types. An empty body is an empty object.
    pub fn json_any(&self, headers: &HeaderMap, patch: bool) -> Result<Value> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let is_json = essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"));
        if !is_json {
            let accepted = if patch {
                "application/json, application/merge-patch+json or application/json-patch+json"
            } else {
                "application/json"
            };
            return Err(Error::UnsupportedMediaType(format!(
                "request body must be JSON with Content-Type: {accepted} (found '{content_type}')"
            )));
        }
        if self.0.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Map::new()));
        }
        serde_json::from_slice::<Value>(&self.0)
            .map_err(|e| Error::InvalidBody(format!("the request body is not valid JSON: {e}")))
    }
}
