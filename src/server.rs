//! Serving on a listener until shutdown, with a bounded drain.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::routes::{AppState, HttpOptions, router};

/// Serves until `shutdown` resolves. Then `/ready` turns 503 at once, no new
/// connection is accepted, and requests in flight get up to `drain` to finish
/// before the server returns anyway.
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    http: HttpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> Result<()> {
    let draining = Arc::new(Notify::new());
    let signal = {
        let (state, draining) = (state.clone(), draining.clone());
        async move {
            shutdown.await;
            state.operations.stop_accepting();
            tracing::info!(
                drain_seconds = drain.as_secs_f64(),
                "shutting down: draining requests"
            );
            draining.notify_one();
        }
    };
    // The peer address identifies clients for rate limits.
    let app = router(state, http).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(signal);
    let deadline = async move {
        draining.notified().await;
        tokio::time::sleep(drain).await;
    };
    tokio::select! {
        result = server => result.map_err(|e| Error::Internal(format!("server error: {e}")))?,
        () = deadline => tracing::warn!("the drain timeout passed with requests still in flight; stopping"),
    }
    tracing::info!("stopped");
    Ok(())
}
