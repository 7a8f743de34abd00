//! Unit tests of the Responses dialect: validation, the Response object and the event stream, without HTTP.

use serde_json::{Value, json};

use super::request::{self, Request};
use super::response::Rendered;
use crate::answer;
use crate::error::ApiError;

fn validate(body: &Value) -> Result<Request, ApiError> {
    request::validate(body, body.to_string().as_bytes(), "alpha")
}

/// The non-streaming Response for `body`.
fn respond(body: &Value) -> Value {
    let request = validate(body).unwrap();
    let outcome = answer::respond("alpha", &request.prompt);
    Rendered::new("alpha", &request, outcome).response()
}

/// The stream for `body`: (event name, data) pairs.
fn stream(body: &Value) -> Vec<(String, Value)> {
    let request = validate(body).unwrap();
    let outcome = answer::respond("alpha", &request.prompt);
    Rendered::new("alpha", &request, outcome)
        .stream()
        .iter()
        .map(|event| {
            let (name, data) = event
                .strip_prefix("event: ")
                .and_then(|e| e.strip_suffix("\n\n"))
                .and_then(|e| e.split_once("\ndata: "))
                .unwrap();
            (name.to_owned(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

fn refused(body: &Value) -> ApiError {
    match validate(body) {
        Ok(_) => panic!("accepted {body}"),
        Err(err) => err,
    }
}

fn weather_tool() -> Value {
    json!({"type": "function", "name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}})
}

#[test]
fn plain_answer_is_a_completed_response_with_one_message() {
    let got = respond(&json!({"model": "gpt-test", "input": "hello there", "instructions": "be brief"}));
    assert!(got["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(got["object"], "response");
    assert_eq!(got["status"], "completed");
    assert_eq!(got["model"], "gpt-test");
    assert_eq!(got["instructions"], "be brief");
    assert_eq!(got["error"], Value::Null);
    assert_eq!(got["incomplete_details"], Value::Null);
    assert_eq!(got["output"].as_array().unwrap().len(), 1);
    let message = &got["output"][0];
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["type"], "message");
    assert_eq!(message["status"], "completed");
    assert_eq!(message["role"], "assistant");
    assert_eq!(
        message["content"],
        json!([{"type": "output_text", "text": "alpha says: hello there [system: be brief]", "annotations": [], "logprobs": []}])
    );
    assert_eq!(
        got["usage"],
        json!({"input_tokens": 4, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 7,
               "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 11})
    );
    for (key, default) in [
        ("tools", json!([])),
        ("tool_choice", json!("auto")),
        ("parallel_tool_calls", json!(true)),
        ("temperature", json!(1.0)),
        ("top_p", json!(1.0)),
        ("text", json!({"format": {"type": "text"}, "verbosity": "medium"})),
        ("reasoning", json!({"effort": null, "summary": null})),
        ("max_output_tokens", Value::Null),
        ("store", json!(true)),
        ("metadata", json!({})),
        ("previous_response_id", Value::Null),
        ("truncation", json!("disabled")),
        ("user", Value::Null),
        ("service_tier", json!("default")),
    ] {
        assert_eq!(got[key], default, "{key}");
    }
}

#[test]
fn stream_deltas_concatenate_to_the_text_and_sequence_numbers_count_up() {
    let events = stream(&json!({"model": "m", "input": "hello there", "stream": true}));
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (k, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], k);
    }
    let text: String = events
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(text, "alpha says: hello there");
    let delta = &events[4].1;
    assert_eq!((delta["output_index"].clone(), delta["content_index"].clone()), (json!(0), json!(0)));
    assert_eq!(delta["logprobs"], json!([]));
    assert!(delta["obfuscation"].is_string());
    assert_eq!(events[0].1["response"]["status"], "in_progress");
    assert_eq!(events[0].1["response"]["output"], json!([]));
    assert_eq!(events[0].1["response"]["usage"], Value::Null);
    let done = &events[11].1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], text);
    assert_eq!(events[2].1["item"]["id"], done["output"][0]["id"]);
    assert_eq!(events[4].1["item_id"], done["output"][0]["id"]);
    // Obfuscation can be turned off.
    let events = stream(&json!({"model": "m", "input": "hi", "stream": true,
                                "stream_options": {"include_obfuscation": false}}));
    assert!(events[4].1.get("obfuscation").is_none());
}

#[test]
fn a_function_call_then_its_result() {
    let body = json!({"model": "m", "input": "in Paris", "tools": [weather_tool()]});
    let got = respond(&body);
    let call = &got["output"][0];
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["status"], "completed");
    assert_eq!(call["call_id"], "call_sim_alpha_0");
    assert_eq!(call["name"], "weather");
    assert_eq!(call["arguments"], r#"{"city":"in Paris"}"#);
    assert_eq!(got["tools"][0]["strict"], true);
    let body = json!({"model": "m", "tools": [weather_tool()], "input": [
        {"role": "user", "content": "in Paris"},
        {"type": "function_call", "call_id": "call_sim_alpha_0", "name": "weather", "arguments": r#"{"city":"in Paris"}"#},
        {"type": "function_call_output", "call_id": "call_sim_alpha_0", "output": "sunny"}
    ]});
    let got = respond(&body);
    assert_eq!(got["output"][0]["content"][0]["text"], "alpha says: tool said: sunny");
}

#[test]
fn a_streamed_function_call_has_three_argument_deltas() {
    let body = json!({"model": "m", "input": "in Paris", "tools": [weather_tool()], "stream": true});
    let events = stream(&body);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(events[2].1["item"]["arguments"], "");
    assert_eq!(events[2].1["item"]["status"], "in_progress");
    let args: String = events[3..6].iter().map(|(_, d)| d["delta"].as_str().unwrap().to_owned()).collect();
    assert_eq!(args, r#"{"city":"in Paris"}"#);
    assert_eq!(events[6].1["arguments"], args);
    assert_eq!(events[6].1["name"], "weather");
    assert_eq!(events[6].1["item_id"], events[2].1["item"]["id"]);
}

#[test]
fn reasoning_with_summary_and_encrypted_content() {
    let body = json!({"model": "m", "input": "hi", "reasoning": {"effort": "low", "summary": "auto"},
                      "include": ["reasoning.encrypted_content"], "store": false});
    let got = respond(&body);
    let reasoning = &got["output"][0];
    assert!(reasoning["id"].as_str().unwrap().starts_with("rs_"));
    assert_eq!(reasoning["type"], "reasoning");
    assert_eq!(reasoning["summary"], json!([{"type": "summary_text", "text": "alpha thinks."}]));
    assert_eq!(reasoning["encrypted_content"], crate::thinking::encrypted_content("alpha"));
    assert_eq!(got["output"][1]["content"][0]["text"], "alpha says: hi");
    assert_eq!(got["usage"]["output_tokens"], 3 + 2);
    assert_eq!(got["usage"]["output_tokens_details"]["reasoning_tokens"], 2);
    assert_eq!(got["reasoning"], json!({"effort": "low", "summary": "auto"}));
    // The minted content is taken back, in a stateless follow-up.
    let follow = json!({"model": "m", "store": false, "input": [
        {"role": "user", "content": "hi"},
        {"type": "reasoning", "id": reasoning["id"], "summary": reasoning["summary"], "encrypted_content": reasoning["encrypted_content"]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "alpha says: hi", "annotations": []}]},
        {"role": "user", "content": "again"}
    ]});
    assert_eq!(respond(&follow)["output"][0]["content"][0]["text"], "alpha says: again");
    // Without a summary the item's summary is empty; without `include` there is no encrypted content; effort
    // `none` means no reasoning item.
    let got = respond(&json!({"model": "m", "input": "hi", "reasoning": {"effort": "medium"}}));
    assert_eq!(got["output"][0]["summary"], json!([]));
    assert!(got["output"][0].get("encrypted_content").is_none());
    let got = respond(&json!({"model": "m", "input": "hi", "reasoning": {"effort": "none"}}));
    assert_eq!(got["output"][0]["type"], "message");
    assert_eq!(got["usage"]["output_tokens_details"]["reasoning_tokens"], 0);
}

#[test]
fn streamed_reasoning_summary_events() {
    let body = json!({"model": "m", "input": "hi", "stream": true, "reasoning": {"summary": "detailed"}});
    let events = stream(&body);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).take(10).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
        ]
    );
    assert_eq!(events[6].1["text"], "alpha thinks.");
    assert_eq!(events[6].1["summary_index"], 0);
    assert_eq!(events[9].1["output_index"], 1);
    assert_eq!(events[9].1["item"]["type"], "message");
}

#[test]
fn json_mode_and_max_output_tokens() {
    let got = respond(
        &json!({"model": "m", "input": "answer in json", "text": {"format": {"type": "json_object"}}}),
    );
    assert_eq!(got["output"][0]["content"][0]["text"], r#"{"answer":"alpha says: answer in json"}"#);
    let schema =
        json!({"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": true});
    let got = respond(&json!({"model": "m", "input": "hi", "text": {"format": schema}}));
    assert_eq!(got["output"][0]["content"][0]["text"], r#"{"answer":"alpha says: hi"}"#);
    assert_eq!(got["text"]["format"]["name"], "answer");
    let words: Vec<String> = (0..20).map(|i| format!("w{i}")).collect();
    let got = respond(&json!({"model": "m", "input": words.join(" "), "max_output_tokens": 16}));
    assert_eq!(got["status"], "incomplete");
    assert_eq!(got["incomplete_details"], json!({"reason": "max_output_tokens"}));
    assert_eq!(got["output"][0]["status"], "incomplete");
    assert_eq!(got["usage"]["output_tokens"], 16);
    assert_eq!(got["max_output_tokens"], 16);
    let events =
        stream(&json!({"model": "m", "input": words.join(" "), "max_output_tokens": 16, "stream": true}));
    assert_eq!(events.last().unwrap().0, "response.incomplete");
}

#[test]
fn refusals_use_the_real_messages() {
    let cases: Vec<(Value, &str, Option<&str>, u16)> = vec![
        (
            json!({"model": "m", "input": "hi", "messages": []}),
            "Unknown parameter: 'messages'.",
            Some("messages"),
            400,
        ),
        (json!({"input": "hi"}), "Missing required parameter: 'model'.", Some("model"), 400),
        (json!({"model": "m"}), "Missing required parameter: 'input'.", Some("input"), 400),
        (
            json!({"model": "m", "input": "hi", "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}),
            "Missing required parameter: 'tools[0].name'.",
            Some("tools[0].name"),
            400,
        ),
        (
            json!({"model": "m", "input": "hi", "tools": [{"type": "function", "name": "f", "function": {"name": "f"}}]}),
            "Unknown parameter: 'tools[0].function'.",
            Some("tools[0].function"),
            400,
        ),
        (
            json!({"model": "m", "input": "hi", "previous_response_id": "resp_123"}),
            "Previous response with id 'resp_123' not found.",
            Some("previous_response_id"),
            400,
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call_output", "call_id": "call_9", "output": "x"}]}),
            "No tool call found for function call output with call_id call_9.",
            Some("input"),
            400,
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": "hi"},
                {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}]}),
            "No tool output found for function call call_1.",
            Some("input"),
            400,
        ),
        (
            json!({"model": "m", "input": "hi", "max_output_tokens": 15}),
            "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got 15 instead.",
            Some("max_output_tokens"),
            400,
        ),
        (
            json!({"model": "m", "input": "hi", "text": {"format": {"type": "json_object"}}}),
            "Response input messages must contain the word 'json' in some form to use 'text.format' of type 'json_object'.",
            Some("input"),
            400,
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}),
            "Invalid value: 'text'. Supported values are: 'input_text', 'input_image', 'output_text', 'refusal', \
             'input_file', 'computer_screenshot', and 'summary_text'.",
            Some("input[0].content[0].type"),
            400,
        ),
        (
            json!({"model": "m", "input": [{"role": "assistant", "content": [{"type": "input_text", "text": "hi"}]}]}),
            "Invalid value: 'input_text'. Supported values are: 'output_text' and 'refusal'.",
            Some("input[0].content[0].type"),
            400,
        ),
        (
            json!({"model": "m", "input": [{"type": "reasoning", "id": "rs_1", "summary": []}], "store": false}),
            "Item with id 'rs_1' not found. Items are not persisted when `store` is set to false.",
            Some("input"),
            404,
        ),
        (
            json!({"model": "m", "input": [{"type": "reasoning", "id": "rs_1", "summary": [],
                   "encrypted_content": crate::thinking::encrypted_content("beta")}]}),
            "The encrypted content ZW5j...dGE= could not be verified.",
            None,
            400,
        ),
        (
            json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}),
            "Item with id 'msg_1' not found.",
            Some("input"),
            404,
        ),
        (
            json!({"model": "m", "input": "hi", "temperature": 2.5}),
            "Invalid 'temperature': decimal above maximum value.",
            Some("temperature"),
            400,
        ),
        (
            json!({"model": "m", "input": "hi", "reasoning": {"effort": "huge"}}),
            "Invalid value: 'huge'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high', and 'xhigh'.",
            Some("reasoning.effort"),
            400,
        ),
        (
            json!({"model": "m", "input": "hi", "include": ["reasoning.raw"]}),
            "Invalid value: 'reasoning.raw'.",
            Some("include[0]"),
            400,
        ),
        (
            json!({"model": "m", "input": "hi", "tools": [weather_tool()], "tool_choice": {"type": "function", "name": "time"}}),
            "Tool choice 'function' not found in 'tools' parameter.",
            Some("tool_choice"),
            400,
        ),
        (
            json!({"model": "m", "input": "hi", "stream_options": {"include_obfuscation": false}}),
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            Some("stream_options"),
            400,
        ),
    ];
    for (body, message, param, status) in cases {
        let err = refused(&body);
        assert!(err.message.starts_with(message), "{body}: {:?} should start with {message:?}", err.message);
        assert_eq!(err.param.as_deref(), param, "{body}");
        assert_eq!(err.status.as_u16(), status, "{body}");
    }
    assert_eq!(refused(&json!({"model": "m", "input": "hi", "foo": 1})).code, Some("unknown_parameter"));
    assert_eq!(
        refused(&json!({"model": "m", "input": "hi", "previous_response_id": "resp_1"})).code,
        Some("previous_response_not_found")
    );
}

#[test]
fn the_prompt_reads_every_user_text_and_tool_turn() {
    let body = json!({"model": "m", "instructions": "sys", "tools": [weather_tool()], "input": [
        {"role": "developer", "content": [{"type": "input_text", "text": " dev"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "one"},
                                     {"type": "input_image", "image_url": "https://example.com/a.png"}]},
        {"type": "function_call", "call_id": "a", "name": "weather", "arguments": "{}"},
        {"type": "function_call", "call_id": "b", "name": "weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "a", "output": "r1"},
        {"type": "function_call_output", "call_id": "b", "output": [{"type": "input_text", "text": "r2"}]},
        {"role": "user", "content": "two"},
        {"type": "function_call", "call_id": "c", "name": "weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "r3"}
    ]});
    let request = validate(&body).unwrap();
    let prompt = &request.prompt;
    assert_eq!(prompt.system, "sys dev");
    assert_eq!(prompt.user_texts, ["one", "two"]);
    assert_eq!(prompt.last_user, "two");
    assert_eq!(prompt.tool_turns, 2);
    assert_eq!(
        prompt.turn,
        answer::Turn::ToolResults(vec![answer::ToolResult { text: "r3".into(), error: false }])
    );
    let body = json!({"model": "m", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "look"},
        {"type": "input_image", "image_url": "data:image/png;base64,aGk="},
        {"type": "input_image", "file_id": "file-1", "detail": "low"}
    ]}]});
    assert_eq!(respond(&body)["output"][0]["content"][0]["text"], "alpha says: look [images: 2]");
}
