//! Metrics, compression, caching headers and rate limits, on both stores.

#[macro_use]
mod common;

use std::io::Read;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use serde_json::Value;
use stacd::api::CatalogInfo;
use stacd::load::{LoadOptions, load_paths};
use stacd::paging::TokenSigner;
use stacd::routes::{AppState, ClientRateLimit, HttpOptions, router};
use stacd::search::SearchLimits;
use stacd::store::InsertMode;

/// Loads the drone survey example catalog: one collection, 12 items.
async fn load_example(store: &TestStore) {
    let options = LoadOptions {
        mode: InsertMode::Upsert,
        batch_size: 100,
        progress: false,
        checks: Default::default(),
    };
    let paths = [PathBuf::from("examples/drone-survey")];
    let summary = load_paths(store.store.as_ref(), &paths, options).await.unwrap();
    assert_eq!(summary.rejected, 0);
}

async fn app_with(store: &TestStore, http: HttpOptions, tokens: Option<stacd::auth::Tokens>) -> Router {
    let state = Arc::new(AppState {
        signer: TokenSigner::new(store.store.secret().await.unwrap()),
        store: store.store.clone(),
        limits: SearchLimits::default(),
        info: CatalogInfo {
            id: "test".into(),
            title: "Test".into(),
            description: "Test".into(),
        },
        public_url: None,
        tokens,
        private_reads: false,
        body_limit: 1024 * 1024,
        max_bulk_items: 100,
        checks: Default::default(),
        operations: Arc::new(Default::default()),
        queryables: None,
    });
    router(state, http)
}

async fn get_with(app: &Router, uri: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::get(uri).header(header::HOST, "stac.test");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

fn header_text(answer: &Answer, name: header::HeaderName) -> &str {
    answer
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn vary_names(answer: &Answer) -> Vec<String> {
    answer
        .headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .collect()
}

/// Finds the value of one sample line, such as `name{labels} 3`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

async fn metrics_count_requests(store: TestStore) {
    load_example(&store).await;
    let app = app_with(&store, HttpOptions::default(), None).await;
    assert_eq!(get(&app, "/search?limit=5").await.status, StatusCode::OK);
    let item = "/collections/drone-survey/items/tavira-20240514-nadir-01";
    assert_eq!(get(&app, item).await.status, StatusCode::OK);
    assert_eq!(get(&app, "/collections/nope").await.status, StatusCode::NOT_FOUND);

    let answer = get(&app, "/metrics").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.content_type().starts_with("application/openmetrics-text"));
    let text = String::from_utf8(answer.body.clone()).unwrap();
    let searches = sample(
        &text,
        r#"stacd_http_requests_total{route="/search",method="GET",status="200"}"#,
    );
    assert!(searches.is_some_and(|n| n >= 1.0), "{text}");
    let not_found = sample(
        &text,
        r#"stacd_http_requests_total{route="/collections/{collection_id}",method="GET",status="404"}"#,
    );
    assert!(not_found.is_some_and(|n| n >= 1.0), "{text}");
    let errors = sample(&text, r#"stacd_errors_total{code="NotFound"}"#);
    assert!(errors.is_some_and(|n| n >= 1.0), "{text}");
    let items = sample(&text, "stacd_items_served_total");
    assert!(items.is_some_and(|n| n >= 6.0), "{text}");
    let bytes = sample(&text, "stacd_http_response_body_bytes_total");
    assert!(bytes.is_some_and(|n| n > 1000.0), "{text}");
    let timed = sample(
        &text,
        r#"stacd_http_request_duration_seconds_count{route="/search",method="GET"}"#,
    );
    assert!(timed.is_some_and(|n| n >= 1.0), "{text}");
    assert!(text.contains("stacd_db_pool_connections{pool="), "{text}");
    assert!(text.contains("stacd_db_pool_max_connections{pool="), "{text}");
    assert!(text.contains("stacd_db_pool_acquire_duration_seconds") || store.url.starts_with("sqlite"));
    assert!(text.contains("stacd_http_requests_in_flight"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"));
}

fn decode(encoding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "gzip" => {
            flate2::read::GzDecoder::new(body).read_to_end(&mut out).unwrap();
        }
        "br" => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        "zstd" => out = zstd::decode_all(body).unwrap(),
        other => panic!("unexpected encoding {other}"),
    }
    out
}

async fn compression_follows_accept_encoding(store: TestStore) {
    load_example(&store).await;
    let app = app_with(&store, HttpOptions::default(), None).await;
    let uri = "/search?limit=12";
    let plain = get(&app, uri).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(!plain.headers.contains_key(header::CONTENT_ENCODING));
    let expected: Value = plain.json();

    for encoding in ["gzip", "br", "zstd"] {
        let answer = get_with(&app, uri, &[("accept-encoding", encoding)]).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(header_text(&answer, header::CONTENT_ENCODING), encoding);
        assert!(
            answer.body.len() < plain.body.len() / 3,
            "{encoding} saved too little"
        );
        let decoded: Value = serde_json::from_slice(&decode(encoding, &answer.body)).unwrap();
        assert_eq!(decoded, expected, "{encoding} changed the document");
    }

    // The client's preference order wins.
    let answer = get_with(&app, uri, &[("accept-encoding", "gzip;q=0.5, zstd;q=1.0")]).await;
    assert_eq!(header_text(&answer, header::CONTENT_ENCODING), "zstd");

    // A wildcard names no coding, so the body stays as it is.
    let answer = get_with(&app, uri, &[("accept-encoding", "*")]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(!answer.headers.contains_key(header::CONTENT_ENCODING));

    // Small bodies stay as they are.
    let small = get_with(&app, "/health", &[("accept-encoding", "gzip")]).await;
    assert!(!small.headers.contains_key(header::CONTENT_ENCODING));

    let off = HttpOptions {
        compression_min_bytes: None,
        ..HttpOptions::default()
    };
    let app = app_with(&store, off, None).await;
    let answer = get_with(&app, uri, &[("accept-encoding", "gzip")]).await;
    assert!(!answer.headers.contains_key(header::CONTENT_ENCODING));
    assert!(!vary_names(&answer).contains(&"accept-encoding".to_string()));
}

async fn cache_headers_per_resource(store: TestStore) {
    load_example(&store).await;
    let app = app_with(&store, HttpOptions::default(), None).await;
    let item = "/collections/drone-survey/items/tavira-20240514-nadir-01";
    let cases = [
        (item, "public, max-age=300"),
        ("/collections/drone-survey", "public, max-age=60"),
        ("/collections", "public, max-age=60"),
        ("/search?limit=2", "public, max-age=10"),
        ("/collections/drone-survey/items?limit=2", "public, max-age=10"),
        ("/", "public, max-age=300"),
        ("/conformance", "public, max-age=300"),
        ("/health", "no-store"),
        ("/metrics", "no-store"),
        ("/collections/nope", "no-store"),
        ("/search?bbox=1,2", "no-store"),
    ];
    for (uri, expected) in cases {
        let answer = get(&app, uri).await;
        assert_eq!(header_text(&answer, header::CACHE_CONTROL), expected, "{uri}");
        let vary = vary_names(&answer);
        assert!(vary.contains(&"origin".to_string()), "{uri}: {vary:?}");
        assert!(vary.contains(&"accept-encoding".to_string()), "{uri}: {vary:?}");
        assert_eq!(
            vary.iter().filter(|v| *v == "accept-encoding").count(),
            1,
            "{uri}"
        );
    }

    // Revalidation keeps the caching headers.
    let first = get(&app, item).await;
    let etag = header_text(&first, header::ETAG).to_string();
    let again = get_with(&app, item, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(header_text(&again, header::ETAG), etag);
    assert_eq!(header_text(&again, header::CACHE_CONTROL), "public, max-age=300");

    // POST searches are never stored.
    let answer = post_json(&app, "/search", &serde_json::json!({"limit": 1})).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(header_text(&answer, header::CACHE_CONTROL), "no-store");
}

async fn rate_limit_answers_429(store: TestStore) {
    load_example(&store).await;
    let folder = tempfile::tempdir().unwrap();
    let tokens_file = folder.path().join("tokens");
    let first = stacd::auth::new_token(&tokens_file, stacd::auth::Scope::Read, "first").unwrap();
    let second = stacd::auth::new_token(&tokens_file, stacd::auth::Scope::Read, "second").unwrap();
    let tokens = stacd::auth::Tokens::load(&tokens_file).unwrap();
    let one = NonZeroU32::new(1).unwrap();
    let two = NonZeroU32::new(2).unwrap();
    let limit = ClientRateLimit::new(one, two, Vec::new(), Some(tokens.clone()));
    let http = HttpOptions {
        rate_limit: Some(Arc::new(limit)),
        ..HttpOptions::default()
    };
    let app = app_with(&store, http, Some(tokens)).await;

    // Anonymous requests without a peer address share one bucket: a burst of two.
    assert_eq!(get(&app, "/collections").await.status, StatusCode::OK);
    assert_eq!(get(&app, "/collections").await.status, StatusCode::OK);
    let limited = get(&app, "/collections").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.json()["code"], "TooManyRequests");
    let retry: u64 = header_text(&limited, header::RETRY_AFTER).parse().unwrap();
    assert!(retry >= 1);

    // Probes and metrics are never limited.
    assert_eq!(get(&app, "/health").await.status, StatusCode::OK);
    assert_eq!(get(&app, "/metrics").await.status, StatusCode::OK);

    // Each valid token has its own bucket, and an invalid token counts as anonymous.
    for token in [&first, &second] {
        let bearer = format!("Bearer {token}");
        let answer = get_with(&app, "/collections", &[("authorization", &bearer)]).await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    let forged = get_with(&app, "/collections", &[("authorization", "Bearer made-up")]).await;
    assert_eq!(forged.status, StatusCode::TOO_MANY_REQUESTS);
}

on_both_stores!("stacd_http_ops_";
    metrics_count_requests,
    compression_follows_accept_encoding,
    cache_headers_per_resource,
    rate_limit_answers_429
);
