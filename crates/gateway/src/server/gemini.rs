//! Gemini's front doors: `POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent` (SSE with
//! `?alt=sse`, else one JSON array), `:countTokens`, and `GET /v1beta/models[/{model}]`; the same under `/v1/`,
//! where `GET /v1/models/{id}` is also OpenAI's "retrieve model". `{model}` is a route name (or `provider/model`).
//! The client key may come as `x-goog-api-key` or `?key=`; errors are in Google's shape.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use nines_wire::Dialect;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::error::ApiError;
use super::routes::{Body, Door, TokenCount, chat, count_tokens_answer};
use crate::app::AppState;
use crate::auth;
use crate::respond::stream::Framing;

/// What the query string says: `alt=sse` and `key=…`.
#[derive(Default)]
struct Query {
    sse: bool,
    key: Option<String>,
}

fn query(raw: Option<&str>) -> Query {
    let mut q = Query::default();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match &*k {
            "alt" => q.sse = v == "sse",
            "key" => q.key = Some(v.into_owned()),
            _ => {}
        }
    }
    q
}

/// `POST …/models/{model}:{method}`.
pub async fn post(
    State(app): State<Arc<AppState>>,
    authed: super::routes::Authed,
    Path(rest): Path<String>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let q = query(raw_query.as_deref());
    let rest = rest.strip_prefix("models/").unwrap_or(&rest);
    let Some((model, method)) = rest.rsplit_once(':').filter(|(m, _)| !m.is_empty()) else {
        return ApiError::NotFound { path: format!("models/{rest}") }.render(Dialect::Gemini);
    };
    let (stream, framing) = match method {
        "generateContent" => (false, Framing::Sse),
        "streamGenerateContent" => (true, if q.sse { Framing::Sse } else { Framing::JsonArray }),
        "countTokens" => return count_tokens(&app, model, authed, body).await,
        _ => {
            let message = format!("method \"{method}\" is not served by this gateway");
            return ApiError::BadRequest { message, param: None }.render(Dialect::Gemini);
        }
    };
    let door = Door {
        dialect: Dialect::Gemini,
        path_model: Some(model.to_owned()),
        path_stream: Some(stream),
        framing,
        response_id: None,
        keep: None,
    };
    chat(&app, door, authed, headers, body).await
}

/// `:countTokens`: exact from the route's Gemini targets (with failover among them), an estimate marked
/// `x-nines-token-count: estimate` when none answers.
async fn count_tokens(
    app: &AppState,
    model: &str,
    mut authed: super::routes::Authed,
    body: Body,
) -> Response {
    let dialect = Dialect::Gemini;
    let started = Instant::now();
    let raw = match super::routes::body_of(&mut authed, body) {
        Ok(b) => b,
        Err(e) => return e.render(dialect),
    };
    if let Err(e) = super::routes::check_shape(&raw) {
        return e.render(dialect);
    }
    // `{"contents": […]}` or `{"generateContentRequest": {…}}`: either way a generateContent body to estimate.
    let inner = serde_json::from_slice::<Value>(&raw).ok().and_then(|v| {
        v.get("generateContentRequest").or_else(|| v.get("generate_content_request")).cloned().or(Some(v))
    });
    let request = match inner.map(|v| dialect.decode_request(v.to_string().as_bytes())) {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            return ApiError::BadRequest { message: format!("invalid request body: {e}"), param: None }
                .render(dialect);
        }
        None => {
            let message = "invalid request body: not JSON".to_owned();
            return ApiError::BadRequest { message, param: None }.render(dialect);
        }
    };
    let none = HeaderMap::new();
    let count = TokenCount { dialect, authed, raw: &raw, request: &request, model, headers: &none };
    count_tokens_answer(app, count, started).await
}

/// A route as a Gemini `Model` resource.
fn model_resource(name: &str) -> Value {
    json!({
        "name": format!("models/{name}"),
        "baseModelId": name,
        "version": "nines",
        "displayName": name,
        "description": "a nines route",
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
    })
}

/// `GET /v1beta/models`: the routes as Gemini `Model`s.
pub async fn list(
    State(app): State<Arc<AppState>>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = query(raw_query.as_deref());
    let snap = app.snapshot();
    let Some(caller) = auth::identify(&app.runtime.admission, &snap.keyring, &headers, q.key.as_deref())
    else {
        return ApiError::Unauthorized.render(Dialect::Gemini);
    };
    let models: Vec<Value> = super::routes::visible_routes(&snap, &caller).map(model_resource).collect();
    axum::Json(json!({"models": models})).into_response()
}

/// `GET /v1beta/models/{model}` (Gemini), and `GET /v1/models/{id}`: OpenAI's "retrieve model", or Gemini's
/// when the client speaks Gemini (its key header or `?key=`).
pub async fn get(
    State(app): State<Arc<AppState>>,
    uri: http::Uri,
    Path(rest): Path<String>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = query(raw_query.as_deref());
    let gemini =
        uri.path().starts_with("/v1beta/") || q.key.is_some() || headers.contains_key("x-goog-api-key");
    let dialect = if gemini { Dialect::Gemini } else { Dialect::OpenAiChat };
    let snap = app.snapshot();
    let Some(caller) = auth::identify(&app.runtime.admission, &snap.keyring, &headers, q.key.as_deref())
    else {
        return ApiError::Unauthorized.render(dialect);
    };
    let name = rest.strip_prefix("models/").unwrap_or(&rest);
    if let crate::auth::Caller::Key(i) = &caller
        && !i.may_use(name)
    {
        return ApiError::Forbidden { message: format!("this key may not use model \"{name}\"") }
            .render(dialect);
    }
    if let Err(e) = snap.routes.plan(name) {
        return ApiError::UnknownModel(e).render(dialect);
    }
    let body = if gemini {
        model_resource(name)
    } else {
        json!({"id": name, "object": "model", "created": 0, "owned_by": "nines"})
    };
    axum::Json(body).into_response()
}
