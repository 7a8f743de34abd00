//! `ApiError`: a refusal the simulator gives a model request, before it is rendered in a provider's error shape.
//!
//! It carries what every dialect needs (status, message) plus the optional parts only some dialects show (OpenAI's
//! `param` and `code`, Google's `details`, `Retry-After`). Rendering happens in the dialect modules; this module
//! never decides a wire shape.

use http::StatusCode;
use serde_json::Value;

/// A model request refused with an error response.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// OpenAI's `error.param`.
    pub param: Option<String>,
    /// OpenAI's `error.code`.
    pub code: Option<&'static str>,
    /// Google's `error.details`.
    pub details: Vec<Value>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            param: None,
            code: None,
            details: Vec::new(),
            retry_after: None,
        }
    }

    /// A 400 with this message.
    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    #[must_use]
    pub(crate) fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    #[must_use]
    pub(crate) fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    #[must_use]
    pub(crate) fn detail(mut self, detail: Value) -> Self {
        self.details.push(detail);
        self
    }

    #[must_use]
    pub(crate) fn retry_after(mut self, secs: Option<u64>) -> Self {
        self.retry_after = secs;
        self
    }
}

/// Status for a `Status` fault; an impossible code becomes a 500.
pub(crate) fn fault_status(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
