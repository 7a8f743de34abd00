// An OpenAI-format HTTP server over node-llama-cpp (npm's node-llama-cpp ships llama.cpp's bindings, not llama-server).
//   node openai-server.mjs MODEL.gguf PORT        listens on 127.0.0.1:PORT
//   POST /v1/chat/completions (stream or not; stream_options.include_usage), GET /v1/models, GET /health
// CPU only, never downloads or compiles anything. One sequence: requests are served one at a time, in order.
// Env: LLAMA_THREADS (default 1: llama.cpp's default thread count is ~300x slower on a tiny model on a small machine).
import http from "node:http";
import path from "node:path";
import {getLlama, LlamaChatSession} from "node-llama-cpp";

const [modelPath, port] = process.argv.slice(2);
if (!modelPath || !/^\d+$/.test(port ?? "")) {
  console.error("usage: node openai-server.mjs MODEL.gguf PORT");
  process.exit(2);
}
const MAX_BODY = 1024 * 1024;
const llama = await getLlama({gpu: false, build: "never"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: 4096, sequences: 1,
  threads: Number(process.env.LLAMA_THREADS ?? 1)});
const modelId = model.fileInfo.metadata?.general?.name ?? path.basename(modelPath, ".gguf");

class ApiError extends Error {
  constructor(status, message, {type = "invalid_request_error", param = null, code = null, headers = {}} = {}) {
    super(message);
    Object.assign(this, {status, type, param, code, headers});
  }
}
const errorBody = e => ({error: {message: e.message, type: e.type, param: e.param, code: e.code}});
const json = (res, status, body, headers = {}) => {
  res.writeHead(status, {"content-type": "application/json", ...headers});
  res.end(JSON.stringify(body));
};

// The body, refused past MAX_BODY (by its content-length, or once it grows past it).
const readBody = req => new Promise((resolve, reject) => {
  const tooLarge = new ApiError(413, `the request body is larger than ${MAX_BODY} bytes`, {code: "request_too_large",
    headers: {connection: "close"}});  // the rest of the body is not read
  if (Number(req.headers["content-length"] ?? 0) > MAX_BODY) return reject(tooLarge);
  const chunks = [];
  let size = 0;
  req.on("data", c => { size += c.length; if (size <= MAX_BODY) chunks.push(c); });
  req.on("end", () => (size > MAX_BODY ? reject(tooLarge) : resolve(Buffer.concat(chunks).toString("utf8"))));
  req.on("error", reject);
});

// A message's text: a string, or a list of text parts. Anything else is refused.
function textOf(m, i) {
  const param = `messages[${i}].content`;
  if (typeof m?.content === "string") return m.content;
  if (Array.isArray(m?.content) && m.content.every(p => p?.type === "text" && typeof p.text === "string"))
    return m.content.map(p => p.text).join("");
  throw new ApiError(400, `${param}: a string (or a list of text parts) is required`, {param});
}

// The request, checked: system text, earlier turns, the last user text, generation options.
function parse(raw) {
  let r;
  try {
    r = JSON.parse(raw);
  } catch (e) {
    throw new ApiError(400, `invalid JSON body: ${e.message}`, {code: "invalid_json"});
  }
  if (r === null || typeof r !== "object" || Array.isArray(r))
    throw new ApiError(400, "the body must be a JSON object");
  if (r.messages === undefined) throw new ApiError(400, "messages: required", {param: "messages"});
  if (!Array.isArray(r.messages)) throw new ApiError(400, "messages: must be an array", {param: "messages"});
  if (r.messages.length === 0) throw new ApiError(400, "messages: must not be empty", {param: "messages"});
  const texts = r.messages.map(textOf);
  // Checked here: a wrong type deep in node-llama-cpp's sampler is an uncaught exception (the process dies).
  const number = (param, ok, dflt) => {
    const v = r[param] ?? dflt;
    if (typeof v !== "number" || !ok(v)) throw new ApiError(400, `${param}: out of range or not a number`, {param});
    return v;
  };
  const maxTokens = number(r.max_completion_tokens == null ? "max_tokens" : "max_completion_tokens",
    v => Number.isInteger(v) && v >= 1, 256);
  const temperature = number("temperature", v => v >= 0 && v <= 2, 0);
  const topP = number("top_p", v => v > 0 && v <= 1, 1);
  const seed = number("seed", Number.isSafeInteger, 1);
  const stop = r.stop == null ? [] : [r.stop].flat();
  if (!stop.every(s => typeof s === "string"))
    throw new ApiError(400, "stop: a string or a list of strings", {param: "stop"});
  const system = [], turns = [];
  r.messages.forEach((m, i) => {
    if (m.role === "system" || m.role === "developer") system.push(texts[i]);
    else if (m.role === "assistant") turns.push({type: "model", response: [texts[i]]});
    else turns.push({type: "user", text: texts[i]});  // user, tool: text the model reads
  });
  const last = turns.at(-1)?.type === "user" ? turns.pop().text : "";
  return {system: system.join("\n"), turns, last, stream: r.stream === true,
    includeUsage: r.stream_options?.include_usage === true,
    opts: {maxTokens, temperature, topP, seed, ...(stop.some(Boolean) && {customStopTriggers: stop.filter(Boolean)})}};
}

// Generate one answer. `onStart` runs once the prompt fits the context, `onText` gets each piece of text as it comes.
// Stops early (stopReason "abort") when `signal` fires.
async function generate(q, {signal, onStart = () => {}, onText}) {
  const sequence = context.getSequence();
  // systemPrompt "" = none (undefined would mean node-llama-cpp's long default system prompt)
  const session = new LlamaChatSession({contextSequence: sequence, systemPrompt: q.system});
  try {
    session.setChatHistory([...session.getChatHistory(), ...q.turns]);
    // prompt_tokens: the prompt as the chat wrapper renders it (template, BOS, the turn the answer goes in), tokenized
    const chatHistory = [...session.getChatHistory(), {type: "user", text: q.last}, {type: "model", response: []}];
    const promptTokens = session.chatWrapper.generateContextState({chatHistory}).contextText
      .tokenize(model.tokenizer).length;
    if (promptTokens >= context.contextSize)  // node-llama-cpp would silently cut it; llama-server and OpenAI refuse
      throw new ApiError(400, `the prompt is ${promptTokens} tokens; this model's context is ${context.contextSize}`,
        {param: "messages", code: "context_length_exceeded"});
    onStart();
    let completionTokens = 0;
    const meta = await session.promptWithMeta(q.last, {...q.opts, signal, stopOnAbortSignal: true,
      onToken: t => { completionTokens += t.length; }, onTextChunk: t => t && onText?.(t)});
    return {text: meta.responseText, stopReason: meta.stopReason,
      finish: meta.stopReason === "maxTokens" ? "length" : "stop",
      usage: {prompt_tokens: promptTokens, completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens}};
  } finally {
    session.dispose({disposeSequence: true});
  }
}

let queue = Promise.resolve();  // one sequence: requests wait for the one before
const serially = job => (queue = queue.then(job, job));

async function chat(req, res, log) {
  const q = parse(await readBody(req));
  const abort = new AbortController();
  res.on("close", () => { if (!res.writableFinished) abort.abort(new Error("client disconnected")); });
  const id = "chatcmpl-" + Math.random().toString(36).slice(2, 14), created = Math.floor(Date.now() / 1000);
  await serially(async () => {
    if (abort.signal.aborted) return void (log.finish = "gone before its turn");
    if (!q.stream) {
      const a = await generate(q, {signal: abort.signal});
      Object.assign(log, {finish: a.stopReason, ...a.usage});
      return json(res, 200, {id, object: "chat.completion", created, model: modelId,
        choices: [{index: 0, message: {role: "assistant", content: a.text}, logprobs: null, finish_reason: a.finish}],
        usage: a.usage});
    }
    const chunk = (choices, usage) => ({id, object: "chat.completion.chunk", created, model: modelId, choices,
      ...(q.includeUsage && {usage: usage ?? null})});
    const send = d => res.write(`data: ${JSON.stringify(d)}\n\n`);
    const delta = (d, finish = null) => chunk([{index: 0, delta: d, logprobs: null, finish_reason: finish}]);
    const onStart = () => {
      res.writeHead(200, {"content-type": "text/event-stream", "cache-control": "no-cache"});
      send(delta({role: "assistant", content: ""}));
    };
    let a;
    try {
      a = await generate(q, {signal: abort.signal, onStart, onText: t => send(delta({content: t}))});
    } catch (e) {
      if (!res.headersSent) throw e;  // refused before the stream began: a plain error answer
      log.error = e.message;          // too late for a status: OpenAI's in-stream error event
      send(errorBody(new ApiError(500, `generation failed: ${e.message}`, {type: "server_error"})));
      return void res.end();
    }
    Object.assign(log, {finish: a.stopReason, ...a.usage});
    if (a.stopReason === "abort") return void res.end();
    send(delta({}, a.finish));
    if (q.includeUsage) send(chunk([], a.usage));
    res.end("data: [DONE]\n\n");
  });
}

const routes = {
  "/health": {GET: (req, res) => json(res, 200, {status: "ok"})},
  "/v1/models": {GET: (req, res) => json(res, 200, {object: "list",
    data: [{id: modelId, object: "model", created: 0, owned_by: "local"}]})},
  "/v1/chat/completions": {POST: chat},
};

http.createServer(async (req, res) => {
  const started = Date.now(), log = {};
  const pathname = new URL(req.url, "http://x").pathname;
  let gone = false;  // the client left before the answer was complete
  res.on("close", () => { gone = !res.writableEnded; });
  try {
    const route = routes[pathname];
    if (!route) throw new ApiError(404, `unknown path: ${req.method} ${pathname}`, {code: "unknown_url"});
    const handler = route[req.method];
    const allow = Object.keys(route).join(", ");
    if (!handler) throw new ApiError(405, `method ${req.method} not allowed on ${pathname}; use ${allow}`,
      {code: "method_not_allowed", headers: {allow}});
    await handler(req, res, log);
  } catch (e) {
    const err = e instanceof ApiError ? e
      : new ApiError(500, `generation failed: ${e.message}`, {type: "server_error"});
    log.error = err.message;
    if (res.headersSent) res.end();
    else json(res, err.status, errorBody(err), err.headers);
  } finally {  // one line a request, once its work is done (for a client that left: when generation stopped)
    const extra = Object.entries(log).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ");
    const status = gone ? "client-gone" : res.statusCode;
    console.error(`${req.method} ${req.url} ${status} ${Date.now() - started}ms ${extra}`.trimEnd());
  }
}).listen(Number(port), "127.0.0.1", () => console.log(`listening on 127.0.0.1:${port} (model ${modelId})`));
