//! Server-sent events framing: writing frames, the incremental [`Reader`] of live upstream streams (fed the bytes as
//! they arrive; this module never reads sockets), and a small whole-text reader for fixtures and tests.

/// Append one SSE frame. Multi-line data becomes one `data:` line per line, as the SSE format requires.
pub fn write_event(out: &mut Vec<u8>, event: Option<&str>, data: &str) {
    write_name(out, event);
    out.reserve(data.len() + 8);
    let mut rest = data.as_bytes();
    loop {
        out.extend_from_slice(b"data: ");
        match memchr::memchr(b'\n', rest) {
            Some(i) => {
                let (line, after) = rest.split_at(i);
                out.extend_from_slice(line);
                out.push(b'\n');
                rest = after.get(1..).unwrap_or_default();
            }
            None => {
                out.extend_from_slice(rest);
                out.push(b'\n');
                break;
            }
        }
    }
    out.push(b'\n');
}

/// Append a frame whose data is `value` serialised as compact JSON.
pub fn write_json(out: &mut Vec<u8>, event: Option<&str>, value: &impl serde::Serialize) {
    write_name(out, event);
    // Written in place: compact JSON has no line break (a newline in a string is escaped), so it is one data line.
    out.extend_from_slice(b"data: ");
    let mark = out.len();
    // Serialising our own in-memory values cannot fail: keys are strings and numbers are finite.
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(mark);
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
}

/// A frame's `event:` line, when it has a name.
fn write_name(out: &mut Vec<u8>, event: Option<&str>) {
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
}

/// One parsed SSE event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub event: String,
    pub data: String,
}

/// Parse a complete SSE text into frames (for fixtures and tests; handles `\n` and `\r\n`, comments, multi-line
/// data). A trailing frame without its blank line is kept.
pub fn parse(text: &str) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut event = String::new();
    let mut data: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            if let Some(d) = data.take() {
                frames.push(Frame { event: std::mem::take(&mut event), data: d });
            }
            event.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => event = value.to_owned(),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    if let Some(d) = data {
        frames.push(Frame { event, data: d });
    }
    frames
}

/// One event of a live stream: its name (`message` when it has none, as EventSource says) and its data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// A stream that is not UTF-8 where a line ends (or at its end).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("UTF8 error: {0}")]
pub struct NotUtf8(pub String);

/// SSE read incrementally, as the WHATWG EventSource parser does: lines end in CRLF, LF or CR; `:` starts a
/// comment; a field's value loses one leading space; `data` lines join with LF; a blank line dispatches the event
/// (none without data); a BOM at the very start is dropped; what is left unfinished at the end is dropped. Bytes are
/// kept once and lines are found where they are, not copied out one by one.
#[derive(Debug, Default)]
pub struct Reader {
    buf: Vec<u8>,
    /// Where the unread part of `buf` begins.
    at: usize,
    started: bool,
    event: String,
    data: String,
    has_data: bool,
}

const BOM: &[u8] = "\u{feff}".as_bytes();

/// The most data-buffer capacity a reader keeps between events.
const KEEP_DATA_CAPACITY: usize = 64 * 1024;

impl Reader {
    pub fn new() -> Reader {
        Reader::default()
    }

    /// Bytes as they arrived.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.at > 0 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event, if the bytes fed so far hold one.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, NotUtf8> {
        if !self.started {
            let head = &self.buf[self.at..];
            if head.is_empty() || (head.len() < BOM.len() && BOM.starts_with(head)) {
                return Ok(None);
            }
            if head.starts_with(BOM) {
                self.at += BOM.len();
            }
            self.started = true;
        }
        loop {
            let rest = &self.buf[self.at..];
            let Some(end) = memchr::memchr2(b'\n', b'\r', rest) else { return Ok(None) };
            let ending = match (rest[end], rest.get(end + 1)) {
                (b'\r', Some(b'\n')) => 2,
                // A CR last: the LF of a CRLF may be on its way.
                (b'\r', None) => return Ok(None),
                _ => 1,
            };
            let line = std::str::from_utf8(&rest[..end]).map_err(|e| NotUtf8(e.to_string()))?;
            let consumed = end + ending;
            if line.is_empty() {
                self.at += consumed;
                if let Some(ev) = self.dispatch() {
                    return Ok(Some(ev));
                }
                continue;
            }
            if !line.starts_with(':') {
                let (field, value) = match line.split_once(':') {
                    Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                    None => (line, ""),
                };
                match field {
                    "event" => value.clone_into(&mut self.event),
                    "data" => {
                        self.data.push_str(value);
                        self.data.push('\n');
                        self.has_data = true;
                    }
                    _ => {}
                }
            }
            self.at += consumed;
        }
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        if !std::mem::take(&mut self.has_data) {
            self.data.clear();
            return None;
        }
        // The event gets a copy of exactly its size; the buffer stays for the next event (handing it over made
        // every event grow a new one from nothing: half a dozen reallocations each).
        let data = self.data.strip_suffix('\n').unwrap_or(&self.data).to_owned();
        self.data.clear();
        // A huge event's buffer is not kept for the stream's life.
        if self.data.capacity() > KEEP_DATA_CAPACITY {
            self.data = String::new();
        }
        Some(SseEvent { event: if event.is_empty() { "message".to_owned() } else { event }, data })
    }

    /// The stream ended: what is left unfinished is dropped, unless it is not UTF-8 (then it is an error).
    pub fn finish(&mut self) -> Result<(), NotUtf8> {
        let rest = &self.buf[self.at..];
        let result = match std::str::from_utf8(rest) {
            Ok(_) => Ok(()),
            Err(e) => Err(NotUtf8(e.to_string())),
        };
        self.buf.clear();
        self.at = 0;
        result
    }
}
