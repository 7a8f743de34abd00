//! The front doors. Each handler: authenticate and decode ([`inbound`], the one extractor every chat door shares:
//! dialect, caller, request) → plan the route → a flight → dispatch → respond in the client's dialect. Errors go
//! to `server::error`, the only place that renders them.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use nines_wire::{Dialect, EncodeCtx, embeddings};
use serde_json::json;
use tokio::time::Instant;

use super::error::ApiError;
use super::responses::Keep;
use crate::app::{AppState, Snapshot};
use crate::auth::{self, Caller};
use crate::dispatch::deliver::{self, Delivery, Resume};
use crate::dispatch::flight::Admitted;
use crate::dispatch::flight::{RequestId, Takeoff};
use crate::dispatch::{self, Answer, Failure, Flight, Inbound, Served, WholeBody};
use crate::record::Ending;
use crate::respond;
use crate::respond::stream::Framing;
use crate::route::Plan;

pub(super) type Body = Result<Bytes, BytesRejection>;

pub async fn chat_completions(
    State(app): State<Arc<AppState>>,
    authed: Authed,
    headers: HeaderMap,
    body: Body,
) -> Response {
    chat(&app, Door::plain(Dialect::OpenAiChat), authed, headers, body).await
}

pub async fn messages(
    State(app): State<Arc<AppState>>,
    authed: Authed,
    headers: HeaderMap,
    body: Body,
) -> Response {
    chat(&app, Door::plain(Dialect::Anthropic), authed, headers, body).await
}

/// How a chat request came in: the door's dialect, and what its path and query say (Gemini names the model and
/// whether to stream in the path, and may carry the key in the query).
pub(super) struct Door {
    pub dialect: Dialect,
    /// The route named in the path (Gemini's `models/{model}:…`).
    pub path_model: Option<String>,
    /// Whether the method streams (Gemini's `:streamGenerateContent`); otherwise the body says.
    pub path_stream: Option<bool>,
    pub framing: Framing,
    /// The id to give the answer (the Responses API's `resp_…`, minted here so the store can keep it).
    pub response_id: Option<String>,
    /// Where to keep the answer once delivered (the Responses API with `store`).
    pub keep: Option<Keep>,
}

impl Door {
    fn plain(dialect: Dialect) -> Door {
        Door {
            dialect,
            path_model: None,
            path_stream: None,
            framing: Framing::Sse,
            response_id: None,
            keep: None,
        }
    }

    fn name(&self) -> &'static str {
        match (self.dialect, self.path_stream) {
            (Dialect::OpenAiChat, _) => "/v1/chat/completions",
            (Dialect::OpenAiResponses, _) => "/v1/responses",
            (Dialect::Anthropic, _) => "/v1/messages",
            (Dialect::Gemini, Some(true)) => "models:streamGenerateContent",
            (Dialect::Gemini, _) => "models:generateContent",
        }
    }
}

/// Client headers that a provider of the client's own dialect should receive.
fn passthrough_headers(dialect: Dialect, headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    if dialect == Dialect::Anthropic {
        for name in ["anthropic-version", "anthropic-beta"] {
            if let Some(v) = headers.get(name) {
                out.insert(name, v.clone());
            }
        }
    }
    out
}

/// What the one extractor yields for a chat door: what the client asks, decoded.
pub(super) struct Extracted {
    pub raw: Bytes,
    pub request: nines_wire::ChatRequest,
}

/// Read a door's body: refused as too large, or as more than the door may hold now (a body without
/// `Content-Length` is counted once read).
pub(super) fn body_of(authed: &mut Authed, body: Body) -> Result<Bytes, ApiError> {
    let raw = body.map_err(|r| {
        // A body cut for arriving too slowly (`server::listen::MinRate`): the client's, and a timeout.
        if std::error::Error::source(&r).is_some_and(|s| s.to_string().contains("bytes a second")) {
            ApiError::Body { status: 408, message: r.body_text() }
        } else {
            ApiError::from(r)
        }
    })?;
    if !authed.counted_body
        && let Some(entry) = &mut authed.entry
    {
        let max = authed.snap.config.protect.server.max_buffered_bytes;
        entry.hold(raw.len() as u64, max).map_err(|_| ApiError::Busy { what: "request bytes held" })?;
    }
    Ok(raw)
}

/// The extractor every chat door shares (after [`Authed`]): read the body, decode it in the door's dialect, and
/// apply what the path says (Gemini's model and method).
pub(super) fn inbound(authed: &mut Authed, door: &Door, body: Body) -> Result<Extracted, Box<Response>> {
    let dialect = door.dialect;
    let raw = body_of(authed, body).map_err(|e| Box::new(e.render(dialect)))?;
    check_shape(&raw).map_err(|e| Box::new(e.render(dialect)))?;
    let mut request = dialect.decode_request(&raw).map_err(|e| {
        let message = format!("invalid request body: {e}");
        Box::new(ApiError::BadRequest { message, param: None }.render(dialect))
    })?;
    if let Some(model) = &door.path_model {
        request.model.clone_from(model);
    }
    if let Some(stream) = door.path_stream {
        request.stream = stream;
    }
    if request.model.is_empty() {
        let message = "`model` is required".to_owned();
        return Err(Box::new(ApiError::BadRequest { message, param: Some("model".into()) }.render(dialect)));
    }
    Ok(Extracted { raw, request })
}

/// Admit a request of `authed`'s caller on `route` (its routes, its key's and team's limits), with `input` tokens
/// estimated and up to `output` asked, priced as the plan's first target: the admission its flight carries.
pub(super) async fn admit(
    app: &AppState,
    authed: Authed,
    plan: &Plan,
    route: &str,
    estimate: impl FnOnce() -> (u64, u64),
) -> Result<Admitted, ApiError> {
    // Estimated only for a key that has limits or a budget to count it against.
    let counted = matches!(&authed.caller, Caller::Key(i) if i.account.is_some() || i.team_account.is_some());
    let (input, output) = if counted { estimate() } else { (0, 0) };
    let price = if counted {
        plan.targets.first().and_then(|t| authed.snap.config.protect.price(t.label(), &t.model))
    } else {
        None
    };
    // A budget counts dollars: a key that has one may use only priced models (an unpriced one would spend freely).
    if price.is_none()
        && let Caller::Key(i) = &authed.caller
        && [&i.account, &i.team_account].into_iter().flatten().any(|a| !a.budget().is_empty())
    {
        let target = plan.targets.first().map_or(route, |t| t.label());
        let message =
            format!("no price for {target} in [prices]: a key with a budget may use only priced models");
        return Err(ApiError::Forbidden { message });
    }
    let longest = authed.snap.config.dispatch.deadline;
    let est = crate::admit::Estimate { input, output, price, longest };
    let shared = app.runtime.shared.as_deref();
    let ticket = crate::admit::admit(&authed.caller, route, est, shared).await.map_err(ApiError::from)?;
    Ok(Admitted {
        priority: authed.priority,
        entry: authed.entry,
        ticket,
        client_deadline: authed.client_deadline,
    })
}

/// The client's own time limit, when it says: the official SDKs send theirs as `x-stainless-timeout` (seconds);
/// `x-nines-timeout` likewise. A request whose client will have given up is never sent.
fn client_deadline(value: &HeaderValue) -> Option<Instant> {
    let secs = value.to_str().ok().and_then(|v| v.trim().parse::<f64>().ok())?;
    (secs.is_finite() && secs > 0.0 && secs < 86_400.0)
        .then(|| Instant::now() + std::time::Duration::from_secs_f64(secs))
}

/// Output tokens a request may use, for its estimate: what it asks, else a typical answer's.
fn output_estimate(request: &nines_wire::ChatRequest) -> u64 {
    request.max_tokens.map_or(1024, u64::from)
}

/// Refuse a body with more parts than any real request has before parsing it (413): its parsed form would cost
/// many times its bytes.
pub(super) fn check_shape(raw: &[u8]) -> Result<(), ApiError> {
    use nines_wire::shape::{MAX_CONTAINERS, MAX_DEPTH, check};
    check(raw, MAX_CONTAINERS, MAX_DEPTH).map_err(|e| ApiError::Body { status: 413, message: e.to_string() })
}

/// A flight for a request that came through `door`.
fn takeoff(app: &AppState, snap: Arc<Snapshot>, t: Takeoff) -> Flight {
    Flight::new(t, snap, app.runtime.recorder.clone())
}

pub(super) async fn chat(
    app: &AppState,
    door: Door,
    mut authed: Authed,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let dialect = door.dialect;
    let started = Instant::now();
    let Extracted { raw, request } = match inbound(&mut authed, &door, body) {
        Ok(x) => x,
        Err(resp) => return *resp,
    };
    let snap = authed.snap.clone();
    let caller = authed.caller.clone();
    let plan = match snap.routes.plan(&request.model) {
        Ok(t) => t,
        Err(e) => return ApiError::UnknownModel(e).render(dialect),
    };
    let estimate = || (estimate_input_tokens(&request), output_estimate(&request));
    let admitted = match admit(app, authed, &plan, &request.model, estimate).await {
        Ok(a) => a,
        Err(e) => return e.render(dialect),
    };
    let inbound = Inbound { dialect, raw, request, headers: passthrough_headers(dialect, &headers) };
    let (id, traceparent) = identify(&headers);
    let t = Takeoff {
        id,
        traceparent,
        door: door.name(),
        caller,
        route: inbound.request.model.clone(),
        stream: inbound.request.stream,
        plan,
        started,
        admitted,
    };
    let mut flight = takeoff(app, snap, t);
    match dispatch::dispatch(&inbound, &mut flight).await {
        Ok(served) => respond_served(&door, inbound, served, flight).await,
        Err(failure) => failure_response(dialect, failure, flight),
    }
}

/// The one answer for a request no target served, in the door's dialect.
pub(super) fn failure_response(dialect: Dialect, failure: Failure, mut flight: Flight) -> Response {
    let mut resp = match failure {
        Failure::Client { error, target } => {
            let index = flight.plan.targets.iter().position(|t| t.id == target.id);
            flight.end(Ending::Refused, index);
            let mut resp = ApiError::Refused { error }.render(dialect);
            set_served_headers(&mut resp, target.label(), flight.sent());
            resp
        }
        Failure::Inexpressible { error } => {
            flight.end(Ending::Refused, None);
            ApiError::Inexpressible(error).render(dialect)
        }
        Failure::Exhausted => {
            flight.end(Ending::Failed, None);
            ApiError::Exhausted { model: flight.route.clone(), summary: flight.summary() }.render(dialect)
        }
    };
    set_request_id(&mut resp, &flight.id);
    resp
}

/// `POST /v1/embeddings` (OpenAI format), with the same failover as chat.
pub async fn embeddings(
    State(app): State<Arc<AppState>>,
    mut authed: Authed,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let dialect = Dialect::OpenAiChat;
    let started = Instant::now();
    let raw = match body_of(&mut authed, body) {
        Ok(b) => b,
        Err(e) => return e.render(dialect),
    };
    if let Err(e) = check_shape(&raw) {
        return e.render(dialect);
    }
    let snap = authed.snap.clone();
    let caller = authed.caller.clone();
    let request = match embeddings::decode_request(&raw) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::BadRequest { message: format!("invalid request body: {e}"), param: None }
                .render(dialect);
        }
    };
    let plan = match snap.routes.plan(&request.model) {
        Ok(t) => t,
        Err(e) => return ApiError::UnknownModel(e).render(dialect),
    };
    let admitted = match admit(&app, authed, &plan, &request.model, || (raw.len() as u64 / 4, 0)).await {
        Ok(a) => a,
        Err(e) => return e.render(dialect),
    };
    let (id, traceparent) = identify(&headers);
    let t = Takeoff {
        id,
        traceparent,
        door: "/v1/embeddings",
        caller,
        route: request.model.clone(),
        stream: false,
        plan,
        started,
        admitted,
    };
    let mut flight = takeoff(&app, snap, t);
    let op = dispatch::ops::Embeddings { raw: &raw, request: &request };
    match dispatch::run(&op, &mut flight).await {
        Ok(served) => {
            let attempts = flight.sent();
            let ending = flight.served_ending();
            flight.end(ending, Some(served.index));
            let body = match served.answer.raw {
                Some(raw) => raw,
                None => {
                    Bytes::from(embeddings::encode_openai_response(&served.answer.response, request.base64))
                }
            };
            let mut resp =
                (StatusCode::OK, [(http::header::CONTENT_TYPE, "application/json")], body).into_response();
            set_served_headers(&mut resp, served.target.label(), attempts);
            set_request_id(&mut resp, &flight.id);
            resp
        }
        Err(failure) => failure_response(dialect, failure, flight),
    }
}

/// `POST /v1/messages/count_tokens`: exact from the route's Anthropic targets (with failover among them), and an
/// estimate, marked `x-nines-token-count: estimate`, when none can answer.
pub async fn count_tokens(
    State(app): State<Arc<AppState>>,
    mut authed: Authed,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let dialect = Dialect::Anthropic;
    let started = Instant::now();
    let raw = match body_of(&mut authed, body) {
        Ok(b) => b,
        Err(e) => return e.render(dialect),
    };
    if let Err(e) = check_shape(&raw) {
        return e.render(dialect);
    }
    let request = match dialect.decode_request(&raw) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::BadRequest { message: format!("invalid request body: {e}"), param: None }
                .render(dialect);
        }
    };
    let passthrough = passthrough_headers(dialect, &headers);
    let count = TokenCount {
        dialect,
        authed,
        raw: &raw,
        request: &request,
        model: &request.model,
        headers: &passthrough,
    };
    count_tokens_answer(&app, count, started).await
}

/// A token-counting request, decoded by its door.
pub(super) struct TokenCount<'a> {
    /// The door's dialect: only targets of it count exactly, and the answer is in its shape.
    pub dialect: Dialect,
    pub authed: Authed,
    /// The client's body, sent as it is to those targets.
    pub raw: &'a Bytes,
    /// The same, decoded: what an estimate counts.
    pub request: &'a nines_wire::ChatRequest,
    /// The route.
    pub model: &'a str,
    /// Client headers a same-dialect provider should see.
    pub headers: &'a HeaderMap,
}

/// Count tokens: exact from the route's targets of the door's dialect (with failover among them), and an estimate,
/// marked `x-nines-token-count: estimate`, when none can answer. A request refused as the client's fault is
/// returned as it is.
pub(super) async fn count_tokens_answer(app: &AppState, count: TokenCount<'_>, started: Instant) -> Response {
    let TokenCount { dialect, authed, raw, request, model, headers } = count;
    let snap = authed.snap.clone();
    let caller = authed.caller.clone();
    let (front_door, field) = match dialect {
        Dialect::Gemini => ("models:countTokens", "totalTokens"),
        _ => ("/v1/messages/count_tokens", "input_tokens"),
    };
    let plan: Plan = match snap.routes.plan(model) {
        Ok(t) => t,
        Err(e) => return ApiError::UnknownModel(e).render(dialect),
    };
    // Counting spends no tokens: it counts against the key's requests, not its tokens.
    let admitted = match admit(app, authed, &plan, model, || (0, 0)).await {
        Ok(a) => a,
        Err(e) => return e.render(dialect),
    };
    let (id, traceparent) = identify(headers);
    let t = Takeoff {
        id,
        traceparent,
        door: front_door,
        caller,
        route: model.to_owned(),
        stream: false,
        plan,
        started,
        admitted,
    };
    let mut flight = takeoff(app, snap, t);
    let op = dispatch::ops::CountTokens { dialect, raw, headers };
    match dispatch::run(&op, &mut flight).await {
        Ok(served) => {
            let attempts = flight.sent();
            let ending = flight.served_ending();
            flight.end(ending, Some(served.index));
            let mut resp =
                (StatusCode::OK, [(http::header::CONTENT_TYPE, "application/json")], served.answer)
                    .into_response();
            set_served_headers(&mut resp, served.target.label(), attempts);
            set_request_id(&mut resp, &flight.id);
            resp
        }
        Err(failure @ Failure::Client { .. }) => failure_response(dialect, failure, flight),
        Err(_) => {
            // Not a failure of the request: nobody could count exactly, so nines estimates.
            flight.end(Ending::Served, None);
            let n = estimate_input_tokens(request);
            let mut resp = axum::Json(json!({ field: n })).into_response();
            resp.headers_mut().insert("x-nines-token-count", HeaderValue::from_static("estimate"));
            set_request_id(&mut resp, &flight.id);
            resp
        }
    }
}

/// About four characters a token over everything the model reads, plus a few tokens of framing per message.
pub(super) fn estimate_input_tokens(req: &nines_wire::ChatRequest) -> u64 {
    let est = embeddings::estimate_tokens;
    // Images cost roughly a thousand tokens on every current model.
    dispatch::input_size(req, est, 1000)
        + 3 * req.messages.len() as u64
        + req.tools.iter().map(|t| est(&t.parameters.to_string())).sum::<u64>()
}

/// The request's id (the client's `x-request-id`, or a new one) and its trace parent.
fn identify(headers: &HeaderMap) -> (RequestId, Option<Box<str>>) {
    let id = RequestId::from_client(headers.get("x-request-id"));
    let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok()).map(Box::from);
    (id, traceparent)
}

/// `x-request-id`: the id of every log line and span about this request.
pub(super) fn set_request_id(resp: &mut Response, id: &RequestId) {
    if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
        resp.headers_mut().insert("x-request-id", v);
    }
}

pub(super) fn set_served_headers(resp: &mut Response, target: &str, attempts: usize) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(target) {
        h.insert("x-nines-target", v);
    }
    h.insert("x-nines-attempts", HeaderValue::from(attempts));
}

async fn respond_served(door: &Door, inbound: Inbound, served: Served, mut flight: Flight) -> Response {
    let Served { answer, target, index, dropped, in_flight, .. } = served;
    let dialect = door.dialect;
    let attempts = flight.sent();
    let request = flight.id.clone();
    let mut resp = match answer {
        Answer::Whole(whole) => {
            let model = match &whole.body {
                WholeBody::Decoded(r) if !r.model.is_empty() => r.model.clone(),
                _ => target.model.clone(),
            };
            let request_id = whole.request_id;
            let ctx = EncodeCtx {
                created: respond::unix_now(),
                model,
                upstream: Some(target.provider.dialect()),
                response_id: door.response_id.clone(),
                item_ids: Vec::new(),
                verbatim_ids: false,
            };
            let body = respond::whole_body(dialect, whole.body, &ctx);
            if let Some(keep) = &door.keep {
                keep.keep(body.clone()).await;
            }
            let ending = flight.served_ending();
            flight.end(ending, Some(index));
            drop(in_flight);
            let mut resp =
                (StatusCode::OK, [(http::header::CONTENT_TYPE, "application/json")], body).into_response();
            if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                resp.headers_mut().insert("x-nines-upstream-request-id", id);
            }
            resp
        }
        Answer::Stream(committed) => {
            let upstream_model = committed.head.iter().find_map(|e| match e {
                nines_wire::StreamEvent::Start { model, .. } if !model.is_empty() => Some(model.clone()),
                _ => None,
            });
            let ctx = EncodeCtx {
                created: respond::unix_now(),
                model: upstream_model.unwrap_or(target.model.clone()),
                upstream: Some(target.provider.dialect()),
                response_id: door.response_id.clone(),
                item_ids: Vec::new(),
                verbatim_ids: false,
            };
            let request_id = committed.request_id.clone();
            let include_usage = inbound.request.include_usage;
            // Only a route with somewhere else to go keeps the request for a continuation.
            let resume = (flight.plan.targets.len() > 1 && flight.plan.streams.max_resumes > 0)
                .then(|| Resume { request: inbound.request, headers: inbound.headers });
            let spec = deliver::Spec {
                client: dialect,
                ctx,
                include_usage,
                flight,
                target: index,
                in_flight,
                resume,
            };
            let delivery = Delivery::new(committed, spec);
            let on_response = door.keep.as_ref().map(|k| k.clone().on_response());
            let body = respond::stream::body(delivery, door.framing, on_response);
            let content_type = match door.framing {
                Framing::Sse => "text/event-stream; charset=utf-8",
                Framing::JsonArray => "application/json; charset=UTF-8",
            };
            let mut resp = (
                StatusCode::OK,
                [(http::header::CONTENT_TYPE, content_type), (http::header::CACHE_CONTROL, "no-cache")],
                body,
            )
                .into_response();
            resp.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
            if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                resp.headers_mut().insert("x-nines-upstream-request-id", id);
            }
            resp
        }
    };
    set_served_headers(&mut resp, target.label(), attempts);
    set_request_id(&mut resp, &request);
    if !dropped.is_empty()
        && let Ok(v) =
            HeaderValue::from_str(&format!("{} cannot take: {}", target.label(), dropped.join("; ")))
    {
        resp.headers_mut().insert("x-nines-warning", v);
    }
    resp
}

/// `GET /v1/models`: the routes, in OpenAI's list format (or Anthropic's, for a client that sends
/// `anthropic-version`).
pub async fn models(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let snap = app.snapshot();
    let anthropic = headers.contains_key("anthropic-version");
    let dialect = if anthropic { Dialect::Anthropic } else { Dialect::OpenAiChat };
    let Some(caller) = auth::identify(&app.runtime.admission, &snap.keyring, &headers, None) else {
        return ApiError::Unauthorized.render(dialect);
    };
    let names: Vec<&str> = visible_routes(&snap, &caller).collect();
    let body = if anthropic {
        let data: Vec<_> = names
            .iter()
            .map(|n| json!({"type": "model", "id": n, "display_name": n, "created_at": "1970-01-01T00:00:00Z"}))
            .collect();
        json!({"data": data, "has_more": false, "first_id": names.first(), "last_id": names.last()})
    } else {
        let data: Vec<_> = names
            .iter()
            .map(|n| json!({"id": n, "object": "model", "created": 0, "owned_by": "nines"}))
            .collect();
        json!({"object": "list", "data": data})
    };
    axum::Json(body).into_response()
}

pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// Ready when a configuration is loaded and at least one provider is usable. Which providers and routes: only to
/// whoever may see the status (`[status] public`, or the admin key), not to anyone who can reach the port.
pub async fn readyz(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let snap = app.snapshot();
    let usable: Vec<&str> =
        snap.providers.values().filter(|p| p.unusable.is_none()).map(|p| p.name()).collect();
    // Draining (SIGTERM): not ready, so a load balancer stops sending new requests while those held finish.
    let draining = app.shutdown.is_cancelled();
    let status = if usable.is_empty() || draining { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let word = match (draining, usable.is_empty()) {
        (true, _) => "draining",
        (false, true) => "no usable provider",
        (false, false) => "ready",
    };
    let body = if super::status::allowed(&app, &headers) {
        // The fleet's shared state: off (embedded), shared (Redis answers), or degraded (each replica on its own).
        let shared = match &app.runtime.shared {
            None => "off",
            Some(s) if s.degraded() => "degraded",
            Some(_) => "shared",
        };
        json!({ "status": word, "usable_providers": usable, "routes": snap.routes.names().collect::<Vec<_>>(),
                "shared_state": shared })
    } else {
        json!({ "status": word })
    };
    (status, axum::Json(body)).into_response()
}

/// The routes a caller may use, by name.
pub(super) fn visible_routes<'a>(
    snap: &'a Snapshot,
    caller: &'a Caller,
) -> impl Iterator<Item = &'a str> + 'a {
    snap.routes.names().filter(move |r| match caller {
        Caller::Open => true,
        Caller::Key(i) => i.may_use(r),
    })
}

/// The first extractor of every door that takes a body: who is calling (a request without a valid client key is
/// refused before anything reads its body, and before `100 Continue`), at what priority, and its count at the door
/// (requests in flight, bytes held: a `Content-Length` is counted before the body is read), under one snapshot of
/// the configuration that the request then runs on.
pub struct Authed {
    pub snap: Arc<Snapshot>,
    pub caller: Caller,
    pub priority: crate::config::protect::Priority,
    pub entry: Option<crate::admit::Entry>,
    /// The body's bytes were counted from its `Content-Length`.
    pub counted_body: bool,
    /// The client's own deadline, when it said.
    pub client_deadline: Option<Instant>,
}

/// The few request headers admission reads, found in one pass over them (cheaper than a hashed lookup each).
struct Seen<'a> {
    length: Option<&'a HeaderValue>,
    priority: Option<&'a HeaderValue>,
    timeout: Option<&'a HeaderValue>,
}

impl<'a> Seen<'a> {
    fn scan(headers: &'a HeaderMap) -> Seen<'a> {
        let mut seen = Seen { length: None, priority: None, timeout: None };
        for (name, value) in headers {
            match name.as_str() {
                "content-length" => seen.length = Some(value),
                "x-nines-priority" => seen.priority = Some(value),
                "x-nines-timeout" => seen.timeout = Some(value),
                "x-stainless-timeout" if seen.timeout.is_none() => seen.timeout = Some(value),
                _ => {}
            }
        }
        seen
    }
}

impl axum::extract::FromRequestParts<Arc<AppState>> for Authed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        app: &Arc<AppState>,
    ) -> Result<Self, Response> {
        let snap = app.snapshot();
        let query_key = parts.uri.query().filter(|q| q.contains("key=")).and_then(|q| {
            form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "key").map(|(_, v)| v.into_owned())
        });
        let Some(caller) =
            auth::identify(&app.runtime.admission, &snap.keyring, &parts.headers, query_key.as_deref())
        else {
            return Err(ApiError::Unauthorized.render(door_dialect(parts)));
        };
        let seen = Seen::scan(&parts.headers);
        let priority = caller.priority_for(seen.priority);
        let length = seen.length.and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        // Larger than any body nines reads: refused before a byte of it is read, and never counted.
        if length.is_some_and(|l| l > super::BODY_LIMIT as u64) {
            let message = format!("the request body is larger than {} bytes", super::BODY_LIMIT);
            return Err(ApiError::Body { status: 413, message }.render(door_dialect(parts)));
        }
        let server = &snap.config.protect.server;
        let entry = app
            .runtime
            .admission
            .enter(priority, server.max_in_flight, length.unwrap_or(0), server.max_buffered_bytes)
            .map_err(|busy| {
                let what = match busy {
                    crate::admit::Busy::Requests => "requests in flight",
                    crate::admit::Busy::Bytes => "request bytes held",
                };
                ApiError::Busy { what }.render(door_dialect(parts))
            })?;
        let client_deadline = seen.timeout.and_then(client_deadline);
        Ok(Authed {
            snap,
            caller,
            priority,
            entry: Some(entry),
            counted_body: length.is_some(),
            client_deadline,
        })
    }
}

/// The dialect of a request's door, from its path (and Anthropic's header on the model listing).
fn door_dialect(parts: &http::request::Parts) -> Dialect {
    let path = parts.uri.path();
    // Anthropic's SDK lists models with its own header: its error shape, as `models` answers it.
    let anthropic = parts.headers.contains_key("anthropic-version") && !path.contains(':');
    if anthropic { Dialect::Anthropic } else { dialect_of_path(path) }
}

/// The dialect to answer an unrouted request in, from its path.
pub(super) fn dialect_of_path(path: &str) -> Dialect {
    if path.starts_with("/v1/messages") {
        Dialect::Anthropic
    } else if path.starts_with("/v1beta/") || (path.starts_with("/v1/models/") && path.contains(':')) {
        Dialect::Gemini
    } else {
        Dialect::OpenAiChat
    }
}

pub async fn method_not_allowed(method: http::Method, uri: http::Uri) -> Response {
    let path = uri.path().to_owned();
    let dialect = dialect_of_path(&path);
    ApiError::MethodNotAllowed { method: method.to_string(), path }.render(dialect)
}

pub async fn not_found(uri: http::Uri) -> Response {
    let path = uri.path().to_owned();
    let dialect = dialect_of_path(&path);
    ApiError::NotFound { path }.render(dialect)
}
