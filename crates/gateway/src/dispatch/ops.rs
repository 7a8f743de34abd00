//! The operations other than chat that the attempt engine runs: embeddings and token counting. Each says how to
//! make a body for a target and how to read one attempt's answer; failover is the engine's.

use bytes::Bytes;
use http::HeaderMap;
use nines_wire::embeddings::{self, EmbedRequest, EmbedResponse};
use nines_wire::{Dialect, EncodeError};
use tokio::time::Instant;

use super::attempt::exchange;
use super::{Operation, Prepared, Skip, with_model};
use crate::config::ProviderKind;
use crate::provider::{ErrorKind, ProviderError};
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
            ProviderKind::OpenAi => {
                let body = with_model(self.raw, &target.model).map_err(|e| Skip::Other(e.to_string()))?;
                Ok(Prepared { body, passthrough: true, dropped: Vec::new() })
            }
            ProviderKind::Gemini => {
                let body =
                    embeddings::encode_gemini_request(self.request, &target.model).map_err(Skip::Cannot)?;
                Ok(Prepared { body: Bytes::from(body), passthrough: false, dropped: Vec::new() })
            }
            ProviderKind::Anthropic => {
                Err(cannot("model", Dialect::Anthropic, "Anthropic has no embeddings API"))
            }
        }
    }

    async fn attempt(
        &self,
        target: &Target,
        prepared: &Prepared,
        deadline: Instant,
    ) -> Result<Embedded, ProviderError> {
        let provider = &target.provider;
        let Some(url) = provider.embeddings_url(&target.model) else {
            return Err(ProviderError::new(ErrorKind::BadRequest, "this provider has no embeddings API"));
        };
        let req = provider.post(url, prepared.body.clone(), &HeaderMap::new());
        let (body, _) = exchange(provider, req, deadline).await?;
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

/// `POST /v1/messages/count_tokens`: exact counts come only from Anthropic targets (the client's own bytes);
/// others are skipped, and the front door estimates when no Anthropic target answers.
pub struct CountTokens<'a> {
    pub raw: &'a Bytes,
    pub headers: &'a HeaderMap,
}

impl Operation for CountTokens<'_> {
    type Output = Bytes;

    fn prepare(&self, target: &Target) -> Result<Prepared, Skip> {
        if target.provider.config.kind != ProviderKind::Anthropic {
            return Err(cannot(
                "model",
                target.provider.dialect(),
                "only Anthropic counts Messages tokens exactly",
            ));
        }
        let body = with_model(self.raw, &target.model).map_err(|e| Skip::Other(e.to_string()))?;
        Ok(Prepared { body, passthrough: true, dropped: Vec::new() })
    }

    async fn attempt(
        &self,
        target: &Target,
        prepared: &Prepared,
        deadline: Instant,
    ) -> Result<Bytes, ProviderError> {
        let provider = &target.provider;
        let Some(url) = provider.count_tokens_url() else {
            return Err(ProviderError::new(ErrorKind::BadRequest, "this provider does not count tokens"));
        };
        let req = provider.post(url, prepared.body.clone(), self.headers);
        let (body, _) = exchange(provider, req, deadline).await?;
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(v) if v.get("input_tokens").is_some_and(serde_json::Value::is_u64) => Ok(body),
            _ => Err(ProviderError::new(ErrorKind::Protocol, "unreadable count_tokens answer")),
        }
    }
}
