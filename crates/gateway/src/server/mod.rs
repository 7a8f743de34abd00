//! The HTTP server: the router of front doors and probes. Handlers live in [`routes`] (Gemini's in [`gemini`],
//! the Responses API's in [`responses`]); error rendering in [`error`].

pub mod admin;
pub mod error;
pub mod gemini;
pub mod listen;
pub mod responses;
pub mod routes;
pub mod status;
pub mod status_page;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::app::AppState;

/// Requests carry whole conversations (and, later, images): allow large bodies.
pub const BODY_LIMIT: usize = 32 * 1024 * 1024;

pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/v1/chat/completions", post(routes::chat_completions))
        .route("/v1/messages", post(routes::messages))
        .route("/v1/responses", post(responses::create))
        .route("/v1/responses/{id}", get(responses::get).delete(responses::delete))
        .route("/v1/responses/{id}/input_items", get(responses::input_items_of))
        .route("/v1/messages/count_tokens", post(routes::count_tokens))
        .route("/v1/embeddings", post(routes::embeddings))
        .route("/v1/models", get(routes::models))
        .route("/v1/models/{*rest}", get(gemini::get).post(gemini::post))
        .route("/v1beta/models", get(gemini::list))
        .route("/v1beta/models/{*rest}", get(gemini::get).post(gemini::post));
    Router::new()
        .merge(api)
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/status", get(status::page))
        .route("/status.json", get(status::json))
        .route("/metrics", get(status::metrics))
        .route("/admin/keys", get(admin::list).post(admin::create))
        .route("/admin/keys/{id}", axum::routing::delete(admin::revoke))
        .route("/admin/keys/{id}/rotate", post(admin::rotate))
        .route("/admin/reload", post(admin::reload))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}
