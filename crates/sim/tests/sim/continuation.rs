//! Continuations (a conversation that ends with the answer so far, as a prefill or followed by the instruction to
//! continue) in every dialect, the empty answer when nothing is left, and the simulator that refuses prefill.

use nines_sim::{Fault, Sim, SimOptions};
use serde_json::{Value, json};

use crate::common::*;

const INSTRUCTION: &str = "Your previous reply was cut off. Continue it from exactly where it stopped: do not \
                           repeat any of it and do not add anything before the continuation.";

const PREFILL_REFUSED: &str = "This model does not support assistant message prefill. The conversation must end \
                               with a user message.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum D {
    Anthropic,
    OpenAi,
    Responses,
    Gemini,
}

const ALL: [D; 4] = [D::Anthropic, D::OpenAi, D::Responses, D::Gemini];

/// A request of dialect `d` with these `(role, text)` messages (`assistant` is Gemini's `model`).
fn body(d: D, messages: &[(&str, &str)], stream: bool) -> Value {
    let mut body = match d {
        D::Anthropic => {
            let messages: Vec<Value> =
                messages.iter().map(|(r, t)| json!({"role": r, "content": t})).collect();
            json!({"model": "claude-test", "max_tokens": 100, "messages": messages})
        }
        D::OpenAi => {
            let messages: Vec<Value> =
                messages.iter().map(|(r, t)| json!({"role": r, "content": t})).collect();
            json!({"model": "gpt-test", "messages": messages})
        }
        D::Responses => {
            let input: Vec<Value> = messages.iter().map(|(r, t)| json!({"role": r, "content": t})).collect();
            json!({"model": "gpt-test", "input": input})
        }
        D::Gemini => {
            let contents: Vec<Value> = messages
                .iter()
                .map(|(r, t)| {
                    let role = if *r == "assistant" { "model" } else { r };
                    json!({"role": role, "parts": [{"text": t}]})
                })
                .collect();
            return json!({"contents": contents});
        }
    };
    if stream {
        body["stream"] = json!(true);
    }
    body
}

/// The path of dialect `d` (Gemini's streaming one with `alt=sse`).
fn path(d: D, stream: bool) -> String {
    match d {
        D::Anthropic => ANTHROPIC.into(),
        D::OpenAi => OPENAI.into(),
        D::Responses => RESPONSES.into(),
        D::Gemini if stream => format!("{GEMINI_STREAM}?alt=sse"),
        D::Gemini => GEMINI.into(),
    }
}

async fn send(sim: &Sim, d: D, body: &Value, stream: bool) -> reqwest::Response {
    let mut req = client().post(format!("{}{}", sim.base_url(), path(d, stream))).json(body);
    if d == D::Anthropic {
        req = req.header("anthropic-version", "2023-06-01");
    }
    req.send().await.unwrap()
}

/// A whole (non-streaming) answer: its text, input and output tokens, and why it finished, in the dialect's words.
#[derive(Debug, PartialEq)]
struct Whole {
    text: String,
    input: u64,
    output: u64,
    finish: String,
}

async fn whole(sim: &Sim, d: D, messages: &[(&str, &str)]) -> Whole {
    let resp = send(sim, d, &body(d, messages, false), false).await;
    assert_eq!(resp.status(), 200, "{d:?}");
    let v: Value = resp.json().await.unwrap();
    let n = |v: &Value| v.as_u64().unwrap();
    let s = |v: &Value| v.as_str().unwrap().to_owned();
    match d {
        D::Anthropic => Whole {
            text: v["content"].as_array().unwrap().iter().filter_map(|b| b["text"].as_str()).collect(),
            input: n(&v["usage"]["input_tokens"]),
            output: n(&v["usage"]["output_tokens"]),
            finish: s(&v["stop_reason"]),
        },
        D::OpenAi => Whole {
            text: s(&v["choices"][0]["message"]["content"]),
            input: n(&v["usage"]["prompt_tokens"]),
            output: n(&v["usage"]["completion_tokens"]),
            finish: s(&v["choices"][0]["finish_reason"]),
        },
        D::Responses => Whole {
            text: s(&v["output"][0]["content"][0]["text"]),
            input: n(&v["usage"]["input_tokens"]),
            output: n(&v["usage"]["output_tokens"]),
            finish: s(&v["status"]),
        },
        D::Gemini => Whole {
            text: s(&v["candidates"][0]["content"]["parts"][0]["text"]),
            input: n(&v["usageMetadata"]["promptTokenCount"]),
            output: n(&v["usageMetadata"]["candidatesTokenCount"]),
            finish: s(&v["candidates"][0]["finishReason"]),
        },
    }
}

/// The text deltas of a streamed answer, and all its events.
async fn streamed(sim: &Sim, d: D, messages: &[(&str, &str)]) -> (Vec<String>, Vec<Event>) {
    let resp = send(sim, d, &body(d, messages, true), true).await;
    assert_eq!(resp.status(), 200, "{d:?}");
    let events = parse_sse(&resp.text().await.unwrap());
    let deltas = events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .flat_map(|e| {
            let v = e.json();
            match d {
                D::Anthropic if v["type"] == "content_block_delta" => vec![v["delta"]["text"].clone()],
                D::OpenAi => vec![v["choices"][0]["delta"]["content"].clone()],
                D::Responses if v["type"] == "response.output_text.delta" => vec![v["delta"].clone()],
                D::Gemini => v["candidates"][0]["content"]["parts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["text"].clone())
                    .collect(),
                _ => Vec::new(),
            }
        })
        .filter_map(|t| t.as_str().filter(|t| !t.is_empty()).map(str::to_owned))
        .collect();
    (deltas, events)
}

const USER: &str = "one two three four five";

#[tokio::test]
async fn a_prefill_is_continued_in_every_dialect() {
    let sim = sim_with(SimOptions::new("beta")).await;
    let conversation = [("user", USER), ("assistant", "alpha says: one two")];
    for d in ALL {
        let (deltas, _) = streamed(&sim, d, &conversation).await;
        assert_eq!(deltas, [" three", " four", " five"], "{d:?}: one delta per word, the leading space kept");
        let got = whole(&sim, d, &conversation).await;
        assert_eq!(got.text, " three four five", "{d:?}");
        // Input: every word of the request (5 + 4); output: the words answered.
        assert_eq!((got.input, got.output), (9, 3), "{d:?}");
    }
}

#[tokio::test]
async fn the_instruction_form_is_continued_the_same_way() {
    let sim = sim_with(SimOptions::new("beta")).await;
    let conversation = [("user", USER), ("assistant", "alpha says: one two"), ("user", INSTRUCTION)];
    let instruction_words = u64::try_from(INSTRUCTION.split_whitespace().count()).unwrap();
    for d in ALL {
        let (deltas, _) = streamed(&sim, d, &conversation).await;
        assert_eq!(deltas.concat(), " three four five", "{d:?}");
        let got = whole(&sim, d, &conversation).await;
        assert_eq!(got.text, " three four five", "{d:?}");
        assert_eq!((got.input, got.output), (9 + instruction_words, 3), "{d:?}");
    }
}

#[tokio::test]
async fn nothing_left_to_say_is_an_empty_answer_that_ends_naturally() {
    let sim = sim_with(SimOptions::new("beta")).await;
    // The answer ("beta says: one two three four five") has 7 words; the prefill has as many, then more.
    for prefill in ["alpha says: one two three four five", "alpha says: one two three four five and more"] {
        let conversation = [("user", USER), ("assistant", prefill)];
        for d in ALL {
            let got = whole(&sim, d, &conversation).await;
            let finish = match d {
                D::Anthropic => "end_turn",
                D::OpenAi => "stop",
                D::Responses => "completed",
                D::Gemini => "STOP",
            };
            assert_eq!((got.text.as_str(), got.output, got.finish.as_str()), ("", 0, finish), "{d:?}");
            let (deltas, events) = streamed(&sim, d, &conversation).await;
            assert!(deltas.is_empty(), "{d:?}: {deltas:?}");
            let last = events.iter().rev().find(|e| e.data != "[DONE]").unwrap().json();
            match d {
                D::Anthropic => {
                    // The API's immediate end of turn: no content block at all.
                    let names: Vec<&str> = events.iter().map(|e| e.name.as_deref().unwrap()).collect();
                    assert_eq!(names, ["message_start", "ping", "message_delta", "message_stop"]);
                    assert_eq!(events[2].json()["delta"]["stop_reason"], "end_turn");
                }
                D::OpenAi => {
                    assert_eq!(events[events.len() - 2].json()["choices"][0]["finish_reason"], "stop")
                }
                D::Responses => {
                    assert_eq!(last["type"], "response.completed");
                    assert_eq!(last["response"]["output"][0]["content"][0]["text"], "");
                }
                D::Gemini => {
                    assert_eq!(events.len(), 1);
                    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
                }
            }
        }
    }
    // Non-streaming Anthropic: `content: []`.
    let resp = send(
        &sim,
        D::Anthropic,
        &body(D::Anthropic, &[("user", USER), ("assistant", "a b c d e f g")], false),
        false,
    )
    .await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["content"], json!([]));
}

#[tokio::test]
async fn stop_sequences_and_max_tokens_cut_what_is_answered() {
    let sim = sim_with(SimOptions::new("beta")).await;
    let mut req = body(D::Anthropic, &[("user", USER), ("assistant", "alpha says: one")], false);
    req["max_tokens"] = json!(2);
    let v: Value = send(&sim, D::Anthropic, &req, false).await.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], " two three");
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["usage"]["output_tokens"], 2);

    let mut req = body(D::OpenAi, &[("user", USER), ("assistant", "alpha says: one")], false);
    req["stop"] = json!("four");
    let v: Value = send(&sim, D::OpenAi, &req, false).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], " two three ");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn a_continuation_keeps_system_images_and_tool_results_of_the_original_conversation() {
    let sim = sim_with(SimOptions::new("beta")).await;
    // System text is part of the answer, so of its continuation.
    let mut req =
        body(D::OpenAi, &[("system", "be brief"), ("user", USER), ("assistant", "x x x x x x")], false);
    let v: Value = send(&sim, D::OpenAi, &req, false).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], " five [system: be brief]");

    // After tool results: the answer about them is continued.
    req = json!({"model": "claude-test", "max_tokens": 100, "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]},
        {"role": "assistant", "content": "first says: tool"},
    ]});
    let v: Value = send(&sim, D::Anthropic, &req, false).await.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], " said: sunny");

    // Images of the last user message.
    req = json!({"contents": [
        {"role": "user", "parts": [{"text": "look"}, {"inlineData": {"mimeType": "image/png", "data": "aGk="}}]},
        {"role": "model", "parts": [{"text": "alpha says: look"}]},
        {"role": "user", "parts": [{"text": INSTRUCTION}]},
    ]});
    let v: Value = send(&sim, D::Gemini, &req, false).await.json().await.unwrap();
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["text"], " [images: 1]");
}

#[tokio::test]
async fn a_continuation_never_calls_tools() {
    let sim = sim_with(SimOptions::new("beta")).await;
    let mut req = body(D::OpenAi, &[("user", USER), ("assistant", "alpha says: one two")], false);
    req["tools"] = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    let v: Value = send(&sim, D::OpenAi, &req, false).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], " three four five");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // Without the prefill, the same offer is answered with a call.
    let mut req = body(D::OpenAi, &[("user", USER)], false);
    req["tools"] = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    let v: Value = send(&sim, D::OpenAi, &req, false).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn other_shapes_are_answered_as_before() {
    let sim = sim_with(SimOptions::new("beta")).await;
    // A user message after the assistant that is not the instruction: a new turn.
    let got =
        whole(&sim, D::OpenAi, &[("user", USER), ("assistant", "alpha says: one"), ("user", "go on")]).await;
    assert_eq!(got.text, "beta says: go on");
    // An assistant message with only whitespace is no answer so far.
    let got = whole(&sim, D::OpenAi, &[("user", USER), ("assistant", "   ")]).await;
    assert_eq!(got.text, "beta says: one two three four five");
    // An assistant message with tool calls is not continued.
    let req = json!({"model": "gpt-test", "messages": [
        {"role": "user", "content": USER},
        {"role": "assistant", "content": "let me check", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
    ]});
    let v: Value = send(&sim, D::OpenAi, &req, false).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "beta says: tool said: done");
}

#[tokio::test]
async fn a_simulator_that_refuses_prefill_refuses_only_a_final_assistant_message() {
    let sim = sim_with(SimOptions::new("beta")).await;
    assert!(!sim.refuses_prefill());
    sim.set_refuse_prefill(true);
    assert!(sim.refuses_prefill());
    let prefill = [("user", USER), ("assistant", "alpha says: one two")];
    for d in ALL {
        for stream in [false, true] {
            let resp = send(&sim, d, &body(d, &prefill, stream), stream).await;
            assert_eq!(resp.status(), 400, "{d:?}");
            let err: Value = resp.json().await.unwrap();
            match d {
                D::Anthropic => {
                    assert_eq!(err["type"], "error");
                    assert_eq!(
                        err["error"],
                        json!({"type": "invalid_request_error", "message": PREFILL_REFUSED})
                    );
                }
                D::OpenAi | D::Responses => assert_eq!(
                    err,
                    json!({"error": {"message": PREFILL_REFUSED, "type": "invalid_request_error", "param": null,
                                     "code": null}})
                ),
                D::Gemini => assert_eq!(
                    err,
                    json!({"error": {"code": 400, "message": PREFILL_REFUSED, "status": "INVALID_ARGUMENT"}})
                ),
            }
        }
        // The instruction form ends with a user message: accepted.
        let got =
            whole(&sim, d, &[("user", USER), ("assistant", "alpha says: one two"), ("user", INSTRUCTION)])
                .await;
        assert_eq!(got.text, " three four five", "{d:?}");
    }
    assert_eq!(sim.total_hits(), 12, "refused requests are hits like any other");

    // Any final assistant message is refused, even an empty one (Anthropic's optional final assistant message).
    let resp =
        send(&sim, D::Anthropic, &body(D::Anthropic, &[("user", USER), ("assistant", "")], false), false)
            .await;
    assert_eq!(resp.status(), 400);

    // A malformed request gets its own error first.
    let resp =
        send(&sim, D::OpenAi, &json!({"model": "m", "messages": [{"role": "assistant"}]}), false).await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_ne!(err["error"]["message"], PREFILL_REFUSED);

    sim.set_refuse_prefill(false);
    assert_eq!(whole(&sim, D::Gemini, &prefill).await.text, " three four five");
    sim.set_refuse_prefill(true);
    sim.reset();
    assert!(!sim.refuses_prefill(), "reset turns the refusal off");
}

async fn shown(url: &str) -> Value {
    client().get(url).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn the_refusal_is_switched_over_the_control_api() {
    let sim = sim_with(SimOptions::new("beta")).await;
    let url = format!("{}/_sim/refuse_prefill", sim.base_url());
    assert_eq!(shown(&url).await, json!({"refuse": false}));
    let resp = client().post(&url).json(&json!({"refuse": true})).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(shown(&url).await, json!({"refuse": true}));
    assert!(sim.refuses_prefill());
    let resp =
        send(&sim, D::OpenAi, &body(D::OpenAi, &[("user", USER), ("assistant", "a")], false), false).await;
    assert_eq!(resp.status(), 400);

    for bad in [json!({}), json!({"refuse": "yes"}), json!({"refuse": true, "extra": 1})] {
        let resp = client().post(&url).json(&bad).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
    let resp = client().post(&url).json(&json!({"refuse": false})).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert!(!sim.refuses_prefill());
    assert_eq!(sim.total_hits(), 1, "control requests are not hits");
}

#[tokio::test]
async fn a_repeat_fault_makes_a_continuation_repeat_the_end_of_the_prefill() {
    let sim = sim_with(SimOptions::new("beta")).await;
    let conversation = [("user", USER), ("assistant", "alpha says: one two")];
    for d in ALL {
        sim.push_fault(Fault::repeat(2));
        let (deltas, _) = streamed(&sim, d, &conversation).await;
        assert_eq!(deltas, [" one", " two", " three", " four", " five"], "{d:?}");
    }
    sim.push_fault(Fault::repeat(2));
    let got = whole(&sim, D::Responses, &conversation).await;
    assert_eq!((got.text.as_str(), got.output), (" one two three four five", 5));

    // More words than the prefill has: all of it, from its start.
    sim.push_fault(Fault::repeat(50));
    let got = whole(&sim, D::Anthropic, &conversation).await;
    assert_eq!(got.text, "alpha says: one two three four five");

    // Not a continuation: answered as usual, and the fault is used up.
    sim.push_fault(Fault::repeat(2));
    assert_eq!(whole(&sim, D::OpenAi, &[("user", USER)]).await.text, "beta says: one two three four five");
    assert!(
        client()
            .get(format!("{}/_sim/faults", sim.base_url()))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(whole(&sim, D::OpenAi, &conversation).await.text, " three four five");
}
