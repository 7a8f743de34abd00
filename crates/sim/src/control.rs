//! The control API on the simulator's own port, for tests written in other languages:
//! `POST /_sim/faults` (queue one fault), `GET /_sim/faults` (list them), `POST /_sim/ratelimit` (set a
//! [`RateLimit`](crate::RateLimit) from its JSON, or clear it with `null`), `POST /_sim/refuse_prefill`
//! (`{"refuse": true}` refuses conversations that end with an assistant message, `false` accepts them again;
//! `GET` shows the switch), `GET /_sim/hits`, `GET /_sim/last?path=…`, `POST /_sim/reset` (forgets faults, the rate
//! limit, the prefill refusal, hits and recorded requests).
//!
//! Control requests are never counted as hits and never consume faults.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::faults::Fault;
use crate::ratelimit::RateLimit;
use crate::state::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sim/faults", post(push_fault).get(list_faults))
        .route("/_sim/ratelimit", post(set_rate_limit))
        .route("/_sim/refuse_prefill", post(set_refuse_prefill).get(refuse_prefill))
        .route("/_sim/hits", get(hits))
        .route("/_sim/last", get(last))
        .route("/_sim/reset", post(reset))
}

async fn push_fault(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Fault>(&body) {
        Ok(fault) => {
            shared.push_fault(fault);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => bad_request(&format!("invalid fault: {err}")),
    }
}

async fn set_rate_limit(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Option<RateLimit>>(&body) {
        Ok(limit) => {
            shared.set_rate_limit(limit);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => bad_request(&format!("invalid rate limit: {err}")),
    }
}

/// The body of `POST /_sim/refuse_prefill`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefusePrefill {
    refuse: bool,
}

async fn set_refuse_prefill(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<RefusePrefill>(&body) {
        Ok(RefusePrefill { refuse }) => {
            shared.set_refuse_prefill(refuse);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => bad_request(&format!("invalid prefill switch: {err}")),
    }
}

async fn refuse_prefill(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!({"refuse": shared.refuse_prefill()})).into_response()
}

async fn list_faults(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.pending_faults()).into_response()
}

async fn hits(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!({"total": shared.total_hits(), "paths": shared.all_hits()})).into_response()
}

#[derive(Deserialize)]
struct LastQuery {
    path: Option<String>,
}

async fn last(State(shared): State<Arc<Shared>>, Query(query): Query<LastQuery>) -> Response {
    let Some(path) = query.path else {
        return bad_request("missing query parameter: path");
    };
    match shared.last_request(&path) {
        Some(body) => Json(body).into_response(),
        None => {
            (StatusCode::NOT_FOUND, Json(json!({"error": format!("no JSON request received on {path}")})))
                .into_response()
        }
    }
}

async fn reset(State(shared): State<Arc<Shared>>) -> Response {
    shared.reset();
    StatusCode::NO_CONTENT.into_response()
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}
