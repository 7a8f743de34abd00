//! Gemini `generateContent` and `streamGenerateContent` (under `/v1beta/models/` and `/v1/models/`): API key
//! in `x-goog-api-key` or `?key=`, strict body validation (proto JSON: camelCase or snake_case field names, unknown
//! fields refused) with Google's error shape (`{"error":{"code","message","status"}}`), and answers as a
//! GenerateContentResponse, an SSE stream of them (`alt=sse`, events ending in `\r\n\r\n`) or a JSON array of them.
//!
//! It never answers with function calls, and never accepts a field the real API would call unknown.

use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::answer::{self, Answer, Finish, Prompt};
use crate::error::ApiError;
use crate::json::{integer, show, to_u64};
use crate::routes::{Call, Reply};

const TOP_LEVEL: &[&str] = &[
    "contents",
    "tools",
    "toolConfig",
    "safetySettings",
    "systemInstruction",
    "generationConfig",
    "cachedContent",
    "model",
];

const CONTENT_KEYS: &[&str] = &["role", "parts"];

const PART_DATA: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
];

const PART_META: &[&str] =
    &["thought", "thoughtSignature", "videoMetadata", "partMetadata", "mediaResolution"];

const GENERATION_CONFIG: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "_responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
];

/// Serve one generateContent (`stream == false`) or streamGenerateContent request for `model`.
pub(crate) fn handle(call: &Call<'_>, model: &str, stream: bool) -> Result<Reply, ApiError> {
    authenticate(call)?;
    let body: Value = serde_json::from_slice(call.body)
        .map_err(|err| ApiError::bad(format!("Invalid JSON payload received. {err}")))?;
    let request = validate(&body)?;
    let answer = answer::compose(call.name, &request.prompt);
    let response_id = crate::ids::base62("", 22);
    if !stream {
        return Ok(Reply::Json(response(model, &response_id, request.candidates, &answer)));
    }
    let chunks = chunks(model, &response_id, request.candidates, &answer);
    if call.query.get("alt").map(String::as_str) == Some("sse") {
        Ok(Reply::Sse(chunks.into_iter().map(|c| format!("data: {c}\r\n\r\n")).collect()))
    } else {
        Ok(Reply::Json(Value::Array(chunks)))
    }
}

/// The error JSON for `err`.
pub(crate) fn error_body(err: &ApiError) -> Value {
    let mut error = json!({
        "code": err.status.as_u16(),
        "message": err.message,
        "status": status_name(err.status),
    });
    if !err.details.is_empty()
        && let Some(obj) = error.as_object_mut()
    {
        obj.insert("details".into(), Value::Array(err.details.clone()));
    }
    json!({ "error": error })
}

/// The error a `Status` fault produces; a `retry_after` also becomes a `RetryInfo` detail, as Google sends.
pub(crate) fn status_error(status: StatusCode, retry_after: Option<u64>) -> ApiError {
    let message = match status.as_u16() {
        400 => "Request contains an invalid argument.",
        401 => "Request had invalid authentication credentials.",
        403 => "The caller does not have permission",
        404 => "Requested entity was not found.",
        429 => "Resource has been exhausted (e.g. check quota).",
        500 => {
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
        }
        503 => "The model is overloaded. Please try again later.",
        504 => "The request timed out. Please try again.",
        _ => "The service could not handle the request.",
    };
    let err = ApiError::new(status, message);
    match retry_after {
        Some(secs) => err.detail(json!({
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": format!("{secs}s"),
        })),
        None => err,
    }
}

fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        412 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        s if s >= 500 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}

fn authenticate(call: &Call<'_>) -> Result<(), ApiError> {
    let Some(expected) = call.api_key else {
        return Ok(());
    };
    let given = call
        .headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| call.query.get("key").map(String::as_str));
    match given {
        Some(key) if key == expected => Ok(()),
        Some(_) => {
            let message = "API key not valid. Please pass a valid API key.";
            Err(ApiError::bad(message)
                .detail(json!({
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }))
                .detail(json!({
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": message,
                })))
        }
        None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Method doesn't allow unregistered callers (callers without established identity). Please use API \
             Key or other form of API consumer identity to call this API.",
        )),
    }
}

struct Request {
    candidates: u64,
    prompt: Prompt,
}

/// `max_output_tokens` → `maxOutputTokens`; proto JSON accepts either spelling.
fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' && !out.is_empty() {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `maxOutputTokens` → `max_output_tokens`, for messages (Google names fields in snake_case there).
fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The object with its keys in camelCase, refusing keys outside `known` (`at` names the object in the message).
fn fields(v: &Value, known: &[&str], at: &str) -> Result<Map<String, Value>, ApiError> {
    let Some(obj) = v.as_object() else {
        return Err(ApiError::bad(format!(
            "Invalid value at '{at}' (type.googleapis.com/google.ai.generativelanguage.v1beta.*), {}",
            show(v)
        )));
    };
    let mut out = Map::new();
    for (key, value) in obj {
        let name = camel(key);
        if !known.contains(&name.as_str()) {
            let place = if at.is_empty() { String::new() } else { format!(" at '{at}'") };
            return Err(ApiError::bad(format!(
                "Invalid JSON payload received. Unknown name \"{key}\"{place}: Cannot find field."
            )));
        }
        out.insert(name, value.clone());
    }
    Ok(out)
}

fn join(at: &str, name: &str) -> String {
    if at.is_empty() { snake(name) } else { format!("{at}.{}", snake(name)) }
}

fn semantic(field: &str, problem: &str) -> ApiError {
    ApiError::bad(format!("* GenerateContentRequest.{field}: {problem}\n"))
}

fn validate(body: &Value) -> Result<Request, ApiError> {
    let obj = fields(body, TOP_LEVEL, "")?;
    let mut prompt = Prompt::default();
    let contents = match obj.get("contents") {
        None => return Err(semantic("contents", "contents is not specified")),
        Some(Value::Array(list)) if list.is_empty() => {
            return Err(semantic("contents", "contents is not specified"));
        }
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "Invalid value at 'contents' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), {}",
                show(other)
            )));
        }
    };
    for (i, content) in contents.iter().enumerate() {
        let at = format!("contents[{i}]");
        let content = fields(content, CONTENT_KEYS, &at)?;
        let role = match content.get("role") {
            None => "user",
            Some(Value::String(r)) if r == "user" || r == "model" => r.as_str(),
            Some(Value::String(r)) if r.is_empty() => "user",
            Some(_) => return Err(ApiError::bad("Please use a valid role: user, model.")),
        };
        let text = parts_text(&content, &at)?;
        if let Some(text) = text {
            prompt.input_words += text.1;
            if role == "user" {
                prompt.last_user = text.0;
            }
        }
    }
    if let Some(system) = obj.get("systemInstruction") {
        let system = fields(system, CONTENT_KEYS, "system_instruction")?;
        if let Some((text, words)) = parts_text(&system, "system_instruction")? {
            prompt.system = text;
            prompt.input_words += words;
        }
    }
    let mut candidates = 1;
    if let Some(config) = obj.get("generationConfig") {
        let config = fields(config, GENERATION_CONFIG, "generation_config")?;
        candidates = validate_config(&config, &mut prompt)?;
    }
    for key in ["tools", "safetySettings"] {
        if let Some(v) = obj.get(key)
            && !v.is_array()
        {
            return Err(ApiError::bad(format!(
                "Invalid value at '{}' (type.googleapis.com/google.ai.generativelanguage.v1beta.*), {}",
                snake(key),
                show(v)
            )));
        }
    }
    Ok(Request { candidates, prompt })
}

/// Check a content's parts; returns the concatenated text and its word count when any part is text.
fn parts_text(content: &Map<String, Value>, at: &str) -> Result<Option<(String, u64)>, ApiError> {
    let parts = match content.get("parts") {
        None => {
            return Err(semantic(&format!("{at}.parts"), "contents.parts must not be empty."));
        }
        Some(Value::Array(parts)) if parts.is_empty() => {
            return Err(semantic(&format!("{at}.parts"), "contents.parts must not be empty."));
        }
        Some(Value::Array(parts)) => parts,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "Invalid value at '{at}.parts' (type.googleapis.com/google.ai.generativelanguage.v1beta.Part), {}",
                show(other)
            )));
        }
    };
    let known: Vec<&str> = PART_DATA.iter().chain(PART_META).copied().collect();
    let mut text: Option<(String, u64)> = None;
    for (k, part) in parts.iter().enumerate() {
        let part_at = format!("{at}.parts[{k}]");
        let part = fields(part, &known, &part_at)?;
        let data: Vec<&str> = PART_DATA.iter().copied().filter(|d| part.contains_key(*d)).collect();
        match data.as_slice() {
            [] => {
                return Err(semantic(
                    &format!("{part_at}.data"),
                    "required oneof field 'data' must have one initialized field",
                ));
            }
            [_] => {}
            [_, second, ..] => {
                return Err(ApiError::bad(format!(
                    "Invalid JSON payload received. Oneof field 'data' is already set. Cannot set '{second}'"
                )));
            }
        }
        match (data[0], &part[data[0]]) {
            ("text", Value::String(t)) => {
                let entry = text.get_or_insert_with(|| (String::new(), 0));
                entry.0.push_str(t);
                entry.1 += answer::words(t);
            }
            ("text", other) => {
                return Err(ApiError::bad(format!(
                    "Invalid value at '{part_at}.text' (TYPE_STRING), {other}"
                )));
            }
            ("functionCall", call) => {
                let call = fields(call, &["id", "name", "args"], &join(&part_at, "functionCall"))?;
                if !call.get("name").is_some_and(Value::is_string) {
                    return Err(semantic(&format!("{part_at}.function_call.name"), "Name cannot be empty."));
                }
                if let Some(args) = call.get("args")
                    && !args.is_object()
                {
                    return Err(ApiError::bad(format!(
                        "Invalid value at '{part_at}.function_call.args' (type.googleapis.com/google.protobuf.Struct), {args}"
                    )));
                }
            }
            ("functionResponse", response) => {
                let response = fields(
                    response,
                    &["id", "name", "response", "parts", "willContinue", "scheduling"],
                    &join(&part_at, "functionResponse"),
                )?;
                if !response.get("name").is_some_and(Value::is_string) {
                    return Err(semantic(
                        &format!("{part_at}.function_response.name"),
                        "Name cannot be empty.",
                    ));
                }
                if !response.get("response").is_some_and(Value::is_object) {
                    return Err(semantic(
                        &format!("{part_at}.function_response.response"),
                        "Function response must be a valid Struct.",
                    ));
                }
            }
            ("inlineData", blob) => {
                let blob = fields(blob, &["mimeType", "data"], &join(&part_at, "inlineData"))?;
                if !blob.get("mimeType").is_some_and(Value::is_string) {
                    return Err(semantic(
                        &format!("{part_at}.inline_data.mime_type"),
                        "mime_type is required.",
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(text)
}

fn config_number(config: &Map<String, Value>, key: &str) -> Result<Option<f64>, ApiError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())) {
            Some(x) => Ok(Some(x)),
            None => Err(ApiError::bad(format!(
                "Invalid value at 'generation_config.{}' (TYPE_FLOAT), {}",
                snake(key),
                v
            ))),
        },
    }
}

fn config_int(config: &Map<String, Value>, key: &str) -> Result<Option<i128>, ApiError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match integer(v).or_else(|| v.as_str().and_then(|s| s.parse().ok())) {
            Some(n) => Ok(Some(n)),
            None => Err(ApiError::bad(format!(
                "Invalid value at 'generation_config.{}' (TYPE_INT32), {}",
                snake(key),
                v
            ))),
        },
    }
}

/// Check `generationConfig`; returns the candidate count.
fn validate_config(config: &Map<String, Value>, prompt: &mut Prompt) -> Result<u64, ApiError> {
    let range = |key: &str, lo: f64, hi: f64| -> Result<(), ApiError> {
        match config_number(config, key)? {
            Some(x) if x < lo || x > hi => Err(semantic(
                &format!("generation_config.{}", snake(key)),
                &format!("must be in the range [{lo:.1}, {hi:.1}]."),
            )),
            _ => Ok(()),
        }
    };
    range("temperature", 0.0, 2.0)?;
    range("topP", 0.0, 1.0)?;
    range("presencePenalty", -2.0, 2.0)?;
    range("frequencyPenalty", -2.0, 2.0)?;
    if let Some(k) = config_int(config, "topK")?
        && k < 1
    {
        return Err(semantic("generation_config.top_k", "must be positive."));
    }
    if let Some(max) = config_int(config, "maxOutputTokens")? {
        if max < 1 {
            return Err(semantic("generation_config.max_output_tokens", "must be positive."));
        }
        prompt.max_tokens = Some(to_u64(max));
    }
    let candidates = match config_int(config, "candidateCount")? {
        None => 1,
        Some(n) if (1..=8).contains(&n) => to_u64(n),
        Some(_) => {
            return Err(semantic("generation_config.candidate_count", "must be in the range [1, 8]."));
        }
    };
    match config.get("stopSequences") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            if list.len() > 5 {
                return Err(semantic(
                    "generation_config.stop_sequences",
                    "the number of stop sequences must not exceed 5.",
                ));
            }
            for (j, s) in list.iter().enumerate() {
                match s {
                    Value::String(s) => prompt.stop.push(s.clone()),
                    other => {
                        return Err(ApiError::bad(format!(
                            "Invalid value at 'generation_config.stop_sequences[{j}]' (TYPE_STRING), {other}"
                        )));
                    }
                }
            }
        }
        Some(other) => {
            return Err(ApiError::bad(format!(
                "Invalid value at 'generation_config.stop_sequences' (TYPE_STRING), {other}"
            )));
        }
    }
    Ok(candidates)
}

fn finish_reason(answer: &Answer) -> &'static str {
    match answer.finish {
        Finish::Length => "MAX_TOKENS",
        Finish::Natural | Finish::StopSequence(_) => "STOP",
    }
}

fn usage(answer: &Answer) -> Value {
    json!({
        "promptTokenCount": answer.input_tokens,
        "candidatesTokenCount": answer.output_tokens,
        "totalTokenCount": answer.input_tokens + answer.output_tokens,
    })
}

fn response(model: &str, response_id: &str, candidates: u64, answer: &Answer) -> Value {
    let candidates: Vec<Value> = (0..candidates)
        .map(|index| {
            json!({
                "content": {"parts": [{"text": answer.text}], "role": "model"},
                "finishReason": finish_reason(answer),
                "index": index,
            })
        })
        .collect();
    json!({
        "candidates": candidates,
        "usageMetadata": usage(answer),
        "modelVersion": model,
        "responseId": response_id,
    })
}

/// One GenerateContentResponse per word; the last one carries `finishReason` and `usageMetadata`.
fn chunks(model: &str, response_id: &str, candidates: u64, answer: &Answer) -> Vec<Value> {
    let mut deltas = answer.deltas();
    if deltas.is_empty() {
        deltas.push("");
    }
    let last = deltas.len() - 1;
    deltas
        .iter()
        .enumerate()
        .map(|(i, delta)| {
            let candidates: Vec<Value> = (0..candidates)
                .map(|index| {
                    let mut candidate = json!({
                        "content": {"parts": [{"text": delta}], "role": "model"},
                        "index": index,
                    });
                    if i == last
                        && let Some(obj) = candidate.as_object_mut()
                    {
                        obj.insert("finishReason".into(), json!(finish_reason(answer)));
                    }
                    candidate
                })
                .collect();
            let mut chunk =
                json!({"candidates": candidates, "modelVersion": model, "responseId": response_id});
            if i == last
                && let Some(obj) = chunk.as_object_mut()
            {
                obj.insert("usageMetadata".into(), usage(answer));
            }
            chunk
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_convert_both_ways() {
        assert_eq!(camel("max_output_tokens"), "maxOutputTokens");
        assert_eq!(camel("maxOutputTokens"), "maxOutputTokens");
        assert_eq!(camel("_responseJsonSchema"), "_responseJsonSchema");
        assert_eq!(snake("maxOutputTokens"), "max_output_tokens");
    }
}
