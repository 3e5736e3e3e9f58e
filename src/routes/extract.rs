//! Extractors whose failures use the server's JSON error shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

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
                    "the request body is larger than the server accepts (see --body-limit-mib)".into(),
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
