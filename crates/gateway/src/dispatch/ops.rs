//! The operations other than chat that the attempt engine runs: embeddings and token counting. Each says how to
//! make a body for a target and how to read one attempt's answer; failover is the engine's.

use bytes::Bytes;
use http::HeaderMap;
use nines_wire::embeddings::{self, EmbedRequest, EmbedResponse};
use nines_wire::{Dialect, EncodeError};

use super::attempt::exchange;
use super::{Limits, Operation, Outcome, Prepared, Skip, with_model};
use crate::config::ProviderKind;
use crate::provider::{ErrorKind, ProviderError, parse_uri};
use crate::route::Target;

/// `POST /v1/embeddings` (OpenAI format): OpenAI-format targets take the client's bytes, Gemini targets a
/// translation, Anthropic targets are skipped (Anthropic has no embeddings API).
pub struct Embeddings<'a> {
    pub raw: &'a Bytes,
    pub request: &'a EmbedRequest,
}

/// An embeddings answer: decoded, and the upstream's own bytes when they can be returned as they are.
#[derive(Debug)]
pub struct Embedded {
    pub response: EmbedResponse,
    pub raw: Option<Bytes>,
}

fn cannot(field: &str, target: Dialect, why: &str) -> Skip {
    Skip::Cannot(EncodeError { field: field.to_owned(), target, why: why.to_owned() })
}

impl Operation for Embeddings<'_> {
    type Output = Embedded;

    fn prepare(&self, target: &Target) -> Result<Prepared, Skip> {
        match target.provider.config.kind {
            ProviderKind::OpenAi | ProviderKind::OpenAiResponses => {
                let body = with_model(self.raw, &target.model).map_err(|e| Skip::Other(e.to_string()))?;
                Ok(Prepared { body, passthrough: true, dropped: Vec::new(), continuation: None })
            }
            ProviderKind::Gemini => {
                let body =
                    embeddings::encode_gemini_request(self.request, &target.model).map_err(Skip::Cannot)?;
                Ok(Prepared {
                    body: Bytes::from(body),
                    passthrough: false,
                    dropped: Vec::new(),
                    continuation: None,
                })
            }
            ProviderKind::Anthropic => {
                Err(cannot("model", Dialect::Anthropic, "Anthropic has no embeddings API"))
            }
            ProviderKind::LocalEmbeddings => {
                let dims = target.provider.embedder.as_ref().map_or(0, |e| e.model.dims());
                if self.request.token_inputs {
                    return Err(cannot(
                        "input",
                        Dialect::OpenAiChat,
                        "the local model takes text, not token ids",
                    ));
                }
                if self.request.dimensions.is_some_and(|d| d as usize != dims) {
                    return Err(cannot(
                        "dimensions",
                        Dialect::OpenAiChat,
                        &format!("the local model makes vectors of {dims} dimensions only"),
                    ));
                }
                Ok(Prepared {
                    body: Bytes::new(),
                    passthrough: false,
                    dropped: Vec::new(),
                    continuation: None,
                })
            }
        }
    }

    async fn attempt(
        &self,
        target: &Target,
        prepared: &Prepared,
        limits: Limits,
    ) -> Result<Embedded, ProviderError> {
        let provider = &target.provider;
        if let Some(model) = &provider.embedder {
            return local(model.clone(), &self.request.inputs, &target.model, limits).await;
        }
        let Some(url) = provider.embeddings_url(&target.model) else {
            return Err(ProviderError::new(ErrorKind::BadRequest, "this provider has no embeddings API"));
        };
        let req = provider.post(parse_uri(url)?, prepared.body.clone(), &HeaderMap::new());
        let (body, _) = exchange(provider, req, limits).await?;
        let protocol = |e: nines_wire::DecodeError| {
            ProviderError::new(ErrorKind::Protocol, format!("unreadable embeddings answer: {e}"))
                .with_source(e)
        };
        match provider.config.kind {
            ProviderKind::Gemini => {
                let response = embeddings::decode_gemini_response(&body, &target.model, &self.request.inputs)
                    .map_err(protocol)?;
                Ok(Embedded { response, raw: None })
            }
            _ => {
                let response = embeddings::decode_openai_response(&body).map_err(protocol)?;
                Ok(Embedded { response, raw: Some(body) })
            }
        }
    }
}

impl Outcome for Embedded {}

/// Texts embedded by the in-process model, on a blocking thread, within the attempt's deadline (a batch past it
/// finishes on its thread, unseen).
async fn local(
    local: std::sync::Arc<crate::provider::LocalModel>,
    inputs: &[String],
    name: &str,
    limits: Limits,
) -> Result<Embedded, ProviderError> {
    let late = || ProviderError::new(ErrorKind::Timeout, "the local model did not finish in time");
    // One batch at a time: wait for the model (within the deadline), and hold it until the work is done.
    let permit = match tokio::time::timeout_at(limits.deadline, local.running.clone().acquire_owned()).await {
        Ok(Ok(p)) => p,
        Ok(Err(_)) => return Err(ProviderError::new(ErrorKind::Server, "the local model is gone")),
        Err(_) => return Err(late()),
    };
    let texts = inputs.to_vec();
    let work = tokio::task::spawn_blocking(move || {
        let _running = permit;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        local.model.embed_counted(&refs).map(|(vectors, tokens)| (vectors, tokens as u64))
    });
    let (vectors, input_tokens) = match tokio::time::timeout_at(limits.deadline, work).await {
        Err(_) => {
            return Err(ProviderError::new(ErrorKind::Timeout, "the local model did not finish in time"));
        }
        Ok(Err(e)) => {
            return Err(
                ProviderError::new(ErrorKind::Server, "the local model's thread failed").with_source(e)
            );
        }
        Ok(Ok(Err(e))) => {
            return Err(ProviderError::new(ErrorKind::Server, "the local model failed").with_source(e));
        }
        Ok(Ok(Ok(done))) => done,
    };
    Ok(Embedded { response: EmbedResponse { model: name.to_owned(), vectors, input_tokens }, raw: None })
}

/// Token counting in the client's own format: `POST /v1/messages/count_tokens` (Anthropic) or `:countTokens`
/// (Gemini). Exact counts come only from targets of that same dialect (the client's own bytes); others are
/// skipped, and the front door estimates when none answers.
pub struct CountTokens<'a> {
    pub dialect: Dialect,
    pub raw: &'a Bytes,
    pub headers: &'a HeaderMap,
}

impl Operation for CountTokens<'_> {
    type Output = Bytes;

    fn prepare(&self, target: &Target) -> Result<Prepared, Skip> {
        if target.provider.dialect() != self.dialect {
            return Err(cannot(
                "model",
                target.provider.dialect(),
                "only a provider of the request's own format counts its tokens exactly",
            ));
        }
        let body = match self.dialect {
            Dialect::Gemini => gemini_count_body(self.raw, &target.model),
            _ => with_model(self.raw, &target.model),
        }
        .map_err(|e| Skip::Other(e.to_string()))?;
        Ok(Prepared { body, passthrough: true, dropped: Vec::new(), continuation: None })
    }

    /// A count is asked of a chat target's name at another endpoint, which may not exist there: what happens to it
    /// says nothing of the target's chat health.
    fn judges_health(&self) -> bool {
        false
    }

    async fn attempt(
        &self,
        target: &Target,
        prepared: &Prepared,
        limits: Limits,
    ) -> Result<Bytes, ProviderError> {
        let provider = &target.provider;
        let Some(url) = provider.count_tokens_url(&target.model) else {
            return Err(ProviderError::new(ErrorKind::BadRequest, "this provider does not count tokens"));
        };
        let req = provider.post(parse_uri(url)?, prepared.body.clone(), self.headers);
        let (body, _) = exchange(provider, req, limits).await?;
        let field = if self.dialect == Dialect::Gemini { "totalTokens" } else { "input_tokens" };
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(v) if v.get(field).is_some_and(serde_json::Value::is_u64) => Ok(body),
            _ => Err(ProviderError::new(ErrorKind::Protocol, "unreadable token count answer")),
        }
    }
}

/// A Gemini `countTokens` body names no model, except inside a `generateContentRequest`, where it must be the
/// target's.
fn gemini_count_body(raw: &Bytes, model: &str) -> Result<Bytes, serde_json::Error> {
    let mut v: serde_json::Value = serde_json::from_slice(raw)?;
    let key = if v.get("generateContentRequest").is_some() {
        "generateContentRequest"
    } else {
        "generate_content_request"
    };
    match v.get_mut(key).and_then(serde_json::Value::as_object_mut) {
        Some(req) => {
            let name =
                if model.starts_with("models/") { model.to_owned() } else { format!("models/{model}") };
            req.insert("model".to_owned(), serde_json::Value::String(name));
            Ok(Bytes::from(serde_json::to_vec(&v)?))
        }
        None => Ok(raw.clone()),
    }
}
