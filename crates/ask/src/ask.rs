//! One question: retrieve (BM25 and vectors, fused) → numbered sources → a streamed answer through the gateway's
//! chat route → the reader's page, as server-sent events (`sources`, `route`, `delta`, `resumed`, `done`, `error`;
//! docs/app.md) → the conversation kept.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::store::{StoredChunk, Turn};
use crate::{Ask, gateway, retrieve};

/// Sources given to the model.
pub const SOURCES: usize = 5;

/// Earlier turns sent with a question.
const HISTORY: usize = 6;

/// What the model is told. The simulator answers the same `Sources:` / `Question:` layout (crates/sim/src/grounded.rs).
const SYSTEM: &str = "You answer questions about the reader's documents using only the numbered sources in the \
user's message. Cite every claim with the source's number in brackets, like [2]. If the sources do not answer the \
question, say exactly: The documents do not say. Be brief.";

/// The answer that means the documents do not say.
pub const UNSUPPORTED: &str = "The documents do not say";

/// One event for the page.
fn event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// A question to answer.
pub struct Question {
    pub owner: String,
    pub key: Option<SecretString>,
    pub notebook: String,
    pub conversation: String,
    pub history: Vec<Turn>,
    pub text: String,
}

/// A store's failure as the reader sees it: logged whole, told in a line (the database's own words stay in the log).
fn stored(e: crate::store::StoreError) -> String {
    tracing::warn!(target: "nines::app", "{e}");
    match e {
        crate::store::StoreError::Unavailable(_) => crate::store::UNAVAILABLE.to_owned(),
        _ => "the app's database failed: see the gateway's log".to_owned(),
    }
}

/// Answer `q`, sending the page's events to `out` (a closed channel, the reader gone, stops it).
pub async fn answer(ask: Arc<Ask>, q: Question, out: mpsc::Sender<Bytes>) {
    if let Err(message) = run(&ask, &q, &out).await {
        let _ = out.send(event("error", &json!({ "message": message }))).await;
    }
}

async fn run(ask: &Arc<Ask>, q: &Question, out: &mpsc::Sender<Bytes>) -> Result<(), String> {
    let gone = |_| "the reader left".to_owned();
    // A follow-up is searched for with the question before it ("and for refurbished ones?").
    let search = match q.history.last() {
        Some(t) => format!("{} {}", t.question, q.text),
        None => q.text.clone(),
    };
    let sources = retrieve(ask, q, &search).await?;
    let listed: Vec<Value> = sources
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({"n": i + 1, "document": c.document, "name": c.name, "page": c.page, "text": c.text,
                   "quote": quote(&c.text, &q.text)})
        })
        .collect();
    out.send(event("sources", &json!({"conversation": q.conversation, "sources": listed})))
        .await
        .map_err(gone)?;

    let mut messages = vec![json!({"role": "system", "content": SYSTEM})];
    // The last turns only: a long conversation must not grow every prompt without end.
    for t in q.history.iter().rev().take(HISTORY).rev() {
        messages.push(json!({"role": "user", "content": t.question}));
        messages.push(json!({"role": "assistant", "content": t.answer}));
    }
    let mut prompt = String::from("Sources:\n");
    for (i, c) in sources.iter().enumerate() {
        let text = c.text.split_whitespace().collect::<Vec<_>>().join(" ");
        prompt.push_str(&format!("[{}] ({}, page {}) {text}\n", i + 1, c.name, c.page));
    }
    prompt.push_str(&format!("\nQuestion: {}", q.text));
    messages.push(json!({"role": "user", "content": prompt}));

    let resp = ask
        .gateway
        .chat_stream(q.key.as_ref(), &ask.settings.chat_model, messages)
        .await
        .map_err(|e| e.to_string())?;
    let mut route = Route::of(&resp, &ask.settings.local_providers);
    out.send(event("route", &route.json())).await.map_err(gone)?;

    let mut answer = String::new();
    let mut lines = Lines::default();
    let mut body = resp.bytes_stream();
    let mut finished = false;
    'read: loop {
        // A reader who leaves stops the answer at once: dropping the response cancels the gateway's request.
        let chunk = tokio::select! {
            () = out.closed() => return Err("the reader left".to_owned()),
            chunk = body.next() => chunk,
        };
        let Some(chunk) = chunk else { break };
        let chunk = chunk.map_err(|e| format!("the answer broke off: {e}"))?;
        let Some(complete) = lines.push(&chunk) else {
            return Err("the answer could not be read (a line past 1 MiB)".to_owned());
        };
        for line in complete {
            if let Some(rest) = line.strip_prefix(": nines resumed the answer from ") {
                let (from, to) = rest.split_once(" on ").unwrap_or((rest, ""));
                out.send(event("resumed", &json!({"from": from, "to": to}))).await.map_err(gone)?;
                route.resumed(to, &ask.settings.local_providers);
                out.send(event("route", &route.json())).await.map_err(gone)?;
                continue;
            }
            let Some(data) = line.strip_prefix("data:").map(str::trim_start) else { continue };
            if data == "[DONE]" {
                finished = true;
                break 'read;
            }
            let v: Value =
                serde_json::from_str(data).map_err(|_| "the answer could not be read".to_owned())?;
            if let Some(m) = v["error"]["message"].as_str() {
                return Err(format!("the answer failed: {m}"));
            }
            if let Some(text) = v["choices"][0]["delta"]["content"].as_str()
                && !text.is_empty()
            {
                answer.push_str(text);
                out.send(event("delta", &json!({"text": text}))).await.map_err(gone)?;
            }
        }
    }
    if !finished {
        return Err("the answer broke off before its end".to_owned());
    }
    let cited = citations(&answer, sources.len());
    let unsupported = cited.is_empty() || answer.contains(UNSUPPORTED);
    out.send(event("done", &json!({"answer": answer, "cited": cited, "unsupported": unsupported})))
        .await
        .map_err(gone)?;
    let turn = Turn { question: q.text.clone(), answer, sources: Value::Array(listed), route: route.json() };
    ask.store.add_turn(&q.conversation, &turn).await.map_err(stored)?;
    Ok(())
}

/// The passages for `search` in the question's notebook: BM25 and, when the gateway embeds the question, the
/// nearest vectors of the same embedding target, fused.
async fn retrieve(ask: &Arc<Ask>, q: &Question, search: &str) -> Result<Vec<StoredChunk>, String> {
    let keywords = ask.store.keywords(&q.notebook, search, retrieve::DEPTH).await.map_err(stored)?;
    let near = match ask.gateway.embed(q.key.as_ref(), &ask.settings.embed_model, &[search]).await {
        Ok(mut e) if !e.vectors.is_empty() => {
            let query = e.vectors.remove(0);
            ask.store
                .nearest(&q.notebook, &e.space, &query, retrieve::DEPTH)
                .await
                .map_err(|e| e.to_string())?
        }
        Ok(_) => Vec::new(),
        Err(e) => {
            tracing::warn!(target: "nines::app", "the question could not be embedded ({e}): keywords only");
            Vec::new()
        }
    };
    let fused = retrieve::fuse(&[&keywords, &near]);
    // Only passages of documents that are ready (not one being indexed or deleted), then the best five.
    let mut found = ask.store.chunks(&q.notebook, &fused).await.map_err(stored)?;
    found.truncate(SOURCES);
    Ok(found)
}

/// Who answered, as the page shows it.
#[derive(Debug)]
struct Route {
    target: String,
    attempts: u32,
    resumed: bool,
    local: bool,
}

impl Route {
    fn of(resp: &reqwest::Response, locals: &[String]) -> Route {
        let target = gateway::header(resp, "x-nines-target").unwrap_or_default();
        let attempts = gateway::header(resp, "x-nines-attempts").and_then(|a| a.parse().ok()).unwrap_or(1);
        let local = is_local(&target, locals);
        Route { target, attempts, resumed: false, local }
    }

    fn resumed(&mut self, to: &str, locals: &[String]) {
        self.resumed = true;
        if !to.is_empty() {
            self.target = to.to_owned();
            self.local = is_local(to, locals);
        }
    }

    fn json(&self) -> Value {
        json!({"target": self.target, "attempts": self.attempts, "failed_over": self.attempts > 1,
               "resumed": self.resumed, "local": self.local})
    }
}

fn is_local(target: &str, locals: &[String]) -> bool {
    let provider = target.split('/').next().unwrap_or("");
    locals.iter().any(|l| l == provider)
}

/// The numbers cited in `answer` (`[2]`, `[1][3]`, `[1, 3]`), each once, in order, within 1..=`max`.
pub fn citations(answer: &str, max: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rest = answer;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find(']') else { break };
        for n in rest[..close].split(',').filter_map(|n| n.trim().parse::<usize>().ok()) {
            if (1..=max).contains(&n) && !out.contains(&n) {
                out.push(n);
            }
        }
        rest = &rest[close..];
    }
    out
}

/// The sentence of `passage` that shares the most words with `question` (what the page highlights), or its first
/// line.
pub fn quote(passage: &str, question: &str) -> String {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 2).map(str::to_lowercase).collect()
    };
    let asked = words(question);
    let flat = passage.split_whitespace().collect::<Vec<_>>().join(" ");
    let best = flat
        .split_inclusive(['.', '?', '!'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| (words(s).iter().filter(|w| asked.contains(w)).count(), s))
        .fold(None::<(usize, &str)>, |best, (n, s)| match best {
            Some((m, _)) if m >= n => best,
            _ => Some((n, s)),
        });
    match best {
        Some((n, s)) if n > 0 => s.to_owned(),
        _ => passage.lines().next().unwrap_or("").trim().to_owned(),
    }
}

/// The longest line of the gateway's stream taken (an event's JSON); past it the answer fails.
const MAX_LINE: usize = 1 << 20;

/// An SSE body's lines, across chunk boundaries.
#[derive(Default)]
struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// The complete lines `chunk` ends; `None` when a line grows past [`MAX_LINE`].
    fn push(&mut self, chunk: &[u8]) -> Option<Vec<String>> {
        self.partial.extend_from_slice(chunk);
        if self.partial.len() > MAX_LINE && !self.partial[..MAX_LINE].contains(&b'\n') {
            return None;
        }
        let mut out = Vec::new();
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if !line.is_empty() {
                out.push(line.to_owned());
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citations_are_read_in_every_common_form() {
        assert_eq!(citations("It lasts 24 months [2]. Returns [1][3], also [1, 4].", 5), vec![2, 1, 3, 4]);
        assert_eq!(citations("[9] and [x] and [0]", 5), Vec::<usize>::new());
    }

    #[test]
    fn the_quote_is_the_sentence_nearest_the_question() {
        let p = "Keep the receipt.\nThe warranty on the X200 lasts\n24 months. Returns take 30 days.";
        assert_eq!(quote(p, "How long is the X200 warranty?"), "The warranty on the X200 lasts 24 months.");
        assert_eq!(quote(p, "zebra?"), "Keep the receipt.");
    }

    #[test]
    fn lines_survive_chunk_boundaries() {
        let mut l = Lines::default();
        assert!(l.push(b"data: {\"a\"").unwrap().is_empty());
        assert_eq!(l.push(b":1}\r\n\n: nines resumed").unwrap(), vec!["data: {\"a\":1}".to_owned()]);
        assert_eq!(l.push(b" x\n").unwrap(), vec![": nines resumed x".to_owned()]);
        assert!(l.push(&vec![b'x'; MAX_LINE + 1]).is_none());
    }
}
