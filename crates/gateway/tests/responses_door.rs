//! The OpenAI Responses front door end to end: to every provider kind, plain and streaming, with failover, and the
//! stored conversations behind `previous_response_id` (continued on another provider after a failover), and
//! `GET`/`DELETE /v1/responses/{id}`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is its job

mod common;

use common::{Harness, p};
use nines_sim::FaultKind;
use serde_json::{Value, json};

fn body(input: Value, stream: bool) -> Value {
    json!({"model": "chat", "instructions": "be brief", "input": input, "stream": stream})
}

/// The output text of a Responses answer (whole, or the deltas of a stream), and the final Response object.
fn answer(r: &common::Reply) -> (String, Value) {
    if r.header("content-type").starts_with("text/event-stream") {
        let mut text = String::new();
        let mut last = Value::Null;
        for (seq, f) in r.frames().into_iter().enumerate() {
            let v: Value = serde_json::from_str(&f.data).unwrap_or_else(|e| panic!("{e}: {}", f.data));
            assert_eq!(v["sequence_number"], seq, "sequence numbers count from 0: {}", r.text);
            assert_eq!(f.event, v["type"].as_str().unwrap(), "event name = type");
            if v["type"] == "response.output_text.delta" {
                text.push_str(v["delta"].as_str().unwrap());
            }
            if v["type"] == "response.completed" || v["type"] == "response.incomplete" {
                last = v["response"].clone();
            }
        }
        assert!(last.is_object(), "no terminal event: {}", r.text);
        (text, last)
    } else {
        let v = r.json();
        let text = v["output"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["type"] == "message")
            .flat_map(|i| i["content"].as_array().unwrap().clone())
            .filter_map(|c| c["text"].as_str().map(str::to_owned))
            .collect();
        (text, v)
    }
}

const KINDS: [&str; 4] = ["anthropic", "openai", "gemini", "openai-responses"];

#[tokio::test]
async fn responses_door_reaches_every_provider_kind() {
    for kind in KINDS {
        let h = Harness::new(&[p("only", kind, "model-x")]).await;
        for stream in [false, true] {
            let r = h.post("/v1/responses", body(json!("translate me"), stream)).await;
            let ctx = format!("kind={kind} stream={stream}");
            assert_eq!(r.status, 200, "{ctx}: {}", r.text);
            let (text, resp) = answer(&r);
            assert_eq!(text, "only says: translate me [system: be brief]", "{ctx}");
            assert_eq!(resp["status"], "completed", "{ctx}");
            assert!(resp["id"].as_str().unwrap().starts_with("resp_"), "{ctx}");
            assert!(resp["usage"]["input_tokens"].as_u64().unwrap() > 0, "{ctx}: {resp}");
            assert!(resp["usage"]["output_tokens"].as_u64().unwrap() > 0, "{ctx}: {resp}");
            assert_eq!(r.header("x-nines-target"), "only/model-x", "{ctx}");
        }
    }
}

#[tokio::test]
async fn a_responses_client_is_failed_over_to_another_dialect() {
    for kind in ["anthropic", "gemini"] {
        for (stream, fault) in [
            (false, FaultKind::Status { status: 503, retry_after: None }),
            (true, FaultKind::Status { status: 429, retry_after: None }),
            (true, FaultKind::Reset),
        ] {
            // A fresh gateway each: a 429 sets the first target aside for a while (its health), by design.
            let h = Harness::new(&[p("first", "openai-responses", "gpt-5"), p("second", kind, "m")]).await;
            h.fault(0, fault.clone(), 1);
            let r = h.post("/v1/responses", body(json!("hello"), stream)).await;
            let ctx = format!("kind={kind} stream={stream} {fault:?}");
            assert_eq!(r.status, 200, "{ctx}: {}", r.text);
            assert_eq!(answer(&r).0, "second says: hello [system: be brief]", "{ctx}");
            assert_eq!(r.header("x-nines-attempts"), "2", "{ctx}");
        }
    }
}

/// A conversation begun on one provider continues on another: nines resolves `previous_response_id` itself and
/// sends the whole conversation, whatever the target.
#[tokio::test]
async fn previous_response_id_continues_on_another_provider() {
    for stream in [false, true] {
        let h = Harness::new(&[p("first", "anthropic", "claude-x"), p("second", "openai", "gpt-x")]).await;
        let r = h.post("/v1/responses", body(json!("first question"), stream)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let (text, resp) = answer(&r);
        assert_eq!(text, "first says: first question [system: be brief]");
        let id = resp["id"].as_str().unwrap().to_owned();

        h.fault(0, FaultKind::Status { status: 529, retry_after: None }, 1);
        let mut follow = body(json!("second question"), stream);
        follow["previous_response_id"] = json!(id);
        let r = h.post("/v1/responses", follow).await;
        assert_eq!(r.status, 200, "stream={stream}: {}", r.text);
        assert_eq!(answer(&r).0, "second says: second question [system: be brief]");
        assert_eq!(r.header("x-nines-target"), "second/gpt-x");
        // The second provider got the whole conversation, in its own format.
        let sent = h.sims[1].last_request("/v1/chat/completions").unwrap();
        let messages = sent["messages"].as_array().unwrap();
        let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"], "{sent}");
        assert_eq!(messages[2]["content"], "first says: first question [system: be brief]");
        assert!(sent.get("previous_response_id").is_none());
    }
}

#[tokio::test]
async fn stored_responses_can_be_read_listed_and_deleted() {
    let h = Harness::new(&[p("only", "gemini", "gemini-2.5-flash")]).await;
    let r = h.post("/v1/responses", body(json!("keep me"), false)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let created = r.json();
    let id = created["id"].as_str().unwrap();
    let get = |path: String| {
        let req = h.client.get(format!("{}{path}", h.base));
        async move { common::Reply::read(req.send().await.unwrap()).await }
    };
    let r = get(format!("/v1/responses/{id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), created);
    let r = get(format!("/v1/responses/{id}/input_items?order=asc")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"][0]["content"], "keep me", "{}", r.text);

    let del = h.client.delete(format!("{}/v1/responses/{id}", h.base)).send().await.unwrap();
    let del = common::Reply::read(del).await;
    assert_eq!(del.status, 200);
    assert_eq!(del.json()["deleted"], true);
    let r = get(format!("/v1/responses/{id}")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");

    // store: false keeps nothing.
    let mut b = body(json!("forget me"), false);
    b["store"] = json!(false);
    let r = h.post("/v1/responses", b).await;
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(get(format!("/v1/responses/{id}")).await.status, 404);

    // An unknown previous_response_id: OpenAI's 404, and no provider is called.
    let hits = h.sims[0].total_hits();
    let mut b = body(json!("hi"), false);
    b["previous_response_id"] = json!("resp_nope");
    let r = h.post("/v1/responses", b).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.json()["error"]["param"], "previous_response_id");
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("resp_nope"));
    assert_eq!(h.sims[0].total_hits(), hits);
}

#[tokio::test]
async fn function_tool_loop_through_every_provider_kind() {
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    for kind in KINDS {
        let h = Harness::new(&[p("only", kind, "model-x")]).await;
        for stream in [false, true] {
            let ctx = format!("kind={kind} stream={stream}");
            let mut b = body(json!("weather in Paris?"), stream);
            b["tools"] = tools.clone();
            let r = h.post("/v1/responses", b).await;
            assert_eq!(r.status, 200, "{ctx}: {}", r.text);
            let (_, resp) = answer(&r);
            let call = resp["output"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["type"] == "function_call")
                .unwrap_or_else(|| panic!("{ctx}: no function_call in {resp}"))
                .clone();
            assert_eq!(call["name"], "get_weather", "{ctx}");
            let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
            assert_eq!(args, json!({"city": "weather in Paris?"}), "{ctx}");

            let mut b = body(
                json!([{"type": "function_call_output", "call_id": call["call_id"], "output": "18C"}]),
                stream,
            );
            b["tools"] = tools.clone();
            b["previous_response_id"] = resp["id"].clone();
            let r = h.post("/v1/responses", b).await;
            assert_eq!(r.status, 200, "{ctx}: {}", r.text);
            assert_eq!(answer(&r).0, "only says: tool said: 18C [system: be brief]", "{ctx}");
        }
    }
}

#[tokio::test]
async fn responses_errors_are_in_openais_shape() {
    let h = Harness::new(&[p("a", "anthropic", "m")]).await;
    let r = h.post("/v1/responses", json!({"model": "chat"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    let r = h.post("/v1/responses", json!({"model": "nope", "input": "hi"})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("nope"));
    h.fault(0, FaultKind::Status { status: 503, retry_after: None }, 1);
    let r = h.post("/v1/responses", body(json!("hi"), false)).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("a/m"));
}

/// A Responses request to a Responses target keeps what nines does not model; only `model` changes (and a
/// `previous_response_id`, resolved by nines, never leaves it).
#[tokio::test]
async fn same_dialect_requests_keep_unmodelled_fields() {
    let h = Harness::new(&[p("r", "openai-responses", "gpt-5")]).await;
    let mut b = body(json!("hi"), false);
    b["service_tier"] = json!("flex");
    b["prompt_cache_key"] = json!("cache-1");
    b["text"] = json!({"verbosity": "low"});
    b["tools"] = json!([{"type": "web_search"}]);
    let r = h.post("/v1/responses", b.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = h.sims[0].last_request("/v1/responses").unwrap();
    let mut expected = b;
    expected["model"] = json!("gpt-5");
    assert_eq!(sent, expected);
    assert_eq!(r.header("x-nines-warning"), "");
}

/// Everything a key stores is its own: another key gets the same 404 as for an unknown id when it reads, lists,
/// continues from or deletes it; the owner still can.
#[tokio::test]
async fn a_key_cannot_see_continue_or_delete_another_keys_conversation() {
    let env =
        nines::config::Env::from_pairs([("KEYS", "key-of-alice,key-of-bob"), ("ADMIN", "the-admin-key")]);
    let cfg = "[auth]\nkeys_env = \"KEYS\"\nadmin_key_env = \"ADMIN\"\n";
    let h = Harness::with(&[p("only", "anthropic", "claude")], cfg, env).await;
    let alice = [("authorization", "Bearer key-of-alice")];
    let bob = [("authorization", "Bearer key-of-bob")];
    let r = h.post_with("/v1/responses", body(json!("alice's secret plan"), false), &alice).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let unknown = h.get("/v1/responses/resp_unknown", &bob).await;
    assert_eq!(unknown.status, 404);
    for path in [format!("/v1/responses/{id}"), format!("/v1/responses/{id}/input_items")] {
        let r = h.get(&path, &bob).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert!(!r.text.contains("secret plan"));
        assert_eq!(r.json()["error"]["type"], unknown.json()["error"]["type"]);
    }
    let mut b = body(json!("what was the plan?"), false);
    b["previous_response_id"] = json!(id);
    let r = h.post_with("/v1/responses", b.clone(), &bob).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.json()["error"]["param"], "previous_response_id");
    let del =
        h.client.delete(format!("{}/v1/responses/{id}", h.base)).header("authorization", "Bearer key-of-bob");
    assert_eq!(del.send().await.unwrap().status(), 404);
    // Alice still has it, and continues from it.
    assert_eq!(h.get(&format!("/v1/responses/{id}"), &alice).await.status, 200);
    let r = h.post_with("/v1/responses", b, &alice).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The admin key sees every key's conversations (and may delete them).
    let admin = [("authorization", "Bearer the-admin-key")];
    let r = h.get(&format!("/v1/responses/{id}"), &admin).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains(&id));
    let del = h
        .client
        .delete(format!("{}/v1/responses/{id}", h.base))
        .header("authorization", "Bearer the-admin-key");
    assert_eq!(del.send().await.unwrap().status(), 200);
    assert_eq!(h.get(&format!("/v1/responses/{id}"), &alice).await.status, 404);
}
