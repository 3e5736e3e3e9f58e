//! Serving on a listener until shutdown, with a bounded drain.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
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
    // Without TCP_NODELAY, the last small write of a streamed page waits for
    // the client's delayed ACK, which adds about 40 ms to many responses.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    });
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
