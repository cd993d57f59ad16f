//! Salesforce's error bodies: `[{"message": ..., "errorCode": ...}]` for the
//! REST API and Bulk API 2.0, `{"error", "error_description"}` for OAuth.

use axum::response::Response;
use http::StatusCode;

use crate::json::Obj;

/// A REST API error.
#[derive(Debug, Clone)]
pub(crate) struct SfError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl SfError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    pub(crate) fn invalid_session() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )
    }

    pub(crate) fn limit_exceeded() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        )
    }

    pub(crate) fn body(&self) -> String {
        let mut out = String::with_capacity(64 + self.message.len());
        out.push('[');
        let mut o = Obj::new(&mut out);
        o.str("message", &self.message).str("errorCode", self.code);
        o.end();
        out.push(']');
        out
    }

    pub(crate) fn into_response(self) -> Response {
        super::respond_json(self.status, self.body())
    }
}

/// An OAuth token endpoint error (`{"error", "error_description"}`, 400).
pub(crate) fn oauth_error(error: &str, description: &str) -> Response {
    let mut out = String::new();
    let mut o = Obj::new(&mut out);
    o.str("error", error).str("error_description", description);
    o.end();
    super::respond_json(StatusCode::BAD_REQUEST, out)
}
