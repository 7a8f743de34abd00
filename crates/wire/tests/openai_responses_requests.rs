//! OpenAI Responses conformance, requests: the published examples decode into the canonical model and translate
//! to the other three dialects and back; the other dialects' published requests reach a Responses target; every
//! field is carried, reported as dropped, or refused by name; reasoning signatures never cross dialects.
//!
//! Fixture sources (<https://platform.openai.com/docs/api-reference/responses/create>, "Create a model response",
//! and the guides it links):
//! - responses/request.json: assembled from published pieces (no single example has every item kind): the user
//!   message of the "Image input" example and the assistant message of its response; the question of the
//!   "Functions" example and the `function_call` of its response; a `function_call_output` in the shape of the
//!   function-calling guide ("Handling function calls", <https://platform.openai.com/docs/guides/function-calling>);
//!   a `reasoning` item with the id and (shortened) summary text of the streaming reference's
//!   `response.reasoning_summary_text.delta` example, its `encrypted_content` a placeholder (the reference elides
//!   it); `reasoning`, `include` and `store` as the reasoning guide's stateless example sets them
//!   (<https://platform.openai.com/docs/guides/reasoning>).
//! - responses/request_functions.json: the "Functions" example request, verbatim.
//!
//! Where Responses legitimately differs from the other dialects (each difference is asserted below):
//! - no stop sequences and no `top_k`: both are reported as dropped;
//! - function tools are strict by default in Responses and in no other dialect: translations send
//!   `strict: false`, and a Responses request whose tools were strict (explicitly or by that default) reports
//!   `tools[].strict` as dropped;
//! - reasoning goes back upstream as `{type: reasoning, summary, encrypted_content}` without its `id` (with
//!   `store: false` an id is looked up and fails; OpenAI's own Codex client leaves it out too); reasoning without
//!   a Responses provider's encrypted content is dropped and reported;
//! - consecutive items of one role are one canonical message, and an assistant's run of text goes upstream as one
//!   string (the form the reference gives for earlier answers; `output_text` parts need an id and a status there);
//! - `store: false` (what every translation does) is not reported, `store: true` is.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ALL, fixture, json};
use nines_wire::{
    ChatRequest, DecodeError, Dialect, Effort, EncodeOpts, ImageSource, Message, Part, Reasoning,
    ResponseFormat, Role, Signature, Thinking, ToolCall, ToolChoice, ToolResult,
};
use serde_json::{Value, json};

const R: Dialect = Dialect::OpenAiResponses;
const ENCRYPTED: &str = "gAAAAABoEncryptedReasoningFixture==";

fn decode(path: &str) -> ChatRequest {
    R.decode_request(fixture(path).as_bytes()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn encode(d: Dialect, req: &ChatRequest) -> (Value, Vec<String>) {
    let e = d
        .encode_request(req, "upstream-model", &EncodeOpts::default())
        .unwrap_or_else(|e| panic!("{d}: {e}"));
    (json(&e.body), e.dropped)
}

fn invalid(body: &Value) -> String {
    match R.decode_request(body.to_string().as_bytes()) {
        Err(DecodeError::Invalid(m)) => m,
        other => panic!("expected Invalid for {body}: {other:?}"),
    }
}

fn with(extra: Value) -> Value {
    let mut b = json!({"model": "m", "input": "hi"});
    b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    b
}

fn decode_value(body: &Value) -> ChatRequest {
    R.decode_request(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"))
}

fn weather_call() -> ToolCall {
    ToolCall {
        id: "call_unLAR8MvFNptuiZK6K6HCy5k".into(),
        name: "get_current_weather".into(),
        arguments: r#"{"location":"Boston, MA","unit":"celsius"}"#.into(),
    }
}

fn responses_signature() -> Signature {
    Signature {
        origin: R,
        value: format!(
            r#"{{"id":"rs_6806bfca0b2481918a5748308061a2600d3ce51bdffd5476","encrypted_content":"{ENCRYPTED}"}}"#
        ),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Requests: the fixtures decode.

#[test]
fn item_request_decodes_into_one_message_per_role_run() {
    let req = decode("responses/request.json");
    assert_eq!(req.model, "gpt-4.1");
    assert_eq!(
        req.system,
        vec!["You are a helpful assistant.".to_owned()],
        "instructions are the system prompt"
    );
    let image = "https://upload.wikimedia.org/wikipedia/commons/thumb/d/dd/Gfp-wisconsin-madison-the-nature-boardwalk.jpg/2560px-Gfp-wisconsin-madison-the-nature-boardwalk.jpg";
    let thinking = Thinking {
        text: "**Responding to a greeting**\n\nThe user just said, \"Hello!\" So, it seems I need to engage. I'll greet them back and offer help since they're looking to chat.".into(),
        signature: Some(responses_signature()),
    };
    let want = vec![
        Message {
            role: Role::User,
            content: vec![
                Part::Text("what is in this image?".into()),
                Part::Image(ImageSource::Url(image.into())),
            ],
        },
        Message::text(
            Role::Assistant,
            "The image depicts a scenic landscape with a wooden boardwalk or pathway leading through lush, green grass under a blue sky with some clouds. The setting suggests a peaceful natural area, possibly a park or nature reserve. There are trees and shrubs in the background.",
        ),
        Message::text(Role::User, "What is the weather like in Boston today?"),
        Message {
            role: Role::Assistant,
            content: vec![Part::Thinking(thinking), Part::ToolCall(weather_call())],
        },
        Message {
            role: Role::User,
            content: vec![Part::ToolResult(ToolResult {
                call_id: "call_unLAR8MvFNptuiZK6K6HCy5k".into(),
                content: vec![Part::Text(r#"{"temperature": 18, "unit": "celsius"}"#.into())],
                is_error: false,
            })],
        },
    ];
    assert_eq!(req.messages, want);
    assert_eq!(req.tools.len(), 1);
    assert_eq!(req.tools[0].name, "get_current_weather");
    assert_eq!(req.tools[0].parameters["required"], json!(["location", "unit"]));
    assert_eq!(req.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(
        req.reasoning,
        Some(Reasoning { effort: Some(Effort::Low), budget_tokens: None, visible: true })
    );
    assert!(req.untranslated.is_empty(), "{:?}", req.untranslated);
    assert_eq!(
        req.ignored,
        vec!["include".to_owned(), "tools[].strict".to_owned()],
        "store: false is not reported"
    );
    assert!(req.include_usage, "a Responses stream always ends with its usage");
}

#[test]
fn functions_request_decodes_its_string_input_and_flat_tools() {
    let req = decode("responses/request_functions.json");
    assert_eq!(req.messages, vec![Message::text(Role::User, "What is the weather like in Boston today?")]);
    assert_eq!(req.tools[0].description.as_deref(), Some("Get the current weather in a given location"));
    assert_eq!(req.tools[0].parameters["properties"]["unit"]["enum"], json!(["celsius", "fahrenheit"]));
    assert_eq!(req.tool_choice, Some(ToolChoice::Auto));

    let (o, _) = encode(Dialect::OpenAiChat, &req);
    assert_eq!(o["tools"][0]["function"]["name"], "get_current_weather", "Chat nests tools under `function`");
    let (a, _) = encode(Dialect::Anthropic, &req);
    assert_eq!(a["tools"][0]["input_schema"]["required"], json!(["location", "unit"]));
    let (g, _) = encode(Dialect::Gemini, &req);
    assert_eq!(g["tools"][0]["functionDeclarations"][0]["name"], "get_current_weather");
}

// ---------------------------------------------------------------------------------------------------------------
// Requests: the item fixture translates to every dialect, and reasoning stays with its provider.

#[test]
fn item_request_to_openai_chat() {
    let req = decode("responses/request.json");
    let (o, dropped) = encode(Dialect::OpenAiChat, &req);
    let m = o["messages"].as_array().unwrap();
    assert_eq!(m[0], json!({"role": "system", "content": "You are a helpful assistant."}));
    assert!(m[1]["content"][1]["image_url"]["url"].as_str().unwrap().ends_with("nature-boardwalk.jpg"));
    assert_eq!(m[2]["role"], "assistant");
    assert_eq!(m[4]["tool_calls"][0]["id"], "call_unLAR8MvFNptuiZK6K6HCy5k");
    assert_eq!(
        m[4]["tool_calls"][0]["function"]["arguments"],
        r#"{"location":"Boston, MA","unit":"celsius"}"#
    );
    assert_eq!(
        m[5],
        json!({"role": "tool", "tool_call_id": "call_unLAR8MvFNptuiZK6K6HCy5k",
                            "content": r#"{"temperature": 18, "unit": "celsius"}"#})
    );
    assert_eq!(o["reasoning_effort"], "low");
    assert!(dropped.contains(&"tools[].strict".to_owned()), "{dropped:?}");
}

#[test]
fn item_request_to_anthropic_and_gemini_without_the_encrypted_reasoning() {
    let req = decode("responses/request.json");
    let (a, dropped) = encode(Dialect::Anthropic, &req);
    assert_eq!(a["system"], "You are a helpful assistant.");
    let turns = a["messages"].as_array().unwrap();
    assert_eq!(turns.len(), 5);
    assert_eq!(turns[0]["content"][1]["source"]["type"], "url");
    assert_eq!(
        turns[3]["content"],
        json!([{"type": "tool_use", "id": "call_unLAR8MvFNptuiZK6K6HCy5k", "name": "get_current_weather",
                "input": {"location": "Boston, MA", "unit": "celsius"}}]),
        "OpenAI's reasoning is not sent to Anthropic"
    );
    assert_eq!(turns[4]["content"][0]["tool_use_id"], "call_unLAR8MvFNptuiZK6K6HCy5k");
    assert!(dropped.iter().any(|d| d.starts_with("reasoning from another provider")), "{dropped:?}");

    let (g, _) = encode(Dialect::Gemini, &req);
    let contents = g["contents"].as_array().unwrap();
    assert_eq!(
        contents[3]["parts"],
        json!([{"functionCall": {"name": "get_current_weather",
                                              "args": {"location": "Boston, MA", "unit": "celsius"}}}])
    );
    assert_eq!(contents[4]["parts"][0]["functionResponse"]["name"], "get_current_weather");

    for d in [Dialect::Anthropic, Dialect::OpenAiChat, Dialect::Gemini] {
        let body =
            String::from_utf8(d.encode_request(&req, "m", &EncodeOpts::default()).unwrap().body).unwrap();
        assert!(!body.contains(ENCRYPTED) && !body.contains("rs_6806"), "{d} got OpenAI's reasoning: {body}");
    }
}

#[test]
fn item_request_back_to_a_responses_target() {
    let req = decode("responses/request.json");
    let (r, dropped) = encode(R, &req);
    assert_eq!(r["model"], "upstream-model");
    assert_eq!(r["instructions"], "You are a helpful assistant.");
    assert_eq!(r["store"], false, "the gateway keeps the state");
    assert_eq!(r["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(r["reasoning"], json!({"effort": "low", "summary": "auto"}));
    let input = r["input"].as_array().unwrap();
    assert_eq!(input.len(), 6);
    assert_eq!(input[0]["content"][0], json!({"type": "input_text", "text": "what is in this image?"}));
    assert_eq!(input[0]["content"][1]["type"], "input_image");
    assert_eq!(input[1]["role"], "assistant");
    assert!(
        input[1]["content"].as_str().unwrap().starts_with("The image depicts"),
        "an earlier answer is a string"
    );
    assert_eq!(
        input[3],
        json!({"type": "reasoning", "encrypted_content": ENCRYPTED,
               "summary": [{"type": "summary_text", "text": req.messages[3].content.iter().find_map(|p| match p {
                   Part::Thinking(t) => Some(t.text.clone()), _ => None }).unwrap()}]}),
        "encrypted content and summary, no id"
    );
    assert_eq!(
        input[4],
        json!({"type": "function_call", "call_id": "call_unLAR8MvFNptuiZK6K6HCy5k", "name": "get_current_weather",
               "arguments": r#"{"location":"Boston, MA","unit":"celsius"}"#})
    );
    assert_eq!(
        input[5],
        json!({"type": "function_call_output", "call_id": "call_unLAR8MvFNptuiZK6K6HCy5k",
               "output": r#"{"temperature": 18, "unit": "celsius"}"#})
    );
    assert_eq!(
        r["tools"][0]["strict"], false,
        "other dialects' tools are not strict; neither are translations"
    );
    assert_eq!(r["tools"][0]["name"], "get_current_weather");
    assert_eq!(r["tool_choice"], "auto");
    // And again: nothing changes in meaning; the reasoning item comes back without the id it was not sent with.
    let again = R.decode_request(&R.encode_request(&req, "x", &EncodeOpts::default()).unwrap().body).unwrap();
    let mut want = req.messages.clone();
    if let Part::Thinking(t) = &mut want[3].content[0] {
        t.signature =
            Some(Signature { origin: R, value: format!(r#"{{"encrypted_content":"{ENCRYPTED}"}}"#) });
    }
    assert_eq!(again.messages, want);
    assert!(dropped.contains(&"include".to_owned()));
}

#[test]
fn other_dialects_requests_reach_a_responses_target() {
    let chat =
        nines_wire::Dialect::OpenAiChat.decode_request(fixture("openai/request.json").as_bytes()).unwrap();
    let (r, _) = encode(R, &chat);
    assert_eq!(r["instructions"], "You are a helpful assistant.", "developer messages become instructions");
    assert_eq!(
        r["input"],
        json!([{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]}])
    );
    assert!(r.get("max_output_tokens").is_none());

    let anthropic =
        Dialect::Anthropic.decode_request(fixture("anthropic/request_reference.json").as_bytes()).unwrap();
    let (r, dropped) = encode(R, &anthropic);
    assert_eq!(r["max_output_tokens"], 1024);
    assert_eq!((r["temperature"].as_f64(), r["top_p"].as_f64()), (Some(1.0), Some(0.7)));
    assert!(r.get("top_k").is_none() && dropped.contains(&"top_k".to_owned()), "{dropped:?}");
    assert_eq!(r["tools"][0]["type"], "function");
    assert_eq!(r["tools"][0]["parameters"]["required"], json!(["location"]), "tools are flat in Responses");

    let gemini = Dialect::Gemini.decode_request(fixture("gemini/request.json").as_bytes()).unwrap();
    let (r, dropped) = encode(R, &gemini);
    assert_eq!(r["max_output_tokens"], 800);
    assert!(r.get("stop").is_none());
    assert!(dropped.iter().any(|d| d.starts_with("stop sequences")), "{dropped:?}");
    assert!(dropped.contains(&"top_k".to_owned()));
}

#[test]
fn reasoning_signed_by_other_providers_never_reaches_a_responses_target() {
    let body = json!({"model": "m", "max_tokens": 2048, "messages": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Simple.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"},
            {"type": "text", "text": "4"}]},
        {"role": "user", "content": "and 3+3?"}]});
    let req = Dialect::Anthropic.decode_request(body.to_string().as_bytes()).unwrap();
    let e = R.encode_request(&req, "m", &EncodeOpts::default()).unwrap();
    let text = String::from_utf8(e.body.clone()).unwrap();
    assert!(!text.contains("EqQBCgIYAhIM") && !text.contains("Simple."), "{text}");
    assert!(!text.contains("\"reasoning\""), "{text}");
    assert!(e.dropped.iter().any(|d| d.starts_with("reasoning without")), "{:?}", e.dropped);
    // An id-only Responses reasoning item (no encrypted content) cannot go back with `store: false` either.
    let req = decode_value(&json!({"model": "m", "input": [
        {"type": "reasoning", "id": "rs_1", "summary": []}, {"role": "user", "content": "next"}]}));
    let (r, dropped) = encode(R, &req);
    assert_eq!(r["input"].as_array().unwrap().len(), 1, "{r}");
    assert!(dropped.iter().any(|d| d.starts_with("reasoning without")));
}

// ---------------------------------------------------------------------------------------------------------------
// Requests: fields one by one.

#[test]
fn what_only_openai_can_act_on_is_refused_by_every_translation() {
    let cases = [
        (with(json!({"previous_response_id": "resp_123"})), "previous_response_id"),
        (with(json!({"background": true})), "background"),
        (with(json!({"conversation": "conv_123"})), "conversation"),
        (with(json!({"prompt": {"id": "pmpt_123", "variables": {}}})), "prompt"),
        (with(json!({"tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []}})), "tool_choice"),
        (
            json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_123"}]}),
            "input[].type=item_reference",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-123", "detail": "auto"}]}]}),
            "input_image.file_id",
        ),
    ];
    for (body, field) in cases {
        let req = decode_value(&body);
        assert!(req.untranslated.contains(&field), "{body}: {:?}", req.untranslated);
        for to in ALL {
            let err = to.encode_request(&req, "x", &EncodeOpts::default()).unwrap_err();
            assert_eq!((err.field.as_str(), err.target), (field, to), "{body}");
        }
    }
    assert!(
        decode_value(&with(json!({"background": false, "previous_response_id": null})))
            .untranslated
            .is_empty()
    );
}

#[test]
fn malformed_requests_are_refused_naming_the_field() {
    for (body, field) in [
        (json!({"model": "m"}), "input"),
        (json!({"input": "hi"}), "model"),
        (json!({"model": "m", "input": 7}), "input"),
        (json!({"model": "m", "input": ["hi"]}), "input[0]"),
        (json!({"model": "m", "input": [{"role": "robot", "content": "x"}]}), "input[0].role"),
        (json!({"model": "m", "input": [{"content": "x"}]}), "input[0]"),
        (
            json!({"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}),
            "input[0].call_id",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call_output", "call_id": "c"}]}),
            "input[0].output",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": 3}]}),
            "input[0].output",
        ),
        (json!({"model": "m", "input": [{"role": "user", "content": 3}]}), "input[0].content"),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text"}]}]}),
            "input[0].content[0].text",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image"}]}]}),
            "input[0].content[0].image_url",
        ),
        (json!({"model": "m", "input": "hi", "tools": {}}), "tools"),
        (json!({"model": "m", "input": "hi", "tools": [{"type": "function"}]}), "tools[0].name"),
        (json!({"model": "m", "input": "hi", "instructions": 3}), "instructions"),
    ] {
        let msg = invalid(&body);
        assert!(msg.contains(field), "{body}: {msg}");
    }
    assert!(R.decode_request(b"[]").is_err());
    assert!(matches!(R.decode_request(b"{"), Err(DecodeError::Json(_))));
}

#[test]
fn unknown_and_bookkeeping_fields_are_reported_as_dropped() {
    let req = decode_value(&with(json!({
        "metadata": {"k": "v"}, "store": true, "truncation": "auto", "service_tier": "flex",
        "prompt_cache_key": "p", "include": ["message.output_text.logprobs"], "top_logprobs": 2,
        "max_tool_calls": 3, "seed": 7, "text": {"verbosity": "low"}, "stream": true,
        "stream_options": {"include_obfuscation": false}})));
    for f in [
        "metadata",
        "store",
        "truncation",
        "service_tier",
        "prompt_cache_key",
        "include",
        "top_logprobs",
        "max_tool_calls",
        "seed",
        "text.verbosity",
    ] {
        assert!(req.ignored.contains(&f.to_owned()), "{f}: {:?}", req.ignored);
    }
    assert!(!req.ignored.iter().any(|f| f.starts_with("stream")), "{:?}", req.ignored);
    assert!(req.stream && req.untranslated.is_empty());
    let (o, dropped) = encode(Dialect::OpenAiChat, &req);
    assert!(dropped.contains(&"metadata".to_owned()));
    assert!(o.get("metadata").is_none() && o.get("store").is_none());
}

#[test]
fn sampling_limits_and_user_map_both_ways() {
    let req = decode_value(&with(json!({"max_output_tokens": 300, "temperature": 0.2, "top_p": 0.9,
                                          "safety_identifier": "user-7", "parallel_tool_calls": false})));
    assert_eq!((req.max_tokens, req.temperature, req.top_p), (Some(300), Some(0.2), Some(0.9)));
    assert_eq!(req.user.as_deref(), Some("user-7"));
    let (a, _) = encode(Dialect::Anthropic, &req);
    assert_eq!((&a["max_tokens"], &a["metadata"]["user_id"]), (&json!(300), &json!("user-7")));
    let (r, _) = encode(R, &req);
    assert_eq!((&r["max_output_tokens"], &r["user"]), (&json!(300), &json!("user-7")));

    let chat = Dialect::OpenAiChat
        .decode_request(br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":9,"stop":["x"],"user":"u"}"#)
        .unwrap();
    let (r, dropped) = encode(R, &chat);
    assert_eq!((&r["max_output_tokens"], &r["user"]), (&json!(9), &json!("u")));
    assert!(dropped.iter().any(|d| d.starts_with("stop sequences")));
}

#[test]
fn encode_opts_are_respected() {
    let mut req =
        decode_value(&with(json!({"temperature": 0.5, "top_p": 0.5, "reasoning": {"effort": "high"}})));
    let opts = EncodeOpts { sampling_params: false, reasoning: false, ..EncodeOpts::default() };
    let e = R.encode_request(&req, "m", &opts).unwrap();
    let r = json(&e.body);
    for absent in ["temperature", "top_p", "reasoning", "include"] {
        assert!(r.get(absent).is_none(), "{absent}: {r}");
    }
    assert!(e.dropped.contains(&"temperature".to_owned()) && e.dropped.contains(&"top_p".to_owned()));
    assert!(e.dropped.iter().any(|d| d.starts_with("reasoning")));
    req.stream = true;
    let (r, _) = encode(R, &req);
    assert_eq!((&r["stream"], &r["reasoning"]["effort"]), (&json!(true), &json!("high")));
    assert!(r.get("stream_options").is_none());
}

#[test]
fn reasoning_effort_and_summary() {
    let reasoning = |r: Value| decode_value(&with(json!({"reasoning": r}))).reasoning;
    assert_eq!(reasoning(json!({"effort": "none"})), None);
    assert_eq!(reasoning(json!({})), None);
    assert_eq!(reasoning(json!({"effort": null, "summary": null})), None);
    assert_eq!(reasoning(json!({"effort": "minimal"})).unwrap().effort, Some(Effort::Minimal));
    assert_eq!(reasoning(json!({"effort": "xhigh"})).unwrap().effort, Some(Effort::Max));
    let r = reasoning(json!({"summary": "detailed"})).unwrap();
    assert_eq!((r.effort, r.visible), (None, true));
    assert!(!reasoning(json!({"effort": "medium"})).unwrap().visible);

    // Anthropic's thinking budget becomes an effort, and visible thinking a summary.
    let a = Dialect::Anthropic
        .decode_request(br#"{"model":"m","max_tokens":20000,"thinking":{"type":"enabled","budget_tokens":10000},"messages":[{"role":"user","content":"hi"}]}"#)
        .unwrap();
    let (r, _) = encode(R, &a);
    assert_eq!(r["reasoning"], json!({"effort": "high", "summary": "auto"}));
}

#[test]
fn text_format_and_tool_choice_are_flat() {
    let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": false});
    let req = decode_value(&with(json!({
        "text": {"format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": true}},
        "tools": [{"type": "function", "name": "f", "parameters": null, "strict": false}],
        "tool_choice": {"type": "function", "name": "f"}})));
    assert_eq!(
        req.response_format,
        Some(ResponseFormat::JsonSchema {
            name: "answer".into(),
            schema: schema.clone(),
            strict: Some(true)
        })
    );
    assert_eq!(req.tool_choice, Some(ToolChoice::Named("f".into())));
    assert_eq!(req.tools[0].parameters, json!({"type": "object"}));
    assert!(!req.ignored.contains(&"tools[].strict".to_owned()), "strict: false is what translations do");
    let (o, _) = encode(Dialect::OpenAiChat, &req);
    assert_eq!(o["response_format"]["json_schema"]["name"], "answer", "Chat nests the schema");
    assert_eq!(o["tool_choice"], json!({"type": "function", "function": {"name": "f"}}));
    let (r, _) = encode(R, &req);
    assert_eq!(
        r["text"],
        json!({"format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": true}})
    );
    assert_eq!(r["tool_choice"], json!({"type": "function", "name": "f"}));

    let req =
        decode_value(&with(json!({"text": {"format": {"type": "json_object"}}, "tool_choice": "required"})));
    assert_eq!(req.response_format, Some(ResponseFormat::JsonObject));
    assert_eq!(req.tool_choice, Some(ToolChoice::Required));
    assert_eq!(decode_value(&with(json!({"text": {"format": {"type": "text"}}}))).response_format, None);
}

#[test]
fn content_parts_images_and_tool_outputs() {
    let req = decode_value(&json!({"model": "m", "input": [
        {"role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]},
        {"type": "message", "role": "system", "content": "Answer in French."},
        {"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png;base64,iVBORw0K", "detail": "low"},
                                     {"type": "input_file", "file_id": "file-1"}]},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]},
        {"type": "function_call", "call_id": "c1", "name": "shot", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": [
            {"type": "input_text", "text": "here"}, {"type": "input_image", "image_url": "https://x/y.png"}]}]}));
    assert_eq!(req.system, vec!["Be brief.".to_owned(), "Answer in French.".to_owned()]);
    assert_eq!(
        req.messages[0].content,
        vec![
            Part::Image(ImageSource::Base64 { media_type: "image/png".into(), data: "iVBORw0K".into() }),
            Part::Unsupported("input_file".into())
        ]
    );
    assert_eq!(req.messages[1].content[0], Part::Text("I can't.".into()));
    assert_eq!(
        req.messages[2].content,
        vec![Part::ToolResult(ToolResult {
            call_id: "c1".into(),
            is_error: false,
            content: vec![Part::Text("here".into()), Part::Image(ImageSource::Url("https://x/y.png".into()))]
        })]
    );
    let err = R.encode_request(&req, "m", &EncodeOpts::default()).unwrap_err();
    assert!(err.field.starts_with("messages[0]") && err.to_string().contains("input_file"), "{err}");

    // Images in tool results and error results go to a Responses target as parts.
    let mut req = req;
    req.messages.remove(0);
    if let Part::ToolResult(r) = &mut req.messages[1].content[0] {
        r.is_error = true;
    }
    let (r, _) = encode(R, &req);
    let output = &r["input"][2]["output"];
    assert_eq!(output[0], json!({"type": "input_text", "text": "Error: "}));
    assert_eq!(output[2]["image_url"], "https://x/y.png");
}

/// Tools only the Responses API defines (hosted ones, custom grammars, namespaces) are left out of a translation and
/// reported, so an agent like Codex keeps working on another provider with its function tools.
#[test]
fn responses_only_tools_are_dropped_with_a_report() {
    let body = json!({"model": "m", "input": "hi", "tools": [
        {"type": "web_search"},
        {"type": "mcp", "server_label": "deepwiki", "server_url": "https://mcp.deepwiki.com/mcp"},
        {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}},
        {"type": "function", "name": "exec_command", "strict": false,
         "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}}]});
    let req = decode_value(&body);
    assert!(req.untranslated.is_empty(), "{:?}", req.untranslated);
    assert_eq!(req.tools.len(), 1);
    for to in [Dialect::Anthropic, Dialect::OpenAiChat, Dialect::Gemini] {
        let enc = to.encode_request(&req, "x", &EncodeOpts::default()).unwrap();
        let dropped = enc.dropped.join("; ");
        for t in ["web_search", "mcp", "custom"] {
            assert!(dropped.contains(&format!("tools[].type={t}")), "{to}: {dropped}");
        }
        assert!(String::from_utf8_lossy(&enc.body).contains("exec_command"), "{to}");
    }
}
