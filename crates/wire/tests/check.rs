//! `Dialect::check_response` (the cheap check before a same-dialect answer is passed on as it is) must accept
//! exactly what `Dialect::decode_response` accepts: published answers, error bodies, and objects made of the fields
//! the decoders look at, each with values of every JSON type.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ALL, fixture};
use nines_wire::Dialect;
use proptest::prelude::*;
use serde_json::{Value, json};

fn agree(dialect: Dialect, body: &[u8]) -> Result<(), String> {
    let checked = dialect.check_response(body).is_ok();
    let decoded = dialect.decode_response(body);
    if checked == decoded.is_ok() {
        Ok(())
    } else {
        Err(format!(
            "{dialect}: check {} but decode {:?} for {}",
            if checked { "accepts" } else { "refuses" },
            decoded.map(drop),
            String::from_utf8_lossy(body)
        ))
    }
}

#[test]
fn published_answers_pass_and_error_bodies_do_not() {
    for (dialect, path) in [
        (Dialect::OpenAiChat, "openai/response.json"),
        (Dialect::Anthropic, "anthropic/response.json"),
        (Dialect::Gemini, "gemini/response.json"),
        (Dialect::OpenAiResponses, "responses/response.json"),
        (Dialect::OpenAiResponses, "responses/response_function_call.json"),
    ] {
        let body = fixture(path);
        let usage = dialect.check_response(body.as_bytes()).unwrap_or_else(|e| panic!("{path}: {e}"));
        // The usage the gateway records of a passed-through answer is the one a decode would read.
        let decoded = dialect.decode_response(body.as_bytes()).unwrap().usage;
        assert_eq!(usage.unwrap_or_default(), decoded, "{path}");
    }
    // Gemini's published answer has no usage: one that has.
    let mut v: Value = serde_json::from_str(&fixture("gemini/response.json")).unwrap();
    v["usageMetadata"] = json!({"promptTokenCount": 7, "candidatesTokenCount": 3, "totalTokenCount": 10});
    let body = v.to_string();
    let usage = Dialect::Gemini.check_response(body.as_bytes()).unwrap().unwrap();
    assert_eq!((usage.input_tokens, usage.output_tokens), (7, 3));
    assert_eq!(usage, Dialect::Gemini.decode_response(body.as_bytes()).unwrap().usage);
    for (dialect, path) in
        [(Dialect::OpenAiChat, "openai/response.json"), (Dialect::Anthropic, "anthropic/response.json")]
    {
        let u = dialect.check_response(fixture(path).as_bytes()).unwrap().unwrap();
        assert!(u.input_tokens > 0 && u.output_tokens > 0, "{path}: {u:?}");
    }
    for (dialect, path) in [
        (Dialect::OpenAiChat, "openai/error.json"),
        (Dialect::Anthropic, "anthropic/error.json"),
        (Dialect::Gemini, "gemini/error.json"),
    ] {
        assert!(dialect.check_response(fixture(path).as_bytes()).is_err(), "{path}");
    }
    for dialect in ALL {
        for body in ["", "null", "[]", "[\"id\", []]", "{", "{}", "\"x\"", " {\"id\":\"x\"} trailing"] {
            agree(dialect, body.as_bytes()).unwrap();
        }
    }
}

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(true)),
        Just(json!(7)),
        Just(json!(-1.5)),
        Just(json!("x")),
        Just(json!("failed")),
        Just(json!("completed")),
        Just(json!({})),
        Just(json!([])),
        Just(json!([{}])),
        Just(json!([1, "a"])),
        Just(json!({"message": "m"})),
        Just(json!({"prompt_tokens": 3, "completion_tokens": 4})),
        Just(json!({"prompt_tokens": "3"})),
        Just(json!({"prompt_tokens": null})),
        Just(json!([{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}])),
        Just(json!([{"message": null}])),
        Just(json!([{"finish_reason": "stop"}])),
        Just(json!([{"type": "text", "text": "hi"}])),
        Just(json!([{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}])),
        Just(
            json!([{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}])
        ),
        Just(json!({"message": "boom", "code": "server_error"})),
    ]
}

const KEYS: [&str; 11] = [
    "id",
    "choices",
    "usage",
    "content",
    "candidates",
    "promptFeedback",
    "error",
    "status",
    "output",
    "model",
    "usageMetadata",
];

proptest! {
    #[test]
    fn check_accepts_what_decode_accepts(
        fields in proptest::collection::vec((0..KEYS.len(), any_value()), 0..7),
    ) {
        let mut obj = serde_json::Map::new();
        for (k, v) in fields {
            obj.insert(KEYS[k].to_owned(), v);
        }
        let body = serde_json::to_vec(&Value::Object(obj)).unwrap();
        for dialect in ALL {
            if let Err(e) = agree(dialect, &body) {
                prop_assert!(false, "{}", e);
            }
        }
    }
}
