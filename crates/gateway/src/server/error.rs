//! The one place where errors become HTTP responses, in the dialect the client speaks: Anthropic's error JSON on
//! `/v1/messages`, OpenAI's on `/v1/chat/completions`, Google's on Gemini's doors.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use nines_wire::{Dialect, EncodeError, ErrorShape, ErrorType};

use crate::admit::limits::{Over, Which};
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
    /// The key may not do this (use this route…).
    Forbidden {
        message: String,
    },
    /// Over one of the key's (or its team's) limits or budgets.
    Limited(Over),
    /// The gateway is at one of its global bounds (requests in flight, bytes held).
    Busy {
        what: &'static str,
    },
    /// No target could start this request in time: its targets are at their concurrency limits.
    Shed {
        retry_after: std::time::Duration,
    },
    /// A request's headers are larger than the gateway takes.
    HeadersTooLarge {
        max: u32,
    },
}

impl From<crate::admit::Refusal> for ApiError {
    fn from(r: crate::admit::Refusal) -> Self {
        match r {
            crate::admit::Refusal::Route { route, key } => {
                ApiError::Forbidden { message: format!("key \"{key}\" may not use model \"{route}\"") }
            }
            crate::admit::Refusal::Over(over) => ApiError::Limited(over),
        }
    }
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
                // The field at fault, when the client sent the format the provider named it in.
                let param = error.param.as_deref().filter(|(d, _)| *d == dialect).map(|(_, p)| p.clone());
                (status, kind, error.message.clone(), param)
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
            ApiError::Forbidden { message } => (403, ErrorType::PermissionDenied, message.clone(), None),
            ApiError::Limited(over) => {
                let message = match over.which {
                    Which::DailyBudget | Which::MonthlyBudget => format!(
                        "{} of {} exhausted: ${:.4} of ${:.2} left",
                        over.which.label(),
                        over.whose,
                        over.remaining,
                        over.limit
                    ),
                    _ if !over.retry => format!(
                        "this request needs more {} than {}'s limit of {} allows at all",
                        over.which.label(),
                        over.whose,
                        over.limit
                    ),
                    _ => format!(
                        "rate limit of {} reached: {} {}; retry in {:.1}s",
                        over.whose,
                        over.limit,
                        over.which.label(),
                        over.retry_after.as_secs_f64()
                    ),
                };
                (429, ErrorType::RateLimited, message, None)
            }
            ApiError::Busy { what } => (
                503,
                ErrorType::Overloaded,
                format!("the gateway is at its bound of {what}; retry shortly"),
                None,
            ),
            ApiError::Shed { retry_after } => (
                if dialect == Dialect::Anthropic { 529 } else { 503 },
                ErrorType::Overloaded,
                format!(
                    "every target of this request is at its concurrency limit and it could not start in time; retry in \
                     {:.1}s",
                    retry_after.as_secs_f64()
                ),
                None,
            ),
            ApiError::HeadersTooLarge { max } => (
                431,
                ErrorType::InvalidRequest,
                format!("request headers larger than this gateway takes ({max} bytes)"),
                None,
            ),
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
            ApiError::Limited(over) => {
                (Some(over.retry_after.max(std::time::Duration::from_millis(1))), None)
            }
            ApiError::Busy { .. } => (Some(std::time::Duration::from_secs(1)), None),
            ApiError::Shed { retry_after } => (Some(*retry_after), None),
            _ => (None, None),
        };
        if let ApiError::Limited(over) = &self {
            rate_limit_headers(h, dialect, over);
        }
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
        let retry = matches!(status, 429 | 503 | 504 | 529)
            && !matches!(&self, ApiError::Limited(o) if !o.retry || matches!(o.which, Which::DailyBudget | Which::MonthlyBudget));
        h.insert("x-should-retry", HeaderValue::from_static(if retry { "true" } else { "false" }));
        resp
    }
}

/// The provider-style rate-limit headers of a refusal, so that the official SDKs back off by themselves: OpenAI's
/// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (resets as `1.5s`), Anthropic's
/// `anthropic-ratelimit-{requests,input-tokens,output-tokens}-{limit,remaining,reset}` (resets as RFC 3339), and
/// `retry-after-ms` for both. Gemini's clients read `Retry-After` alone.
fn rate_limit_headers(h: &mut http::HeaderMap, dialect: Dialect, over: &Over) {
    let ms = u64::try_from(over.retry_after.as_millis()).unwrap_or(u64::MAX).max(1);
    h.insert("retry-after-ms", HeaderValue::from(ms));
    let limit = over.limit.max(0.0).round() as u64;
    let remaining = over.remaining.max(0.0).floor() as u64;
    let mut set = |name: String, value: String| {
        if let (Ok(n), Ok(v)) = (http::HeaderName::try_from(name), HeaderValue::try_from(value)) {
            h.insert(n, v);
        }
    };
    match dialect {
        Dialect::Anthropic => {
            let what = match over.which {
                Which::Requests | Which::Concurrency => "requests",
                Which::InputTokens => "input-tokens",
                Which::OutputTokens => "output-tokens",
                Which::DailyBudget | Which::MonthlyBudget => return,
            };
            let reset = std::time::SystemTime::now() + over.retry_after;
            let reset = humantime_serde::re::humantime::format_rfc3339_seconds(reset).to_string();
            set(format!("anthropic-ratelimit-{what}-limit"), limit.to_string());
            set(format!("anthropic-ratelimit-{what}-remaining"), remaining.to_string());
            set(format!("anthropic-ratelimit-{what}-reset"), reset);
        }
        Dialect::OpenAiChat | Dialect::OpenAiResponses => {
            let what = match over.which {
                Which::Requests | Which::Concurrency => "requests",
                Which::InputTokens | Which::OutputTokens => "tokens",
                Which::DailyBudget | Which::MonthlyBudget => return,
            };
            set(format!("x-ratelimit-limit-{what}"), limit.to_string());
            set(format!("x-ratelimit-remaining-{what}"), remaining.to_string());
            set(format!("x-ratelimit-reset-{what}"), format!("{:.3}s", over.retry_after.as_secs_f64()));
        }
        Dialect::Gemini => {}
    }
}
