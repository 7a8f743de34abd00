//! Recognising an upstream error that says "the prompt is too long for this model".
//!
//! Such a 400 is not a fault of the request as such: a model with a larger context window may take it, so the
//! gateway may fail over to one instead of handing the client an error. [`is_context_length_exceeded`] reads the
//! JSON error bodies of OpenAI (Chat Completions and Responses), Anthropic, Gemini and the common
//! OpenAI-compatible servers (vLLM, llama.cpp, Ollama).
//!
//! It only looks: it never fails (an unreadable body is simply not a context error), never does I/O, never logs.

use serde_json::Value;

/// OpenAI's `error.code` for it.
const CONTEXT_CODE: &str = "context_length_exceeded";
/// OpenAI's `error.code` for one string over 10 MiB: too long, but no model would take it.
const STRING_TOO_LONG_CODE: &str = "string_above_max_length";
/// llama.cpp's `error.type` for it.
const LLAMA_CPP_TYPE: &str = "exceed_context_size_error";

/// Wordings of the message, matched ASCII-case-insensitively anywhere in it.
const PHRASES: &[&str] = &[
    // Anthropic: "prompt is too long: 208310 tokens > 200000 maximum".
    "prompt is too long",
    // Anthropic, input with max_tokens: "input length and `max_tokens` exceed context limit: 188240 + 21333 > 200000,
    // decrease input length or `max_tokens` and try again".
    "exceed context limit",
    // Gemini (INVALID_ARGUMENT): "The input token count (1200000) exceeds the maximum number of tokens allowed
    // (1048576)."
    "exceeds the maximum number of tokens allowed",
    // OpenAI (older answers), vLLM, DeepSeek, FastChat: "This model's maximum context length is 4096 tokens.
    // However, you requested 5000 tokens (…)"; vLLM also "'max_tokens' or 'max_completion_tokens' is too large:
    // 8000. This model's maximum context length is 4096 tokens and your request has 2778 input tokens (…)".
    "maximum context length is",
    // OpenAI Responses: "Your input exceeds the context window of this model. Please adjust your input and try
    // again." (with code context_length_exceeded).
    "exceeds the context window",
    // vLLM: "The decoder prompt (length 8825) is longer than the maximum model length of 8192."
    "longer than the maximum model length",
    // llama.cpp: "request (4476 tokens) exceeds the available context size (4096 tokens), try increasing it",
    // older "the request exceeds the available context size, try increasing it".
    "exceeds the available context size",
    "exceeds context size",
    // Older llama.cpp servers: "input (5000 tokens) is larger than the max context size (4096 tokens). skipping".
    "larger than the max context size",
    // Ollama (embeddings with truncate=false): "the input length exceeds the context length".
    "input length exceeds the context length",
    // Ollama, other versions: "input exceeds maximum context length".
    "input exceeds maximum context length",
];

/// Whether an upstream error answer says the request exceeds the model's context window (not a fault of the
/// request as such: a larger model may take it).
///
/// Only a 400 qualifies. The body is looked for in the shapes providers use: `{"error": {...}}` (OpenAI,
/// Anthropic, Gemini, llama.cpp, newer vLLM), `[{"error": {...}}]` (Gemini), `{"error": "..."}` (Ollama) and a
/// bare `{"message": ...}` (older vLLM). OpenAI's `code` `context_length_exceeded` and llama.cpp's `type`
/// `exceed_context_size_error` decide on their own; otherwise the message must carry one of the known wordings.
pub fn is_context_length_exceeded(status: u16, body: &[u8]) -> bool {
    if status != 400 {
        return false;
    }
    let Ok(root) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let root = match &root {
        Value::Array(items) => match items.first() {
            Some(first) => first,
            None => return false,
        },
        other => other,
    };
    let (code, kind, message) = match root.get("error") {
        Some(Value::String(message)) => (None, None, Some(message.as_str())),
        Some(error @ Value::Object(_)) => fields(error),
        _ => fields(root),
    };
    if code == Some(STRING_TOO_LONG_CODE) {
        return false;
    }
    if code == Some(CONTEXT_CODE) || kind == Some(LLAMA_CPP_TYPE) {
        return true;
    }
    message.is_some_and(|message| PHRASES.iter().any(|phrase| contains_ignore_ascii_case(message, phrase)))
}

/// An error object's string `code`, `type` and `message`, where present.
fn fields(error: &Value) -> (Option<&str>, Option<&str>, Option<&str>) {
    let text = |key: &str| error.get(key).and_then(Value::as_str);
    (text("code"), text("type"), text("message"))
}

fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    let (haystack, needle) = (haystack.as_bytes(), needle.as_bytes());
    needle.is_empty() || haystack.windows(needle.len()).any(|window| window.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yes(body: &str) {
        assert!(is_context_length_exceeded(400, body.as_bytes()), "should be a context error: {body}");
    }

    fn no(body: &str) {
        assert!(!is_context_length_exceeded(400, body.as_bytes()), "should not be a context error: {body}");
    }

    #[test]
    fn openai_chat_context_length_exceeded() {
        yes(r#"{
  "error": {
    "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 tokens. Please reduce the length of the messages.",
    "type": "invalid_request_error",
    "param": "messages",
    "code": "context_length_exceeded"
  }
}"#);
    }

    #[test]
    fn openai_responses_context_length_exceeded() {
        yes(
            r#"{"error":{"message":"Your input exceeds the context window of this model. Please adjust your input and try again.","type":"invalid_request_error","param":"input","code":"context_length_exceeded"}}"#,
        );
    }

    #[test]
    fn openai_code_alone_decides() {
        yes(
            r#"{"error":{"message":"","type":"invalid_request_error","param":null,"code":"context_length_exceeded"}}"#,
        );
    }

    #[test]
    fn openai_string_above_max_length_is_not_context() {
        no(
            r#"{"error":{"message":"Invalid 'messages[1].content': string too long. Expected a string with maximum length 10485760, but got a string with length 12000000 instead.","type":"invalid_request_error","param":"messages[1].content","code":"string_above_max_length"}}"#,
        );
    }

    #[test]
    fn anthropic_prompt_is_too_long() {
        yes(
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#,
        );
    }

    #[test]
    fn anthropic_input_and_max_tokens_exceed_context_limit() {
        yes(
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"input length and `max_tokens` exceed context limit: 188240 + 21333 > 200000, decrease input length or `max_tokens` and try again"}}"#,
        );
    }

    #[test]
    fn gemini_input_token_count_exceeds_maximum() {
        yes(r#"{
  "error": {
    "code": 400,
    "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
    "status": "INVALID_ARGUMENT"
  }
}"#);
    }

    #[test]
    fn gemini_error_wrapped_in_an_array() {
        yes(
            r#"[{"error":{"code":400,"message":"The input token count exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}]"#,
        );
    }

    #[test]
    fn vllm_maximum_context_length_without_code() {
        yes(
            r#"{"error":{"message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}}"#,
        );
    }

    #[test]
    fn vllm_max_tokens_too_large_for_the_context() {
        yes(
            r#"{"error":{"message":"'max_tokens' or 'max_completion_tokens' is too large: 8000. This model's maximum context length is 4096 tokens and your request has 2778 input tokens (8000 > 4096 - 2778). None","type":"BadRequestError","param":null,"code":400}}"#,
        );
    }

    #[test]
    fn vllm_older_top_level_error() {
        yes(
            r#"{"object":"error","message":"This model's maximum context length is 8192 tokens. However, you requested 9100 tokens (8100 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}"#,
        );
    }

    #[test]
    fn vllm_decoder_prompt_longer_than_maximum_model_length() {
        yes(
            r#"{"error":{"message":"The decoder prompt (length 8825) is longer than the maximum model length of 8192. Make sure that `max_model_len` is no smaller than the number of text tokens.","type":"BadRequestError","param":null,"code":400}}"#,
        );
    }

    #[test]
    fn llama_cpp_exceed_context_size_error() {
        yes(
            r#"{"error":{"code":400,"message":"request (4476 tokens) exceeds the available context size (4096 tokens), try increasing it","type":"exceed_context_size_error","n_prompt_tokens":4476,"n_ctx":4096}}"#,
        );
    }

    #[test]
    fn llama_cpp_type_alone_decides() {
        yes(
            r#"{"error":{"code":400,"message":"request (4476 tokens) exceeds context size (4096 tokens)","type":"exceed_context_size_error"}}"#,
        );
    }

    #[test]
    fn llama_cpp_older_message_without_the_type() {
        yes(
            r#"{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"invalid_request_error"}}"#,
        );
    }

    #[test]
    fn ollama_string_errors() {
        yes(r#"{"error":"the input length exceeds the context length"}"#);
        yes(r#"{"error":"input exceeds maximum context length"}"#);
    }

    #[test]
    fn wording_matches_regardless_of_case() {
        yes(r#"{"error":{"message":"Prompt Is Too Long: 5 tokens > 4 maximum"}}"#);
    }

    #[test]
    fn only_a_400_qualifies() {
        let body = br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"}}"#;
        for status in [200, 413, 422, 429, 500, 503] {
            assert!(!is_context_length_exceeded(status, body), "{status}");
        }
    }

    #[test]
    fn other_openai_400s_are_not_context() {
        no(
            r#"{"error":{"message":"Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3 instead.","type":"invalid_request_error","param":"temperature","code":"decimal_above_max_value"}}"#,
        );
        no(
            r#"{"error":{"message":"Unrecognized request argument supplied: foo","type":"invalid_request_error","param":null,"code":null}}"#,
        );
        no(
            r#"{"error":{"message":"max_tokens is too large: 100000. This model supports at most 16384 completion tokens, whereas you provided 100000.","type":"invalid_request_error","param":"max_tokens","code":"invalid_value"}}"#,
        );
    }

    #[test]
    fn other_anthropic_400s_are_not_context() {
        no(
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"temperature: range: 0..1"}}"#,
        );
        no(
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: 300000 > 64000, which is the maximum allowed number of output tokens for claude-sonnet-4-20250514"}}"#,
        );
        no(
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages.0.content.0.foo: Extra inputs are not permitted"}}"#,
        );
    }

    #[test]
    fn other_gemini_400s_are_not_context() {
        no(
            r#"{"error":{"code":400,"message":"Request payload size exceeds the limit: 20971520 bytes.","status":"INVALID_ARGUMENT"}}"#,
        );
        no(
            r#"{"error":{"code":400,"message":"Invalid JSON payload received. Unknown name \"foo\": Cannot find field.","status":"INVALID_ARGUMENT"}}"#,
        );
    }

    #[test]
    fn other_local_server_400s_are_not_context() {
        no(
            r#"{"error":{"message":"temperature must be non-negative, got -1.0.","type":"BadRequestError","param":null,"code":400}}"#,
        );
        no(r#"{"error":"model \"llama9\" not found, try pulling it first"}"#);
    }

    #[test]
    fn unreadable_bodies_are_not_context() {
        no("");
        no("prompt is too long");
        no("<html>Bad Request</html>");
        no("[]");
        no("null");
        no(r#"{"error":null}"#);
        no(r#"{"error":{"message":42}}"#);
    }
}
