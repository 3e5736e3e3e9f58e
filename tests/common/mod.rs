//! Test harness: a router on a fresh SQLite file or a fresh PostgreSQL
//! database, and helpers to send requests and read JSON responses.

#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use sqlx::{Connection, Executor};
use stacd::api::CatalogInfo;
use stacd::paging::TokenSigner;
use stacd::prepare::{prepare_collection, prepare_item};
use stacd::routes::{AppState, HttpOptions, router};
use stacd::search::SearchLimits;
use stacd::store::{self, Backend, InsertMode};
use tower::ServiceExt;

/// A store under test, with what keeps it alive.
pub struct TestStore {
    pub store: Arc<dyn Backend>,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// Opens a fresh SQLite store in a temporary folder.
pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("test.sqlite").display());
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    TestStore {
        store,
        url,
        _dir: Some(dir),
    }
}

/// Base URL of the PostgreSQL server used by tests.
pub fn postgres_base_url() -> String {
    std::env::var("STACD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates (or recreates) database `name` on the test server and opens a store on it.
pub async fn postgres(name: &str) -> TestStore {
    let base = postgres_base_url();
    let mut admin = sqlx::PgConnection::connect(&base).await.unwrap_or_else(|e| {
        panic!("PostgreSQL at {base} is required for this test (set STACD_TEST_DATABASE_URL): {e}")
    });
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await
        .unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let url = match base.rfind('/') {
        Some(slash) if base[..slash].contains("://") && slash > base.find("://").unwrap() + 2 => {
            let (head, tail) = base.split_at(slash);
            let query = tail.find('?').map(|q| &tail[q..]).unwrap_or("");
            format!("{head}/{name}{query}")
        }
        _ => panic!("cannot put a database name into {base}"),
    };
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    TestStore {
        store,
        url,
        _dir: None,
    }
}

/// Builds the router with default limits and an optional public URL.
pub async fn app(store: Arc<dyn Backend>, limits: SearchLimits) -> Router {
    let state = Arc::new(AppState {
        signer: TokenSigner::new(store.secret().await.unwrap()),
        store,
        limits,
        info: CatalogInfo {
            id: "test".into(),
            title: "Test catalog".into(),
            description: "Catalog under test".into(),
        },
        public_url: None,
        tokens: None,
        private_reads: false,
        body_limit: 16 * 1024 * 1024,
        max_bulk_items: 10_000,
        checks: Default::default(),
        operations: std::sync::Arc::new(Default::default()),
        queryables: None,
    });
    router(state, HttpOptions::default())
}

/// Builds a router with writes enabled for the given tokens file.
pub async fn writable_app(store: Arc<dyn Backend>, tokens: &std::path::Path, private_reads: bool) -> Router {
    let state = Arc::new(AppState {
        signer: TokenSigner::new(store.secret().await.unwrap()),
        store,
        limits: SearchLimits::default(),
        info: CatalogInfo {
            id: "test".into(),
            title: "Test catalog".into(),
            description: "Catalog under test".into(),
        },
        public_url: None,
        tokens: Some(stacd::auth::Tokens::load(tokens).unwrap()),
        private_reads,
        body_limit: 64 * 1024,
        max_bulk_items: 50,
        checks: Default::default(),
        operations: std::sync::Arc::new(Default::default()),
        queryables: None,
    });
    router(state, HttpOptions::default())
}

/// Writes a collection document.
pub async fn add_collection(store: &dyn Backend, value: Value) {
    store
        .upsert_collection(&prepare_collection(value).unwrap())
        .await
        .unwrap();
}

/// Writes item documents in one batch.
pub async fn add_items(store: &dyn Backend, values: Vec<Value>) {
    let items: Vec<_> = values
        .into_iter()
        .map(|v| prepare_item(v, None).unwrap())
        .collect();
    store.insert_items(&items, InsertMode::Insert).await.unwrap();
}

/// A response read in full.
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// Sends a request through the router.
pub async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

/// Sends a GET with a Host header.
pub async fn get(app: &Router, uri: &str) -> Answer {
    let request = Request::get(uri)
        .header(header::HOST, "stac.test")
        .body(Body::empty())
        .unwrap();
    send(app, request).await
}

/// Sends a POST with a JSON body.
pub async fn post_json(app: &Router, uri: &str, body: &Value) -> Answer {
    let request = Request::post(uri)
        .header(header::HOST, "stac.test")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(app, request).await
}

/// Follows `next` links from a first response and returns every item id in order.
pub async fn page_through(app: &Router, first: Answer) -> Vec<String> {
    let mut ids = Vec::new();
    let mut answer = first;
    for _ in 0..10_000 {
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        let page = answer.json();
        for feature in page["features"].as_array().unwrap() {
            ids.push(format!(
                "{}/{}",
                feature["collection"].as_str().unwrap(),
                feature["id"].as_str().unwrap()
            ));
        }
        let Some(next) = page["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["rel"] == "next")
            .cloned()
        else {
            return ids;
        };
        let href = next["href"].as_str().unwrap().replace("http://stac.test", "");
        answer = if next["method"] == "POST" {
            post_json(app, &href, &next["body"]).await
        } else {
            get(app, &href).await
        };
    }
    panic!("paging did not end");
}

/// Runs each case against a fresh SQLite file and a fresh PostgreSQL database
/// named after the prefix and the case, as `sqlite::CASE` and `postgres::CASE`.
macro_rules! on_both_stores {
    ($prefix:literal; $($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::common::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let store = super::common::postgres(concat!($prefix, stringify!($case))).await;
                    super::$case(store).await;
                }
            )*
        }
    };
}
