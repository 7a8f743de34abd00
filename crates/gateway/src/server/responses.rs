//! The OpenAI Responses front door: `POST /v1/responses` (plain and streaming, to every provider kind with the same
//! failover as the other doors), and the stored responses behind `previous_response_id`:
//! `GET /v1/responses/{id}`, `DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items`.
//!
//! nines keeps the conversation itself (`crate::store`), whatever the target: a follow-up's `previous_response_id`
//! is resolved here, by splicing the stored items in front of the new input, so the request that reaches any
//! provider (Responses-speaking ones included) is self-contained, and a conversation begun on one provider
//! continues on another after a failover.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use nines_wire::Dialect;
use serde_json::{Value, json};

use super::error::ApiError;
use super::routes::{Body, Door, chat};
use crate::app::AppState;
use crate::auth;
use crate::respond::stream::{Framing, OnResponse};
use crate::respond::unix_now;
use crate::store::{ResponseStore, Stored};

const DIALECT: Dialect = Dialect::OpenAiResponses;

/// Where and what to keep of one answer: the conversation's input items so far (stored history, then this
/// request's input), to which the answer's output items are appended.
#[derive(Clone)]
pub struct Keep {
    store: ResponseStore,
    input: Arc<Vec<Value>>,
    /// The key that made it (`Caller::owner`): only that key reads, continues or deletes it.
    owner: String,
}

impl Keep {
    /// Store the Response object the client received (whole, or from its stream's terminal event). A store that
    /// fails costs the follow-up, never this answer: it is logged and the answer goes on.
    pub async fn keep(&self, response: Bytes) {
        let Ok(v) = serde_json::from_slice::<Value>(&response) else {
            tracing::warn!("not storing a response that is not JSON");
            return;
        };
        let Some(id) = v.get("id").and_then(Value::as_str) else {
            tracing::warn!("not storing a response without an id");
            return;
        };
        let mut conversation: Vec<Value> = self.input.as_ref().clone();
        conversation.extend(v.get("output").and_then(Value::as_array).into_iter().flatten().cloned());
        let conversation = match serde_json::to_vec(&conversation) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("cannot store response {id}: {e}");
                return;
            }
        };
        let stored = Stored { response: response.to_vec(), conversation };
        if let Err(e) = self.store.put(id.to_owned(), self.owner.clone(), stored, unix_now()).await {
            tracing::warn!(error = %e, "cannot store response {id}");
        }
    }

    pub fn on_response(self) -> OnResponse {
        Box::new(move |response| Box::pin(async move { self.keep(response).await }))
    }
}

/// A fresh response id, `resp_` and 48 hex digits (OpenAI's ids are `resp_` and 48 hex digits too).
fn mint_id() -> String {
    let a: u128 = rand::random();
    let b: u64 = rand::random();
    format!("resp_{a:032x}{:016x}", b)
}

fn missing(message: String, param: Option<&str>) -> Response {
    ApiError::Missing { message, param: param.map(str::to_owned) }.render(DIALECT)
}

/// `input` as a list of items (a string is one user message).
fn input_items(input: Option<&Value>) -> Option<Vec<Value>> {
    match input {
        Some(Value::String(s)) => Some(vec![json!({"type": "message", "role": "user", "content": s})]),
        Some(Value::Array(items)) => Some(items.clone()),
        _ => None,
    }
}

/// `POST /v1/responses`.
pub async fn create(
    State(app): State<Arc<AppState>>,
    mut authed: super::routes::Authed,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let snap = authed.snap.clone();
    let owner = authed.caller.owner().to_owned();
    let raw = match super::routes::body_of(&mut authed, body) {
        Ok(b) => b,
        Err(e) => return e.render(DIALECT),
    };
    if let Err(e) = super::routes::check_shape(&raw) {
        return e.render(DIALECT);
    }
    let mut v: Value = match serde_json::from_slice(&raw) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            let message = "invalid request body: the body must be a JSON object".to_owned();
            return ApiError::BadRequest { message, param: None }.render(DIALECT);
        }
        Err(e) => {
            let message = format!("invalid request body: {e}");
            return ApiError::BadRequest { message, param: None }.render(DIALECT);
        }
    };
    let store = v.get("store").and_then(Value::as_bool) != Some(false);
    let mut input = input_items(v.get("input")).unwrap_or_default();
    let mut body = raw;
    let previous = v.get("previous_response_id").cloned();
    if let Some(obj) = v.as_object_mut()
        && previous.is_some()
    {
        obj.remove("previous_response_id");
        if let Some(Value::String(prev)) = &previous {
            let stored = match snap.responses.get(prev.clone(), Some(owner.clone()), unix_now()).await {
                Ok(Some(s)) => s,
                Ok(None) => {
                    let message = format!("Previous response with id '{prev}' not found.");
                    return missing(message, Some("previous_response_id"));
                }
                Err(e) => {
                    tracing::error!(error = %e, "responses store unavailable");
                    let message = "the responses store is unavailable".to_owned();
                    return ApiError::Internal { message }.render(DIALECT);
                }
            };
            let mut conversation: Vec<Value> =
                serde_json::from_slice(&stored.conversation).unwrap_or_default();
            conversation.append(&mut input);
            input = conversation;
            obj.insert("input".to_owned(), Value::Array(input.clone()));
        }
        match serde_json::to_vec(&v) {
            Ok(b) => body = Bytes::from(b),
            Err(e) => {
                let message = format!("invalid request body: {e}");
                return ApiError::BadRequest { message, param: None }.render(DIALECT);
            }
        }
    }
    let keep = store.then(|| Keep { store: snap.responses.clone(), input: Arc::new(input), owner });
    let door = Door {
        dialect: DIALECT,
        path_model: None,
        path_stream: None,
        framing: Framing::Sse,
        response_id: Some(mint_id()),
        keep,
    };
    chat(&app, door, authed, headers, Ok(body)).await
}

/// Whose stored responses a request may reach: its key's own; every one for the admin key (`None`).
/// (`None`: no valid key.)
fn owner_of(app: &AppState, snap: &crate::app::Snapshot, headers: &HeaderMap) -> Option<Option<String>> {
    if auth::is_admin(super::status::admin(snap), headers) {
        return Some(None);
    }
    auth::identify(&app.runtime.admission, &snap.keyring, headers, None).map(|c| Some(c.owner().to_owned()))
}

async fn stored(app: &AppState, headers: &HeaderMap, id: &str) -> Result<Stored, Response> {
    let snap = app.snapshot();
    let Some(owner) = owner_of(app, &snap, headers) else {
        return Err(ApiError::Unauthorized.render(DIALECT));
    };
    match snap.responses.get(id.to_owned(), owner, unix_now()).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(missing(format!("Response with id '{id}' not found."), None)),
        Err(e) => {
            tracing::error!(error = %e, "responses store unavailable");
            let message = "the responses store is unavailable".to_owned();
            Err(ApiError::Internal { message }.render(DIALECT))
        }
    }
}

fn json_bytes(body: Vec<u8>) -> Response {
    (StatusCode::OK, [(http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `GET /v1/responses/{id}`: a stored response, as the client first received it.
pub async fn get(State(app): State<Arc<AppState>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    match stored(&app, &headers, &id).await {
        Ok(s) => json_bytes(s.response),
        Err(resp) => resp,
    }
}

/// `GET /v1/responses/{id}/input_items`: the items that went into a stored response (history included), in
/// OpenAI's list shape, newest first unless `?order=asc`.
pub async fn input_items_of(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: http::Uri,
    headers: HeaderMap,
) -> Response {
    let s = match stored(&app, &headers, &id).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let conversation: Vec<Value> = serde_json::from_slice(&s.conversation).unwrap_or_default();
    let response: Value = serde_json::from_slice(&s.response).unwrap_or_default();
    let outputs = response.get("output").and_then(Value::as_array).map_or(0, Vec::len);
    let mut items: Vec<Value> = conversation[..conversation.len().saturating_sub(outputs)].to_vec();
    let ascending = uri.query().is_some_and(|q| q.split('&').any(|kv| kv == "order=asc"));
    if !ascending {
        items.reverse();
    }
    let first = items.first().and_then(|i| i.get("id")).cloned().unwrap_or(Value::Null);
    let last = items.last().and_then(|i| i.get("id")).cloned().unwrap_or(Value::Null);
    axum::Json(
        json!({"object": "list", "data": items, "first_id": first, "last_id": last, "has_more": false}),
    )
    .into_response()
}

/// `DELETE /v1/responses/{id}`.
pub async fn delete(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let snap = app.snapshot();
    let Some(owner) = owner_of(&app, &snap, &headers) else {
        return ApiError::Unauthorized.render(DIALECT);
    };
    match snap.responses.delete(id.clone(), owner, unix_now()).await {
        Ok(true) => axum::Json(json!({"id": id, "object": "response", "deleted": true})).into_response(),
        Ok(false) => missing(format!("Response with id '{id}' not found."), None),
        Err(e) => {
            tracing::error!(error = %e, "responses store unavailable");
            let message = "the responses store is unavailable".to_owned();
            ApiError::Internal { message }.render(DIALECT)
        }
    }
}
