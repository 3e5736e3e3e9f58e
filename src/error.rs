//! One error type for the whole server, and its mapping to HTTP.
//!
//! Every error leaves the server as an OGC API exception body,
//! `{"code": ..., "description": ...}`, with the status that fits it. Client
//! errors describe the bad value; server errors say nothing internal, and the
//! detail goes to the log instead.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors the server reports, each with its HTTP status and OGC exception code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request parameter or body field has an invalid value.
    #[error("{0}")]
    InvalidParameter(String),

    /// The request names query parameters the endpoint does not define.
    #[error("{0}")]
    UnknownParameter(String),

    /// The request body is not valid JSON for this endpoint.
    #[error("{0}")]
    InvalidBody(String),

    /// The request uses a valid construct that this server does not implement.
    #[error("{0}")]
    NotImplemented(String),

    /// The resource does not exist.
    #[error("{0}")]
    NotFound(String),

    /// The write conflicts with existing data, such as duplicate ids.
    #[error("{0}")]
    Conflict(String),

    /// `If-Match` named an entity tag that is no longer current.
    #[error("{0}")]
    PreconditionFailed(String),

    /// The request body is larger than the configured limit.
    #[error("{0}")]
    PayloadTooLarge(String),

    /// The request has no valid credentials.
    #[error("{0}")]
    Unauthorized(String),

    /// The credentials are valid but do not allow the request.
    #[error("{0}")]
    Forbidden(String),

    /// The request body has a media type the endpoint does not accept.
    #[error("{0}")]
    UnsupportedMediaType(String),

    /// The method is not allowed on this path.
    #[error("{0}")]
    MethodNotAllowed(String),

    /// A STAC document failed validation before it was stored.
    #[error("{0}")]
    InvalidDocument(String),

    /// The client sent more requests than its rate limit allows.
    #[error("{0}")]
    TooManyRequests(String),

    /// The server is at its limit of concurrent requests.
    #[error("{0}")]
    Overloaded(String),

    /// The request took longer than the server allows.
    #[error("{0}")]
    TimedOut(String),

    /// The store cannot be reached or did not respond.
    #[error("the catalog store is unavailable: {0}")]
    Unavailable(String),

    /// The database returned an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file that could not be read.
        path: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// An internal invariant failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Returns the HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::InvalidParameter(_)
            | Error::UnknownParameter(_)
            | Error::InvalidBody(_)
            | Error::InvalidDocument(_) => StatusCode::BAD_REQUEST,
            Error::NotImplemented(_) => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable(_) | Error::Overloaded(_) | Error::TimedOut(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Database(e) if is_unavailable(e) || is_cancelled(e) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Database(_) | Error::Migrate(_) | Error::Io { .. } | Error::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// Returns the OGC exception code, a short machine-readable name.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidParameter(_) => "InvalidParameterValue",
            Error::UnknownParameter(_) => "InvalidParameter",
            Error::InvalidBody(_) => "InvalidRequestBody",
            Error::InvalidDocument(_) => "InvalidDocument",
            Error::NotImplemented(_) => "NotSupported",
            Error::NotFound(_) => "NotFound",
            Error::Conflict(_) => "Conflict",
            Error::PreconditionFailed(_) => "PreconditionFailed",
            Error::PayloadTooLarge(_) => "PayloadTooLarge",
            Error::Unauthorized(_) => "Unauthorized",
            Error::Forbidden(_) => "Forbidden",
            Error::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Error::MethodNotAllowed(_) => "MethodNotAllowed",
            Error::TooManyRequests(_) => "TooManyRequests",
            Error::Unavailable(_) => "ServiceUnavailable",
            Error::Overloaded(_) => "Overloaded",
            Error::TimedOut(_) => "Timeout",
            Error::Database(e) if is_cancelled(e) => "Timeout",
            Error::Database(e) if is_unavailable(e) => "ServiceUnavailable",
            _ => "InternalServerError",
        }
    }

    /// Builds an `InvalidParameter` error for `name` with value `value`.
    /// Long values are cut to their first 200 characters, so an error never echoes a whole body back.
    pub fn parameter(name: &str, value: impl std::fmt::Display, reason: impl std::fmt::Display) -> Error {
        const SHOWN: usize = 200;
        let value = value.to_string();
        let shown = match value.char_indices().nth(SHOWN) {
            Some((cut, _)) => format!("{}...", &value[..cut]),
            None => value,
        };
        Error::InvalidParameter(format!("invalid value for '{name}': '{shown}': {reason}"))
    }
}

/// Tells whether a database error means the store is unreachable rather than a bug.
fn is_unavailable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed
    )
}

/// Tells whether PostgreSQL cancelled a statement, as `statement_timeout` does (SQLSTATE 57014).
fn is_cancelled(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.code().as_deref() == Some("57014"))
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        crate::metrics::record_error(self.code());
        let description = if status.is_server_error() {
            match (&self, status) {
                // Shedding and timeouts are logged where they happen, and their text is safe to show.
                (Error::Overloaded(message) | Error::TimedOut(message), _) => message.clone(),
                (Error::Database(e), _) if is_cancelled(e) => {
                    tracing::warn!(error = %self, "a query reached the statement timeout");
                    "the database cancelled the query at its time limit; narrow the search or retry later"
                        .to_string()
                }
                (_, StatusCode::SERVICE_UNAVAILABLE) => {
                    tracing::error!(error = %self, "request failed");
                    "the catalog store is unavailable, retry later".to_string()
                }
                _ => {
                    tracing::error!(error = %self, "request failed");
                    "internal server error; the server log has the details".to_string()
                }
            }
        } else {
            self.to_string()
        };
        let body = json!({ "code": self.code(), "description": description });
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"stacd\""),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}
