#!/usr/bin/env python3
"""A tiny logging HTTP endpoint for finding out what an agent sends (see README.md, "Capturing requests").

    capture.py LOG_FILE [--mode error|text|script] [--status 500] [--should-retry false|true|none]

Listens on 127.0.0.1 (a free port), prints `capture listening on http://127.0.0.1:PORT` and records every request
(method, path, headers, body) as one JSON line in LOG_FILE. It never calls a tool:

- `error` (default): every request gets STATUS with a small JSON error (and `x-should-retry: false` unless told
  otherwise, which the Anthropic and OpenAI SDKs honour), so the agent gives up after its own retry policy;
- `text`: model calls get a minimal valid text-only answer in the dialect of the path (Anthropic Messages, OpenAI
  Responses or Chat Completions, Gemini generateContent), plain or streamed as asked, so the agent finishes a turn and
  any follow-up requests (titles, summaries, ...) show up too. Everything else gets 404.
- `script`: like `text`, but follows `[[sim:call NAME ARGS_JSON]]` directives in the user's text the way the
  simulator is meant to (the N-th directive is answered with that tool call while the conversation holds fewer than N
  tool results; then the text `capture says: tool said: {last tool output}`), so an agent's real tool loop can be
  checked without the simulator. Only the tools named in directives are ever called.

Standard library only; stops on SIGTERM/SIGINT.
"""

import argparse
import http.server
import json
import re
import sys
import threading
import time

ANSWER = "capture says: hello"
DIRECTIVE = re.compile(r"\[\[sim:call (\S+) (\{.*?\})\]\]")


def _texts(content):
    """The text pieces of one message's content (a string, or a list of blocks / parts)."""
    if isinstance(content, str):
        return [content]
    out = []
    for block in content or []:
        if isinstance(block, dict):
            if block.get("type") in ("text", "input_text") and isinstance(block.get("text"), str):
                out.append(block["text"])
            elif "text" in block and "type" not in block and isinstance(block["text"], str):
                out.append(block["text"])  # a Gemini part
    return out


def _flatten(value):
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(_flatten(v) for v in value)
    if isinstance(value, dict):
        if "text" in value and isinstance(value["text"], str):
            return value["text"]
        return json.dumps(value)
    return str(value)


def script_state(dialect, body):
    """(user texts, tool outputs in order) of a request in the given dialect."""
    users, outputs = [], []
    if dialect == "anthropic":
        for m in body.get("messages") or []:
            content = m.get("content")
            if m.get("role") == "user":
                users += _texts(content)
                for block in content if isinstance(content, list) else []:
                    if isinstance(block, dict) and block.get("type") == "tool_result":
                        outputs.append(_flatten(block.get("content")))
    elif dialect == "responses":
        items = body.get("input")
        if isinstance(items, str):
            items = [{"type": "message", "role": "user", "content": items}]
        for it in items or []:
            if it.get("type", "message") == "message" and it.get("role") == "user":
                users += _texts(it.get("content"))
            elif it.get("type") in ("function_call_output", "custom_tool_call_output"):
                outputs.append(_flatten(it.get("output")))
    elif dialect == "chat":
        for m in body.get("messages") or []:
            if m.get("role") == "user":
                users += _texts(m.get("content"))
            elif m.get("role") == "tool":
                outputs.append(_flatten(m.get("content")))
    elif dialect == "gemini":
        for c in body.get("contents") or []:
            for part in c.get("parts") or []:
                if "functionResponse" in part:
                    outputs.append(_flatten(part["functionResponse"].get("response")))
                elif c.get("role", "user") == "user" and isinstance(part.get("text"), str):
                    users.append(part["text"])
    return users, outputs


def script_step(dialect, body):
    """None (answer text ANSWER), or ("call", name, args), or ("text", answer)."""
    users, outputs = script_state(dialect, body)
    directives = DIRECTIVE.findall("\n".join(users))
    if len(outputs) < len(directives):
        name, args = directives[len(outputs)]
        return ("call", name, json.loads(args))
    if outputs:
        return ("text", f"capture says: tool said: {outputs[-1]}")
    return None


def sse(events):
    out = []
    for name, data in events:
        if name:
            out.append(f"event: {name}\n")
        out.append(f"data: {json.dumps(data)}\n\n")
    return "".join(out).encode()


def anthropic_answer(body, step=None):
    model = body.get("model", "m")
    if step and step[0] == "call":
        block, stop = {"type": "tool_use", "id": "toolu_capture_%d" % time.time_ns(), "name": step[1],
                       "input": step[2]}, "tool_use"
    else:
        block, stop = {"type": "text", "text": step[1] if step else ANSWER}, "end_turn"
    msg = {"id": "msg_capture", "type": "message", "role": "assistant", "model": model,
           "content": [block], "stop_reason": stop, "stop_sequence": None,
           "usage": {"input_tokens": 1, "output_tokens": 1}}
    if not body.get("stream"):
        return "application/json", json.dumps(msg).encode()
    start = {**msg, "content": [], "stop_reason": None, "usage": {"input_tokens": 1, "output_tokens": 0}}
    if block["type"] == "text":
        opening, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": block["text"]}
    else:
        opening = {**block, "input": {}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
    return "text/event-stream", sse([
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": opening}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                           "usage": {"output_tokens": 1}}),
        ("message_stop", {"type": "message_stop"}),
    ])


def responses_answer(body, step=None):
    if step and step[0] == "call":
        return responses_call(body, step[1], json.dumps(step[2]))
    item = {"id": "msg_capture", "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": step[1] if step else ANSWER, "annotations": []}]}
    usage = {"input_tokens": 1, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 1,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 2}
    resp = {"id": "resp_capture", "object": "response", "created_at": int(time.time()), "status": "completed",
            "model": body.get("model", "m"), "output": [item], "usage": usage}
    if not body.get("stream"):
        return "application/json", json.dumps(resp).encode()
    partial = {**item, "status": "in_progress", "content": []}
    return "text/event-stream", sse([
        ("response.created", {"type": "response.created", "sequence_number": 0,
                              "response": {**resp, "status": "in_progress", "output": [], "usage": None}}),
        ("response.output_item.added", {"type": "response.output_item.added", "sequence_number": 1,
                                        "output_index": 0, "item": partial}),
        ("response.output_text.delta", {"type": "response.output_text.delta", "sequence_number": 2,
                                        "item_id": item["id"], "output_index": 0, "content_index": 0,
                                        "delta": item["content"][0]["text"]}),
        ("response.output_item.done", {"type": "response.output_item.done", "sequence_number": 3,
                                       "output_index": 0, "item": item}),
        ("response.completed", {"type": "response.completed", "sequence_number": 4, "response": resp}),
    ])


def responses_call(body, name, arguments):
    item = {"id": "fc_capture", "type": "function_call", "status": "completed", "call_id": "call_capture_%d" %
            time.time_ns(), "name": name, "arguments": arguments}
    usage = {"input_tokens": 1, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 1,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 2}
    resp = {"id": "resp_capture", "object": "response", "created_at": int(time.time()), "status": "completed",
            "model": body.get("model", "m"), "output": [item], "usage": usage}
    if not body.get("stream"):
        return "application/json", json.dumps(resp).encode()
    return "text/event-stream", sse([
        ("response.created", {"type": "response.created", "sequence_number": 0,
                              "response": {**resp, "status": "in_progress", "output": [], "usage": None}}),
        ("response.output_item.added", {"type": "response.output_item.added", "sequence_number": 1,
                                        "output_index": 0, "item": {**item, "status": "in_progress",
                                                                     "arguments": ""}}),
        ("response.function_call_arguments.delta", {"type": "response.function_call_arguments.delta",
                                                    "sequence_number": 2, "item_id": item["id"],
                                                    "output_index": 0, "delta": arguments}),
        ("response.function_call_arguments.done", {"type": "response.function_call_arguments.done",
                                                   "sequence_number": 3, "item_id": item["id"],
                                                   "output_index": 0, "arguments": arguments}),
        ("response.output_item.done", {"type": "response.output_item.done", "sequence_number": 4,
                                       "output_index": 0, "item": item}),
        ("response.completed", {"type": "response.completed", "sequence_number": 5, "response": resp}),
    ])


def chat_answer(body):
    model = body.get("model", "m")
    if not body.get("stream"):
        return "application/json", json.dumps({
            "id": "chatcmpl-capture", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
    base = {"id": "chatcmpl-capture", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ANSWER},
                                    "finish_reason": None}]},
              {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
    return "text/event-stream", sse([(None, c) for c in chunks]) + b"data: [DONE]\n\n"


def gemini_answer(body, stream, step=None):
    if step and step[0] == "call":
        part = {"functionCall": {"name": step[1], "args": step[2]}}
    else:
        part = {"text": step[1] if step else ANSWER}
    chunk = {"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP",
                             "index": 0}],
             "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
             "modelVersion": "capture"}
    if not stream:
        return "application/json", json.dumps(chunk).encode()
    return "text/event-stream", sse([(None, chunk)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--mode", choices=["error", "text", "script"], default="error")
    ap.add_argument("--status", type=int, default=500)
    ap.add_argument("--should-retry", choices=["true", "false", "none"], default="false",
                    help="the x-should-retry header on errors (none: no header)")
    args = ap.parse_args()
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _handle(self):
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                raw = b""
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    raw += self.rfile.read(size)
                    self.rfile.readline()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = {"_raw": raw[:4000].decode("utf-8", "replace")}
            record = {"t": time.time(), "method": self.command, "path": self.path,
                      "headers": dict(self.headers.items()), "body": body}
            with lock, open(args.log, "a") as f:
                f.write(json.dumps(record) + "\n")

            status, ctype, payload = self._answer(body if isinstance(body, dict) else {})
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(payload)))
            if status >= 400 and args.should_retry != "none":
                self.send_header("x-should-retry", args.should_retry)
            self.end_headers()
            self.wfile.write(payload)

        def _answer(self, body):
            path = self.path.split("?")[0]
            if args.mode in ("text", "script") and self.command == "POST":
                def step(dialect):
                    return script_step(dialect, body) if args.mode == "script" else None
                if path.endswith("/messages"):
                    return (200, *anthropic_answer(body, step("anthropic")))
                if path.endswith("/responses"):
                    return (200, *responses_answer(body, step("responses")))
                if path.endswith("/chat/completions"):
                    return (200, *chat_answer(body))
                if path.endswith(":generateContent"):
                    return (200, *gemini_answer(body, False, step("gemini")))
                if path.endswith(":streamGenerateContent"):
                    return (200, *gemini_answer(body, True, step("gemini")))
            status = args.status if args.mode == "error" else 404
            err = {"type": "error", "error": {"type": "api_error", "message": f"capture: {status}",
                                              "code": status, "status": "UNAVAILABLE"}}
            return status, "application/json", json.dumps(err).encode()

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # clients that hang up (an agent killed at its timeout) are not our business

    server = Server(("127.0.0.1", 0), Handler)
    print(f"capture listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    main()
