//! The redactor: what a provider says in an error (which reaches the client, the log, incidents) may echo our own
//! request, `authorization` header and key included. Everything a provider's text passes through here first: the
//! provider's own key, and anything shaped like a credential — a value after `Bearer`, `authorization`,
//! `x-api-key`, `x-goog-api-key`, `api_key`, `api-key`, `apikey` or `key=`, and tokens that look like the major
//! providers' keys (`sk-…`, `sk_…`, `AIza…`) — become `[redacted]`.

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Markers after which the next value is a credential (matched without regard to case).
const MARKERS: [&str; 8] =
    ["bearer", "authorization", "x-api-key", "x-goog-api-key", "api_key", "api-key", "apikey", "key="];

/// Prefixes of the major providers' key formats.
const KEY_PREFIXES: [&str; 3] = ["sk-", "sk_", "AIza"];

/// A credential's characters (base64, URL-safe base64, hex, dashes, dots).
fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '/' | '=')
}

/// Separators between a marker and its value: `authorization: Bearer x`, `"x-api-key":"x"`, `key=x`.
fn separator(c: char) -> bool {
    matches!(c, ' ' | ':' | '=' | '"' | '\'' | '\t')
}

/// `text` with `secrets` (each at least 8 bytes: shorter ones would redact ordinary words) and credential-shaped
/// values removed.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        if out.contains(*s) {
            out = out.replace(*s, REDACTED);
        }
    }
    if !looks_sensitive(&out) {
        return out;
    }
    let lower = out.to_ascii_lowercase();
    let bytes = out.as_bytes();
    // Byte ranges to redact, found on the lowercase copy (same byte offsets: ASCII lowercasing keeps lengths).
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    for m in MARKERS {
        let mut from = 0;
        while let Some(at) = lower[from..].find(m) {
            let mut i = from + at + m.len();
            from = i;
            // Skip separators, and a `Bearer` scheme after `authorization:`.
            loop {
                while i < bytes.len() && separator(bytes[i] as char) {
                    i += 1;
                }
                if lower[i..].starts_with("bearer") || lower[i..].starts_with("basic") {
                    i += if lower[i..].starts_with("bearer") { 6 } else { 5 };
                    continue;
                }
                break;
            }
            let start = i;
            while i < bytes.len() && token_char(bytes[i] as char) {
                i += 1;
            }
            // One or two characters are a word of the message ("api_key is missing"), not a key.
            if i - start >= 3 {
                cuts.push((start, i));
            }
        }
    }
    for p in KEY_PREFIXES {
        let mut from = 0;
        while let Some(at) = out[from..].find(p) {
            let start = from + at;
            let boundary = start == 0 || !token_char(bytes[start - 1] as char);
            let mut i = start + p.len();
            while i < bytes.len() && token_char(bytes[i] as char) {
                i += 1;
            }
            if boundary && i - start >= 16 {
                cuts.push((start, i));
            }
            from = i.max(start + 1);
        }
    }
    if cuts.is_empty() {
        return out;
    }
    cuts.sort_unstable();
    let mut result = String::with_capacity(out.len());
    let mut at = 0;
    for (s, e) in cuts {
        if e <= at {
            continue;
        }
        let s = s.max(at);
        result.push_str(&out[at..s]);
        result.push_str(REDACTED);
        at = e;
    }
    result.push_str(&out[at..]);
    result
}

/// Whether `s` holds a token shaped like a major provider's key (`sk-…`, `sk_…`, `AIza…`): a few substring searches,
/// cheap enough for every answer's request id.
pub fn has_key_shape(s: &str) -> bool {
    KEY_PREFIXES.iter().any(|p| s.contains(p))
}

/// A cheap first look: most messages ("Overloaded") have nothing to redact.
fn looks_sensitive(text: &str) -> bool {
    let lower_has = |needle: &str| {
        text.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    };
    MARKERS.iter().any(|m| lower_has(m)) || KEY_PREFIXES.iter().any(|p| text.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_headers_and_key_shaped_tokens_are_removed() {
        let key = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789";
        for (text, kept) in [
            (
                format!("invalid request: headers were {{\"authorization\":\"Bearer {key}\"}}"),
                "invalid request",
            ),
            ("Authorization: Bearer abc.def-ghi_jkl and more".to_owned(), "and more"),
            (format!("got x-api-key: {key}, refusing"), "refusing"),
            ("url https://x.test/v1?key=AIzaSyA-1234567890abcdefghij failed".to_owned(), "failed"),
            (format!("the key {key} is revoked"), "is revoked"),
            ("Incorrect API key provided: sk-proj-AAAAAAAAAAAAAAAAAAAAAAAA.".to_owned(), "Incorrect API key"),
        ] {
            let r = redact(&text, &[]);
            assert!(!r.contains("abcdefghij") && !r.contains("abc.def") && !r.contains("AAAAAAAA"), "{r}");
            assert!(r.contains(REDACTED) && r.contains(kept), "{r}");
        }
    }

    #[test]
    fn the_providers_own_key_goes_whatever_its_shape_and_ordinary_text_stays() {
        let r = redact("echo: token=plainsecretvalue42 end", &["plainsecretvalue42"]);
        assert_eq!(r, "echo: token=[redacted] end");
        for text in
            ["Overloaded", "model not found: claude-x", "The API key is missing", "rate limit: requests"]
        {
            assert_eq!(redact(text, &["short"]), text);
        }
        // Not ASCII: offsets stay on character boundaries.
        assert_eq!(redact("clé authorization: Bearer éèà", &[]), "clé authorization: Bearer éèà");
    }
}
