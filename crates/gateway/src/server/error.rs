//! The one place where errors become HTTP responses, in the dialect the client speaks: Anthropic's error JSON on
//! `/v1/messages`, OpenAI's on `/v1/chat/completions`, Google's on Gemini's doors.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use nines_wire::{Dialect, EncodeError, ErrorShape, ErrorType};

use crate::dispatch::flight::Summary;
use crate::provider::{ErrorKind, ProviderError};
use crate::route::UnknownModel;

#[derive(Debug)]
pub enum ApiError {
    Unauthorized,
    BadRequest {
        message: String,
        param: Option<String>,
    },
    UnknownModel(UnknownModel),
    /// A provider refused the request for the request's own fault (400-class); not failed over.
    Refused {
        error: ProviderError,
    },
    /// No target could carry a field of the request.
    Inexpressible(EncodeError),
    /// Every target failed.
    Exhausted {
        model: String,
        summary: Summary,
    },
    NotFound {
        path: String,
    },
    /// A resource the client named does not exist (a stored response, a previous response id).
    Missing {
        message: String,
        param: Option<String>,
    },
    /// The gateway itself failed (its store); not the provider's fault nor the client's.
    Internal {
        message: String,
    },
    MethodNotAllowed {
        method: String,
        path: String,
    },
    /// The body could not be read (too large, not UTF-8 where required…).
    Body {
        status: u16,
        message: String,
    },
}

/// A body that could not be read (too large…).
impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(r: axum::extract::rejection::BytesRejection) -> Self {
        ApiError::Body { status: r.status().as_u16(), message: r.body_text() }
    }
}

impl ApiError {
    fn parts(&self, dialect: Dialect) -> (u16, ErrorType, String, Option<String>) {
        match self {
            ApiError::Unauthorized => (
                401,
                ErrorType::Authentication,
                "invalid or missing API key for this gateway".to_owned(),
                None,
            ),
            ApiError::BadRequest { message, param } => {
                (400, ErrorType::InvalidRequest, message.clone(), param.clone())
            }
            ApiError::UnknownModel(e) => (404, ErrorType::NotFound, e.to_string(), Some("model".to_owned())),
            ApiError::Refused { error } => {
                // Only a client-error status of the provider's is the client's (anything else was classified as the
                // provider's fault and never comes here; kept safe anyway).
                let status = error.status.filter(|s| (400..500).contains(s)).unwrap_or(400);
                let kind = match status {
                    413 => ErrorType::RequestTooLarge,
                    404 => ErrorType::NotFound,
                    _ if error.kind == ErrorKind::ContextLength => ErrorType::ContextLength,
                    _ => ErrorType::InvalidRequest,
                };
                (status, kind, error.message.clone(), None)
            }
            ApiError::Inexpressible(e) => {
                (400, ErrorType::InvalidRequest, e.to_string(), Some(e.field.clone()))
            }
            ApiError::Exhausted { model, summary } => {
                let (status, kind) = match summary.dominant {
                    // Nothing sent: every target skipped. Unavailable ones come back: the SDKs may retry.
                    _ if summary.sent == 0 && summary.retry_after.is_some() => (503, ErrorType::Overloaded),
                    _ if summary.sent == 0 => (502, ErrorType::Api),
                    ErrorKind::RateLimited => (429, ErrorType::RateLimited),
                    ErrorKind::Timeout => (504, ErrorType::Timeout),
                    // Every target refused the request itself: it is the client's to fix.
                    ErrorKind::BadRequest | ErrorKind::ContextLength => {
                        (summary.last_status.unwrap_or(400), ErrorType::InvalidRequest)
                    }
                    // Our keys or our model names: configuration, which no retry will fix.
                    ErrorKind::Auth | ErrorKind::NotFound => (502, ErrorType::Api),
                    // Anthropic's clients know 529 as "overloaded, try again later".
                    _ if dialect == Dialect::Anthropic => (529, ErrorType::Overloaded),
                    _ => (503, ErrorType::Overloaded),
                };
                let message = if summary.lines == 0 {
                    format!("no target of \"{model}\" could be tried")
                } else if summary.sent == 0 {
                    format!("no target of \"{model}\" could be tried: {}", summary.explain)
                } else {
                    format!("all {} attempt(s) for \"{model}\" failed: {}", summary.sent, summary.explain)
                };
                (status, kind, message, None)
            }
            ApiError::Missing { message, param } => {
                (404, ErrorType::NotFound, message.clone(), param.clone())
            }
            ApiError::Internal { message } => (500, ErrorType::Api, message.clone(), None),
            ApiError::NotFound { path } => {
                (404, ErrorType::NotFound, format!("no such endpoint: {path}"), None)
            }
            ApiError::MethodNotAllowed { method, path } => {
                (405, ErrorType::InvalidRequest, format!("{method} is not allowed on {path}"), None)
            }
            ApiError::Body { status, message } => {
                let kind =
                    if *status == 413 { ErrorType::RequestTooLarge } else { ErrorType::InvalidRequest };
                (*status, kind, message.clone(), None)
            }
        }
    }

    pub fn render(self, dialect: Dialect) -> Response {
        let (status, kind, message, param) = self.parts(dialect);
        let body = ErrorShape { status, kind, message: &message, param: param.as_deref() }.body(dialect);
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut resp = (code, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        let (retry_after, request_id) = match &self {
            ApiError::Refused { error } => (error.retry_after, error.request_id.as_deref()),
            ApiError::Exhausted { summary, .. } => {
                (summary.retry_after, summary.upstream_request_id.as_deref())
            }
            _ => (None, None),
        };
        if let Some(ra) = retry_after {
            let secs = ra.as_secs() + u64::from(ra.subsec_nanos() > 0);
            h.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
            h.insert("x-nines-upstream-request-id", id);
        }
        if let ApiError::Exhausted { summary, .. } = &self {
            h.insert("x-nines-attempts", HeaderValue::from(summary.sent));
        }
        // The official SDKs (OpenAI's and Anthropic's) obey x-should-retry over their own status rules: only an
        // exhausted route is worth their retry; a refused request never is.
        let retry = matches!(status, 429 | 503 | 504 | 529);
        h.insert("x-should-retry", HeaderValue::from_static(if retry { "true" } else { "false" }));
        resp
    }
}
