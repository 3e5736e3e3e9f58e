//! HTTP routes. Handlers extract, call the framework-free layers and wrap the
//! result; the API documents themselves are built in [`crate::api`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::api::{self, CatalogInfo, GEOJSON, Urls};
use crate::auth::{Scope, Tokens, authorize};
use crate::error::{Error, Result};
use crate::paging::TokenSigner;
use crate::prepare::Checks;
use crate::search::SearchLimits;
use crate::store::Backend;

mod caching;
mod extract;
mod openapi;
mod overload;
mod rate_limit;
mod searches;

pub use caching::CachePolicy;
pub use extract::{JsonBody, PathParams};
use openapi::openapi_document;
pub use overload::Operations;
pub use rate_limit::{ClientRateLimit, parse_trusted_proxies};
use searches::{items, search_get, search_post};

/// The interactive API page.
const API_HTML: &str = include_str!("../../schemas/api.html");

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
    /// Maximum number of items in one bulk write.
    pub max_bulk_items: usize,
    /// Checks on written items, the same as the loader's.
    pub checks: Checks,
    /// Readiness, load shedding and timeouts.
    pub operations: Arc<Operations>,
    /// Property schemas from the operator, which override the discovered queryables.
    pub queryables: Option<serde_json::Map<String, serde_json::Value>>,
}

impl AppState {
    /// Tells whether the write endpoints are served.
    pub fn writes_enabled(&self) -> bool {
        self.tokens.is_some()
    }

    /// Lists the conformance classes, with the write classes when writes are enabled.
    pub fn conformance(&self) -> Vec<&'static str> {
        let mut classes = api::CONFORMANCE.to_vec();
        classes.extend_from_slice(crate::filter::CONFORMANCE);
        classes.extend_from_slice(crate::filter::QUERY_CONFORMANCE);
        classes.extend_from_slice(crate::fields::CONFORMANCE);
        classes.extend_from_slice(crate::sort::CONFORMANCE);
        classes.extend_from_slice(crate::text::CONFORMANCE);
        classes.extend_from_slice(crate::collection_search::CONFORMANCE);
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

/// HTTP behaviour around the handlers: CORS, caching headers, compression and rate limits.
#[derive(Clone)]
pub struct HttpOptions {
    /// Allowed CORS origins.
    pub cors: CorsOrigins,
    /// `Cache-Control` per kind of resource.
    pub cache: CachePolicy,
    /// Smallest response body that is compressed, in bytes; `None` turns compression off.
    pub compression_min_bytes: Option<u16>,
    /// Per-client rate limit, when one is set.
    pub rate_limit: Option<Arc<ClientRateLimit>>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            cors: CorsOrigins::Any,
            cache: CachePolicy::default(),
            compression_min_bytes: Some(1024),
            rate_limit: None,
        }
    }
}

/// Builds the compression layer: gzip, Brotli or zstd as the client's
/// `Accept-Encoding` prefers, for bodies of at least `min_bytes` (streamed
/// pages have no known size and are always compressed). The fastest levels
/// are used because JSON compresses well even there, and a search page must
/// not wait on the compressor.
fn compression(min_bytes: u16) -> CompressionLayer<impl Predicate> {
    let predicate = SizeAbove::new(u64::from(min_bytes))
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE);
    CompressionLayer::new()
        .quality(CompressionLevel::Fastest)
        .compress_when(predicate)
}

/// Drops an `Accept-Encoding` that names no coding, such as `*`. RFC 9110
/// lets a server pick any coding for `*`, but pystac reads through urllib,
/// which does not decompress, and stac-api-validator 0.6.8 sends `*` on its
/// behalf. So, like nginx, stacd compresses only for codings the client names.
async fn compress_only_named_codings(mut request: Request) -> Request {
    let named = request
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|coding| coding.split(';').next().unwrap_or("").trim())
        .any(|coding| !coding.is_empty() && coding != "*" && !coding.eq_ignore_ascii_case("identity"));
    if !named {
        request.headers_mut().remove(header::ACCEPT_ENCODING);
    }
    request
}

/// Builds the application router with its middleware.
pub fn router(state: Arc<AppState>, http: HttpOptions) -> Router {
    let HttpOptions {
        cors,
        mut cache,
        compression_min_bytes,
        rate_limit,
    } = http;
    cache.compression = compression_min_bytes.is_some();
    cache.private = state.private_reads;
    let cors = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::IF_MATCH,
            HeaderName::from_static("prefer"),
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
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/collections", get(collections))
        .route("/collections/{collection_id}", get(collection))
        .route("/collections/{collection_id}/items", get(items))
        .route("/collections/{collection_id}/items/{item_id}", get(item))
        .route("/queryables", get(queryables))
        .route("/sortables", get(sortables))
        .route(
            "/collections/{collection_id}/sortables",
            get(collection_sortables),
        )
        .route(
            "/collections/{collection_id}/queryables",
            get(collection_queryables),
        )
        .route("/search", get(search_get).post(search_post));
    if state.writes_enabled() {
        routes = crate::transactions::routes(routes);
    }
    // Layers run from the last added (outermost) to the first (innermost).
    let mut routes = routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            Arc::new(cache),
            caching::set_cache_headers,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(middleware::from_fn_with_state(
            state.operations.clone(),
            overload::shed_and_time_out,
        ));
    if let Some(rate_limit) = rate_limit {
        routes = routes.layer(middleware::from_fn_with_state(
            rate_limit,
            rate_limit::limit_clients,
        ));
    }
    let routes = routes
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
        .layer(cors);
    let routes = match compression_min_bytes {
        Some(min_bytes) => routes
            .layer(compression(min_bytes))
            .layer(middleware::map_request(compress_only_named_codings)),
        None => routes,
    };
    routes
        .layer(middleware::from_fn(crate::metrics::track))
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

/// Sends a document with a strong `ETag`: the stored tag, or a hash of the body
/// when there is none. When `If-None-Match` names that tag (or is `*`), the
/// response is 304 Not Modified without a body.
fn conditional(request: &HeaderMap, media_type: &'static str, body: String, etag: Option<&str>) -> Response {
    let tag = etag.map_or_else(|| crate::prepare::etag(&body, ""), str::to_string);
    let quoted = format!("\"{tag}\"");
    // Tags are hex digests, so they are always valid header text.
    let value = HeaderValue::from_str(&quoted).unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    let matches = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == quoted);
    let mut response = if matches {
        axum::http::StatusCode::NOT_MODIFIED.into_response()
    } else {
        json_response(media_type, body)
    };
    response.headers_mut().insert(header::ETAG, value);
    response
}

/// Tells whether a request is one of the write operations: POST /collections,
/// PUT, PATCH and DELETE /collections/{id}, POST /collections/{id}/items, and
/// PUT, PATCH and DELETE /collections/{id}/items/{itemId}. Other methods on a
/// path pass through, so the router returns 405 for them rather than 401.
fn is_write_operation(method: &Method, path: &str) -> bool {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let replace_or_delete = matches!(*method, Method::PUT | Method::PATCH | Method::DELETE);
    match segments.as_slice() {
        ["collections"] => method == Method::POST,
        ["collections", _] => replace_or_delete,
        ["collections", _, "items"] => method == Method::POST,
        ["collections", _, "items", _] => replace_or_delete,
        _ => false,
    }
}

/// Checks bearer tokens: writes need the write scope, and reads need the read
/// scope when reads are private. Searches by POST are reads.
async fn require_token(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let method = request.method();
    let is_write = is_write_operation(method, request.uri().path());
    // Probes and metrics stay open, so load balancers and Prometheus can reach a private catalog.
    let probe = matches!(request.uri().path(), "/health" | "/ready" | "/metrics");
    let needed = if is_write {
        Some(Scope::Write)
    } else if state.private_reads && !probe {
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

async fn method_not_allowed(State(state): State<Arc<AppState>>, method: Method) -> Error {
    let writing = matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if writing && !state.writes_enabled() {
        return Error::MethodNotAllowed(format!(
            "method {method} is not allowed: writes are disabled; start the server with --tokens-file to enable them"
        ));
    }
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
    let page = api::landing_page(&urls, &state.info, &state.conformance(), &collections);
    Ok(conditional(&headers, "application/json", page.to_string(), None))
}

/// `GET /conformance` (OGC API Features `/req/core/conformance-success`).
async fn conformance(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    check_no_parameters(query.as_deref())?;
    let body = json!({ "conformsTo": state.conformance() }).to_string();
    Ok(conditional(&headers, "application/json", body, None))
}

/// `GET /api`: the OpenAPI 3.0 definition (`service-desc`).
async fn openapi(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let body =
        openapi_document(state.writes_enabled()).replace("{{SERVER_URL}}", &base_url(&state, &headers));
    json_response(api::OPENAPI, body)
}

/// `GET /api.html`: the interactive API documentation (`service-doc`).
async fn api_html() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], API_HTML).into_response()
}

/// `GET /health`: 200 when a store query succeeds, 503 otherwise. A read
/// replica that does not respond is reported but does not fail the check,
/// because reads then go to the primary.
async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.store.ping().await {
        Ok(()) => {
            let mut body = json!({"status": "ok", "store": state.store.kind()});
            if let Some(replica) = state.store.ping_replica().await {
                body["replica"] = json!(if replica { "ok" } else { "unavailable" });
            }
            Json(body).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            Error::Unavailable(e.to_string()).into_response()
        }
    }
}

/// `GET /ready`: 200 while the server accepts work and its store responds, and 503
/// once shutdown has started, so load balancers stop sending requests.
async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if !state.operations.is_ready() {
        return Error::Overloaded("the server is shutting down".into()).into_response();
    }
    match state.store.ping().await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Error::Unavailable(e.to_string()).into_response()
        }
    }
}

/// The two property schema documents of OGC API Features Parts 3 and 5.
#[derive(Clone, Copy)]
enum PropertySchema {
    /// The properties that filters can use.
    Queryables,
    /// The fields that `sortby` can use.
    Sortables,
}

/// Sends a queryables or sortables document, for all collections or one.
async fn property_schema(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    collection_id: Option<&str>,
    kind: PropertySchema,
) -> Result<Response> {
    check_no_parameters(query)?;
    let urls = Urls::new(&base_url(state, headers));
    let name = match kind {
        PropertySchema::Queryables => "queryables",
        PropertySchema::Sortables => "sortables",
    };
    let (id, collections) = match collection_id {
        Some(collection_id) => {
            if state.store.collection(collection_id).await?.is_none() {
                return Err(collection_not_found(collection_id));
            }
            (
                format!("{}/{name}", urls.collection(collection_id)),
                vec![collection_id.to_string()],
            )
        }
        None => (urls.path(&format!("/{name}")), Vec::new()),
    };
    let types = state.store.property_types(&collections).await?;
    let body = match kind {
        PropertySchema::Queryables => api::queryables(&id, &types, state.queryables.as_ref()),
        PropertySchema::Sortables => api::sortables(&id, &types),
    };
    Ok(conditional(headers, api::SCHEMA_JSON, body, None))
}

/// `GET /queryables`: the properties that filters can use, across all collections.
async fn queryables(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    property_schema(
        &state,
        &headers,
        query.as_deref(),
        None,
        PropertySchema::Queryables,
    )
    .await
}

/// `GET /collections/{collectionId}/queryables`: the properties of one collection's items.
async fn collection_queryables(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    PathParams(collection_id): PathParams<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let collection = Some(collection_id.as_str());
    property_schema(
        &state,
        &headers,
        query.as_deref(),
        collection,
        PropertySchema::Queryables,
    )
    .await
}

/// `GET /sortables`: the fields searches can sort on, across all collections.
async fn sortables(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    property_schema(
        &state,
        &headers,
        query.as_deref(),
        None,
        PropertySchema::Sortables,
    )
    .await
}

/// `GET /collections/{collectionId}/sortables`: the fields one collection's items can sort on.
async fn collection_sortables(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    PathParams(collection_id): PathParams<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let collection = Some(collection_id.as_str());
    property_schema(
        &state,
        &headers,
        query.as_deref(),
        collection,
        PropertySchema::Sortables,
    )
    .await
}

/// `GET /metrics`: Prometheus metrics.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    crate::metrics::render(&state.store.pool_stats())
}

/// `GET /collections` (OGC API Features `/req/core/fc-md-success`), with
/// collection search when the request has parameters.
async fn collections(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let urls = Urls::new(&base_url(&state, &headers));
    let query = query.unwrap_or_default();
    let search = crate::collection_search::from_query_string(&query, state.limits.max_limit)?;
    let collections = state.store.collections().await?;
    let page = crate::collection_search::run(&search, collections)?;
    let next = page.next.as_ref().map(|token| {
        let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| k != "token")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        pairs.push(("token".into(), token.clone()));
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        format!("{}?{encoded}", urls.path("/collections"))
    });
    let body = api::collection_page(&urls, &page, next);
    Ok(conditional(&headers, "application/json", body, None))
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
    Ok(conditional(
        &headers,
        "application/json",
        body,
        Some(&collection.etag),
    ))
}

pub(super) fn collection_not_found(id: &str) -> Error {
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
    crate::metrics::record_items(1);
    Ok(conditional(&headers, GEOJSON, body, Some(&item.etag)))
}
