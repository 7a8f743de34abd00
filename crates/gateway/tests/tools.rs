//! The tool loop end to end: a client asks, the model calls a tool, the client sends the result, the model answers.
//! Through both front doors, to every provider kind (as the fallback of a route whose first target is down),
//! plain and streaming, with ids and arguments intact across the translation.

#![allow(clippy::unwrap_used, clippy::panic)] // test code: failing loudly is its job

mod common;

use common::{Harness, Reply, p};
use nines_sim::FaultKind;
use serde_json::{Value, json};

const QUESTION: &str = "weather in Paris?";

fn weather_schema() -> Value {
    json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
}

/// (id, name, arguments) of the tool calls in an answer, whatever the door and streaming.
fn tool_calls(door: &str, r: &Reply) -> Vec<(String, String, Value)> {
    let streaming = r.header("content-type").starts_with("text/event-stream");
    match (door, streaming) {
        ("openai", false) => r.json()["choices"][0]["message"]["tool_calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let args = serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap();
                (c["id"].as_str().unwrap().into(), c["function"]["name"].as_str().unwrap().into(), args)
            })
            .collect(),
        ("openai", true) => {
            let mut calls: Vec<(String, String, String)> = Vec::new();
            for f in r.frames().into_iter().filter(|f| f.data != "[DONE]") {
                let c: Value = serde_json::from_str(&f.data).unwrap();
                for tc in c["choices"][0]["delta"]["tool_calls"].as_array().into_iter().flatten() {
                    let i = tc["index"].as_u64().unwrap() as usize;
                    if calls.len() <= i {
                        calls.resize(i + 1, Default::default());
                    }
                    if let Some(id) = tc["id"].as_str() {
                        calls[i].0 = id.into();
                    }
                    if let Some(n) = tc["function"]["name"].as_str() {
                        calls[i].1 = n.into();
                    }
                    calls[i].2.push_str(tc["function"]["arguments"].as_str().unwrap_or_default());
                }
            }
            calls.into_iter().map(|(id, n, a)| (id, n, serde_json::from_str(&a).unwrap())).collect()
        }
        (_, false) => r.json()["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "tool_use")
            .map(|b| {
                (b["id"].as_str().unwrap().into(), b["name"].as_str().unwrap().into(), b["input"].clone())
            })
            .collect(),
        (_, true) => {
            let mut calls: Vec<(String, String, String)> = Vec::new();
            for f in r.frames() {
                let v: Value = serde_json::from_str(&f.data).unwrap();
                if f.event == "content_block_start" && v["content_block"]["type"] == "tool_use" {
                    let b = &v["content_block"];
                    calls.push((
                        b["id"].as_str().unwrap().into(),
                        b["name"].as_str().unwrap().into(),
                        String::new(),
                    ));
                }
                if f.event == "content_block_delta" && v["delta"]["type"] == "input_json_delta" {
                    calls.last_mut().unwrap().2.push_str(v["delta"]["partial_json"].as_str().unwrap());
                }
            }
            calls.into_iter().map(|(id, n, a)| (id, n, serde_json::from_str(&a).unwrap())).collect()
        }
    }
}

fn first_request(door: &str, stream: bool) -> (&'static str, Value) {
    match door {
        "openai" => {
            let mut b = json!({"model": "chat", "stream": stream,
                "messages": [{"role": "user", "content": QUESTION}],
                "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": weather_schema()}}]});
            if stream {
                b["stream_options"] = json!({"include_usage": true});
            }
            ("/v1/chat/completions", b)
        }
        _ => (
            "/v1/messages",
            json!({"model": "chat", "max_tokens": 200, "stream": stream,
                "messages": [{"role": "user", "content": QUESTION}],
                "tools": [{"name": "get_weather", "input_schema": weather_schema()}]}),
        ),
    }
}

/// The conversation continued with the call and its result.
fn second_request(door: &str, stream: bool, call: &(String, String, Value)) -> (&'static str, Value) {
    let (path, mut b) = first_request(door, stream);
    let (id, name, args) = call;
    let turns = match door {
        "openai" => json!([
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function",
                "function": {"name": name, "arguments": args.to_string()}}]},
            {"role": "tool", "tool_call_id": id, "content": "18C and sunny"}]),
        _ => json!([
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": [{"type": "tool_use", "id": id, "name": name, "input": args}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": "18C and sunny"}]}]),
    };
    b["messages"] = turns;
    (path, b)
}

#[tokio::test]
async fn the_tool_loop_survives_a_failover_to_every_provider_kind() {
    for fallback in ["anthropic", "openai", "gemini"] {
        for door in ["openai", "anthropic"] {
            // The first target speaks the door's own dialect and is down; the fallback may speak another.
            let h = Harness::new(&[p("first", door, "m1"), p("second", fallback, "m2")]).await;
            for stream in [false, true] {
                let ctx = format!("door={door} fallback={fallback} stream={stream}");
                h.fault(0, FaultKind::Status { status: 503, retry_after: None }, 2);
                let (path, body) = first_request(door, stream);
                let r = h.post(path, body).await;
                assert_eq!(r.status, 200, "{ctx}: {}", r.text);
                assert_eq!(r.header("x-nines-target"), "second/m2", "{ctx}");
                let calls = tool_calls(door, &r);
                assert_eq!(calls.len(), 1, "{ctx}: {}", r.text);
                assert_eq!(calls[0].1, "get_weather", "{ctx}");
                assert_eq!(calls[0].2, json!({"city": QUESTION}), "{ctx}: arguments intact");
                assert!(!calls[0].0.is_empty(), "{ctx}: the call has an id");
                let stop_ok = if door == "openai" {
                    r.text.contains("\"tool_calls\"")
                } else {
                    r.text.contains("\"tool_use\"")
                };
                assert!(stop_ok, "{ctx}: stop reason says tool use: {}", r.text);

                let (path, body) = second_request(door, stream, &calls[0]);
                let r = h.post(path, body).await;
                assert_eq!(r.status, 200, "{ctx}: {}", r.text);
                assert_eq!(r.answer_text(), "second says: tool said: 18C and sunny", "{ctx}");
                h.sims[0].reset();
                h.sims[1].reset();
            }
        }
    }
}
