//! Request conformance: the providers' published request examples decode into the canonical model, and are
//! re-encoded for every other dialect with each field where that dialect's reference wants it.
//!
//! Fixture sources:
//! - anthropic/request.json: "Basic streaming request",
//!   <https://platform.claude.com/docs/en/build-with-claude/streaming> (formerly docs.anthropic.com/en/docs/build-with-claude/streaming)
//! - anthropic/request_reference.json: the cURL example of "Create a Message",
//!   <https://platform.claude.com/docs/en/api/messages/create>
//! - openai/request.json: the "Default" example of "Create chat completion",
//!   <https://platform.openai.com/docs/api-reference/chat/create>
//! - gemini/request.json: the generation-config example of `models.generateContent`,
//!   <https://ai.google.dev/api/generate-content> (sample `configure_model_parameters`,
//!   google-gemini/generative-ai-python samples/rest/configure_model_parameters.sh)
//! - gemini/request_system_instruction.json: the system-instruction example,
//!   <https://ai.google.dev/gemini-api/docs/system-instructions> (samples/rest/system_instruction.sh)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{fixture, json};
use nines_wire::anthropic::DEFAULT_MAX_TOKENS;
use nines_wire::openai::MaxTokensField;
use nines_wire::{ChatRequest, DecodeError, Dialect, EncodeOpts, Message, Part, Role};
use serde_json::{Value, json};

fn decode(d: Dialect, path: &str) -> ChatRequest {
    d.decode_request(fixture(path).as_bytes()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn encode(d: Dialect, req: &ChatRequest) -> Value {
    json(&d.encode_request(req, "upstream-model", &EncodeOpts::default()).unwrap().body)
}

fn user(text: &str) -> Message {
    Message::text(Role::User, text)
}

// ---------------------------------------------------------------------------------------------------------------
// The fixtures decode.

#[test]
fn anthropic_streaming_request_decodes() {
    let req = decode(Dialect::Anthropic, "anthropic/request.json");
    assert_eq!(req.model, "claude-sonnet-4-5");
    assert_eq!(req.messages, vec![user("Hello")]);
    assert_eq!(req.max_tokens, Some(256));
    assert!(req.stream);
    assert!(req.system.is_empty());
    assert_eq!((req.temperature, req.top_p, req.top_k), (None, None, None));
    assert!(req.stop.is_empty());
}

#[test]
fn anthropic_reference_request_decodes_system_blocks_and_sampling() {
    let req = decode(Dialect::Anthropic, "anthropic/request_reference.json");
    assert_eq!(req.model, "claude-opus-5");
    assert_eq!(req.system, vec!["Today's date is 2024-06-01.".to_owned()]);
    assert_eq!(req.messages, vec![user("Hello, world")]);
    assert_eq!(req.max_tokens, Some(1024));
    assert_eq!(req.temperature, Some(1.0));
    assert_eq!(req.top_p, Some(0.7));
    assert_eq!(req.top_k, Some(5));
    assert!(!req.stream);
}

#[test]
fn openai_reference_request_decodes_developer_as_system() {
    let req = decode(Dialect::OpenAiChat, "openai/request.json");
    assert_eq!(req.model, "gpt-4.1");
    assert_eq!(req.system, vec!["You are a helpful assistant.".to_owned()]);
    assert_eq!(req.messages, vec![user("Hello!")]);
    assert_eq!(req.max_tokens, None);
    assert!(!req.stream);
    assert!(!req.include_usage);
}

#[test]
fn gemini_reference_request_decodes_generation_config() {
    let req = decode(Dialect::Gemini, "gemini/request.json");
    assert_eq!(req.model, "", "Gemini names the model in the URL path, never in the body");
    assert_eq!(req.messages, vec![user("Explain how AI works")], "a content without role is the user's");
    assert_eq!(req.stop, vec!["Title".to_owned()]);
    assert_eq!(req.temperature, Some(1.0));
    assert_eq!(req.max_tokens, Some(800));
    assert_eq!(req.top_p, Some(0.8));
    assert_eq!(req.top_k, Some(10));
}

// ---------------------------------------------------------------------------------------------------------------
// The fixtures translate.

#[test]
fn anthropic_streaming_request_to_openai_and_gemini() {
    let req = decode(Dialect::Anthropic, "anthropic/request.json");

    let o = encode(Dialect::OpenAiChat, &req);
    assert_eq!(o["model"], "upstream-model");
    assert_eq!(o["messages"], json!([{"role": "user", "content": "Hello"}]));
    assert_eq!(o["max_completion_tokens"], 256);
    assert!(o.get("max_tokens").is_none());
    assert_eq!(o["stream"], true);
    assert_eq!(o["stream_options"], json!({"include_usage": true}), "the gateway always asks for usage");

    let g = encode(Dialect::Gemini, &req);
    assert!(g.get("model").is_none(), "Gemini bodies never name the model: {g}");
    assert!(
        g.get("stream").is_none(),
        "Gemini streams through the URL (streamGenerateContent), not the body"
    );
    assert_eq!(g["contents"], json!([{"role": "user", "parts": [{"text": "Hello"}]}]));
    assert_eq!(g["generationConfig"], json!({"maxOutputTokens": 256}));
    assert!(g.get("systemInstruction").is_none());
}

#[test]
fn anthropic_reference_request_to_openai_and_gemini() {
    let req = decode(Dialect::Anthropic, "anthropic/request_reference.json");
    // Custom tools and adaptive thinking translate; nothing is left to passthrough only.
    assert!(req.untranslated.is_empty(), "{:?}", req.untranslated);

    let o = encode(Dialect::OpenAiChat, &req);
    assert_eq!(
        o["messages"],
        json!([
            {"role": "system", "content": "Today's date is 2024-06-01."},
            {"role": "user", "content": "Hello, world"},
        ])
    );
    assert_eq!(o["max_completion_tokens"], 1024);
    assert_eq!(o["temperature"].as_f64(), Some(1.0));
    assert_eq!(o["top_p"].as_f64(), Some(0.7));
    assert!(o.get("top_k").is_none(), "OpenAI Chat has no top_k");
    assert!(o.get("stream").is_none() && o.get("stream_options").is_none());
    assert_eq!(o["tools"][0]["function"]["name"], "name");
    assert_eq!(o["tools"][0]["function"]["parameters"]["required"], json!(["location"]));

    let g = encode(Dialect::Gemini, &req);
    assert_eq!(g["systemInstruction"], json!({"parts": [{"text": "Today's date is 2024-06-01."}]}));
    assert_eq!(g["contents"], json!([{"role": "user", "parts": [{"text": "Hello, world"}]}]));
    let gc = &g["generationConfig"];
    assert_eq!(gc["maxOutputTokens"], 1024);
    assert_eq!(gc["temperature"].as_f64(), Some(1.0));
    assert_eq!(gc["topP"].as_f64(), Some(0.7));
    assert_eq!(gc["topK"], 5);
}

#[test]
fn openai_reference_request_to_anthropic_and_gemini() {
    let req = decode(Dialect::OpenAiChat, "openai/request.json");

    let a = encode(Dialect::Anthropic, &req);
    assert_eq!(a["model"], "upstream-model");
    assert_eq!(
        a["system"], "You are a helpful assistant.",
        "Anthropic has no system role: top-level `system`"
    );
    assert_eq!(a["messages"], json!([{"role": "user", "content": [{"type": "text", "text": "Hello!"}]}]));
    assert_eq!(a["max_tokens"], DEFAULT_MAX_TOKENS, "Anthropic rejects a request without max_tokens");
    assert!(a.get("stream").is_none());
    assert!(a.get("temperature").is_none());

    let g = encode(Dialect::Gemini, &req);
    assert_eq!(g["systemInstruction"], json!({"parts": [{"text": "You are a helpful assistant."}]}));
    assert_eq!(g["contents"], json!([{"role": "user", "parts": [{"text": "Hello!"}]}]));
    assert!(g.get("generationConfig").is_none(), "nothing to configure: {g}");
}

#[test]
fn gemini_reference_request_to_anthropic_and_openai() {
    let req = decode(Dialect::Gemini, "gemini/request.json");

    let a = encode(Dialect::Anthropic, &req);
    assert_eq!(
        a["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "Explain how AI works"}]}])
    );
    assert_eq!(a["max_tokens"], 800);
    assert_eq!(a["stop_sequences"], json!(["Title"]));
    assert_eq!(a["temperature"].as_f64(), Some(1.0));
    assert!(a.get("top_p").is_none(), "Claude takes temperature or top_p, not both: {a}");
    assert_eq!(a["top_k"], 10);

    let o = encode(Dialect::OpenAiChat, &req);
    assert_eq!(o["messages"], json!([{"role": "user", "content": "Explain how AI works"}]));
    assert_eq!(o["max_completion_tokens"], 800);
    assert_eq!(o["stop"], json!(["Title"]));
    assert_eq!(o["temperature"].as_f64(), Some(1.0));
    assert_eq!(o["top_p"].as_f64(), Some(0.8));
    assert!(o.get("top_k").is_none());
}

#[test]
fn every_fixture_reencodes_into_its_own_dialect_unchanged_in_meaning() {
    for (d, path) in [
        (Dialect::Anthropic, "anthropic/request.json"),
        (Dialect::Anthropic, "anthropic/request_reference.json"),
        (Dialect::OpenAiChat, "openai/request.json"),
        (Dialect::Gemini, "gemini/request.json"),
    ] {
        let req = decode(d, path);
        let again = d
            .decode_request(&d.encode_request(&req, &req.model, &EncodeOpts::default()).unwrap().body)
            .unwrap();
        assert_eq!(again.messages, req.messages, "{path}");
        assert_eq!(again.system, req.system, "{path}");
        assert_eq!(again.stop, req.stop, "{path}");
        assert_eq!(again.tools, req.tools, "{path}");
        if req.reasoning.is_some() && d == Dialect::Anthropic {
            // Extended thinking: its budget is added to max_tokens, and Anthropic takes no sampling with it.
            assert!(again.max_tokens > req.max_tokens, "{path}");
            assert_eq!((again.temperature, again.top_p), (None, None), "{path}");
        } else {
            assert_eq!(again.max_tokens, req.max_tokens, "{path}");
            assert_eq!((again.temperature, again.top_p), (req.temperature, req.top_p), "{path}");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// system

#[test]
fn openai_system_and_developer_messages_become_one_system_prompt_in_order() {
    let body = br#"{"model":"m","messages":[
        {"role":"system","content":"Be brief."},
        {"role":"user","content":"Hi"},
        {"role":"developer","content":[{"type":"text","text":"Answer in French."}]}]}"#;
    let req = Dialect::OpenAiChat.decode_request(body).unwrap();
    assert_eq!(req.system, vec!["Be brief.".to_owned(), "Answer in French.".to_owned()]);
    assert_eq!(req.messages, vec![user("Hi")], "system prompts are not messages");

    let a = encode(Dialect::Anthropic, &req);
    assert_eq!(a["system"], "Be brief.\n\nAnswer in French.");
    assert_eq!(a["messages"].as_array().unwrap().len(), 1);
    let g = encode(Dialect::Gemini, &req);
    assert_eq!(g["systemInstruction"]["parts"], json!([{"text": "Be brief.\n\nAnswer in French."}]));
    let o = encode(Dialect::OpenAiChat, &req);
    assert_eq!(o["messages"][0], json!({"role": "system", "content": "Be brief.\n\nAnswer in French."}));
    assert_eq!(o["messages"].as_array().unwrap().len(), 2);
}

#[test]
fn anthropic_system_string_and_block_forms_are_equivalent() {
    let s =
        br#"{"model":"m","max_tokens":5,"system":"Be brief.","messages":[{"role":"user","content":"Hi"}]}"#;
    let b =
        br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}],
        "system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}]}"#;
    let s = Dialect::Anthropic.decode_request(s).unwrap();
    let b = Dialect::Anthropic.decode_request(b).unwrap();
    assert_eq!(s, b);
    assert_eq!(s.system, vec!["Be brief.".to_owned()]);
}

#[test]
fn gemini_snake_case_fields_are_accepted() {
    let body = br#"{"system_instruction":{"parts":[{"text":"Be brief."}]},
        "contents":[{"role":"user","parts":[{"text":"Hi"}]},{"role":"model","parts":[{"text":"Hello"}]}],
        "generation_config":{"max_output_tokens":7,"stop_sequences":["x"],"top_p":0.5,"top_k":3}}"#;
    let req = Dialect::Gemini.decode_request(body).unwrap();
    assert_eq!(req.system, vec!["Be brief.".to_owned()]);
    assert_eq!(req.messages, vec![user("Hi"), Message::text(Role::Assistant, "Hello")]);
    assert_eq!((req.max_tokens, req.top_p, req.top_k), (Some(7), Some(0.5), Some(3)));
    assert_eq!(req.stop, vec!["x".to_owned()]);
}

// ---------------------------------------------------------------------------------------------------------------
// stop sequences, max tokens, temperature

#[test]
fn openai_stop_string_or_array_reaches_every_dialect() {
    for (stop, want) in [(json!("END"), vec!["END"]), (json!(["a", "b"]), vec!["a", "b"])] {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}], "stop": stop});
        let req = Dialect::OpenAiChat.decode_request(body.to_string().as_bytes()).unwrap();
        assert_eq!(req.stop, want);
        assert_eq!(encode(Dialect::Anthropic, &req)["stop_sequences"], json!(want));
        assert_eq!(encode(Dialect::Gemini, &req)["generationConfig"]["stopSequences"], json!(want));
        assert_eq!(encode(Dialect::OpenAiChat, &req)["stop"], json!(want));
    }
}

#[test]
fn no_stop_sequences_means_no_stop_field() {
    let req = ChatRequest { model: "m".into(), messages: vec![user("Hi")], ..Default::default() };
    assert!(encode(Dialect::Anthropic, &req).get("stop_sequences").is_none());
    assert!(encode(Dialect::OpenAiChat, &req).get("stop").is_none());
    assert!(encode(Dialect::Gemini, &req).get("generationConfig").is_none());
}

#[test]
fn anthropic_request_always_gets_max_tokens() {
    let mut req = ChatRequest { model: "m".into(), messages: vec![user("Hi")], ..Default::default() };
    assert_eq!(encode(Dialect::Anthropic, &req)["max_tokens"], DEFAULT_MAX_TOKENS);
    assert!(encode(Dialect::OpenAiChat, &req).get("max_completion_tokens").is_none());
    assert!(encode(Dialect::OpenAiChat, &req).get("max_tokens").is_none());
    req.max_tokens = Some(77);
    assert_eq!(encode(Dialect::Anthropic, &req)["max_tokens"], 77);
    assert_eq!(encode(Dialect::Gemini, &req)["generationConfig"]["maxOutputTokens"], 77);
}

#[test]
fn openai_max_completion_tokens_wins_over_deprecated_max_tokens() {
    let both = br#"{"model":"m","messages":[],"max_tokens":10,"max_completion_tokens":20}"#;
    assert_eq!(Dialect::OpenAiChat.decode_request(both).unwrap().max_tokens, Some(20));
    let legacy = br#"{"model":"m","messages":[],"max_tokens":10}"#;
    assert_eq!(Dialect::OpenAiChat.decode_request(legacy).unwrap().max_tokens, Some(10));
}

#[test]
fn openai_target_names_the_limit_as_configured() {
    let req = ChatRequest { model: "m".into(), max_tokens: Some(9), ..Default::default() };
    let legacy = EncodeOpts { max_tokens_field: MaxTokensField::MaxTokens, ..Default::default() };
    let o = json(&Dialect::OpenAiChat.encode_request(&req, "x", &legacy).unwrap().body);
    assert_eq!(o["max_tokens"], 9);
    assert!(o.get("max_completion_tokens").is_none());
    let o = encode(Dialect::OpenAiChat, &req);
    assert_eq!(o["max_completion_tokens"], 9);
    assert!(o.get("max_tokens").is_none());
}

#[test]
fn temperature_is_clamped_to_anthropic_range_only() {
    for (t, anthropic) in [(0.0, 0.0), (0.3, 0.3), (1.0, 1.0), (1.5, 1.0), (2.0, 1.0)] {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}], "temperature": t});
        let req = Dialect::OpenAiChat.decode_request(body.to_string().as_bytes()).unwrap();
        assert_eq!(encode(Dialect::Anthropic, &req)["temperature"].as_f64(), Some(anthropic), "t={t}");
        assert_eq!(encode(Dialect::OpenAiChat, &req)["temperature"].as_f64(), Some(t), "t={t}");
        assert_eq!(
            encode(Dialect::Gemini, &req)["generationConfig"]["temperature"].as_f64(),
            Some(t),
            "t={t}"
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// stream flags

#[test]
fn openai_stream_options_include_usage_is_read() {
    let body = br#"{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}"#;
    let req = Dialect::OpenAiChat.decode_request(body).unwrap();
    assert!(req.stream && req.include_usage);
    let body = br#"{"model":"m","messages":[],"stream":true}"#;
    let req = Dialect::OpenAiChat.decode_request(body).unwrap();
    assert!(req.stream && !req.include_usage);
    let a = encode(Dialect::Anthropic, &req);
    assert_eq!(a["stream"], true);
}

// ---------------------------------------------------------------------------------------------------------------
// roles and content that cannot be translated

#[test]
fn unknown_roles_are_refused_with_their_path() {
    let cases: [(Dialect, &[u8], &str); 3] = [
        (
            Dialect::Anthropic,
            br#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#,
            "messages.0.role",
        ),
        (
            Dialect::OpenAiChat,
            br#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#,
            "messages[0].role",
        ),
        (
            Dialect::Gemini,
            br#"{"contents":[{"role":"assistant","parts":[{"text":"x"}]}]}"#,
            "contents[0].role",
        ),
    ];
    for (d, body, path) in cases {
        match d.decode_request(body) {
            Err(DecodeError::Invalid(msg)) => assert!(msg.contains(path), "{d}: {msg}"),
            other => panic!("{d}: expected Invalid, got {other:?}"),
        }
    }
}

#[test]
fn untranslatable_content_is_refused_with_a_clear_error_not_dropped() {
    let cases: [(Dialect, &[u8], &str); 4] = [
        (
            Dialect::OpenAiChat,
            br#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},
                {"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]}"#,
            "input_audio",
        ),
        (
            Dialect::OpenAiChat,
            br#"{"model":"m","messages":[{"role":"user","content":[
                {"type":"file","file":{"file_id":"file-abc"}}]}]}"#,
            "file",
        ),
        (
            Dialect::Anthropic,
            br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[
                {"type":"document","source":{"type":"text","media_type":"text/plain","data":"x"}}]}]}"#,
            "document",
        ),
        (
            Dialect::Gemini,
            br#"{"contents":[{"parts":[{"text":"Run it"},
                {"executableCode":{"language":"PYTHON","code":"print(1)"}}]}]}"#,
            "executableCode",
        ),
    ];
    for (from, body, kind) in cases {
        let req = from.decode_request(body).unwrap();
        assert!(
            req.messages
                .iter()
                .flat_map(|m| &m.content)
                .any(|p| matches!(p, Part::Unsupported(k) if k == kind)),
            "{from}: {kind} should be kept as Unsupported: {:?}",
            req.messages
        );
        for to in common::ALL {
            let err = to.encode_request(&req, "x", &EncodeOpts::default()).unwrap_err();
            assert_eq!(err.target, to);
            assert!(err.field.starts_with("messages["), "{err}");
            assert!(err.to_string().contains("not translated"), "{err}");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Known bugs: each test states what the published reference requires and what the code does.

/// Google's JSON parser accepts a single object where a repeated field is expected, and the published
/// system-instruction example relies on it (`"parts": {...}`, `"contents": {...}`).
#[test]
fn gemini_published_system_instruction_example_decodes() {
    let req = decode(Dialect::Gemini, "gemini/request_system_instruction.json");
    assert_eq!(req.system, vec!["You are a cat. Your name is Neko.".to_owned()]);
    assert_eq!(req.messages, vec![user("Hello there")]);
}

/// Anthropic rejects empty text blocks ("messages: text content blocks must be non-empty"), so an OpenAI
/// request with an empty message must not be sent to Anthropic as `{"type":"text","text":""}`: the block has to
/// be left out (or the translation refused).
#[test]
fn empty_openai_message_is_not_sent_to_anthropic_as_an_empty_text_block() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"Hi"},
        {"role":"assistant","content":""},{"role":"user","content":"Again"}]}"#;
    let req = Dialect::OpenAiChat.decode_request(body).unwrap();
    let Ok(enc) = Dialect::Anthropic.encode_request(&req, "x", &EncodeOpts::default()) else {
        return; // refusing is acceptable too
    };
    let a = json(&enc.body);
    for m in a["messages"].as_array().unwrap() {
        for block in m["content"].as_array().unwrap() {
            assert_ne!(block["text"], "", "empty text block sent to Anthropic: {a}");
        }
    }
}

/// canonical.rs: content a version cannot translate is kept so "a translation can refuse with a clear message
/// instead of silently dropping it". Request-level `tools` are silently dropped by every decoder, so a request that
/// gives the model tools reaches another provider without them.
#[test]
fn request_tools_are_not_silently_dropped() {
    let req = decode(Dialect::Anthropic, "anthropic/request_reference.json");
    for to in [Dialect::OpenAiChat, Dialect::Gemini] {
        let out = to.encode_request(&req, "x", &EncodeOpts::default());
        let kept = out.as_ref().is_ok_and(|e| json(&e.body).get("tools").is_some());
        assert!(
            out.is_err() || kept,
            "{to}: tools vanished: {}",
            String::from_utf8_lossy(&out.unwrap().body)
        );
    }
}
