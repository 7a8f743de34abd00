//! The admin API, behind the admin key (`[auth] admin_key_env`), never a client key:
//!
//! - `GET /admin/keys`: every key (configured, listed, made here) with its team, routes, priority, limits, budget,
//!   what it has in flight and has spent, and its secrets' first characters; never a secret.
//! - `POST /admin/keys`: make a key (`{"name", "team", "routes", "priority", "set_priority", "limits", "budget"}`);
//!   the answer holds the secret, shown this once (only its SHA-256 is kept, in the embedded store).
//! - `POST /admin/keys/{id}/rotate` (`{"overlap": "1h"}`): a new secret; the old ones keep working for the overlap.
//! - `DELETE /admin/keys/{id}`: revoke at once.
//! - `POST /admin/reload`: read the configuration file again (as SIGHUP does): applied whole or refused whole.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::admit::{Identity, KeyRecord, SecretRecord, digest, hex};
use crate::app::AppState;
use crate::auth;
use crate::config::protect::{Budget, Limits, Priority, valid_name};

fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": {"type": kind, "message": message.into()}}))).into_response()
}

/// `None` for the admin key, or an answer saying why not.
fn guard(app: &AppState, headers: &HeaderMap) -> Option<Response> {
    let snap = app.snapshot();
    match super::status::admin(&snap) {
        auth::Admin::None => Some(error(
            StatusCode::FORBIDDEN,
            "permission_error",
            "the admin API is off: set [auth] admin_key_env to the name of a variable holding the admin key",
        )),
        admin if auth::is_admin(admin, headers) => None,
        _ => {
            Some(error(StatusCode::UNAUTHORIZED, "authentication_error", "the admin API needs the admin key"))
        }
    }
}

/// The admin key, checked before anything reads a body: the first extractor of every admin handler.
pub struct AdminOnly;

impl axum::extract::FromRequestParts<Arc<AppState>> for AdminOnly {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        app: &Arc<AppState>,
    ) -> Result<Self, Response> {
        match guard(app, &parts.headers) {
            None => Ok(AdminOnly),
            Some(resp) => Err(resp),
        }
    }
}

/// The largest body an admin request may have.
const ADMIN_BODY: usize = 64 * 1024;

fn view(i: &Identity, secrets: &[SecretRecord], created: Option<u64>) -> Value {
    let account = i.account.as_ref();
    let spend = account.map(|a| a.spend());
    json!({
        "id": &*i.id,
        "name": &*i.name,
        "source": i.source.as_str(),
        "team": i.team.as_deref(),
        "routes": i.routes.iter().map(|r| &**r).collect::<Vec<_>>(),
        "priority": i.priority.as_str(),
        "set_priority": i.set_priority,
        "limits": account.map(|a| a.limits()).unwrap_or_default(),
        "budget": account.map(|a| a.budget()).unwrap_or_default(),
        "in_flight": account.map_or(0, |a| a.in_flight()),
        "spent_today_usd": spend.map(|s| s.day_usd),
        "spent_this_month_usd": spend.map(|s| s.month_usd),
        "created": created,
        "secrets": secrets.iter().map(|s| json!({"prefix": s.prefix, "not_after": s.not_after})).collect::<Vec<_>>(),
    })
}

/// `GET /admin/keys`.
pub async fn list(State(app): State<Arc<AppState>>, _: AdminOnly) -> Response {
    let snap = app.snapshot();
    let mut data: Vec<Value> = snap.keyring.identities().map(|i| view(i, &[], None)).collect();
    data.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let records = app.runtime.admission.admin.records.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let protect = &snap.config.protect;
    for r in records.iter().filter(|r| !r.revoked) {
        let identity = app.runtime.admission.admin_identity(r, protect);
        data.push(view(&identity, &r.secrets, Some(r.created)));
    }
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    team: Option<String>,
    #[serde(default)]
    routes: Vec<String>,
    priority: Option<String>,
    #[serde(default)]
    set_priority: bool,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    budget: Budget,
}

/// A fresh secret: `nines-` and 48 hex digits (192 random bits).
fn mint_secret() -> String {
    let a: u128 = rand::random();
    let b: u64 = rand::random();
    format!("nines-{a:032x}{b:016x}")
}

fn secret_record(secret: &str) -> SecretRecord {
    SecretRecord { sha256: hex(&digest(secret)), prefix: secret.chars().take(12).collect(), not_after: None }
}

fn bad(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request_error", message)
}

/// `POST /admin/keys`.
pub async fn create(State(app): State<Arc<AppState>>, _: AdminOnly, body: Bytes) -> Response {
    if body.len() > ADMIN_BODY {
        return bad("the body is larger than an admin request needs");
    }
    let new: NewKey = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => return bad(format!("invalid key: {e}")),
    };
    if !valid_name(&new.name) {
        return bad("`name` is 1 to 64 of A-Z a-z 0-9 . _ -");
    }
    if new.team.as_deref().is_some_and(|t| !valid_name(t)) {
        return bad("`team` is 1 to 64 of A-Z a-z 0-9 . _ -");
    }
    let priority = match new.priority.as_deref().map(Priority::parse) {
        None => Priority::Default,
        Some(Some(p)) => p,
        Some(None) => return bad("`priority` is one of interactive, default, batch"),
    };
    let l = new.limits;
    if [l.requests_per_minute.map(u64::from), l.input_tokens_per_minute, l.output_tokens_per_minute]
        .iter()
        .chain(&[l.concurrency.map(u64::from)])
        .any(|v| *v == Some(0))
    {
        return bad("limits must be greater than zero (leave one out for no limit)");
    }
    if [new.budget.daily, new.budget.monthly].iter().flatten().any(|v| !(v.is_finite() && *v >= 0.0)) {
        return bad("budgets are dollars ≥ 0");
    }
    let secret = mint_secret();
    let id = format!("key_{:016x}", rand::random::<u64>());
    let record = KeyRecord {
        id,
        name: new.name,
        team: new.team,
        routes: new.routes,
        priority: priority.as_str().to_owned(),
        set_priority: new.set_priority,
        limits: new.limits,
        budget: new.budget,
        created: app.runtime.admission.unix_now(),
        secrets: vec![secret_record(&secret)],
        revoked: false,
    };
    let admission = &app.runtime.admission;
    let _one = admission.admin.changing.lock().await;
    // Persisted first: a key the store did not take is never handed out.
    if let Err(e) = app.runtime.keys.put(&record).await {
        tracing::error!(target: "nines::keys", "cannot store a new key: {e}");
        return error(StatusCode::INTERNAL_SERVER_ERROR, "api_error", "the key store is unavailable");
    }
    let snap = app.snapshot();
    let mut records = admission.admin.records.lock().unwrap_or_else(|p| p.into_inner()).clone();
    records.push(record.clone());
    admission.admin.set_records(records);
    admission.rebuild_admin(&snap.config.protect);
    tracing::info!(target: "nines::keys", id = %record.id, name = %record.name, "key created");
    let mut v = view(
        &app.runtime.admission.admin_identity(&record, &snap.config.protect),
        &record.secrets,
        Some(record.created),
    );
    v["key"] = Value::String(secret);
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotate {
    #[serde(default, with = "humantime_serde")]
    overlap: Option<Duration>,
}

/// The longest a rotated-out secret may keep working.
const MAX_OVERLAP: Duration = Duration::from_secs(30 * 24 * 3600);

/// `POST /admin/keys/{id}/rotate`.
pub async fn rotate(
    State(app): State<Arc<AppState>>,
    _: AdminOnly,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if body.len() > ADMIN_BODY {
        return bad("the body is larger than an admin request needs");
    }
    let ask: Rotate = if body.is_empty() {
        Rotate::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return bad(format!("invalid rotation: {e}")),
        }
    };
    let overlap = ask.overlap.unwrap_or(Duration::from_secs(3600));
    if overlap > MAX_OVERLAP {
        return bad("`overlap` is at most 30 days");
    }
    let admission = &app.runtime.admission;
    let _one = admission.admin.changing.lock().await;
    let now = admission.unix_now();
    let secret = mint_secret();
    let mut records = admission.admin.records.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let Some(r) = records.iter_mut().find(|r| r.id == id && !r.revoked) else {
        return missing(&app, &id);
    };
    let until = now + overlap.as_secs();
    for s in &mut r.secrets {
        s.not_after = Some(s.not_after.map_or(until, |t| t.min(until)));
    }
    // Secrets already past their overlap are dropped.
    r.secrets.retain(|s| s.not_after.is_none_or(|t| t > now));
    r.secrets.push(secret_record(&secret));
    let record = r.clone();
    // Persisted first: if the store fails, nothing changes (the old secrets keep working, no new one exists).
    if let Err(e) = app.runtime.keys.put(&record).await {
        tracing::error!(target: "nines::keys", "cannot store a rotated key: {e}");
        return error(StatusCode::INTERNAL_SERVER_ERROR, "api_error", "the key store is unavailable");
    }
    admission.admin.set_records(records);
    let snap = app.snapshot();
    admission.rebuild_admin(&snap.config.protect);
    tracing::info!(target: "nines::keys", id = %record.id, overlap_s = overlap.as_secs(), "key rotated");
    let mut v = view(
        &app.runtime.admission.admin_identity(&record, &snap.config.protect),
        &record.secrets,
        Some(record.created),
    );
    v["key"] = Value::String(secret);
    axum::Json(v).into_response()
}

fn missing(app: &AppState, id: &str) -> Response {
    let configured = app.snapshot().keyring.identities().any(|i| &*i.id == id);
    if configured {
        error(
            StatusCode::CONFLICT,
            "invalid_request_error",
            format!("key \"{id}\" is defined in the configuration: change it there (and reload)"),
        )
    } else {
        error(StatusCode::NOT_FOUND, "not_found_error", format!("no key \"{id}\""))
    }
}

/// `DELETE /admin/keys/{id}`.
pub async fn revoke(State(app): State<Arc<AppState>>, _: AdminOnly, Path(id): Path<String>) -> Response {
    let admission = &app.runtime.admission;
    let _one = admission.admin.changing.lock().await;
    let mut records = admission.admin.records.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let Some(r) = records.iter_mut().find(|r| r.id == id && !r.revoked) else {
        return missing(&app, &id);
    };
    // Kept, without its secrets: the id is never reused and the gateway never turns open.
    r.revoked = true;
    r.secrets.clear();
    let record = r.clone();
    if let Err(e) = app.runtime.keys.put(&record).await {
        tracing::error!(target: "nines::keys", "cannot store a revoked key: {e}");
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "the key store is unavailable: not revoked",
        );
    }
    admission.admin.set_records(records);
    admission.rebuild_admin(&app.snapshot().config.protect);
    tracing::info!(target: "nines::keys", id = %id, "key revoked");
    axum::Json(json!({"id": id, "deleted": true})).into_response()
}

/// `POST /admin/reload`.
pub async fn reload(State(app): State<Arc<AppState>>, _: AdminOnly) -> Response {
    match app.reload().await {
        Ok(notes) => axum::Json(json!({"reloaded": true, "notes": notes})).into_response(),
        Err(e) => {
            tracing::error!(target: "nines::config", "reload refused, the running configuration is kept: {e}");
            let body = json!({"reloaded": false, "error": {"type": "invalid_request_error",
                "message": "the configuration was refused; the running one is kept", "errors": e.errors()}});
            (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
        }
    }
}
