//! `Cache-Control` and `Vary` for CDNs and browser caches.
//!
//! Each kind of resource gets its own configurable `Cache-Control`: items
//! change rarely, collections change as items arrive (their extents and
//! counts), searches change with every write, and the landing page,
//! conformance and API documents change only with a new release. Only
//! successful reads (200 and 304 to GET or HEAD) are cacheable; everything
//! else is `no-store`.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

/// `Cache-Control` values per kind of resource.
#[derive(Debug, Clone)]
pub struct CachePolicy {
    /// A single item.
    pub items: HeaderValue,
    /// The collection list and single collections.
    pub collections: HeaderValue,
    /// Item searches and collection item pages.
    pub searches: HeaderValue,
    /// Landing page, conformance, API definition and queryables.
    pub metadata: HeaderValue,
    /// Reads need a token, so shared caches must not store responses:
    /// `public` becomes `private`.
    pub private: bool,
    /// Responses vary with `Accept-Encoding` because they may be compressed.
    pub compression: bool,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy {
            items: HeaderValue::from_static("public, max-age=300"),
            collections: HeaderValue::from_static("public, max-age=60"),
            searches: HeaderValue::from_static("public, max-age=10"),
            metadata: HeaderValue::from_static("public, max-age=300"),
            private: false,
            compression: true,
        }
    }
}

impl CachePolicy {
    /// Picks the `Cache-Control` value for a successful read of `route`.
    fn for_route(&self, route: &str) -> HeaderValue {
        let value = match route {
            "/collections/{collection_id}/items/{item_id}" => &self.items,
            "/collections" | "/collections/{collection_id}" => &self.collections,
            "/search" | "/collections/{collection_id}/items" => &self.searches,
            "/"
            | "/conformance"
            | "/api"
            | "/api.html"
            | "/queryables"
            | "/collections/{collection_id}/queryables" => &self.metadata,
            _ => return HeaderValue::from_static("no-store"),
        };
        if !self.private {
            return value.clone();
        }
        let private = value.to_str().unwrap_or("no-store").replace("public", "private");
        HeaderValue::from_str(&private).unwrap_or_else(|_| HeaderValue::from_static("no-store"))
    }
}

/// Sets `Cache-Control` and `Vary` on every response that does not set them itself.
pub(super) async fn set_cache_headers(
    State(policy): State<Arc<CachePolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let read = matches!(*request.method(), Method::GET | Method::HEAD);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let mut response = next.run(request).await;
    let cacheable = read && matches!(response.status(), StatusCode::OK | StatusCode::NOT_MODIFIED);
    let headers = response.headers_mut();
    if !headers.contains_key(header::CACHE_CONTROL) {
        let value = match route.as_deref() {
            Some(route) if cacheable => policy.for_route(route),
            _ => HeaderValue::from_static("no-store"),
        };
        headers.insert(header::CACHE_CONTROL, value);
    }
    let mut vary = vec![header::ORIGIN];
    if policy.compression {
        vary.push(header::ACCEPT_ENCODING);
    }
    if policy.private {
        vary.push(header::AUTHORIZATION);
    }
    for name in vary {
        let present = headers
            .get_all(header::VARY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case(name.as_str()) || v.trim() == "*");
        if !present {
            headers.append(header::VARY, HeaderValue::from_name(name));
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_map_to_their_policy() {
        let policy = CachePolicy::default();
        assert_eq!(
            policy.for_route("/collections/{collection_id}/items/{item_id}"),
            "public, max-age=300"
        );
        assert_eq!(policy.for_route("/search"), "public, max-age=10");
        assert_eq!(policy.for_route("/collections"), "public, max-age=60");
        assert_eq!(policy.for_route("/health"), "no-store");
        assert_eq!(policy.for_route("/metrics"), "no-store");
    }

    #[test]
    fn private_reads_are_never_public() {
        let policy = CachePolicy {
            private: true,
            ..CachePolicy::default()
        };
        assert_eq!(policy.for_route("/search"), "private, max-age=10");
    }
}
