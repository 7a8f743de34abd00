//! Embeddings (OpenAI `POST /v1/embeddings`, Gemini `embedContent` / `batchEmbedContents`) and Anthropic token
//! counting (`POST /v1/messages/count_tokens`), answered deterministically: the same text gets the same vector in
//! every format, so a translated request can be checked number for number.
//!
//! Vector components are multiples of 1/8, exact in f32 and in JSON.

use base64::Engine;
use serde_json::{Value, json};

use crate::answer::words;
use crate::error::ApiError;
use crate::routes::{Call, Reply};
use crate::{anthropic, gemini, openai};

/// Default vector length (when the request sets no dimensions).
pub(crate) const DIMENSIONS: usize = 8;

/// The simulator's embedding of `text`.
pub(crate) fn vector(text: &str, dims: usize) -> Vec<f32> {
    let h = text.bytes().fold(2166136261u32, |a, b| (a ^ u32::from(b)).wrapping_mul(16777619));
    (0..dims).map(|i| (h.rotate_left(i as u32 * 4) % 16) as f32 / 8.0).collect()
}

fn parse(call: &Call<'_>) -> Result<Value, ApiError> {
    serde_json::from_slice(call.body)
        .map_err(|e| ApiError::bad(format!("We could not parse the JSON body of your request: {e}")))
}

fn dims(v: Option<&Value>, name: &str) -> Result<usize, ApiError> {
    match v {
        None => Ok(DIMENSIONS),
        Some(d) => match d.as_u64() {
            Some(n) if (1..=4096).contains(&n) => Ok(n as usize),
            _ => Err(ApiError::bad(format!("Invalid '{name}': must be a positive integer."))),
        },
    }
}

/// OpenAI `POST /v1/embeddings`.
pub(crate) fn openai(call: &Call<'_>) -> Result<Reply, ApiError> {
    openai::authenticate(call)?;
    let v = parse(call)?;
    let Some(model) = v.get("model").and_then(Value::as_str) else {
        return Err(ApiError::bad("you must provide a model parameter"));
    };
    let texts: Vec<String> = match v.get("input") {
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        Some(Value::Array(a))
            if !a.is_empty() && a.iter().all(|s| s.as_str().is_some_and(|s| !s.is_empty())) =>
        {
            a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()
        }
        // Token arrays: embed their text form.
        Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_array) => {
            a.iter().map(Value::to_string).collect()
        }
        _ => {
            return Err(ApiError::bad(
                "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
            ));
        }
    };
    let dims = dims(v.get("dimensions"), "dimensions")?;
    let base64 = match v.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => return Err(ApiError::bad(format!("Invalid value for 'encoding_format': '{other}'."))),
    };
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let vec = vector(t, dims);
            let embedding = if base64 {
                let bytes: Vec<u8> = vec.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vec)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let tokens: u64 = texts.iter().map(|t| words(t)).sum();
    Ok(Reply::Json(json!({"object": "list", "data": data, "model": model,
                          "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})))
}

fn gemini_text(content: Option<&Value>) -> Result<String, ApiError> {
    let parts = content.and_then(|c| c.get("parts")).and_then(Value::as_array);
    let text: String =
        parts.into_iter().flatten().filter_map(|p| p.get("text").and_then(Value::as_str)).collect();
    if text.is_empty() {
        return Err(ApiError::bad(
            "* BatchEmbedContentsRequest.requests[].content: contents must not be empty",
        ));
    }
    Ok(text)
}

/// Gemini `models/{model}:embedContent` (`batch` false) and `:batchEmbedContents`.
pub(crate) fn gemini(call: &Call<'_>, model: &str, batch: bool) -> Result<Reply, ApiError> {
    gemini::authenticate(call)?;
    let v = parse(call)?;
    let one = |r: &Value| -> Result<Value, ApiError> {
        let dims = dims(
            r.get("outputDimensionality").or_else(|| r.get("output_dimensionality")),
            "outputDimensionality",
        )?;
        Ok(json!({"values": vector(&gemini_text(r.get("content"))?, dims)}))
    };
    if !batch {
        return Ok(Reply::Json(json!({"embedding": one(&v)?})));
    }
    let Some(requests) = v.get("requests").and_then(Value::as_array).filter(|r| !r.is_empty()) else {
        return Err(ApiError::bad("* BatchEmbedContentsRequest.requests: requests must not be empty"));
    };
    let want = format!("models/{model}");
    let mut embeddings = Vec::with_capacity(requests.len());
    for r in requests {
        if r.get("model").and_then(Value::as_str).is_some_and(|m| m != want) {
            return Err(ApiError::bad(format!(
                "Model {} does not match the model of the batch ({want}).",
                r["model"]
            )));
        }
        embeddings.push(one(r)?);
    }
    Ok(Reply::Json(json!({"embeddings": embeddings})))
}

/// Anthropic `POST /v1/messages/count_tokens`: the words of every text the model would read.
pub(crate) fn count_tokens(call: &Call<'_>) -> Result<Reply, ApiError> {
    anthropic::authenticate(call)?;
    anthropic::check_version(call)?;
    let v = parse(call)?;
    if v.get("model").and_then(Value::as_str).is_none() {
        return Err(ApiError::bad("model: Field required"));
    }
    let Some(messages) = v.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty()) else {
        return Err(ApiError::bad("messages: Field required"));
    };
    let text_of = |c: &Value| -> u64 {
        match c {
            Value::String(s) => words(s),
            Value::Array(blocks) => {
                blocks.iter().filter_map(|b| b.get("text").and_then(Value::as_str)).map(words).sum()
            }
            _ => 0,
        }
    };
    let mut n: u64 = messages.iter().map(|m| text_of(m.get("content").unwrap_or(&Value::Null))).sum();
    n += v.get("system").map(text_of).unwrap_or(0);
    Ok(Reply::Json(json!({"input_tokens": n})))
}

/// Gemini `models/{model}:countTokens`: the words of every text part, of `contents` or of a whole
/// `generateContentRequest` (with its system instruction).
pub(crate) fn gemini_count_tokens(call: &Call<'_>) -> Result<Reply, ApiError> {
    gemini::authenticate(call)?;
    let v = parse(call)?;
    let req = v.get("generateContentRequest").or_else(|| v.get("generate_content_request")).unwrap_or(&v);
    let texts = |c: &Value| -> u64 {
        c.get("parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .map(words)
            .sum()
    };
    let Some(contents) = req.get("contents").and_then(Value::as_array) else {
        return Err(ApiError::bad("* CountTokensRequest.contents: contents is not specified"));
    };
    let mut n: u64 = contents.iter().map(texts).sum();
    n += req.get("systemInstruction").or_else(|| req.get("system_instruction")).map(texts).unwrap_or(0);
    Ok(Reply::Json(json!({"totalTokens": n})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_deterministic_and_exact() {
        assert_eq!(vector("hello", 8), vector("hello", 8));
        assert_ne!(vector("hello", 8), vector("world", 8));
        assert!(vector("hello", 8).iter().all(|x| (x * 8.0).fract() == 0.0));
    }
}
