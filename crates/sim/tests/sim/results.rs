//! Tool results (`"{name} says: tool said: {r1} | {r2}"`), images (` [images: N]`, validated as each API does)
//! and JSON mode (`{"answer":"…"}`), the same in every dialect, plain and streaming.

use serde_json::{Value, json};

use crate::common::*;

const PNG: &str = "iVBORw0KGgo=";

fn anthropic_text(got: &Value) -> &str {
    got["content"][0]["text"].as_str().unwrap()
}

fn openai_text(got: &Value) -> &str {
    got["choices"][0]["message"]["content"].as_str().unwrap()
}

fn gemini_text(got: &Value) -> &str {
    got["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap()
}

/// The concatenated text deltas of an Anthropic stream.
fn anthropic_streamed(body: &str) -> String {
    parse_sse(body)
        .iter()
        .map(|e| e.json())
        .filter(|d| d["delta"]["type"] == "text_delta")
        .map(|d| d["delta"]["text"].as_str().unwrap().to_owned())
        .collect()
}

fn openai_streamed(body: &str) -> String {
    parse_sse(body)
        .iter()
        .filter(|e| e.data != "[DONE]")
        .filter_map(|e| e.json()["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect()
}

fn gemini_streamed(body: &str) -> String {
    parse_sse(body)
        .iter()
        .map(|e| e.json()["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap().to_owned())
        .collect()
}

async fn stream_anthropic(sim: &nines_sim::Sim, body: &Value) -> String {
    let mut body = body.clone();
    body["stream"] = json!(true);
    anthropic_streamed(&post_anthropic(sim, &body).await.text().await.unwrap())
}

async fn stream_openai(sim: &nines_sim::Sim, body: &Value) -> String {
    let mut body = body.clone();
    body["stream"] = json!(true);
    openai_streamed(&post(sim, OPENAI, &body).await.text().await.unwrap())
}

async fn stream_gemini(sim: &nines_sim::Sim, body: &Value) -> String {
    let url = format!("{}{GEMINI_STREAM}?alt=sse", sim.base_url());
    gemini_streamed(&client().post(url).json(body).send().await.unwrap().text().await.unwrap())
}

const RESULTS: &str = "alpha says: tool said: sunny | 21 degrees | error: no such city [system: sys]";

#[tokio::test]
async fn anthropic_tool_results_are_reported() {
    let sim = sim().await;
    let tool = |id: &str| json!({"type": "tool_use", "id": id, "name": "weather", "input": {}});
    let body = json!({
        "model": "m",
        "max_tokens": 100,
        "system": "sys",
        "tools": [{"name": "weather", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": [tool("t1"), tool("t2"), tool("t3")]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "t2", "content": [
                    {"type": "text", "text": "21 "}, {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    {"type": "text", "text": "degrees"}]},
                {"type": "tool_result", "tool_use_id": "t3", "content": "no such city", "is_error": true}
            ]}
        ]
    });
    let got: Value = post_anthropic(&sim, &body).await.json().await.unwrap();
    assert_eq!(anthropic_text(&got), RESULTS);
    assert_eq!(got["stop_reason"], "end_turn");
    // sys, weather, in, Paris? (results are not prompt text)
    assert_eq!(got["usage"]["input_tokens"], 4);
    assert_eq!(stream_anthropic(&sim, &body).await, RESULTS);

    let mut cut = body.clone();
    cut["stop_sequences"] = json!(["degrees"]);
    let got: Value = post_anthropic(&sim, &cut).await.json().await.unwrap();
    assert_eq!(anthropic_text(&got), "alpha says: tool said: sunny | 21 ");
    assert_eq!(got["stop_reason"], "stop_sequence");
}

#[tokio::test]
async fn openai_tool_results_are_reported() {
    let sim = sim().await;
    let call =
        |id: &str| json!({"id": id, "type": "function", "function": {"name": "weather", "arguments": "{}"}});
    let body = json!({
        "model": "gpt-test",
        "tools": [{"type": "function", "function": {"name": "weather"}}],
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [call("c1"), call("c2"), call("c3")]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "21 "}, {"type": "text", "text": "degrees"}]},
            {"role": "tool", "tool_call_id": "c3", "content": "error: no such city"}
        ]
    });
    let got: Value = post(&sim, OPENAI, &body).await.json().await.unwrap();
    assert_eq!(openai_text(&got), RESULTS);
    assert_eq!(got["choices"][0]["finish_reason"], "stop");
    assert_eq!(stream_openai(&sim, &body).await, RESULTS);

    let mut cut = body.clone();
    cut["max_completion_tokens"] = json!(5);
    let got: Value = post(&sim, OPENAI, &cut).await.json().await.unwrap();
    assert_eq!(openai_text(&got), "alpha says: tool said: sunny");
    assert_eq!(got["choices"][0]["finish_reason"], "length");
}

#[tokio::test]
async fn gemini_function_responses_are_reported() {
    let sim = sim().await;
    let response = |r: Value| json!({"functionResponse": {"name": "weather", "response": r}});
    let body = json!({
        "systemInstruction": {"parts": [{"text": "sys"}]},
        "contents": [
            {"role": "user", "parts": [{"text": "weather in Paris?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {}}}]},
            {"role": "user", "parts": [
                response(json!({"content": "sunny", "result": "ignored"})),
                response(json!({"content": {"not": "a string"}, "result": "21 degrees"})),
                response(json!({"output": "error: no such city"}))
            ]}
        ]
    });
    let got: Value = post(&sim, GEMINI, &body).await.json().await.unwrap();
    assert_eq!(gemini_text(&got), RESULTS);
    assert_eq!(stream_gemini(&sim, &body).await, RESULTS);

    let mut other = body.clone();
    other["contents"][2]["parts"] =
        json!([response(json!({"result": {"temp": 21}})), response(json!({"sky": "blue", "temp": 21}))]);
    let got: Value = post(&sim, GEMINI, &other).await.json().await.unwrap();
    assert_eq!(
        gemini_text(&got),
        r#"alpha says: tool said: {"temp":21} | {"sky":"blue","temp":21} [system: sys]"#
    );
}

#[tokio::test]
async fn images_are_counted_in_every_dialect() {
    let sim = sim().await;
    let expected = "alpha says: what is this? [images: 2]";
    let anthropic = json!({"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "what is this?"}
    ]}]});
    let got: Value = post_anthropic(&sim, &anthropic).await.json().await.unwrap();
    assert_eq!(anthropic_text(&got), expected);
    assert_eq!(stream_anthropic(&sim, &anthropic).await, expected);

    let openai = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}"), "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "what is this?"}
    ]}]});
    let got: Value = post(&sim, OPENAI, &openai).await.json().await.unwrap();
    assert_eq!(openai_text(&got), expected);
    assert_eq!(stream_openai(&sim, &openai).await, expected);

    let gemini = json!({"contents": [{"role": "user", "parts": [
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"file_data": {"mime_type": "image/jpeg", "file_uri": "https://example.com/cat.jpg"}},
        {"inlineData": {"mimeType": "application/pdf", "data": PNG}},
        {"text": "what is this?"}
    ]}]});
    let got: Value = post(&sim, GEMINI, &gemini).await.json().await.unwrap();
    assert_eq!(gemini_text(&got), expected);
    assert_eq!(stream_gemini(&sim, &gemini).await, expected);

    // Only the last message counts.
    let mut earlier = anthropic.clone();
    earlier["messages"].as_array_mut().unwrap().extend([
        json!({"role": "assistant", "content": "a cat"}),
        json!({"role": "user", "content": "sure?"}),
    ]);
    let got: Value = post_anthropic(&sim, &earlier).await.json().await.unwrap();
    assert_eq!(anthropic_text(&got), "alpha says: sure?");
}

async fn anthropic_refuses(sim: &nines_sim::Sim, source: Value, message: &str) {
    let body = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "image", "source": source}, {"type": "text", "text": "hi"}]}]});
    let resp = post_anthropic(sim, &body).await;
    assert_eq!(resp.status(), 400, "{body}");
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert_eq!(err["error"]["message"], message);
}

#[tokio::test]
async fn anthropic_validates_images() {
    let sim = sim().await;
    let at = "messages.0.content.0.image.source";
    anthropic_refuses(
        &sim,
        json!({"type": "base64", "media_type": "image/bmp", "data": PNG}),
        &format!(
            "{at}.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
        ),
    )
    .await;
    anthropic_refuses(
        &sim,
        json!({"type": "base64", "media_type": "image/png", "data": ""}),
        &format!("{at}.base64: image cannot be empty"),
    )
    .await;
    anthropic_refuses(
        &sim,
        json!({"type": "base64", "media_type": "image/png", "data": "%%%"}),
        &format!("{at}.base64: invalid base64 data"),
    )
    .await;
    anthropic_refuses(
        &sim,
        json!({"type": "base64", "media_type": "image/png"}),
        &format!("{at}.base64.data: Field required"),
    )
    .await;
    anthropic_refuses(&sim, json!({"type": "url"}), &format!("{at}.url.url: Field required")).await;
    anthropic_refuses(
        &sim,
        json!({"type": "image_url", "url": "x"}),
        &format!("{at}: Input tag 'image_url' found using 'type' does not match any of the expected tags: 'base64', 'url', 'file'"),
    )
    .await;
}

#[tokio::test]
async fn openai_validates_images() {
    let sim = sim().await;
    let send = |url: &str, detail: Option<&str>| {
        let mut image = json!({"url": url});
        if let Some(detail) = detail {
            image["detail"] = json!(detail);
        }
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "hi"}, {"type": "image_url", "image_url": image}]}]})
    };
    let param = "messages[0].content[1].image_url.url";
    let prefix = format!(
        "Invalid image URL: '{param}'. Expected a base64-encoded data URL with an image MIME type (e.g. \
         'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got "
    );
    for (url, problem) in [
        ("ftp://example.com/cat.png", "a value without the 'data:' prefix."),
        ("data:text/plain;base64,aGk=", "unsupported MIME type 'text/plain'."),
        ("data:image/png;base64,", "empty base64-encoded bytes."),
    ] {
        let err: Value = post(&sim, OPENAI, &send(url, None)).await.json().await.unwrap();
        assert_eq!(err["error"]["message"], format!("{prefix}{problem}"), "{url}");
        assert_eq!(err["error"]["param"], param);
        assert_eq!(err["error"]["code"], "invalid_value");
    }
    let resp = post(&sim, OPENAI, &send("data:image/bmp;base64,Qk0=", None)).await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(
        err["error"]["message"],
        "You uploaded an unsupported image. Please make sure your image has of one the following formats: \
         ['png', 'jpeg', 'gif', 'webp']."
    );
    assert_eq!(err["error"]["code"], "invalid_image_format");
    let err: Value = post(&sim, OPENAI, &send("https://x/y.png", Some("huge"))).await.json().await.unwrap();
    assert_eq!(err["error"]["param"], "messages[0].content[1].image_url.detail");
}

#[tokio::test]
async fn gemini_validates_images() {
    let sim = sim().await;
    for (part, needle) in [
        (json!({"inlineData": {"mimeType": "image/gif", "data": PNG}}), "Unsupported MIME type: image/gif"),
        (json!({"inlineData": {"mimeType": "image/png", "data": "%%%"}}), "Base64 decoding failed"),
        (json!({"inlineData": {"mimeType": "image/png", "data": ""}}), "inline_data.data"),
        (json!({"inlineData": {"data": PNG}}), "mime_type is required"),
        (json!({"fileData": {"mimeType": "image/png"}}), "file_uri is required"),
    ] {
        let body = json!({"contents": [{"parts": [part, {"text": "hi"}]}]});
        let resp = post(&sim, GEMINI, &body).await;
        assert_eq!(resp.status(), 400, "{body}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["status"], "INVALID_ARGUMENT");
        assert!(err["error"]["message"].as_str().unwrap().contains(needle), "{err}");
    }
}

const JSON_ANSWER: &str = r#"{"answer":"alpha says: one two three json [system: sys]"}"#;

#[tokio::test]
async fn json_mode_wraps_the_answer_uncut() {
    let sim = sim().await;
    let mut anthropic = anthropic_body("one two three json");
    anthropic["system"] = json!("sys");
    anthropic["max_tokens"] = json!(2);
    anthropic["stop_sequences"] = json!(["two"]);
    anthropic["output_config"] =
        json!({"format": {"type": "json_schema", "schema": {"type": "object"}}, "effort": "low"});
    let got: Value = post_anthropic(&sim, &anthropic).await.json().await.unwrap();
    assert_eq!(anthropic_text(&got), JSON_ANSWER);
    assert_eq!(got["stop_reason"], "end_turn");
    assert_eq!(got["usage"]["output_tokens"], 8);
    assert_eq!(stream_anthropic(&sim, &anthropic).await, JSON_ANSWER);
    let mut beta = anthropic.clone();
    beta.as_object_mut().unwrap().remove("output_config");
    beta["output_format"] = json!({"type": "json_schema", "schema": {"type": "object"}});
    let got: Value = post_anthropic(&sim, &beta).await.json().await.unwrap();
    assert_eq!(anthropic_text(&got), JSON_ANSWER);
    beta["output_format"] = json!({"type": "json_object"});
    let err: Value = post_anthropic(&sim, &beta).await.json().await.unwrap();
    assert_eq!(err["error"]["message"], "output_format.type: Input should be 'json_schema'");

    for format in [
        json!({"type": "json_object"}),
        json!({"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": true}}),
    ] {
        let body = json!({"model": "m", "response_format": format, "max_tokens": 2, "stop": "two", "messages": [
            {"role": "system", "content": "sys"}, {"role": "user", "content": "one two three json"}]});
        let got: Value = post(&sim, OPENAI, &body).await.json().await.unwrap();
        assert_eq!(openai_text(&got), JSON_ANSWER, "{format}");
        assert_eq!(got["choices"][0]["finish_reason"], "stop");
        assert_eq!(stream_openai(&sim, &body).await, JSON_ANSWER);
    }

    let gemini = json!({
        "systemInstruction": {"parts": [{"text": "sys"}]},
        "contents": [{"parts": [{"text": "one two three json"}]}],
        "generationConfig": {"responseMimeType": "application/json", "responseSchema": {"type": "OBJECT"},
                             "maxOutputTokens": 2, "stopSequences": ["two"]}
    });
    let got: Value = post(&sim, GEMINI, &gemini).await.json().await.unwrap();
    assert_eq!(gemini_text(&got), JSON_ANSWER);
    assert_eq!(got["candidates"][0]["finishReason"], "STOP");
    assert_eq!(stream_gemini(&sim, &gemini).await, JSON_ANSWER);
}

#[tokio::test]
async fn json_mode_is_validated() {
    let sim = sim().await;
    let openai = |format: Value, text: &str| json!({"model": "m", "response_format": format, "messages": [{"role": "user", "content": text}]});
    let err: Value =
        post(&sim, OPENAI, &openai(json!({"type": "json_object"}), "hi")).await.json().await.unwrap();
    assert_eq!(
        err["error"]["message"],
        "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'."
    );
    assert_eq!(err["error"]["param"], "messages");
    let err: Value =
        post(&sim, OPENAI, &openai(json!({"type": "json_schema", "json_schema": {"schema": {}}}), "hi"))
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(err["error"]["message"], "Missing required parameter: 'response_format.json_schema.name'.");
    let err: Value = post(&sim, OPENAI, &openai(json!({"type": "xml"}), "hi")).await.json().await.unwrap();
    assert_eq!(err["error"]["param"], "response_format.type");
    let got: Value = post(&sim, OPENAI, &openai(json!({"type": "text"}), "hi")).await.json().await.unwrap();
    assert_eq!(openai_text(&got), "alpha says: hi");

    for config in
        [json!({"responseMimeType": "application/pdf"}), json!({"responseSchema": {"type": "OBJECT"}})]
    {
        let body = json!({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": config});
        let resp = post(&sim, GEMINI, &body).await;
        assert_eq!(resp.status(), 400, "{body}");
        let err: Value = resp.json().await.unwrap();
        assert!(err["error"]["message"].as_str().unwrap().contains("response_mime_type"), "{err}");
    }
    let mut anthropic = anthropic_body("hi");
    anthropic["output_config"] = json!({"effort": "extreme"});
    let err: Value = post_anthropic(&sim, &anthropic).await.json().await.unwrap();
    assert_eq!(
        err["error"]["message"],
        "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"
    );
}
