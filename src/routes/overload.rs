//! Readiness, load shedding and request timeouts.
//!
//! A request that cannot get one of the concurrency permits gets 503 at
//! once, and one that runs past the timeout gets 503 as soon as the timeout
//! fires. Both responses carry `Retry-After`. The permit and the timeout cover
//! the handler up to the response headers, so a streamed page that has
//! started keeps its body.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::error::Error;

/// Operational state shared by all requests.
pub struct Operations {
    /// Whether the server accepts new work; cleared when shutdown starts.
    ready: AtomicBool,
    /// Maximum time a handler may take to produce its response.
    timeout: Duration,
    /// Permits for concurrent requests.
    permits: Arc<Semaphore>,
}

impl Operations {
    /// Creates the state: at most `max_concurrent` requests at once, each
    /// completed within `timeout`. Zero permits shed every request.
    pub fn new(timeout: Duration, max_concurrent: usize) -> Self {
        Operations {
            ready: AtomicBool::new(true),
            timeout,
            permits: Arc::new(Semaphore::new(max_concurrent)),
        }
    }

    /// Marks the server as draining: `/ready` returns 503 from now on.
    pub fn stop_accepting(&self) {
        self.ready.store(false, Ordering::SeqCst);
    }

    /// Tells whether the server accepts new work.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

impl Default for Operations {
    fn default() -> Self {
        Operations::new(Duration::from_secs(30), 512)
    }
}

/// Sheds requests beyond the concurrency limit and times out slow handlers.
pub(super) async fn shed_and_time_out(
    State(operations): State<Arc<Operations>>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = operations.permits.clone().try_acquire_owned() else {
        tracing::warn!("request shed: the concurrency limit is reached");
        return Error::Overloaded("the server is at its limit of concurrent requests; retry shortly".into())
            .into_response();
    };
    match tokio::time::timeout(operations.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                timeout_ms = operations.timeout.as_millis() as u64,
                "request timed out"
            );
            Error::TimedOut(format!(
                "the request did not complete within {} s; narrow the search or retry later",
                operations.timeout.as_secs_f64()
            ))
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn status_of_slow_request(operations: Operations) -> axum::http::StatusCode {
        let app = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "done"
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                Arc::new(operations),
                shed_and_time_out,
            ));
        let request = axum::http::Request::get("/slow").body(Body::empty()).unwrap();
        app.oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn slow_request_times_out() {
        let status = status_of_slow_request(Operations::new(Duration::from_millis(20), 4)).await;
        assert_eq!(status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        let status = status_of_slow_request(Operations::new(Duration::from_secs(5), 4)).await;
        assert_eq!(status, axum::http::StatusCode::OK);
    }

    #[test]
    fn draining_clears_readiness() {
        let operations = Operations::default();
        assert!(operations.is_ready());
        operations.stop_accepting();
        assert!(!operations.is_ready());
    }
}
