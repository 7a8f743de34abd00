//! Tool calls: when tools are offered and the last message is user text, every dialect answers with the same
//! calls (same tools, same arguments in schema order), plain and streaming, in its own wire shape.

use serde_json::{Value, json};

use crate::common::*;

/// The arguments every dialect sends for `weather` when the last user text is `text`.
fn weather_args(text: &str) -> String {
    format!(r#"{{"city":"{text}","days":7,"scale":1.5,"metric":true}}"#)
}

/// A JSON schema whose properties are deliberately not in alphabetical order; `tags` (an array) and `any` (no type)
/// are left out of the arguments.
fn weather_schema() -> Value {
    serde_json::from_str(
        r#"{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"},
            "scale":{"type":["number","null"]},"metric":{"type":"boolean"},"tags":{"type":"array"},"any":{}},
            "required":["city"]}"#,
    )
    .unwrap()
}

fn time_schema() -> Value {
    json!({"type": "object", "properties": {"zone": {"type": "string"}}})
}

fn anthropic_tools(text: &str) -> Value {
    let mut body = anthropic_body(text);
    body["tools"] = json!([
        {"name": "weather", "description": "Weather for a city", "input_schema": weather_schema()},
        {"name": "time", "input_schema": time_schema()},
        {"type": "web_search_20250305", "name": "web_search"}
    ]);
    body
}

fn openai_tools(text: &str) -> Value {
    let mut body = openai_body(text);
    body["tools"] = json!([
        {"type": "function", "function": {"name": "weather", "parameters": weather_schema()}},
        {"type": "function", "function": {"name": "time", "parameters": time_schema()}}
    ]);
    body
}

fn gemini_tools(text: &str) -> Value {
    let mut body = gemini_body(text);
    body["tools"] = json!([
        {"functionDeclarations": [{"name": "weather", "parametersJsonSchema": weather_schema()}]},
        {"function_declarations": [{"name": "time", "parameters": {"type": "OBJECT", "properties": {"zone": {"type": "STRING"}}}}]},
        {"googleSearch": {}}
    ]);
    body
}

/// POST raw JSON text (to keep the schema's property order exactly as written).
async fn post_raw(sim: &nines_sim::Sim, path: &str, body: &Value, anthropic: bool) -> reqwest::Response {
    let mut req = client()
        .post(format!("{}{path}", sim.base_url()))
        .header("content-type", "application/json")
        .body(raw_json(body));
    if anthropic {
        req = req.header("anthropic-version", "2023-06-01");
    }
    req.send().await.unwrap()
}

/// Serialize `body` with the weather schema's properties in their written order (serde_json sorts keys).
fn raw_json(body: &Value) -> String {
    let sorted = r#"{"any":{},"city":{"type":"string"},"days":{"type":"integer"},"metric":{"type":"boolean"},"scale":{"type":["number","null"]},"tags":{"type":"array"}}"#;
    let written = r#"{"city":{"type":"string"},"days":{"type":"integer"},"scale":{"type":["number","null"]},"metric":{"type":"boolean"},"tags":{"type":"array"},"any":{}}"#;
    let text = body.to_string();
    assert!(text.contains(sorted), "{text}");
    text.replace(sorted, written)
}

#[tokio::test]
async fn anthropic_answers_with_a_tool_use_block() {
    let sim = sim().await;
    let resp = post_raw(&sim, ANTHROPIC, &anthropic_tools("weather in Paris?"), true).await;
    assert_eq!(resp.status(), 200);
    let mut got: Value = resp.json().await.unwrap();
    got["id"] = json!("ID");
    assert_eq!(
        got,
        json!({
            "id": "ID",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": [{
                "type": "tool_use",
                "id": "toolu_sim_alpha_0",
                "name": "weather",
                "input": {"city": "weather in Paris?", "days": 7, "scale": 1.5, "metric": true}
            }],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {
                "input_tokens": 3,
                "output_tokens": 3,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0
            }
        })
    );
}

#[tokio::test]
async fn anthropic_choice_and_parallel() {
    let sim = sim().await;
    let names = |got: &Value| -> Vec<(String, String)> {
        got["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| (b["id"].as_str().unwrap_or("").to_owned(), b["name"].as_str().unwrap_or("").to_owned()))
            .collect()
    };
    let body = anthropic_tools("both in parallel please");
    let got: Value = post_anthropic(&sim, &body).await.json().await.unwrap();
    assert_eq!(
        names(&got),
        [("toolu_sim_alpha_0".into(), "weather".into()), ("toolu_sim_alpha_1".into(), "time".into())]
    );
    assert_eq!(got["content"][1]["input"], json!({"zone": "both in parallel please"}));

    let mut one = body.clone();
    one["tool_choice"] = json!({"type": "auto", "disable_parallel_tool_use": true});
    let got: Value = post_anthropic(&sim, &one).await.json().await.unwrap();
    assert_eq!(names(&got), [("toolu_sim_alpha_0".into(), "weather".into())]);

    let mut named = body.clone();
    named["tool_choice"] = json!({"type": "tool", "name": "time"});
    let got: Value = post_anthropic(&sim, &named).await.json().await.unwrap();
    assert_eq!(names(&got), [("toolu_sim_alpha_0".into(), "time".into())]);

    let mut any = anthropic_tools("go");
    any["tool_choice"] = json!({"type": "any"});
    let got: Value = post_anthropic(&sim, &any).await.json().await.unwrap();
    assert_eq!(names(&got), [("toolu_sim_alpha_0".into(), "weather".into())]);

    let mut none = body.clone();
    none["tool_choice"] = json!({"type": "none"});
    let got: Value = post_anthropic(&sim, &none).await.json().await.unwrap();
    assert_eq!(got["content"], json!([{"type": "text", "text": "alpha says: both in parallel please"}]));
    assert_eq!(got["stop_reason"], "end_turn");

    // A prefilled assistant turn gets text, not calls.
    let mut prefill = anthropic_tools("go");
    prefill["messages"].as_array_mut().unwrap().push(json!({"role": "assistant", "content": "Sure"}));
    let got: Value = post_anthropic(&sim, &prefill).await.json().await.unwrap();
    assert_eq!(got["content"][0]["type"], "text");
}

#[tokio::test]
async fn anthropic_refuses_bad_tool_setups() {
    let sim = sim().await;
    let cases = [
        (json!({"type": "tool", "name": "nope"}), "tool_choice.tool.name: `nope` does not match"),
        (
            json!({"type": "auto", "disable_parallel_tool_use": "yes"}),
            "disable_parallel_tool_use: Input should be a valid boolean",
        ),
    ];
    for (choice, needle) in cases {
        let mut body = anthropic_tools("hi");
        body["tool_choice"] = choice;
        let resp = post_anthropic(&sim, &body).await;
        assert_eq!(resp.status(), 400);
        let err: Value = resp.json().await.unwrap();
        assert!(err["error"]["message"].as_str().unwrap().contains(needle), "{err}");
    }
    let mut body = anthropic_tools("hi");
    body["tools"][1]["name"] = json!("weather");
    let err: Value = post_anthropic(&sim, &body).await.json().await.unwrap();
    assert_eq!(err["error"]["message"], "tools: Tool names must be unique.");
    body["tools"][1]["name"] = json!("bad name");
    let err: Value = post_anthropic(&sim, &body).await.json().await.unwrap();
    assert_eq!(
        err["error"]["message"],
        "tools.1.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'"
    );
}

#[tokio::test]
async fn anthropic_streams_tool_use_blocks() {
    let sim = sim().await;
    let mut body = anthropic_tools("weather in parallel");
    body["stream"] = json!(true);
    let events = parse_sse(&post_raw(&sim, ANTHROPIC, &body, true).await.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|e| e.name.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        events[1].json(),
        json!({"type": "content_block_start", "index": 0, "content_block":
            {"type": "tool_use", "id": "toolu_sim_alpha_0", "name": "weather", "input": {}}})
    );
    assert_eq!(
        events[7].json(),
        json!({"type": "content_block_start", "index": 1, "content_block":
            {"type": "tool_use", "id": "toolu_sim_alpha_1", "name": "time", "input": {}}})
    );
    let pieces = |range: std::ops::Range<usize>, index: u64| -> Vec<String> {
        events[range]
            .iter()
            .map(|e| {
                let d = e.json();
                assert_eq!(d["index"], index);
                assert_eq!(d["delta"]["type"], "input_json_delta");
                d["delta"]["partial_json"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let first = pieces(3..6, 0);
    assert_eq!(first.concat(), weather_args("weather in parallel"));
    let lengths: Vec<usize> = first.iter().map(|p| p.chars().count()).collect();
    assert!(lengths.iter().max().unwrap() - lengths.iter().min().unwrap() <= 1, "{lengths:?}");
    assert_eq!(pieces(8..11, 1).concat(), r#"{"zone":"weather in parallel"}"#);
    assert_eq!(events[6].json(), json!({"type": "content_block_stop", "index": 0}));
    assert_eq!(events[11].json(), json!({"type": "content_block_stop", "index": 1}));
    assert_eq!(
        events[12].json(),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
               "usage": {"output_tokens": 3 + 3}})
    );
}

#[tokio::test]
async fn openai_answers_with_tool_calls() {
    let sim = sim().await;
    let resp = post_raw(&sim, OPENAI, &openai_tools("weather in Paris?"), false).await;
    assert_eq!(resp.status(), 200);
    let got: Value = resp.json().await.unwrap();
    assert_eq!(
        got["choices"],
        json!([{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": "call_sim_alpha_0",
                    "type": "function",
                    "function": {"name": "weather", "arguments": weather_args("weather in Paris?")}
                }],
                "refusal": null,
                "annotations": []
            },
            "logprobs": null,
            "finish_reason": "tool_calls"
        }])
    );
    assert_eq!(got["usage"]["prompt_tokens"], 3);
    assert_eq!(got["usage"]["completion_tokens"], 3);
    assert_eq!(got["usage"]["total_tokens"], 6);
}

#[tokio::test]
async fn openai_choice_and_parallel() {
    let sim = sim().await;
    let calls = |got: &Value| -> Vec<(String, String)> {
        got["choices"][0]["message"]["tool_calls"]
            .as_array()
            .map(|calls| {
                calls
                    .iter()
                    .map(|c| {
                        (
                            c["id"].as_str().unwrap().to_owned(),
                            c["function"]["name"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let body = openai_tools("both in parallel");
    let got: Value = post(&sim, OPENAI, &body).await.json().await.unwrap();
    assert_eq!(
        calls(&got),
        [("call_sim_alpha_0".into(), "weather".into()), ("call_sim_alpha_1".into(), "time".into())]
    );

    let mut one = body.clone();
    one["parallel_tool_calls"] = json!(false);
    let got: Value = post(&sim, OPENAI, &one).await.json().await.unwrap();
    assert_eq!(calls(&got), [("call_sim_alpha_0".into(), "weather".into())]);

    let mut named = body.clone();
    named["tool_choice"] = json!({"type": "function", "function": {"name": "time"}});
    let got: Value = post(&sim, OPENAI, &named).await.json().await.unwrap();
    assert_eq!(calls(&got), [("call_sim_alpha_0".into(), "time".into())]);

    let mut allowed = body.clone();
    allowed["tool_choice"] = json!({"type": "allowed_tools", "allowed_tools": {"mode": "required",
        "tools": [{"type": "function", "function": {"name": "time"}}]}});
    let got: Value = post(&sim, OPENAI, &allowed).await.json().await.unwrap();
    assert_eq!(calls(&got), [("call_sim_alpha_0".into(), "time".into())]);

    let mut required = openai_tools("go");
    required["tool_choice"] = json!("required");
    let got: Value = post(&sim, OPENAI, &required).await.json().await.unwrap();
    assert_eq!(calls(&got), [("call_sim_alpha_0".into(), "weather".into())]);

    let mut none = body.clone();
    none["tool_choice"] = json!("none");
    let got: Value = post(&sim, OPENAI, &none).await.json().await.unwrap();
    assert_eq!(got["choices"][0]["message"]["content"], "alpha says: both in parallel");
    assert_eq!(got["choices"][0]["finish_reason"], "stop");

    let mut unknown = body.clone();
    unknown["tool_choice"] = json!({"type": "function", "function": {"name": "nope"}});
    let resp = post(&sim, OPENAI, &unknown).await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["param"], "tool_choice");
    let mut bad = body;
    bad["parallel_tool_calls"] = json!("no");
    let err: Value = post(&sim, OPENAI, &bad).await.json().await.unwrap();
    assert_eq!(err["error"]["code"], "invalid_type");
}

#[tokio::test]
async fn openai_streams_tool_calls() {
    let sim = sim().await;
    let mut body = openai_tools("weather in parallel");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let events = parse_sse(&post_raw(&sim, OPENAI, &body, false).await.text().await.unwrap());
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| e.json()).collect();
    // head + 3 pieces per call, finish, usage
    assert_eq!(chunks.len(), 4 + 4 + 1 + 1);
    let delta = |i: usize| chunks[i]["choices"][0]["delta"].clone();
    assert_eq!(
        delta(0),
        json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": [{
            "index": 0, "id": "call_sim_alpha_0", "type": "function",
            "function": {"name": "weather", "arguments": ""}}]})
    );
    assert_eq!(
        delta(4),
        json!({"tool_calls": [{"index": 1, "id": "call_sim_alpha_1", "type": "function",
            "function": {"name": "time", "arguments": ""}}]})
    );
    let arguments = |range: std::ops::Range<usize>, index: u64| -> String {
        range
            .map(|i| {
                let d = delta(i);
                assert_eq!(d["tool_calls"][0]["index"], index);
                assert_eq!(d["tool_calls"][0].as_object().unwrap().len(), 2, "only index and function");
                d["tool_calls"][0]["function"]["arguments"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    assert_eq!(arguments(1..4, 0), weather_args("weather in parallel"));
    assert_eq!(arguments(5..8, 1), r#"{"zone":"weather in parallel"}"#);
    for c in &chunks[..8] {
        assert_eq!(c["choices"][0]["finish_reason"], Value::Null);
    }
    assert_eq!(delta(8), json!({}));
    assert_eq!(chunks[8]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks[9]["choices"], json!([]));
    assert_eq!(chunks[9]["usage"]["completion_tokens"], 3 + 3);
}

#[tokio::test]
async fn gemini_answers_with_function_calls() {
    let sim = sim().await;
    let resp = post_raw(&sim, GEMINI, &gemini_tools("weather in Paris?"), false).await;
    assert_eq!(resp.status(), 200);
    let mut got: Value = resp.json().await.unwrap();
    got["responseId"] = json!("ID");
    assert_eq!(
        got,
        json!({
            "candidates": [{
                "content": {"parts": [{"functionCall": {"name": "weather",
                    "args": {"city": "weather in Paris?", "days": 7, "scale": 1.5, "metric": true}}}], "role": "model"},
                "finishReason": "STOP",
                "index": 0
            }],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 3, "totalTokenCount": 6},
            "modelVersion": "gemini-test",
            "responseId": "ID"
        })
    );

    let got: Value = post(&sim, GEMINI, &gemini_tools("both in parallel")).await.json().await.unwrap();
    let parts = &got["candidates"][0]["content"]["parts"];
    assert_eq!(parts.as_array().unwrap().len(), 2);
    assert_eq!(parts[1], json!({"functionCall": {"name": "time", "args": {"zone": "both in parallel"}}}));

    let mut only = gemini_tools("both in parallel");
    only["toolConfig"] = json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["time"]}});
    let got: Value = post(&sim, GEMINI, &only).await.json().await.unwrap();
    assert_eq!(
        got["candidates"][0]["content"]["parts"],
        json!([{"functionCall": {"name": "time", "args": {"zone": "both in parallel"}}}])
    );

    let mut none = gemini_tools("both in parallel");
    none["tool_config"] = json!({"function_calling_config": {"mode": "NONE"}});
    let got: Value = post(&sim, GEMINI, &none).await.json().await.unwrap();
    assert_eq!(got["candidates"][0]["content"]["parts"], json!([{"text": "alpha says: both in parallel"}]));

    for (config, needle) in [
        (json!({"functionCallingConfig": {"mode": "SOMETIMES"}}), "function_calling_config.mode"),
        (
            json!({"functionCallingConfig": {"mode": "AUTO", "allowedFunctionNames": ["time"]}}),
            "only be set when the mode is ANY",
        ),
        (
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["nope"]}}),
            "'nope' is not declared",
        ),
    ] {
        let mut body = gemini_tools("hi");
        body["toolConfig"] = config;
        let resp = post(&sim, GEMINI, &body).await;
        assert_eq!(resp.status(), 400);
        let err: Value = resp.json().await.unwrap();
        assert!(err["error"]["message"].as_str().unwrap().contains(needle), "{err}");
    }
}

#[tokio::test]
async fn gemini_streams_one_chunk_per_call() {
    let sim = sim().await;
    let url = format!("{}{GEMINI_STREAM}?alt=sse", sim.base_url());
    let resp = client().post(url).json(&gemini_tools("both in parallel")).send().await.unwrap();
    let events = parse_sse(&resp.text().await.unwrap());
    assert_eq!(events.len(), 2);
    let first = events[0].json();
    assert_eq!(first["candidates"][0]["content"]["parts"][0]["functionCall"]["name"], "weather");
    assert!(first["candidates"][0].get("finishReason").is_none());
    assert!(first.get("usageMetadata").is_none());
    let last = events[1].json();
    assert_eq!(
        last["candidates"][0]["content"],
        json!({"parts": [{"functionCall": {"name": "time", "args": {"zone": "both in parallel"}}}], "role": "model"})
    );
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 3 + 3);
}

/// The same request, translated into each dialect, gets the same calls with the same arguments.
#[tokio::test]
async fn the_three_dialects_agree() {
    let sim = sim().await;
    let text = "weather and time in parallel";
    let a: Value = post_raw(&sim, ANTHROPIC, &anthropic_tools(text), true).await.json().await.unwrap();
    let o: Value = post_raw(&sim, OPENAI, &openai_tools(text), false).await.json().await.unwrap();
    let g: Value = post_raw(&sim, GEMINI, &gemini_tools(text), false).await.json().await.unwrap();
    let from_anthropic: Vec<(Value, Value)> =
        a["content"].as_array().unwrap().iter().map(|b| (b["name"].clone(), b["input"].clone())).collect();
    let from_openai: Vec<(Value, Value)> = o["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let args: Value = serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap();
            (c["function"]["name"].clone(), args)
        })
        .collect();
    let from_gemini: Vec<(Value, Value)> = g["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["functionCall"]["name"].clone(), p["functionCall"]["args"].clone()))
        .collect();
    assert_eq!(from_anthropic.len(), 2);
    assert_eq!(from_anthropic, from_openai);
    assert_eq!(from_anthropic, from_gemini);
    assert_eq!(a["usage"]["output_tokens"], o["usage"]["completion_tokens"]);
    assert_eq!(a["usage"]["output_tokens"], g["usageMetadata"]["candidatesTokenCount"]);
}
