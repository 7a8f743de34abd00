//! The app's HTTP side under `/app`: the page and its files, PDF.js, and the JSON API of
//! docs/app.md. Who is asking comes from the `Authorization: Bearer` key, checked by the gateway
//! itself; every row read or written is that key's. Errors are JSON with the status that says what went wrong.

use std::path::{Component, Path};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::gateway::GatewayError;
use crate::{Ask, ask, ingest};

const PAGE: &str = include_str!("../web/index.html");
const SCRIPT: &str = include_str!("../web/app.js");
const STYLE: &str = include_str!("../web/app.css");

/// The page's policy: its own files only, PDF.js's worker included; nothing inline, nothing framed.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   worker-src 'self' blob:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'none'";

/// The longest question taken, in bytes.
const MAX_QUESTION: usize = 4000;
/// The longest notebook name.
const MAX_NAME: usize = 200;

/// An error as the page reads it.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError(status, message.into())
    }
    fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("no such {what}"))
    }
    fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::warn!(target: "nines::app", "{e}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the app could not do that: see the gateway's log")
    }
}

/// A notebook's, document's or conversation's id from the path. Ours are `prefix_` and hex digits: anything else (a
/// NUL, a slash, a kilobyte of it) names nothing, and never reaches the store.
struct Id(String);

fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> std::result::Result<Id, ApiError> {
        match UrlPath::<String>::from_request_parts(parts, state).await {
            Ok(UrlPath(id)) if is_id(&id) => Ok(Id(id)),
            _ => Err(ApiError::new(StatusCode::NOT_FOUND, "no such notebook, document or conversation")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": {"message": self.1}}))).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Unavailable(_) => {
                tracing::warn!(target: "nines::app", "{e}");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, crate::store::UNAVAILABLE)
            }
            e => ApiError::internal(e),
        }
    }
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        match e {
            GatewayError::Unauthorized => {
                ApiError::new(StatusCode::UNAUTHORIZED, "this key is not accepted by the gateway")
            }
            other => ApiError::new(StatusCode::BAD_GATEWAY, other.to_string()),
        }
    }
}

type Result<T> = std::result::Result<T, ApiError>;

/// The caller: their key (if any) and who that makes them; put in the request by [`authenticate`].
#[derive(Clone)]
struct Caller {
    key: Option<SecretString>,
    owner: String,
}

async fn caller(ask: &Ask, headers: &HeaderMap) -> Result<Caller> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| SecretString::from(k.to_owned()));
    let owner = ask.gateway.check(key.as_ref()).await?;
    Ok(Caller { key, owner })
}

/// The most uploads read at once (each may hold up to `max_upload` bytes in memory).
const UPLOADS_AT_ONCE: usize = 4;
/// The most notebooks one owner may have.
const MAX_NOTEBOOKS: usize = 100;
/// The JSON bodies the API takes (a question, a notebook's name).
const JSON_LIMIT: usize = 64 * 1024;

pub fn router(ask: Arc<Ask>) -> axum::Router {
    let upload_limit = usize::try_from(ask.settings.max_upload).unwrap_or(usize::MAX);
    let uploads = Arc::new(tokio::sync::Semaphore::new(UPLOADS_AT_ONCE));
    // Every API call is authenticated before its body is read; an upload also waits for no one: past
    // UPLOADS_AT_ONCE it is refused at once.
    let api = axum::Router::new()
        .route("/api/info", get(info))
        .route("/api/notebooks", get(notebooks).post(create_notebook))
        .route("/api/notebooks/{nb}", axum::routing::delete(delete_notebook))
        .route(
            "/api/notebooks/{nb}/documents",
            get(documents).post(upload).layer(DefaultBodyLimit::max(upload_limit.saturating_add(1))).layer(
                axum::middleware::from_fn(
                    move |req: axum::extract::Request, next: axum::middleware::Next| {
                        let uploads = uploads.clone();
                        async move {
                            let Ok(_permit) = uploads.try_acquire_owned() else {
                                return ApiError::new(
                                    StatusCode::TOO_MANY_REQUESTS,
                                    "too many uploads at once: try again",
                                )
                                .into_response();
                            };
                            next.run(req).await
                        }
                    },
                ),
            ),
        )
        .route("/api/notebooks/{nb}/ask", post(question))
        .route("/api/documents/{id}", get(document).delete(delete_document))
        .route("/api/documents/{id}/pdf", get(document_pdf))
        .route("/api/conversations/{id}", get(conversation))
        .route_layer(axum::middleware::from_fn_with_state(ask.clone(), authenticate))
        .layer(DefaultBodyLimit::max(JSON_LIMIT));
    axum::Router::new()
        .route("/", get(page))
        .route("/static/app.js", get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }))
        .route("/static/app.css", get(|| async { asset(STYLE, "text/css; charset=utf-8") }))
        .route("/pdfjs/{*path}", get(pdfjs))
        .merge(api)
        .fallback(|| async { ApiError::not_found("page") })
        .with_state(ask)
}

/// Who is calling, checked by the gateway, before anything else (the body included) is read; the answers of the
/// API are never cached.
async fn authenticate(
    State(ask): State<Arc<Ask>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let who = match caller(&ask, req.headers()).await {
        Ok(who) => who,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(who);
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A body's declared type must be `want` (a cross-site form cannot send JSON or a PDF without the browser asking
/// first).
fn content_type(headers: &HeaderMap, want: &str) -> Result<()> {
    let got = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if got.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case(want)) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("send this as {want}")))
    }
}

/// The page (at `/app` and `/app/`).
pub async fn page() -> Response {
    let mut r = asset(PAGE, "text/html; charset=utf-8");
    r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    r.headers_mut().insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    r.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// A file of PDF.js, from its folder; only plain relative paths.
async fn pdfjs(State(ask): State<Arc<Ask>>, UrlPath(path): UrlPath<String>) -> Result<Response> {
    let Some(root) = &ask.settings.pdfjs_dir else { return Err(ApiError::not_found("file")) };
    let rel = Path::new(&path);
    if path.len() > 300 || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(ApiError::not_found("file"));
    }
    let kind = match rel.extension().and_then(|e| e.to_str()) {
        Some("mjs" | "js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    let bytes = tokio::fs::read(root.join(rel)).await.map_err(|_| ApiError::not_found("file"))?;
    Ok(([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "max-age=3600")], bytes).into_response())
}

async fn info(State(ask): State<Arc<Ask>>) -> Json<Value> {
    let s = &ask.settings;
    Json(json!({
        "pdfjs": s.pdfjs_dir.as_ref().is_some_and(|d| d.join("build/pdf.min.mjs").is_file()),
        "ocr": s.tools.ocrmypdf.is_some(),
        "max_upload_bytes": s.max_upload,
        "max_documents": s.max_documents,
    }))
}

async fn notebooks(State(ask): State<Arc<Ask>>, Extension(who): Extension<Caller>) -> Result<Json<Value>> {
    Ok(Json(json!({"notebooks": ask.store.notebooks(&who.owner).await?})))
}

async fn create_notebook(
    State(ask): State<Arc<Ask>>,
    Extension(who): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>)> {
    content_type(&headers, "application/json")?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("the body is not JSON: {e}")))?;
    let name = v["name"].as_str().map(str::trim).unwrap_or("");
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "a notebook needs a name of 1 to 200 bytes"));
    }
    let Some(nb) = ask.store.create_notebook(&who.owner, name, MAX_NOTEBOOKS).await? else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{MAX_NOTEBOOKS} notebooks at most: delete one first"),
        ));
    };
    Ok((StatusCode::CREATED, Json(json!(nb))))
}

async fn delete_notebook(
    State(ask): State<Arc<Ask>>,
    Extension(who): Extension<Caller>,
    Id(nb): Id,
) -> Result<StatusCode> {
    if !ask.store.delete_notebook(&who.owner, &nb).await? {
        return Err(ApiError::not_found("notebook"));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn documents(
    State(ask): State<Arc<Ask>>,
    Extension(who): Extension<Caller>,
    Id(nb): Id,
) -> Result<Json<Value>> {
    if ask.store.notebook(&who.owner, &nb).await?.is_none() {
        return Err(ApiError::not_found("notebook"));
    }
    Ok(Json(json!({"documents": ask.store.documents(&who.owner, &nb).await?})))
}

/// The file name a client sent (percent-encoded UTF-8), reduced to something safe to show.
fn file_name(headers: &HeaderMap) -> String {
    let raw = headers.get("x-filename").and_then(|v| v.to_str().ok()).unwrap_or("document.pdf");
    let decoded: Vec<u8> = percent_decode(raw);
    let name = String::from_utf8_lossy(&decoded);
    let name = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = name.chars().filter(|c| !c.is_control()).take(200).collect();
    if clean.trim().is_empty() { "document.pdf".to_owned() } else { clean.trim().to_owned() }
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) =
                (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

async fn upload(
    State(ask): State<Arc<Ask>>,
    Extension(who): Extension<Caller>,
    headers: HeaderMap,
    Id(nb): Id,
    body: std::result::Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Value>)> {
    let limit = ask.settings.max_upload;
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("a document may be at most {limit} bytes"))
        }
        s => ApiError::new(s, e.body_text()),
    })?;
    if body.len() as u64 > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a document may be at most {limit} bytes"),
        ));
    }
    content_type(&headers, "application/pdf")?;
    if ask.store.notebook(&who.owner, &nb).await?.is_none() {
        return Err(ApiError::not_found("notebook"));
    }
    if !body.starts_with(b"%PDF-") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "this is not a PDF (it does not start with %PDF-)",
        ));
    }
    let max = ask.settings.max_documents;
    let Some(doc) = ask.store.create_document(&who.owner, &nb, &file_name(&headers), &body, max).await?
    else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("this notebook is full ({max} documents): delete one first"),
        ));
    };
    let job = ingest::run(ask.clone(), doc.id.clone(), who.owner, nb, who.key);
    ask.tasks.spawn(job);
    Ok((StatusCode::ACCEPTED, Json(json!({"document": doc}))))
}

async fn document(
    State(ask): State<Arc<Ask>>,
    Extension(who): Extension<Caller>,
    Id(id): Id,
) -> Result<Json<Value>> {
    let doc = ask.store.document(&who.owner, &id).await?.ok_or_else(|| ApiError::not_found("document"))?;
    Ok(Json(json!(doc)))
}

async fn document_pdf(
    State(ask): State<Arc<Ask>>,
    Extension(who): Extension<Caller>,
    Id(id): Id,
) -> Result<Response> {
    let bytes = ask.store.pdf(&who.owner, &id).await?.ok_or_else(|| ApiError::not_found("document"))?;
    Ok(([(header::CONTENT_TYPE, "application/pdf"), (header::CACHE_CONTROL, "private, no-store")], bytes)
        .into_response())
}

async fn delete_document(
    State(ask): State<Arc<Ask>>,
    Extension(who): Extension<Caller>,
    Id(id): Id,
) -> Result<StatusCode> {
    if !ask.store.delete_document(&who.owner, &id).await? {
        return Err(ApiError::not_found("document"));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn conversation(
    State(ask): State<Arc<Ask>>,
    Extension(who): Extension<Caller>,
    Id(id): Id,
) -> Result<Json<Value>> {
    let nb = ask
        .store
        .conversation_notebook(&who.owner, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("conversation"))?;
    let (_, turns) = ask
        .store
        .conversation(&who.owner, &nb, Some(&id))
        .await?
        .ok_or_else(|| ApiError::not_found("conversation"))?;
    Ok(Json(json!({"id": id, "notebook": nb, "turns": turns})))
}

async fn question(
    State(ask): State<Arc<Ask>>,
    Extension(who): Extension<Caller>,
    headers: HeaderMap,
    Id(nb): Id,
    body: Bytes,
) -> Result<Response> {
    content_type(&headers, "application/json")?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("the body is not JSON: {e}")))?;
    let text = v["question"].as_str().map(str::trim).unwrap_or("");
    if text.is_empty() || text.len() > MAX_QUESTION {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "a question needs 1 to 4000 bytes of text"));
    }
    if ask.store.notebook(&who.owner, &nb).await?.is_none() {
        return Err(ApiError::not_found("notebook"));
    }
    let asked = v["conversation"].as_str();
    if asked.is_some_and(|c| !is_id(c)) {
        return Err(ApiError::not_found("conversation"));
    }
    let (conversation, history) = ask
        .store
        .conversation(&who.owner, &nb, asked)
        .await?
        .ok_or_else(|| ApiError::not_found("conversation"))?;
    let q = ask::Question {
        owner: who.owner,
        key: who.key,
        notebook: nb,
        conversation,
        history,
        text: text.to_owned(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    ask.tasks.spawn(ask::answer(ask.clone(), q, tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_name_is_decoded_and_kept_to_its_last_segment() {
        let mut h = HeaderMap::new();
        h.insert("x-filename", HeaderValue::from_static("..%2F..%2Fetc%2Fr%C3%A9sum%C3%A9.pdf"));
        assert_eq!(file_name(&h), "résumé.pdf");
        h.insert("x-filename", HeaderValue::from_static("%0a%0d%"));
        assert_eq!(file_name(&h), "%");
        assert_eq!(file_name(&HeaderMap::new()), "document.pdf");
    }

    #[test]
    fn only_ids_of_ours_reach_the_store() {
        assert!(is_id("doc_00ff12ab34cd56ef"));
        for bad in ["", "doc\0", "../x", "a b", "é", &"a".repeat(65)] {
            assert!(!is_id(bad), "{bad:?}");
        }
    }
}
