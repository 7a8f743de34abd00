//! The HTTP surface: which path speaks which provider's API, and the one pipeline every model request goes
//! through: count it → take its fault → (chat requests without a fault) admit it against the rate limit or refuse it
//! with a 429 → authenticate and validate (in the dialect) → refuse a prefill when the simulator does → answer
//! (a `Repeat` fault acts here) → render, splicing the in-stream faults (malformed event, in-band error) into the
//! dialect's events and applying body faults (cut, garbage, drip, stall) while rendering, and adding the provider's
//! rate-limit headers to what a counted request gets.
//!
//! This module never validates a request body itself (the dialect modules do) and never touches the socket (the
//! server applies `Reset` when told through `ConnCtl`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};

use crate::answer::{self, Outcome, Prompt};
use crate::continuation::PREFILL_REFUSED;
use crate::error::{ApiError, fault_status};
use crate::faults::FaultKind;
use crate::ratelimit::{self, Admission, Quota};
use crate::server::ConnCtl;
use crate::state::{Arrival, Shared};
use crate::{anthropic, control, embed, gemini, openai, responses};

/// Largest request body read (Anthropic's documented limit for the Messages API).
const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// How long a cut body waits after its last good bytes, so they leave the socket before the abort.
const FLUSH_BEFORE_ABORT: Duration = Duration::from_millis(20);

/// A 200 body that is not JSON (truncated on purpose).
const GARBAGE_JSON: &str = "{\"id\": \"garbage\", \"content\": [{\"text\": \"this is not json";

/// Stream events whose data is not JSON.
const GARBAGE_SSE: &str = "data: {\"this is\": not json\n\ndata: <<garbage>>\n\ndata: }{\n\n";

/// The router of one simulator: the three providers' model APIs (OpenAI's two: Chat Completions and Responses) and
/// the `/_sim` control API.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/messages", post(anthropic_messages))
        .route("/v1/messages/count_tokens", post(anthropic_count_tokens))
        .route("/v1/chat/completions", post(openai_chat))
        .route("/v1/responses", post(openai_responses))
        .route("/v1/embeddings", post(openai_embeddings))
        .route("/v1/models", axum::routing::get(models_list))
        .route("/v1beta/models", axum::routing::get(gemini_models_list))
        .route("/v1beta/models/{target}", post(gemini_models))
        .route("/v1/models/{target}", post(gemini_models))
        .merge(control::routes())
        .fallback(not_found)
        .with_state(shared)
}

/// Which provider a model request speaks to.
#[derive(Clone, Debug)]
pub(crate) enum Dialect {
    Anthropic,
    OpenAi,
    /// `stream` is true for `streamGenerateContent`.
    Gemini {
        model: String,
        stream: bool,
    },
}

/// What a dialect needs from the request being served.
pub(crate) struct Call<'a> {
    /// The simulator's name (the start of every answer).
    pub name: &'a str,
    /// The key the request must carry, if the simulator has one.
    pub api_key: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub query: &'a HashMap<String, String>,
    pub body: &'a [u8],
    /// The fault the request suffers, if any (the dialect applies `Repeat`, `Malformed` and `InBandError`).
    pub fault: Option<&'a FaultKind>,
    /// The simulator refuses a conversation that ends with an assistant message.
    pub refuse_prefill: bool,
}

impl Call<'_> {
    /// Answer a validated prompt: refuse it when it ends with an assistant message and the simulator refuses
    /// prefill; with a `Repeat` fault, start a continuation's answer by repeating the end of what it continues.
    pub(crate) fn respond(&self, prompt: &mut Prompt) -> Result<Outcome, ApiError> {
        if self.refuse_prefill && prompt.ends_with_assistant {
            return Err(ApiError::bad(PREFILL_REFUSED));
        }
        if let Some(FaultKind::Repeat { words }) = self.fault {
            prompt.repeat = *words;
        }
        Ok(answer::respond(self.name, prompt))
    }

    /// A stream's `events` with the in-stream fault spliced in after the first `after` of them: `Malformed` adds
    /// the event `malformed()` and keeps the rest; `InBandError` drops the rest and ends with `error(status, at)`,
    /// `at` being how many events come before it.
    pub(crate) fn stream(
        &self,
        mut events: Vec<String>,
        malformed: impl FnOnce() -> String,
        error: impl FnOnce(u16, usize) -> String,
    ) -> Vec<String> {
        match self.fault {
            Some(FaultKind::Malformed { after }) => {
                let at = (*after).min(events.len());
                events.insert(at, malformed());
            }
            Some(FaultKind::InBandError { after, status }) => {
                let at = (*after).min(events.len());
                events.truncate(at);
                events.push(error(*status, at));
            }
            _ => {}
        }
        events
    }
}

/// A successful answer, before faults and HTTP framing.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A JSON body.
    Json(serde_json::Value),
    /// Server-sent events, each one complete with its terminating blank line.
    Sse(Vec<String>),
}

impl Dialect {
    fn request_id(&self) -> String {
        match self {
            Dialect::Anthropic => crate::ids::base62("req_01", 22),
            Dialect::OpenAi => crate::ids::hex("req_", 32),
            Dialect::Gemini { .. } => String::new(),
        }
    }

    /// The header that carries the request id, for the dialects that send one.
    fn request_id_header(&self) -> Option<&'static str> {
        match self {
            Dialect::Anthropic => Some("request-id"),
            Dialect::OpenAi => Some("x-request-id"),
            Dialect::Gemini { .. } => None,
        }
    }

    fn error(&self, err: &ApiError, request_id: &str) -> Response {
        let body = match self {
            Dialect::Anthropic => anthropic::error_body(err, request_id),
            Dialect::OpenAi => openai::error_body(err),
            Dialect::Gemini { .. } => gemini::error_body(err),
        };
        let mut response = (err.status, axum::Json(body)).into_response();
        self.stamp(response.headers_mut(), request_id);
        if let Some(secs) = err.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }

    fn status_error(&self, status: u16, retry_after: Option<u64>) -> ApiError {
        let status = fault_status(status);
        match self {
            Dialect::Anthropic => anthropic::status_error(status),
            Dialect::OpenAi => openai::status_error(status),
            Dialect::Gemini { .. } => gemini::status_error(status, retry_after),
        }
        .retry_after(retry_after)
    }

    /// The error a `ContextLength` fault produces.
    fn context_length_error(&self) -> ApiError {
        match self {
            Dialect::Anthropic => anthropic::context_length_error(),
            Dialect::OpenAi => openai::context_length_error(),
            Dialect::Gemini { .. } => gemini::context_length_error(),
        }
    }

    /// The 429 for a request over the rate limit: the same error a `Status` fault with 429 gives, with
    /// `Retry-After` and the rate-limit headers.
    fn rate_limited(&self, quota: &Quota, request_id: &str) -> Response {
        let mut response = self.error(&self.status_error(429, Some(quota.retry_after())), request_id);
        self.stamp_quota(response.headers_mut(), quota);
        response
    }

    /// Add the provider's rate-limit headers (Google sends none).
    fn stamp_quota(&self, headers: &mut HeaderMap, quota: &Quota) {
        match self {
            Dialect::Anthropic => ratelimit::stamp_anthropic(headers, quota, std::time::SystemTime::now()),
            Dialect::OpenAi => ratelimit::stamp_openai(headers, quota),
            Dialect::Gemini { .. } => {}
        }
    }

    fn stamp(&self, headers: &mut HeaderMap, request_id: &str) {
        if let (Some(name), Ok(value)) = (self.request_id_header(), HeaderValue::from_str(request_id)) {
            headers.insert(name, value);
        }
    }

    fn sse_content_type(&self) -> &'static str {
        match self {
            Dialect::Anthropic | Dialect::OpenAi => "text/event-stream; charset=utf-8",
            Dialect::Gemini { .. } => "text/event-stream",
        }
    }
}

/// What a model request asks for.
#[derive(Clone, Copy, Debug)]
enum Op {
    Chat,
    /// OpenAI's Responses API (`POST /v1/responses`).
    Responses,
    Embed {
        batch: bool,
    },
    CountTokens,
    /// The model listing (`GET /v1/models`, `GET /v1beta/models`): what a gateway's probe asks for.
    Models,
}

async fn anthropic_messages(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    model_call(shared, Dialect::Anthropic, Op::Chat, req).await
}

/// `GET /v1/models`: Anthropic's listing when the request carries `anthropic-version`, OpenAI's otherwise.
async fn models_list(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let dialect =
        if req.headers().contains_key("anthropic-version") { Dialect::Anthropic } else { Dialect::OpenAi };
    model_call(shared, dialect, Op::Models, req).await
}

/// `GET /v1beta/models`: Gemini's listing.
async fn gemini_models_list(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    model_call(shared, Dialect::Gemini { model: String::new(), stream: false }, Op::Models, req).await
}

async fn anthropic_count_tokens(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    model_call(shared, Dialect::Anthropic, Op::CountTokens, req).await
}

async fn openai_chat(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    model_call(shared, Dialect::OpenAi, Op::Chat, req).await
}

async fn openai_responses(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    model_call(shared, Dialect::OpenAi, Op::Responses, req).await
}

async fn openai_embeddings(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    model_call(shared, Dialect::OpenAi, Op::Embed { batch: true }, req).await
}

async fn gemini_models(
    State(shared): State<Arc<Shared>>,
    Path(target): Path<String>,
    req: Request,
) -> Response {
    let (model, stream, op) = match target.rsplit_once(':') {
        Some((model, "generateContent")) if !model.is_empty() => (model.to_owned(), false, Op::Chat),
        Some((model, "streamGenerateContent")) if !model.is_empty() => (model.to_owned(), true, Op::Chat),
        Some((model, "embedContent")) if !model.is_empty() => {
            (model.to_owned(), false, Op::Embed { batch: false })
        }
        Some((model, "batchEmbedContents")) if !model.is_empty() => {
            (model.to_owned(), false, Op::Embed { batch: true })
        }
        Some((model, "countTokens")) if !model.is_empty() => (model.to_owned(), false, Op::CountTokens),
        _ => return gemini_not_found(req.uri()),
    };
    model_call(shared, Dialect::Gemini { model, stream }, op, req).await
}

/// The pipeline of every model request.
async fn model_call(shared: Arc<Shared>, dialect: Dialect, op: Op, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let conn = parts.extensions.get::<ConnCtl>().cloned();
    let request_id = dialect.request_id();
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        let err = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request exceeds the maximum allowed number of bytes.",
        );
        return dialect.error(&err, &request_id);
    };
    let limited = matches!(op, Op::Chat | Op::Responses);
    let Arrival { fault, admission, refuse_prefill } =
        shared.arrive(parts.uri.path(), &parts.headers, &body, limited);
    let _busy = limited.then(|| Busy::enter(&shared));
    if let Some(cap) = limited.then(|| shared.capacity()).flatten() {
        if _busy.as_ref().is_some_and(|b| b.now > cap.concurrent) {
            let status = if matches!(dialect, Dialect::Anthropic) { 529 } else { 503 };
            return dialect.error(&dialect.status_error(status, None), &request_id);
        }
        tokio::time::sleep(Duration::from_millis(cap.latency_ms)).await;
    }
    if let Some(kind) = &fault {
        tracing::debug!(path = parts.uri.path(), fault = ?kind, "applying fault");
    }
    match &fault {
        Some(FaultKind::Status { status, retry_after }) => {
            return dialect.error(&dialect.status_error(*status, *retry_after), &request_id);
        }
        Some(FaultKind::Echo { status }) => {
            let sent: Vec<String> = parts
                .headers
                .iter()
                .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v.as_bytes())))
                .collect();
            let code = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST);
            let err = ApiError::new(code, format!("malformed request; you sent {}", sent.join(", ")));
            let mut resp = dialect.error(&err, &request_id);
            let key =
                ["authorization", "x-api-key", "x-goog-api-key"].iter().find_map(|h| parts.headers.get(*h));
            if let Some(v) = key.cloned() {
                resp.headers_mut().insert("request-id", v);
            }
            return resp;
        }
        Some(FaultKind::Hang) => {
            closed(conn.as_ref()).await;
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Some(FaultKind::Reset) => {
            if let Some(conn) = &conn {
                conn.reset.cancel();
            }
            closed(conn.as_ref()).await;
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Some(FaultKind::ContextLength) => {
            return dialect.error(&dialect.context_length_error(), &request_id);
        }
        Some(FaultKind::Delay { ms }) => tokio::time::sleep(Duration::from_millis(*ms)).await,
        _ => {}
    }
    let quota = match admission {
        Admission::Unlimited => None,
        Admission::Admitted(quota) => Some(quota),
        Admission::Refused(quota) => return dialect.rate_limited(&quota, &request_id),
    };
    let query = Query::<HashMap<String, String>>::try_from_uri(&parts.uri).map(|q| q.0).unwrap_or_default();
    let call = Call {
        name: &shared.name,
        api_key: shared.api_key.as_deref(),
        headers: &parts.headers,
        query: &query,
        body: &body,
        fault: fault.as_ref(),
        refuse_prefill,
    };
    let result = match (&dialect, op) {
        (_, Op::Models) => models(&dialect, &call),
        (Dialect::Anthropic, Op::Chat) => anthropic::handle(&call),
        (Dialect::Anthropic, Op::CountTokens) => embed::count_tokens(&call),
        (Dialect::OpenAi, Op::Chat) => openai::handle(&call),
        (Dialect::OpenAi, Op::Responses) => responses::handle(&call),
        (Dialect::OpenAi, _) => embed::openai(&call),
        (Dialect::Gemini { model, stream }, Op::Chat) => gemini::handle(&call, model, *stream),
        (Dialect::Gemini { model, .. }, Op::Embed { batch }) => embed::gemini(&call, model, batch),
        (Dialect::Gemini { .. }, Op::CountTokens) => embed::gemini_count_tokens(&call),
        (Dialect::Anthropic, Op::Embed { .. } | Op::Responses) | (Dialect::Gemini { .. }, Op::Responses) => {
            Err(ApiError::new(StatusCode::NOT_FOUND, "Not Found"))
        }
    };
    if let Some(FaultKind::InBandError { status, .. }) = &fault
        && matches!(result, Ok(Reply::Json(_)))
    {
        // No stream to put the error in: reply with the status, as `Status` does.
        return dialect.error(&dialect.status_error(*status, None), &request_id);
    }
    if let Some(FaultKind::Stall { ms, .. }) = &fault
        && !matches!(result, Ok(Reply::Sse(_)))
    {
        // Nothing to stall between: wait before the headers, as `Delay` does.
        tokio::time::sleep(Duration::from_millis(*ms)).await;
    }
    let mut response = match result {
        Ok(reply) => render(&dialect, reply, fault.as_ref(), &request_id),
        Err(err) => dialect.error(&err, &request_id),
    };
    if let Some(quota) = &quota {
        dialect.stamp_quota(response.headers_mut(), quota);
    }
    response
}

/// A chat request being served, counted until dropped.
struct Busy {
    shared: Arc<Shared>,
    now: usize,
}

impl Busy {
    fn enter(shared: &Arc<Shared>) -> Busy {
        use std::sync::atomic::Ordering;
        let now = shared.busy.fetch_add(1, Ordering::AcqRel) + 1;
        shared.peak.fetch_max(now, Ordering::AcqRel);
        Busy { shared: shared.clone(), now }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.shared.busy.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A model listing in the dialect's shape, after the dialect's own key check.
fn models(dialect: &Dialect, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = call.name;
    let body = match dialect {
        Dialect::Anthropic => {
            anthropic::authenticate(call)?;
            let id = format!("claude-{name}");
            serde_json::json!({
                "data": [{"type": "model", "id": id, "display_name": name, "created_at": "2025-01-01T00:00:00Z"}],
                "has_more": false, "first_id": id, "last_id": id,
            })
        }
        Dialect::OpenAi => {
            openai::authenticate(call)?;
            serde_json::json!({"object": "list", "data": [
                {"id": format!("gpt-{name}"), "object": "model", "created": 0, "owned_by": name}]})
        }
        Dialect::Gemini { .. } => {
            gemini::authenticate(call)?;
            serde_json::json!({"models": [{"name": format!("models/gemini-{name}"), "displayName": name,
                "supportedGenerationMethods": ["generateContent", "streamGenerateContent"]}]})
        }
    };
    Ok(Reply::Json(body))
}

/// Wait until the request's connection is gone (forever when served without one).
async fn closed(conn: Option<&ConnCtl>) {
    match conn {
        Some(conn) => conn.closed.cancelled().await,
        None => std::future::pending().await,
    }
}

/// One step of a response body.
enum Step {
    Chunk(Bytes),
    Sleep(Duration),
    /// End the body with an error: hyper aborts the connection (HTTP/1) or resets the stream (HTTP/2).
    Abort,
}

/// Frame a successful reply as HTTP, applying the body faults.
fn render(dialect: &Dialect, reply: Reply, fault: Option<&FaultKind>, request_id: &str) -> Response {
    let mut headers = HeaderMap::new();
    dialect.stamp(&mut headers, request_id);
    let body = match reply {
        Reply::Json(value) => {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            let bytes = Bytes::from(value.to_string());
            match fault {
                Some(FaultKind::Garbage | FaultKind::Malformed { .. }) => Body::from(GARBAGE_JSON),
                Some(FaultKind::Cut { .. }) => {
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                    let half = bytes.slice(..bytes.len() / 2);
                    stepped(vec![Step::Chunk(half), Step::Sleep(FLUSH_BEFORE_ABORT), Step::Abort])
                }
                _ => Body::from(bytes),
            }
        }
        Reply::Sse(events) => {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(dialect.sse_content_type()));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            let chunks = events.into_iter().map(|e| Step::Chunk(Bytes::from(e)));
            match fault {
                Some(FaultKind::Garbage) => Body::from(GARBAGE_SSE),
                Some(FaultKind::Cut { after }) => {
                    let mut steps: Vec<Step> = chunks.take(*after).collect();
                    steps.extend([Step::Sleep(FLUSH_BEFORE_ABORT), Step::Abort]);
                    stepped(steps)
                }
                Some(FaultKind::Drip { ms }) => {
                    let mut steps = Vec::new();
                    for (i, chunk) in chunks.enumerate() {
                        if i > 0 {
                            steps.push(Step::Sleep(Duration::from_millis(*ms)));
                        }
                        steps.push(chunk);
                    }
                    stepped(steps)
                }
                Some(FaultKind::Stall { after, ms }) => {
                    let mut steps: Vec<Step> = Vec::new();
                    let mut chunks = chunks;
                    steps.extend(chunks.by_ref().take(*after));
                    steps.push(Step::Sleep(Duration::from_millis(*ms)));
                    steps.extend(chunks);
                    stepped(steps)
                }
                _ => stepped(chunks.collect()),
            }
        }
    };
    let mut response = Response::new(body);
    *response.headers_mut() = headers;
    response
}

/// A streamed body that plays `steps` in order.
fn stepped(steps: Vec<Step>) -> Body {
    let stream = futures_util::stream::unfold(VecDeque::from(steps), |mut steps| async move {
        loop {
            match steps.pop_front()? {
                Step::Chunk(bytes) => return Some((Ok::<_, std::io::Error>(bytes), steps)),
                Step::Sleep(pause) => tokio::time::sleep(pause).await,
                Step::Abort => {
                    let cut = std::io::Error::other("nines-sim: cut fault aborts the body");
                    return Some((Err(cut), VecDeque::new()));
                }
            }
        }
    });
    Body::from_stream(stream)
}

fn gemini_not_found(uri: &Uri) -> Response {
    let err = ApiError::new(StatusCode::NOT_FOUND, format!("Requested entity was not found: {}", uri.path()));
    (err.status, axum::Json(gemini::error_body(&err))).into_response()
}

async fn not_found(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if path.starts_with("/v1beta/") || path.starts_with("/v1/models") {
        return gemini_not_found(&uri);
    }
    if path.starts_with("/v1/messages") {
        let err = ApiError::new(StatusCode::NOT_FOUND, "Not Found");
        return Dialect::Anthropic.error(&err, &Dialect::Anthropic.request_id());
    }
    let err = ApiError::new(StatusCode::NOT_FOUND, format!("Invalid URL ({method} {path})"));
    Dialect::OpenAi.error(&err, &Dialect::OpenAi.request_id())
}
