//! Errors a request can end with, and how each becomes a response.
//!
//! Bad input is the client's fault and answers 400 with a message; nothing a client
//! sends can make a handler panic. Failures of the host (libvirt down, a command that
//! failed) answer 502/503 with the reason, which names the command that failed.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("not logged in")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The request is well-formed but this host's state does not allow it (a layer
    /// action on a system that does not run from a layered root).
    #[error("{0}")]
    Conflict(String),
    #[error("too many failed logins; try again in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Failed(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            serde_json::json!({ "error": self.to_string(), "status": self.status().as_u16() });
        let mut resp = (self.status(), axum::Json(body)).into_response();
        if let Self::TooManyRequests { retry_after } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl From<hostinfo::Error> for ApiError {
    fn from(e: hostinfo::Error) -> Self {
        Self::Failed(e.to_string())
    }
}

/// A change the privileged helper did not make, answered as this process would.
impl From<helper::Failure> for ApiError {
    fn from(f: helper::Failure) -> Self {
        use helper::FailureKind as K;
        match f.kind {
            K::Invalid => Self::BadRequest(f.message),
            K::NotFound => Self::NotFound(f.message),
            K::Conflict => Self::Conflict(f.message),
            K::NotAllowed => Self::Forbidden(f.message),
            K::Unavailable => Self::Unavailable(f.message),
            K::Failed => Self::Failed(f.message),
        }
    }
}

/// A change not made in the privileged helper, as it tells the web side.
impl From<ApiError> for helper::Failure {
    fn from(e: ApiError) -> Self {
        use helper::FailureKind as K;
        let kind = match &e {
            ApiError::BadRequest(_) => K::Invalid,
            ApiError::NotFound(_) => K::NotFound,
            ApiError::Conflict(_) => K::Conflict,
            ApiError::Unauthorized | ApiError::Forbidden(_) | ApiError::TooManyRequests { .. } => {
                K::NotAllowed
            }
            ApiError::Unavailable(_) => K::Unavailable,
            ApiError::Failed(_) => K::Failed,
        };
        Self::new(kind, e.to_string())
    }
}

impl From<command::CommandError> for ApiError {
    fn from(e: command::CommandError) -> Self {
        Self::Failed(e.to_string())
    }
}

/// Parses an `application/x-www-form-urlencoded` body; a malformed one is a 400.
pub fn parse_form<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::BadRequest(format!("malformed form: {e}")))
}

/// Parses a JSON body; a malformed one is a 400.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))
}
