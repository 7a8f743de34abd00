//! Streamed tool calls across dialects: each provider's way of streaming a call (Anthropic `input_json_delta`,
//! OpenAI `tool_calls[].function.arguments` deltas by index, Gemini whole `functionCall` parts, OpenAI Responses
//! `function_call` items with `response.function_call_arguments.delta` by output index) re-encoded for every
//! client, with the arguments arriving whole and the ids kept. A Responses answer says `completed` after tool calls
//! (there is no tool-use stop reason); the calls themselves say it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)] // test code: failing loudly is its job

use nines_wire::sse::parse;
use nines_wire::stream::{Decoder, Encoder};
use nines_wire::{Dialect, EncodeCtx, StreamEvent};
use serde_json::{Value, json};

fn decode(dialect: Dialect, sse: &str) -> Vec<StreamEvent> {
    let mut d = Decoder::new(dialect);
    let mut out = Vec::new();
    for f in parse(sse) {
        d.push(&f.event, &f.data, &mut out).unwrap();
    }
    d.finish(&mut out).unwrap();
    out
}

fn encode(dialect: Dialect, events: &[StreamEvent]) -> String {
    let ctx = EncodeCtx { created: 1, model: "m".into(), ..EncodeCtx::default() };
    let mut e = Encoder::new(dialect, ctx, true);
    let mut out = Vec::new();
    for ev in events {
        e.push(ev, &mut out);
    }
    String::from_utf8(out).unwrap()
}

/// (id, name, arguments JSON) of every tool call an OpenAI client would assemble from its chunks.
fn openai_calls(sse: &str) -> Vec<(String, String, Value)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut finish = None;
    for f in parse(sse) {
        if f.data == "[DONE]" {
            continue;
        }
        let c: Value = serde_json::from_str(&f.data).unwrap();
        for ch in c["choices"].as_array().unwrap() {
            if let Some(r) = ch["finish_reason"].as_str() {
                finish = Some(r.to_owned());
            }
            for tc in ch["delta"]["tool_calls"].as_array().into_iter().flatten() {
                let i = tc["index"].as_u64().unwrap() as usize;
                if calls.len() <= i {
                    calls.resize(i + 1, Default::default());
                }
                if let Some(id) = tc["id"].as_str() {
                    calls[i].0 = id.to_owned();
                }
                if let Some(n) = tc["function"]["name"].as_str() {
                    calls[i].1 = n.to_owned();
                }
                calls[i].2.push_str(tc["function"]["arguments"].as_str().unwrap_or(""));
            }
        }
    }
    assert_eq!(finish.as_deref(), Some("tool_calls"), "{sse}");
    calls.into_iter().map(|(id, n, a)| (id, n, serde_json::from_str(&a).unwrap())).collect()
}

/// The same, as an Anthropic client assembles `tool_use` blocks.
fn anthropic_calls(sse: &str) -> Vec<(String, String, Value)> {
    let mut blocks: Vec<(String, String, String)> = Vec::new();
    let mut index_of = std::collections::HashMap::new();
    let mut stop = None;
    for f in parse(sse) {
        let v: Value = serde_json::from_str(&f.data).unwrap();
        match f.event.as_str() {
            "content_block_start" if v["content_block"]["type"] == "tool_use" => {
                index_of.insert(v["index"].as_u64().unwrap(), blocks.len());
                let b = &v["content_block"];
                blocks.push((
                    b["id"].as_str().unwrap().into(),
                    b["name"].as_str().unwrap().into(),
                    String::new(),
                ));
            }
            "content_block_delta" if v["delta"]["type"] == "input_json_delta" => {
                let i = index_of[&v["index"].as_u64().unwrap()];
                blocks[i].2.push_str(v["delta"]["partial_json"].as_str().unwrap());
            }
            "message_delta" => stop = v["delta"]["stop_reason"].as_str().map(str::to_owned),
            _ => {}
        }
    }
    assert_eq!(stop.as_deref(), Some("tool_use"), "{sse}");
    blocks.into_iter().map(|(id, n, a)| (id, n, serde_json::from_str(&a).unwrap())).collect()
}

/// The same, as a Responses client assembles `function_call` items (by output index, as the openai SDK's stream
/// helper does), checked against the items of the final `response.completed`.
fn responses_calls(sse: &str) -> Vec<(String, String, Value)> {
    let mut items: std::collections::BTreeMap<u64, (String, String, String)> = Default::default();
    let mut done = None;
    for f in parse(sse) {
        let v: Value = serde_json::from_str(&f.data).unwrap();
        match v["type"].as_str().unwrap() {
            "response.output_item.added" if v["item"]["type"] == "function_call" => {
                let item = &v["item"];
                let call = (
                    item["call_id"].as_str().unwrap().into(),
                    item["name"].as_str().unwrap().into(),
                    String::new(),
                );
                items.insert(v["output_index"].as_u64().unwrap(), call);
            }
            "response.function_call_arguments.delta" => {
                let call = items.get_mut(&v["output_index"].as_u64().unwrap()).unwrap();
                call.2.push_str(v["delta"].as_str().unwrap());
            }
            "response.completed" => done = Some(v["response"].clone()),
            _ => {}
        }
    }
    let response = done.unwrap_or_else(|| panic!("no response.completed: {sse}"));
    let calls: Vec<(String, String, Value)> =
        items.into_values().map(|(id, n, a)| (id, n, serde_json::from_str(&a).unwrap())).collect();
    let final_calls: Vec<(String, String, Value)> = response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "function_call")
        .map(|i| {
            let args = serde_json::from_str(i["arguments"].as_str().unwrap()).unwrap();
            (i["call_id"].as_str().unwrap().into(), i["name"].as_str().unwrap().into(), args)
        })
        .collect();
    assert_eq!(calls, final_calls, "the final Response holds what the deltas built");
    calls
}

fn gemini_calls(sse: &str) -> Vec<(String, Value)> {
    parse(sse)
        .iter()
        .flat_map(|f| {
            let v: Value = serde_json::from_str(&f.data).unwrap();
            v["candidates"][0]["content"]["parts"].as_array().cloned().unwrap_or_default()
        })
        .filter_map(|p| {
            p.get("functionCall").map(|fc| (fc["name"].as_str().unwrap().to_owned(), fc["args"].clone()))
        })
        .collect()
}

/// Two parallel calls as OpenAI streams them (the shape of the published chunk examples).
const OPENAI_TOOL_STREAM: &str = r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": "}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{\"tz\":\"CET\"}"}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}

data: [DONE]

"#;

/// Anthropic's published tool-use stream shape: a text block, then a tool_use block whose input streams as
/// input_json_delta pieces.
const ANTHROPIC_TOOL_STREAM: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Par"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"is\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":20}}

event: message_stop
data: {"type":"message_stop"}

"#;

const GEMINI_TOOL_STREAM: &str = "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\"}}}]},\"index\":0}],\"responseId\":\"r1\",\"modelVersion\":\"gemini\"}\r\n\r\ndata: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"\"}]},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":3,\"totalTokenCount\":8},\"responseId\":\"r1\"}\r\n\r\n";

/// Two parallel calls as the Responses API streams them (the shape of the function-calling guide's streaming
/// example, a second call added, `sequence_number` on every event).
const RESPONSES_TOOL_STREAM: &str = r#"event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","created_at":1,"status":"in_progress","model":"gpt-4.1","output":[],"usage":null}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"type":"function_call","id":"fc_a","call_id":"call_a","name":"get_weather","arguments":"","status":"in_progress"}}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":2,"item_id":"fc_a","output_index":0,"delta":"{\"city\": "}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":3,"item_id":"fc_a","output_index":0,"delta":"\"Paris\"}"}

event: response.function_call_arguments.done
data: {"type":"response.function_call_arguments.done","sequence_number":4,"item_id":"fc_a","output_index":0,"arguments":"{\"city\": \"Paris\"}"}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":5,"output_index":0,"item":{"type":"function_call","id":"fc_a","call_id":"call_a","name":"get_weather","arguments":"{\"city\": \"Paris\"}","status":"completed"}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":6,"output_index":1,"item":{"type":"function_call","id":"fc_b","call_id":"call_b","name":"get_time","arguments":"","status":"in_progress"}}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":7,"item_id":"fc_b","output_index":1,"delta":"{\"tz\":\"CET\"}"}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":8,"output_index":1,"item":{"type":"function_call","id":"fc_b","call_id":"call_b","name":"get_time","arguments":"{\"tz\":\"CET\"}","status":"completed"}}

event: response.completed
data: {"type":"response.completed","sequence_number":9,"response":{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"gpt-4.1","output":[],"usage":{"input_tokens":5,"output_tokens":3,"total_tokens":8}}}

"#;

#[test]
fn responses_parallel_calls_reach_every_client() {
    let events = decode(Dialect::OpenAiResponses, RESPONSES_TOOL_STREAM);
    let want = vec![
        ("call_a".to_owned(), "get_weather".to_owned(), json!({"city": "Paris"})),
        ("call_b".to_owned(), "get_time".to_owned(), json!({"tz": "CET"})),
    ];
    assert_eq!(openai_calls(&encode(Dialect::OpenAiChat, &events)), want);
    assert_eq!(anthropic_calls(&encode(Dialect::Anthropic, &events)), want);
    assert_eq!(
        gemini_calls(&encode(Dialect::Gemini, &events)),
        vec![("get_weather".into(), json!({"city": "Paris"})), ("get_time".into(), json!({"tz": "CET"}))]
    );
    assert_eq!(responses_calls(&encode(Dialect::OpenAiResponses, &events)), want);
}

#[test]
fn every_providers_calls_reach_a_responses_client() {
    let chat = decode(Dialect::OpenAiChat, OPENAI_TOOL_STREAM);
    assert_eq!(
        responses_calls(&encode(Dialect::OpenAiResponses, &chat)),
        openai_calls(&encode(Dialect::OpenAiChat, &chat))
    );
    let anthropic = decode(Dialect::Anthropic, ANTHROPIC_TOOL_STREAM);
    assert_eq!(
        responses_calls(&encode(Dialect::OpenAiResponses, &anthropic)),
        vec![("toolu_01".into(), "get_weather".into(), json!({"city": "Paris"}))]
    );
    let gemini = decode(Dialect::Gemini, GEMINI_TOOL_STREAM);
    assert_eq!(
        responses_calls(&encode(Dialect::OpenAiResponses, &gemini)),
        vec![("call_r1_0".into(), "get_weather".into(), json!({"city": "Paris"}))]
    );
}

#[test]
fn openai_parallel_calls_reach_anthropic_and_gemini_clients() {
    let events = decode(Dialect::OpenAiChat, OPENAI_TOOL_STREAM);
    let a = anthropic_calls(&encode(Dialect::Anthropic, &events));
    assert_eq!(
        a,
        vec![
            ("call_a".into(), "get_weather".into(), json!({"city": "Paris"})),
            ("call_b".into(), "get_time".into(), json!({"tz": "CET"})),
        ]
    );
    let g = gemini_calls(&encode(Dialect::Gemini, &events));
    assert_eq!(
        g,
        vec![("get_weather".into(), json!({"city": "Paris"})), ("get_time".into(), json!({"tz": "CET"}))]
    );
    // And back to an OpenAI client, unchanged in meaning.
    assert_eq!(openai_calls(&encode(Dialect::OpenAiChat, &events)), a);
}

#[test]
fn anthropic_input_json_deltas_reach_openai_and_gemini_clients() {
    let events = decode(Dialect::Anthropic, ANTHROPIC_TOOL_STREAM);
    let o = openai_calls(&encode(Dialect::OpenAiChat, &events));
    assert_eq!(o, vec![("toolu_01".into(), "get_weather".into(), json!({"city": "Paris"}))]);
    assert_eq!(
        gemini_calls(&encode(Dialect::Gemini, &events)),
        vec![("get_weather".into(), json!({"city": "Paris"}))]
    );
    assert_eq!(anthropic_calls(&encode(Dialect::Anthropic, &events)), o);
}

#[test]
fn gemini_whole_calls_get_ids_and_reach_openai_and_anthropic_clients() {
    let events = decode(Dialect::Gemini, GEMINI_TOOL_STREAM);
    let o = openai_calls(&encode(Dialect::OpenAiChat, &events));
    assert_eq!(o, vec![("call_r1_0".into(), "get_weather".into(), json!({"city": "Paris"}))]);
    assert_eq!(anthropic_calls(&encode(Dialect::Anthropic, &events)), o);
}
