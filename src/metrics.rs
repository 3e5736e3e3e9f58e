//! Prometheus metrics, served at `/metrics` in the OpenMetrics text format,
//! which Prometheus scrapes natively.
//!
//! The metrics live in one process-wide registry, so the error type and the
//! stores can count without a handle being passed to them. Label values come
//! from small fixed sets (route templates, methods, status codes, error
//! codes), so no request can create new time series at will.

use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Media type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolName {
    pool: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    code: &'static str,
}

/// Connection counts of one database pool at the time of a scrape.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    /// Pool name, such as `primary`, `replica`, `reader` or `writer`.
    pub name: &'static str,
    /// Open connections, idle or in use.
    pub size: u32,
    /// Open connections that are idle.
    pub idle: u32,
    /// Largest number of connections the pool opens.
    pub max: u32,
}

impl PoolStats {
    /// Reads the connection counts of a pool.
    pub fn of<DB: sqlx::Database>(name: &'static str, pool: &sqlx::Pool<DB>) -> Self {
        PoolStats {
            name,
            size: pool.size(),
            idle: pool.num_idle() as u32,
            max: pool.options().get_max_connections(),
        }
    }
}

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
    in_flight: Gauge,
    response_bytes: Counter,
    items_served: Counter,
    errors: Family<ErrorLabels, Counter>,
    pool_connections: Family<PoolLabels, Gauge>,
    pool_max: Family<PoolName, Gauge>,
    pool_acquire: Family<PoolName, Histogram>,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

fn acquire_histogram() -> Histogram {
    // 50 µs to about 1.6 s; waits beyond that show up in the +Inf bucket.
    Histogram::new(exponential_buckets(0.00005, 2.0, 16))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::default();
    let requests = Family::<RequestLabels, Counter>::default();
    registry.register(
        "stacd_http_requests",
        "HTTP requests answered, by route template, method and status",
        requests.clone(),
    );
    let duration = Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
    registry.register_with_unit(
        "stacd_http_request_duration",
        "Time from receiving a request to sending the last byte of its response",
        Unit::Seconds,
        duration.clone(),
    );
    let in_flight = Gauge::default();
    registry.register(
        "stacd_http_requests_in_flight",
        "Requests being served, including responses still streaming",
        in_flight.clone(),
    );
    let response_bytes = Counter::default();
    registry.register_with_unit(
        "stacd_http_response_body",
        "Response body bytes sent, after compression",
        Unit::Bytes,
        response_bytes.clone(),
    );
    let items_served = Counter::default();
    registry.register(
        "stacd_items_served",
        "Items sent in search pages and item responses",
        items_served.clone(),
    );
    let errors = Family::<ErrorLabels, Counter>::default();
    registry.register(
        "stacd_errors",
        "Error responses, by OGC exception code",
        errors.clone(),
    );
    let pool_connections = Family::<PoolLabels, Gauge>::default();
    registry.register(
        "stacd_db_pool_connections",
        "Open database connections, by pool and state (idle or active)",
        pool_connections.clone(),
    );
    let pool_max = Family::<PoolName, Gauge>::default();
    registry.register(
        "stacd_db_pool_max_connections",
        "Largest number of connections each database pool opens",
        pool_max.clone(),
    );
    let pool_acquire = Family::<PoolName, Histogram>::new_with_constructor(acquire_histogram as fn() -> _);
    registry.register_with_unit(
        "stacd_db_pool_acquire_duration",
        "Time spent waiting for a database connection",
        Unit::Seconds,
        pool_acquire.clone(),
    );
    Metrics {
        registry,
        requests,
        duration,
        in_flight,
        response_bytes,
        items_served,
        errors,
        pool_connections,
        pool_max,
        pool_acquire,
    }
});

/// Counts an error response by its OGC exception code.
pub fn record_error(code: &'static str) {
    METRICS.errors.get_or_create(&ErrorLabels { code }).inc();
}

/// Counts items sent to a client.
pub fn record_items(count: usize) {
    METRICS.items_served.inc_by(count as u64);
}

/// Records how long a request waited for a connection from the pool `name`.
pub fn record_acquire(pool: &'static str, started: Instant) {
    METRICS
        .pool_acquire
        .get_or_create(&PoolName { pool })
        .observe(started.elapsed().as_secs_f64());
}

/// Encodes every metric, with the pool gauges set from `pools`.
pub fn render(pools: &[PoolStats]) -> Response {
    for pool in pools {
        let active = pool.size.saturating_sub(pool.idle);
        for (state, value) in [("idle", pool.idle), ("active", active)] {
            METRICS
                .pool_connections
                .get_or_create(&PoolLabels {
                    pool: pool.name,
                    state,
                })
                .set(i64::from(value));
        }
        METRICS
            .pool_max
            .get_or_create(&PoolName { pool: pool.name })
            .set(i64::from(pool.max));
    }
    let mut text = String::new();
    if let Err(e) = encode(&mut text, &METRICS.registry) {
        tracing::error!(error = %e, "encoding metrics failed");
        return crate::Error::Internal(format!("encoding metrics failed: {e}")).into_response();
    }
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS))],
        text,
    )
        .into_response()
}

/// Maps a method to a label value, so unusual methods share one series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Counts a request and times it until its body has been sent (or dropped,
/// when the client goes away), so streamed pages count in full.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", MatchedPath::as_str)
        .to_string();
    let method = method_label(request.method()).to_string();
    let in_flight = InFlight::start();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let finish = Finish {
        started,
        labels: RequestLabels {
            route,
            method,
            status,
        },
        _in_flight: in_flight,
    };
    response.map(|body| {
        Body::new(CountedBody {
            inner: body,
            _finish: finish,
        })
    })
}

/// Counts a request as in flight until it is dropped, also when the client
/// goes away before the response starts.
struct InFlight;

impl InFlight {
    fn start() -> Self {
        METRICS.in_flight.inc();
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        METRICS.in_flight.dec();
    }
}

/// Records a request's metrics when its response body is dropped.
struct Finish {
    started: Instant,
    labels: RequestLabels,
    _in_flight: InFlight,
}

impl Drop for Finish {
    fn drop(&mut self) {
        METRICS.requests.get_or_create(&self.labels).inc();
        let route = RouteLabels {
            route: std::mem::take(&mut self.labels.route),
            method: std::mem::take(&mut self.labels.method),
        };
        METRICS
            .duration
            .get_or_create(&route)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// A response body that counts the bytes passing through it and keeps the
/// inner body's size hint, so `Content-Length` and compression decisions
/// stay as they were.
struct CountedBody {
    inner: Body,
    /// Records the request when the body is dropped.
    _finish: Finish,
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        // `Body` is `Unpin`, so the inner body can be polled through a plain reborrow.
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            METRICS.response_bytes.inc_by(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
