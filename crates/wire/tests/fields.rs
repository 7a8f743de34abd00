//! The field table of docs/fields.md, checked: for every field of both front doors, what each provider kind does
//! with it. Each claim is verified by encoding a sample request; the table is rendered from the same data and must
//! match the file (run with NINES_UPDATE_DOCS=1 to rewrite it after a deliberate change).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)] // test code: failing loudly is its job

use nines_wire::{Dialect, EncodeOpts};
use serde_json::{Value, json};

enum Fate {
    /// Carried: the encoded body has a value at this JSON pointer (`None`: carried outside the body, e.g. the URL).
    Mapped(Option<&'static str>, &'static str),
    /// Carried with a change of form the client should know about; reported in `x-nines-warning`.
    Approximated(&'static str, &'static str),
    /// Left out, reported in `x-nines-warning` (the named text appears in the dropped list).
    Dropped(&'static str),
    /// The target cannot carry it: skipped, and a 400 naming the field if no target can.
    Rejected,
}

use Fate::*;

struct Row {
    field: &'static str,
    body: Value,
    /// (target dialect, fate) for the two dialects other than the door's.
    fates: [(Dialect, Fate); 2],
}

fn openai(extra: Value) -> Value {
    let mut b = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    merge(&mut b, extra);
    b
}

fn anthropic(extra: Value) -> Value {
    let mut b = json!({"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
    merge(&mut b, extra);
    b
}

fn merge(b: &mut Value, extra: Value) {
    if let (Some(o), Value::Object(e)) = (b.as_object_mut(), extra) {
        o.extend(e);
    }
}

const A: Dialect = Dialect::Anthropic;
const O: Dialect = Dialect::OpenAiChat;
const G: Dialect = Dialect::Gemini;

fn openai_rows() -> Vec<Row> {
    let tool_turns = json!({"messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"}]});
    let tools = json!({"tools": [{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]});
    let with_tools = |extra: Value| {
        let mut b = openai(tools.clone());
        merge(&mut b, extra);
        b
    };
    vec![
        Row {
            field: "`messages[].role: system / developer`",
            body: json!({"model": "m", "messages": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}]}),
            fates: [
                (A, Mapped(Some("/system"), "`system`")),
                (G, Mapped(Some("/systemInstruction"), "`systemInstruction`")),
            ],
        },
        Row {
            field: "`content[].image_url` (data: or https URL)",
            body: json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "what?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}}]}]}),
            fates: [
                (
                    A,
                    Mapped(Some("/messages/0/content/1/source/data"), "`image` block (base64 or url source)"),
                ),
                (G, Mapped(Some("/contents/0/parts/1/inlineData"), "`inlineData` / `fileData`")),
            ],
        },
        Row {
            field: "`tool_calls`, `tool` messages",
            body: openai(tool_turns),
            fates: [
                (
                    A,
                    Mapped(
                        Some("/messages/2/content/0/tool_use_id"),
                        "`tool_use` / `tool_result` blocks, same ids",
                    ),
                ),
                (
                    G,
                    Mapped(
                        Some("/contents/2/parts/0/functionResponse/name"),
                        "`functionCall` / `functionResponse` (name from the call)",
                    ),
                ),
            ],
        },
        Row {
            field: "`tools` (function)",
            body: with_tools(json!({})),
            fates: [
                (A, Mapped(Some("/tools/0/input_schema"), "`tools[].input_schema`")),
                (
                    G,
                    Mapped(
                        Some("/tools/0/functionDeclarations/0/parametersJsonSchema"),
                        "`functionDeclarations[].parametersJsonSchema`",
                    ),
                ),
            ],
        },
        Row {
            field: "`tool_choice`",
            body: with_tools(json!({"tool_choice": "required"})),
            fates: [
                (A, Mapped(Some("/tool_choice/type"), "`tool_choice` (auto/any/none/tool)")),
                (
                    G,
                    Mapped(
                        Some("/toolConfig/functionCallingConfig/mode"),
                        "`functionCallingConfig` (AUTO/ANY/NONE, allowedFunctionNames)",
                    ),
                ),
            ],
        },
        Row {
            field: "`parallel_tool_calls: false`",
            body: with_tools(json!({"parallel_tool_calls": false})),
            fates: [
                (
                    A,
                    Mapped(
                        Some("/tool_choice/disable_parallel_tool_use"),
                        "`tool_choice.disable_parallel_tool_use`",
                    ),
                ),
                (G, Dropped("parallel_tool_calls")),
            ],
        },
        Row {
            field: "`response_format: json_schema`",
            body: openai(
                json!({"response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}}}),
            ),
            fates: [
                (A, Mapped(Some("/output_config/format/schema"), "`output_config.format`")),
                (
                    G,
                    Mapped(
                        Some("/generationConfig/responseJsonSchema"),
                        "`responseMimeType` + `responseJsonSchema`",
                    ),
                ),
            ],
        },
        Row {
            field: "`response_format: json_object`",
            body: openai(json!({"response_format": {"type": "json_object"}})),
            fates: [
                (A, Approximated("response_format json_object", "an instruction in `system`")),
                (
                    G,
                    Mapped(
                        Some("/generationConfig/responseMimeType"),
                        "`responseMimeType: application/json`",
                    ),
                ),
            ],
        },
        Row {
            field: "`reasoning_effort`",
            body: openai(json!({"reasoning_effort": "high"})),
            fates: [
                (
                    A,
                    Mapped(
                        Some("/thinking/budget_tokens"),
                        "`thinking.budget_tokens` (low 1024, medium 4096, high 16384)",
                    ),
                ),
                (
                    G,
                    Mapped(
                        Some("/generationConfig/thinkingConfig/thinkingBudget"),
                        "`thinkingConfig.thinkingBudget`",
                    ),
                ),
            ],
        },
        Row {
            field: "`max_completion_tokens` / `max_tokens`",
            body: openai(json!({"max_completion_tokens": 50})),
            fates: [
                (A, Mapped(Some("/max_tokens"), "`max_tokens` (4096 when absent: Anthropic requires it)")),
                (G, Mapped(Some("/generationConfig/maxOutputTokens"), "`maxOutputTokens`")),
            ],
        },
        Row {
            field: "`temperature`",
            body: openai(json!({"temperature": 0.5})),
            fates: [
                (
                    A,
                    Mapped(
                        Some("/temperature"),
                        "`temperature` (clamped to [0, 1]; dropped with warning under API version 2026-10-21)",
                    ),
                ),
                (G, Mapped(Some("/generationConfig/temperature"), "`temperature`")),
            ],
        },
        Row {
            field: "`top_p`",
            body: openai(json!({"top_p": 0.9})),
            fates: [
                (
                    A,
                    Mapped(
                        Some("/top_p"),
                        "`top_p` (dropped with warning beside `temperature`: Claude takes one)",
                    ),
                ),
                (G, Mapped(Some("/generationConfig/topP"), "`topP`")),
            ],
        },
        Row {
            field: "`stop`",
            body: openai(json!({"stop": ["END"]})),
            fates: [
                (A, Mapped(Some("/stop_sequences"), "`stop_sequences`")),
                (G, Mapped(Some("/generationConfig/stopSequences"), "`stopSequences` (first 5)")),
            ],
        },
        Row {
            field: "`stream`, `stream_options.include_usage`",
            body: openai(json!({"stream": true, "stream_options": {"include_usage": true}})),
            fates: [
                (A, Mapped(Some("/stream"), "`stream`; usage always reported")),
                (G, Mapped(None, "`:streamGenerateContent?alt=sse`; usage always reported")),
            ],
        },
        Row {
            field: "`user` / `safety_identifier`",
            body: openai(json!({"user": "u-1"})),
            fates: [(A, Mapped(Some("/metadata/user_id"), "`metadata.user_id`")), (G, Dropped("user"))],
        },
        Row { field: "`n` > 1", body: openai(json!({"n": 2})), fates: [(A, Rejected), (G, Rejected)] },
        Row {
            field: "`functions`, `function_call` (legacy)",
            body: openai(json!({"functions": [{"name": "f"}]})),
            fates: [(A, Rejected), (G, Rejected)],
        },
        Row {
            field: "`audio`, `web_search_options`",
            body: openai(json!({"web_search_options": {}})),
            fates: [(A, Rejected), (G, Rejected)],
        },
        Row {
            field: "`seed`",
            body: openai(json!({"seed": 7})),
            fates: [(A, Dropped("seed")), (G, Dropped("seed"))],
        },
        Row {
            field: "`presence_penalty`, `frequency_penalty`, `logit_bias`, `logprobs`, any other",
            body: openai(json!({"presence_penalty": 0.5})),
            fates: [(A, Dropped("presence_penalty")), (G, Dropped("presence_penalty"))],
        },
    ]
}

fn anthropic_rows() -> Vec<Row> {
    let tools = json!({"tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]});
    let with_tools = |extra: Value| {
        let mut b = anthropic(tools.clone());
        merge(&mut b, extra);
        b
    };
    let tool_turns = json!({"messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]}]});
    vec![
        Row {
            field: "`system`",
            body: anthropic(json!({"system": "be brief"})),
            fates: [
                (O, Mapped(Some("/messages/0/content"), "a `system` message")),
                (G, Mapped(Some("/systemInstruction"), "`systemInstruction`")),
            ],
        },
        Row {
            field: "`image` blocks (base64 or url)",
            body: anthropic(
                json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}}]}]}),
            ),
            fates: [
                (O, Mapped(Some("/messages/0/content/0/image_url/url"), "`image_url` (data: URL or https)")),
                (G, Mapped(Some("/contents/0/parts/0/inlineData/data"), "`inlineData` / `fileData`")),
            ],
        },
        Row {
            field: "`tool_use` / `tool_result` blocks",
            body: anthropic(tool_turns),
            fates: [
                (
                    O,
                    Mapped(
                        Some("/messages/1/tool_calls/0/function/arguments"),
                        "`tool_calls` / `tool` messages, same ids",
                    ),
                ),
                (
                    G,
                    Mapped(
                        Some("/contents/1/parts/0/functionCall/args"),
                        "`functionCall` / `functionResponse`",
                    ),
                ),
            ],
        },
        Row {
            field: "`tools` (custom)",
            body: with_tools(json!({})),
            fates: [
                (O, Mapped(Some("/tools/0/function/parameters"), "`tools[].function`")),
                (G, Mapped(Some("/tools/0/functionDeclarations/0/name"), "`functionDeclarations`")),
            ],
        },
        Row {
            field: "`tools` (server tools: web search, code execution…)",
            body: anthropic(json!({"tools": [{"type": "web_search_20250305", "name": "web_search"}]})),
            fates: [(O, Rejected), (G, Rejected)],
        },
        Row {
            field: "`tool_choice`",
            body: with_tools(json!({"tool_choice": {"type": "any"}})),
            fates: [
                (O, Mapped(Some("/tool_choice"), "`tool_choice` (auto/required/none/function)")),
                (G, Mapped(Some("/toolConfig/functionCallingConfig/mode"), "`functionCallingConfig`")),
            ],
        },
        Row {
            field: "`tool_choice.disable_parallel_tool_use`",
            body: with_tools(json!({"tool_choice": {"type": "auto", "disable_parallel_tool_use": true}})),
            fates: [
                (O, Mapped(Some("/parallel_tool_calls"), "`parallel_tool_calls: false`")),
                (G, Dropped("parallel_tool_calls")),
            ],
        },
        Row {
            field: "`thinking` (budget)",
            body: anthropic(
                json!({"max_tokens": 8000, "thinking": {"type": "enabled", "budget_tokens": 4096}}),
            ),
            fates: [
                (
                    O,
                    Mapped(
                        Some("/reasoning_effort"),
                        "`reasoning_effort` (only to targets declaring `reasoning`)",
                    ),
                ),
                (
                    G,
                    Mapped(
                        Some("/generationConfig/thinkingConfig/thinkingBudget"),
                        "`thinkingConfig` (`includeThoughts`)",
                    ),
                ),
            ],
        },
        Row {
            field: "`output_config.format` (json_schema)",
            body: anthropic(
                json!({"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}}),
            ),
            fates: [
                (O, Mapped(Some("/response_format/json_schema/schema"), "`response_format: json_schema`")),
                (G, Mapped(Some("/generationConfig/responseJsonSchema"), "`responseJsonSchema`")),
            ],
        },
        Row {
            field: "`max_tokens`",
            body: anthropic(json!({})),
            fates: [
                (
                    O,
                    Mapped(
                        Some("/max_completion_tokens"),
                        "`max_completion_tokens` (`max_tokens` for compatible servers)",
                    ),
                ),
                (G, Mapped(Some("/generationConfig/maxOutputTokens"), "`maxOutputTokens`")),
            ],
        },
        Row {
            field: "`temperature`",
            body: anthropic(json!({"temperature": 0.3})),
            fates: [
                (O, Mapped(Some("/temperature"), "`temperature`")),
                (G, Mapped(Some("/generationConfig/temperature"), "`temperature`")),
            ],
        },
        Row {
            field: "`top_k`",
            body: anthropic(json!({"top_k": 5})),
            fates: [(O, Dropped("top_k")), (G, Mapped(Some("/generationConfig/topK"), "`topK`"))],
        },
        Row {
            field: "`stop_sequences`",
            body: anthropic(json!({"stop_sequences": ["END"]})),
            fates: [
                (O, Mapped(Some("/stop"), "`stop` (first 4)")),
                (G, Mapped(Some("/generationConfig/stopSequences"), "`stopSequences` (first 5)")),
            ],
        },
        Row {
            field: "`metadata.user_id`",
            body: anthropic(json!({"metadata": {"user_id": "u-1"}})),
            fates: [(O, Mapped(Some("/user"), "`user`")), (G, Dropped("user"))],
        },
        Row {
            field: "`mcp_servers`, `container`",
            body: anthropic(json!({"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]})),
            fates: [(O, Rejected), (G, Rejected)],
        },
        Row {
            field: "`service_tier`, `context_management`, any other",
            body: anthropic(json!({"service_tier": "auto"})),
            fates: [(O, Dropped("service_tier")), (G, Dropped("service_tier"))],
        },
    ]
}

fn check(door: Dialect, row: &Row) -> Vec<String> {
    let req = door.decode_request(row.body.to_string().as_bytes()).unwrap();
    let opts = EncodeOpts::default();
    row.fates
        .iter()
        .map(|(target, fate)| {
            let out = target.encode_request(&req, "m", &opts);
            let ctx = format!("{door} `{}` → {target}", row.field);
            match fate {
                Mapped(ptr, how) => {
                    let enc = out.unwrap_or_else(|e| panic!("{ctx}: refused: {e}"));
                    if let Some(p) = ptr {
                        let v: Value = serde_json::from_slice(&enc.body).unwrap();
                        assert!(v.pointer(p).is_some_and(|x| !x.is_null()), "{ctx}: nothing at {p} in {v}");
                    }
                    format!("mapped: {how}")
                }
                Approximated(note, how) => {
                    let enc = out.unwrap_or_else(|e| panic!("{ctx}: refused: {e}"));
                    assert!(
                        enc.dropped.iter().any(|d| d.contains(note)),
                        "{ctx}: no warning {note:?} in {:?}",
                        enc.dropped
                    );
                    format!("approximated: {how} (warning)")
                }
                Dropped(note) => {
                    let enc = out.unwrap_or_else(|e| panic!("{ctx}: refused: {e}"));
                    assert!(
                        enc.dropped.iter().any(|d| d.contains(note)),
                        "{ctx}: no warning {note:?} in {:?}",
                        enc.dropped
                    );
                    "dropped with warning".to_owned()
                }
                Rejected => {
                    assert!(out.is_err(), "{ctx}: expected a refusal");
                    "rejected: target skipped (400 if none can)".to_owned()
                }
            }
        })
        .collect()
}

fn render() -> String {
    let mut md = String::new();
    for (door, title, rows) in [
        (O, "`POST /v1/chat/completions` (OpenAI)", openai_rows()),
        (A, "`POST /v1/messages` (Anthropic)", anthropic_rows()),
    ] {
        md.push_str(&format!(
            "\n### {title}\n\n| field | → anthropic | → openai | → gemini |\n|---|---|---|---|\n"
        ));
        for row in &rows {
            let cells = check(door, row);
            let cell = |d: Dialect| {
                if d == door {
                    "passed through unchanged".to_owned()
                } else {
                    let i = row.fates.iter().position(|(t, _)| *t == d).unwrap();
                    cells[i].clone()
                }
            };
            md.push_str(&format!("| {} | {} | {} | {} |\n", row.field, cell(A), cell(O), cell(G)));
        }
    }
    md
}

#[test]
fn the_field_table_in_docs_is_true() {
    let table = render();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/fields.md");
    let doc = std::fs::read_to_string(path).unwrap_or_default();
    let (begin, end) = ("<!-- fields:begin -->", "<!-- fields:end -->");
    let current = doc.split(begin).nth(1).and_then(|rest| rest.split(end).next()).unwrap_or_default();
    if std::env::var("NINES_UPDATE_DOCS").is_ok() {
        let head = doc.split(begin).next().unwrap_or_default().to_owned();
        let tail = doc.split(end).nth(1).unwrap_or("\n").to_owned();
        std::fs::write(path, format!("{head}{begin}{table}{end}{tail}")).unwrap();
        return;
    }
    assert_eq!(current, table, "docs/fields.md is stale: rerun with NINES_UPDATE_DOCS=1 and review the diff");
}
