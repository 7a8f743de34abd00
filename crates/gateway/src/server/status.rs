//! `GET /status` (the page for people), `GET /status.json` (the same for machines) and `GET /metrics`
//! (Prometheus). Public or behind the admin key, as `[status] public` says (`auth::may_see_status`).

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use tokio::time::Instant;

use crate::app::AppState;
use crate::auth;
use crate::record::status;

/// Whether `headers` may see the status (and `/readyz`'s details).
pub(super) fn allowed(app: &AppState, headers: &HeaderMap) -> bool {
    let snap = app.snapshot();
    let admission = &app.runtime.admission;
    let unix = admission.unix_now();
    let open = matches!(admission.identify(&snap.keyring, None, unix), Some(auth::Caller::Open));
    let is_client =
        |k: &str| matches!(admission.identify(&snap.keyring, Some(k), unix), Some(auth::Caller::Key(_)));
    auth::may_see_status(snap.config.status.public, admin(&snap), open, is_client, headers)
}

/// The admin key, as this configuration has it.
pub(super) fn admin(snap: &crate::app::Snapshot) -> auth::Admin<'_> {
    match (&snap.admin_key, &snap.config.auth.admin_key_env) {
        (Some(k), _) => auth::Admin::Key(k),
        (None, Some(_)) => auth::Admin::Missing,
        (None, None) => auth::Admin::None,
    }
}

/// 401 with a Basic challenge, so that a browser asks for the key.
fn unauthorized() -> Response {
    let body = serde_json::json!({
        "error": { "type": "authentication_error", "message": "the status needs the admin key (or set [status] public = true)" }
    });
    let mut resp = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    resp.headers_mut()
        .insert(http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"nines status\""));
    resp
}

fn unavailable(e: &crate::store::StoreError) -> Response {
    tracing::warn!(target: "nines::status", "status report failed: {e}");
    let body = serde_json::json!({
        "error": { "type": "api_error", "message": "the status store cannot be read right now" }
    });
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

/// `GET /status.json`.
pub async fn json(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !allowed(&app, &headers) {
        return unauthorized();
    }
    match status::report(&app).await {
        Ok(r) => {
            let mut resp = axum::Json(&*r).into_response();
            resp.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => unavailable(&e),
    }
}

/// `GET /status`.
pub async fn page(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !allowed(&app, &headers) {
        return unauthorized();
    }
    match status::report(&app).await {
        Ok(r) => {
            let html = super::status_page::render(&r);
            (
                StatusCode::OK,
                [
                    (http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
                    (http::header::CACHE_CONTROL, "no-store"),
                    // The page's own script and styles only.
                    (
                        http::header::CONTENT_SECURITY_POLICY,
                        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
                         connect-src 'self'; img-src 'self' data:",
                    ),
                ],
                html,
            )
                .into_response()
        }
        Err(e) => unavailable(&e),
    }
}

/// `GET /metrics`: the Prometheus text exposition; breaker states are read from health now.
pub async fn metrics(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !allowed(&app, &headers) {
        return unauthorized();
    }
    let snap = app.snapshot();
    let now = Instant::now();
    for t in snap.routes.targets() {
        let r = t.health.report(now, &snap.config.health, t.provider.config.timeouts.first_byte);
        let v = match r.state {
            "half-open" => 1,
            "open" => 2,
            "down" => 3,
            "cooling" => 4,
            _ => 0,
        };
        t.stats.metrics.breaker.set(v);
    }
    let text = app.runtime.stats.metrics.encode();
    (StatusCode::OK, [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
        .into_response()
}
