//! Embeddings: OpenAI's `POST /v1/embeddings` (the front door, and OpenAI-compatible targets) ⇄ Gemini's
//! `batchEmbedContents`. Anthropic has no embeddings API.
//!
//! References: <https://platform.openai.com/docs/api-reference/embeddings/create>,
//! <https://ai.google.dev/api/embeddings>.

use base64::Engine;
use serde_json::{Value, json};

use crate::json::{arr_of, str_of};
use crate::{DecodeError, Dialect, EncodeError};

/// An embeddings request as the gateway understands it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EmbedRequest {
    pub model: String,
    pub inputs: Vec<String>,
    pub dimensions: Option<u32>,
    /// The client wants vectors as base64 of little-endian f32 (the official OpenAI SDKs ask for this).
    pub base64: bool,
    /// Inputs given as token arrays: only an OpenAI-format target can take them.
    pub token_inputs: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct EmbedResponse {
    pub model: String,
    pub vectors: Vec<Vec<f32>>,
    pub input_tokens: u64,
}

pub fn decode_request(body: &[u8]) -> Result<EmbedRequest, DecodeError> {
    let v: Value = serde_json::from_slice(body)?;
    let model =
        str_of(&v, "model").ok_or_else(|| DecodeError::Invalid("model: a string is required".into()))?;
    let mut token_inputs = false;
    let inputs = match v.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()
        }
        Some(Value::Array(_)) => {
            token_inputs = true;
            Vec::new()
        }
        _ => return Err(DecodeError::Invalid("input: a string or a list is required".into())),
    };
    if !token_inputs && inputs.is_empty() {
        return Err(DecodeError::Invalid("input: must not be empty".into()));
    }
    Ok(EmbedRequest {
        model: model.to_owned(),
        inputs,
        dimensions: v.get("dimensions").and_then(Value::as_u64).and_then(|d| u32::try_from(d).ok()),
        base64: str_of(&v, "encoding_format") == Some("base64"),
        token_inputs,
    })
}

/// The body for a target of `dialect` (Gemini's `batchEmbedContents`; an OpenAI target takes the client's bytes).
pub fn encode_gemini_request(req: &EmbedRequest, model: &str) -> Result<Vec<u8>, EncodeError> {
    if req.token_inputs {
        return Err(EncodeError {
            field: "input".into(),
            target: Dialect::Gemini,
            why: "token arrays are not translated; send text".into(),
        });
    }
    let name = format!("models/{}", model.strip_prefix("models/").unwrap_or(model));
    let requests: Vec<Value> = req
        .inputs
        .iter()
        .map(|text| {
            let mut r = json!({"model": name, "content": {"parts": [{"text": text}]}});
            if let Some(d) = req.dimensions {
                r["outputDimensionality"] = json!(d);
            }
            r
        })
        .collect();
    Ok(serde_json::to_vec(&json!({"requests": requests})).unwrap_or_default())
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_f64).map(|f| f as f32).collect()).unwrap_or_default()
}

pub fn decode_gemini_response(
    body: &[u8],
    model: &str,
    inputs: &[String],
) -> Result<EmbedResponse, DecodeError> {
    let v: Value = serde_json::from_slice(body)?;
    let Some(embeddings) = v.get("embeddings").and_then(Value::as_array) else {
        return Err(DecodeError::Invalid("embeddings: a list is required".into()));
    };
    let vectors: Vec<Vec<f32>> =
        embeddings.iter().map(|e| floats(e.get("values").unwrap_or(&Value::Null))).collect();
    if vectors.len() != inputs.len() {
        return Err(DecodeError::Invalid(format!(
            "{} embeddings for {} inputs",
            vectors.len(),
            inputs.len()
        )));
    }
    // Gemini reports no token count for embeddings: estimate it (about four characters a token).
    let input_tokens = inputs.iter().map(|t| estimate_tokens(t)).sum();
    Ok(EmbedResponse { model: model.to_owned(), vectors, input_tokens })
}

pub fn decode_openai_response(body: &[u8]) -> Result<EmbedResponse, DecodeError> {
    let v: Value = serde_json::from_slice(body)?;
    let Some(data) = v.get("data").and_then(Value::as_array) else {
        return Err(DecodeError::Invalid("data: a list is required".into()));
    };
    let mut vectors = Vec::with_capacity(data.len());
    for d in data {
        match d.get("embedding") {
            Some(Value::String(b64)) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| DecodeError::Invalid(format!("embedding: {e}")))?;
                vectors.push(
                    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
                );
            }
            Some(v) => vectors.push(floats(v)),
            None => return Err(DecodeError::Invalid("data[].embedding: required".into())),
        }
    }
    Ok(EmbedResponse {
        model: str_of(&v, "model").unwrap_or_default().to_owned(),
        vectors,
        input_tokens: v
            .get("usage")
            .and_then(|u| u.get("prompt_tokens"))
            .and_then(Value::as_u64)
            .unwrap_or(0),
    })
}

pub fn encode_openai_response(resp: &EmbedResponse, base64_out: bool) -> Vec<u8> {
    let data: Vec<Value> = resp
        .vectors
        .iter()
        .enumerate()
        .map(|(i, vec)| {
            let embedding = if base64_out {
                let bytes: Vec<u8> = vec.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vec)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let body = json!({
        "object": "list",
        "data": data,
        "model": resp.model,
        "usage": {"prompt_tokens": resp.input_tokens, "total_tokens": resp.input_tokens},
    });
    crate::json::value_to_vec(&body)
}

/// A rough token count (about four characters a token, at least one a word): for providers that report none.
pub fn estimate_tokens(text: &str) -> u64 {
    let by_chars = text.chars().count().div_ceil(4);
    let by_words = text.split_whitespace().count();
    u64::try_from(by_chars.max(by_words)).unwrap_or(u64::MAX)
}

/// Items of the OpenAI `data` array, for tests and fixtures.
pub fn data_len(body: &[u8]) -> usize {
    serde_json::from_slice::<Value>(body).map(|v| arr_of(&v, "data").len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors_round_trip() {
        let resp = EmbedResponse { model: "m".into(), vectors: vec![vec![0.5, -1.25, 3.0]], input_tokens: 2 };
        let body = encode_openai_response(&resp, true);
        let back = decode_openai_response(&body).unwrap();
        assert_eq!(back.vectors, resp.vectors);
        let plain = encode_openai_response(&resp, false);
        assert_eq!(decode_openai_response(&plain).unwrap().vectors, resp.vectors);
        assert_eq!(data_len(&plain), 1);
    }

    #[test]
    fn requests_translate_to_gemini_batches() {
        let req =
            decode_request(br#"{"model":"e","input":["a","b"],"dimensions":8,"encoding_format":"base64"}"#)
                .unwrap();
        assert!(req.base64);
        let g: Value =
            serde_json::from_slice(&encode_gemini_request(&req, "text-embedding-004").unwrap()).unwrap();
        assert_eq!(g["requests"][1]["content"]["parts"][0]["text"], "b");
        assert_eq!(g["requests"][0]["model"], "models/text-embedding-004");
        assert_eq!(g["requests"][0]["outputDimensionality"], 8);
        let tokens = decode_request(br#"{"model":"e","input":[[1,2,3]]}"#).unwrap();
        assert!(encode_gemini_request(&tokens, "x").is_err());
        assert!(decode_request(br#"{"model":"e","input":[]}"#).is_err());
    }
}
