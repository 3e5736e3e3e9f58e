//! Readiness, load shedding, timeouts and graceful shutdown, on both stores.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{StatusCode, header};
use common::*;
use stacd::api::CatalogInfo;
use stacd::paging::TokenSigner;
use stacd::routes::{AppState, HttpOptions, Operations, router};
use stacd::search::SearchLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn state(store: &TestStore, operations: Operations) -> Arc<AppState> {
    let operations = Arc::new(operations);
    Arc::new(AppState {
        signer: TokenSigner::new(store.store.secret().await.unwrap()),
        store: store.store.clone(),
        limits: SearchLimits::default(),
        info: CatalogInfo {
            id: "test".into(),
            title: "Test".into(),
            description: "Test".into(),
        },
        public_url: None,
        tokens: None,
        private_reads: false,
        body_limit: 1024 * 1024,
        max_bulk_items: 100,
        checks: Default::default(),
        operations,
        queryables: None,
    })
}

async fn shedding_and_timeouts(store: TestStore) {
    let shed = router(
        state(&store, Operations::new(Duration::from_secs(30), 0)).await,
        HttpOptions::default(),
    );
    let answer = get(&shed, "/collections").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.json()["code"], "Overloaded");
    assert!(answer.headers.contains_key(header::RETRY_AFTER));

    let normal = router(state(&store, Operations::default()).await, HttpOptions::default());
    assert_eq!(get(&normal, "/collections").await.status, StatusCode::OK);
}

async fn ready_turns_off_when_draining(store: TestStore) {
    let state = state(&store, Operations::default()).await;
    let app = router(state.clone(), HttpOptions::default());
    assert_eq!(get(&app, "/ready").await.status, StatusCode::OK);
    state.operations.stop_accepting();
    let answer = get(&app, "/ready").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        get(&app, "/health").await.status,
        StatusCode::OK,
        "liveness stays separate"
    );
}

async fn shutdown_stops_within_drain(store: TestStore) {
    let state = state(&store, Operations::default()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let server = tokio::spawn(stacd::server::run(
        listener,
        state.clone(),
        HttpOptions::default(),
        shutdown,
        Duration::from_secs(2),
    ));

    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    stop.send(()).unwrap();
    let finished = tokio::time::timeout(Duration::from_secs(10), server).await;
    assert!(finished.is_ok(), "the server did not stop within the drain time");
    assert!(!state.operations.is_ready());
}

#[tokio::test]
async fn postgres_statement_timeout_is_a_503() {
    let store = common::postgres("stacd_ops_statement_timeout").await;
    let url = store.url.clone();
    let timeout_options = stacd::store::ConnectOptions {
        statement_timeout: Some(Duration::from_millis(50)),
        ..Default::default()
    };
    let timed = stacd::store::connect_with(&url, &timeout_options).await.unwrap();
    drop(timed);
    // A real cancellation from PostgreSQL, mapped to the server's error.
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let options = options.options([("statement_timeout", "50ms")]);
    let pool = sqlx::PgPool::connect_with(options).await.unwrap();
    let error = sqlx::query("SELECT pg_sleep(2)")
        .execute(&pool)
        .await
        .unwrap_err();
    let error = stacd::Error::from(error);
    assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error.code(), "Timeout");
}

on_both_stores!("stacd_ops_";
    shedding_and_timeouts,
    ready_turns_off_when_draining,
    shutdown_stops_within_drain
);
