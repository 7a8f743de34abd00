//! Scripted tool calls (`[[sim:call NAME ARGS_JSON]]` in any user text): every dialect (Anthropic, OpenAI Chat and
//! Responses, Gemini) runs the same multi-step
//! loop an agent would (call, tool result, next call, tool result, text), never calls a tool that was not offered,
//! and keeps the default policy when there is no directive.

use serde_json::{Value, json};

use crate::common::*;

/// The prompt, wrapped the way agents wrap it: a reminder before it, and one after it carrying the second directive.
const REMINDER: &str = "<system-reminder>You are in a repository.</system-reminder>";
const PROMPT: &str = r#"Please look. [[sim:call Bash {"command":"echo hi","description":"say hi"}]]"#;
const LATE: &str =
    r#"<system-reminder>then [[sim:call Read {"path": "/tmp/x", "limit": 5}]]</system-reminder>"#;

const BASH_ARGS: &str = r#"{"command":"echo hi","description":"say hi"}"#;
const READ_ARGS: &str = r#"{"path":"/tmp/x","limit":5}"#;

/// The calls the script makes, in order, and the tool results the test sends back for them.
const STEPS: [(&str, &str, &str); 2] = [("Bash", BASH_ARGS, "hi"), ("Read", READ_ARGS, "contents")];

fn schema(props: &[&str]) -> Value {
    let props: serde_json::Map<String, Value> =
        props.iter().map(|p| ((*p).to_owned(), json!({"type": "string"}))).collect();
    json!({"type": "object", "properties": props})
}

/// What an answer is: its calls as (name, arguments JSON text), or its text.
#[derive(Debug, PartialEq)]
enum Said {
    Calls(Vec<(String, String)>),
    Text(String),
}

fn said_anthropic(got: &Value) -> Said {
    let blocks = got["content"].as_array().unwrap();
    let calls: Vec<(String, String)> = blocks
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .map(|b| (b["name"].as_str().unwrap().to_owned(), b["input"].to_string()))
        .collect();
    if calls.is_empty() {
        Said::Text(blocks[0]["text"].as_str().unwrap().to_owned())
    } else {
        Said::Calls(calls)
    }
}

fn said_openai(got: &Value) -> Said {
    let message = &got["choices"][0]["message"];
    match message["tool_calls"].as_array() {
        Some(calls) => Said::Calls(
            calls
                .iter()
                .map(|c| {
                    let f = &c["function"];
                    (f["name"].as_str().unwrap().to_owned(), f["arguments"].as_str().unwrap().to_owned())
                })
                .collect(),
        ),
        None => Said::Text(message["content"].as_str().unwrap().to_owned()),
    }
}

fn said_gemini(got: &Value) -> Said {
    let parts = got["candidates"][0]["content"]["parts"].as_array().unwrap();
    let calls: Vec<(String, String)> = parts
        .iter()
        .filter_map(|p| p.get("functionCall"))
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c["args"].to_string()))
        .collect();
    if calls.is_empty() {
        Said::Text(parts[0]["text"].as_str().unwrap().to_owned())
    } else {
        Said::Calls(calls)
    }
}

fn said_responses(got: &Value) -> Said {
    let output = got["output"].as_array().unwrap();
    let calls: Vec<(String, String)> = output
        .iter()
        .filter(|item| item["type"] == "function_call")
        .map(|item| {
            (item["name"].as_str().unwrap().to_owned(), item["arguments"].as_str().unwrap().to_owned())
        })
        .collect();
    if !calls.is_empty() {
        return Said::Calls(calls);
    }
    let message = output.iter().find(|item| item["type"] == "message").unwrap();
    Said::Text(message["content"][0]["text"].as_str().unwrap().to_owned())
}

/// Parsed arguments (for dialects that carry an object, whose key order JSON does not keep).
fn args(text: &str) -> String {
    serde_json::from_str::<Value>(text).unwrap().to_string()
}

fn call(name: &str, arguments: &str) -> Said {
    Said::Calls(vec![(name.to_owned(), arguments.to_owned())])
}

#[tokio::test]
async fn anthropic_runs_the_script() {
    let sim = sim().await;
    let tools = json!([
        {"name": "Task", "input_schema": schema(&["prompt"])},
        {"name": "Bash", "input_schema": schema(&["command", "description"])},
        {"name": "Read", "input_schema": schema(&["path"])}
    ]);
    let mut messages = vec![json!({"role": "user", "content": [
        {"type": "text", "text": REMINDER}, {"type": "text", "text": PROMPT}, {"type": "text", "text": LATE}
    ]})];
    let body = |messages: &Vec<Value>| json!({"model": "claude-test", "max_tokens": 100, "tools": tools, "messages": messages});
    let got: Value = post_anthropic(&sim, &body(&messages)).await.json().await.unwrap();
    assert_eq!(said_anthropic(&got), call("Bash", &args(BASH_ARGS)));
    for (k, (name, arguments, result)) in STEPS.into_iter().enumerate() {
        let id = format!("toolu_{k}");
        let input: Value = serde_json::from_str(arguments).unwrap();
        messages.push(json!({"role": "assistant", "content": [
            {"type": "tool_use", "id": id, "name": name, "input": input}
        ]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": id, "content": result},
            {"type": "text", "text": REMINDER}
        ]}));
        let got: Value = post_anthropic(&sim, &body(&messages)).await.json().await.unwrap();
        if k == 0 {
            assert_eq!(said_anthropic(&got), call("Read", &args(READ_ARGS)));
        } else {
            assert_eq!(said_anthropic(&got), Said::Text("alpha says: tool said: contents".into()));
        }
    }
}

#[tokio::test]
async fn openai_runs_the_script_with_exact_arguments_text() {
    let sim = sim().await;
    let function = |name: &str, props: &[&str]| json!({"type": "function", "function": {"name": name, "parameters": schema(props)}});
    let tools =
        json!([function("Task", &["prompt"]), function("Bash", &["command"]), function("Read", &["path"])]);
    let mut messages = vec![
        json!({"role": "system", "content": "You are an agent."}),
        json!({"role": "user", "content": [
            {"type": "text", "text": REMINDER}, {"type": "text", "text": PROMPT}
        ]}),
        json!({"role": "user", "content": LATE}),
    ];
    let body = |messages: &Vec<Value>| json!({"model": "gpt-test", "tools": tools, "messages": messages});
    let got: Value = post(&sim, OPENAI, &body(&messages)).await.json().await.unwrap();
    assert_eq!(said_openai(&got), call("Bash", BASH_ARGS));
    assert_eq!(got["choices"][0]["finish_reason"], "tool_calls");
    for (k, (name, arguments, result)) in STEPS.into_iter().enumerate() {
        let id = format!("call_{k}");
        messages.push(json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}
        ]}));
        messages.push(json!({"role": "tool", "tool_call_id": id, "content": result}));
        let got: Value = post(&sim, OPENAI, &body(&messages)).await.json().await.unwrap();
        if k == 0 {
            assert_eq!(said_openai(&got), call("Read", READ_ARGS));
        } else {
            assert_eq!(
                said_openai(&got),
                Said::Text("alpha says: tool said: contents [system: You are an agent.]".into())
            );
        }
    }
}

#[tokio::test]
async fn gemini_runs_the_script() {
    let sim = sim().await;
    let declaration =
        |name: &str, props: &[&str]| json!({"name": name, "parametersJsonSchema": schema(props)});
    let tools = json!([{"functionDeclarations": [
        declaration("Task", &["prompt"]), declaration("Bash", &["command"]), declaration("Read", &["path"])
    ]}]);
    let mut contents = vec![
        json!({"role": "user", "parts": [{"text": REMINDER}]}),
        json!({"role": "model", "parts": [{"text": "Understood."}]}),
        json!({"role": "user", "parts": [{"text": PROMPT}, {"text": LATE}]}),
    ];
    let body = |contents: &Vec<Value>| json!({"contents": contents, "tools": tools});
    let got: Value = post(&sim, GEMINI, &body(&contents)).await.json().await.unwrap();
    assert_eq!(said_gemini(&got), call("Bash", &args(BASH_ARGS)));
    for (k, (name, arguments, result)) in STEPS.into_iter().enumerate() {
        contents.push(json!({"role": "model", "parts": [
            {"functionCall": {"name": name, "args": serde_json::from_str::<Value>(arguments).unwrap()}}
        ]}));
        contents.push(json!({"role": "user", "parts": [
            {"functionResponse": {"name": name, "response": {"content": result}}}
        ]}));
        let got: Value = post(&sim, GEMINI, &body(&contents)).await.json().await.unwrap();
        if k == 0 {
            assert_eq!(said_gemini(&got), call("Read", &args(READ_ARGS)));
        } else {
            assert_eq!(said_gemini(&got), Said::Text("alpha says: tool said: contents".into()));
        }
    }
}

#[tokio::test]
async fn responses_runs_the_script_statelessly_with_reasoning() {
    let sim = sim().await;
    let function =
        |name: &str, props: &[&str]| json!({"type": "function", "name": name, "parameters": schema(props)});
    let tools = json!([
        function("shell", &["command"]),
        function("Bash", &["command"]),
        function("Read", &["path"]),
        {"type": "custom", "name": "apply_patch", "description": "Apply a patch"},
        {"type": "web_search"}
    ]);
    let mut input = vec![
        json!({"role": "developer", "content": "You are Codex."}),
        json!({"role": "user", "content": [{"type": "input_text", "text": REMINDER}]}),
        json!({"role": "user", "content": [{"type": "input_text", "text": PROMPT}, {"type": "input_text", "text": LATE}]}),
    ];
    let body = |input: &Vec<Value>| {
        json!({"model": "gpt-test", "instructions": "Be useful.", "input": input, "tools": tools, "store": false,
               "reasoning": {"effort": "medium", "summary": "auto"}, "include": ["reasoning.encrypted_content"]})
    };
    let mut got: Value = post(&sim, RESPONSES, &body(&input)).await.json().await.unwrap();
    assert_eq!(said_responses(&got), call("Bash", BASH_ARGS));
    for (k, (_, _, result)) in STEPS.into_iter().enumerate() {
        // Send back every output item (the reasoning item with its encrypted content, the call), then the result.
        let output = got["output"].as_array().unwrap().clone();
        let call_id = output.iter().find(|i| i["type"] == "function_call").unwrap()["call_id"].clone();
        input.extend(output);
        input.push(json!({"type": "function_call_output", "call_id": call_id, "output": result}));
        got = post(&sim, RESPONSES, &body(&input)).await.json().await.unwrap();
        if k == 0 {
            assert_eq!(said_responses(&got), call("Read", READ_ARGS));
        } else {
            assert_eq!(
                said_responses(&got),
                Said::Text("alpha says: tool said: contents [system: Be useful.You are Codex.]".into())
            );
        }
    }
}

#[tokio::test]
async fn a_directive_for_a_tool_not_offered_gets_text_in_every_dialect() {
    let sim = sim().await;
    let text = r#"run [[sim:call Bash {"command":"rm -rf /"}]]"#;
    let expected = format!("alpha says: {text}");
    let mut body = anthropic_body(text);
    body["tools"] = json!([{"name": "Read", "input_schema": schema(&["path"])}]);
    let got: Value = post_anthropic(&sim, &body).await.json().await.unwrap();
    assert_eq!(said_anthropic(&got), Said::Text(expected.clone()));
    let mut body = openai_body(text);
    body["tools"] =
        json!([{"type": "function", "function": {"name": "Read", "parameters": schema(&["path"])}}]);
    let got: Value = post(&sim, OPENAI, &body).await.json().await.unwrap();
    assert_eq!(said_openai(&got), Said::Text(expected.clone()));
    let mut body = gemini_body(text);
    body["tools"] =
        json!([{"functionDeclarations": [{"name": "Read", "parametersJsonSchema": schema(&["path"])}]}]);
    let got: Value = post(&sim, GEMINI, &body).await.json().await.unwrap();
    assert_eq!(said_gemini(&got), Said::Text(expected.clone()));
    let mut body = responses_body(text);
    body["tools"] = json!([{"type": "function", "name": "Read", "parameters": schema(&["path"])}]);
    let got: Value = post(&sim, RESPONSES, &body).await.json().await.unwrap();
    assert_eq!(said_responses(&got), Said::Text(expected));
}

#[tokio::test]
async fn a_streamed_scripted_call_carries_the_exact_arguments() {
    let sim = sim().await;
    let mut body = openai_body(PROMPT);
    body["tools"] =
        json!([{"type": "function", "function": {"name": "Bash", "parameters": schema(&["command"])}}]);
    body["stream"] = json!(true);
    let events = parse_sse(&post(&sim, OPENAI, &body).await.text().await.unwrap());
    let arguments: String = events[..events.len() - 1]
        .iter()
        .filter_map(|e| {
            e.json()["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(arguments, BASH_ARGS);
}
