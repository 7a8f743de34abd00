//! Server-sent events framing: writing frames, and a small reader for fixtures and tests.
//!
//! The gateway parses live upstream streams with the `eventsource-stream` crate; this module never reads sockets.

/// Append one SSE frame. Multi-line data becomes one `data:` line per line, as the SSE format requires.
pub fn write_event(out: &mut Vec<u8>, event: Option<&str>, data: &str) {
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// Append a frame whose data is `value` serialised as compact JSON.
pub fn write_json(out: &mut Vec<u8>, event: Option<&str>, value: &impl serde::Serialize) {
    // Serialising our own in-memory values cannot fail: keys are strings and numbers are finite.
    let data = serde_json::to_string(value).unwrap_or_else(|_| String::from("{}"));
    write_event(out, event, &data);
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
