//! What the simulator "thinks" and the signatures it mints for its thoughts: `"{name} thinks."`, the Anthropic
//! signature `sig_{name}`, the Gemini `thoughtSignature` (the same bytes, base64-encoded, as Gemini's are bytes) and
//! the OpenAI Responses `encrypted_content` of a reasoning item (base64 of `enc_{name}`).
//!
//! A simulator accepts back only the signatures it minted itself, so a gateway that replays one provider's
//! signature to another is caught. This module never decides a wire shape; it only names and checks.

/// The text of the thought a simulator called `name` shows.
pub(crate) fn thought(name: &str) -> String {
    format!("{name} thinks.")
}

/// Tokens a thought costs (its words). OpenAI shows no thought, only this count as `reasoning_tokens`.
pub(crate) const THOUGHT_TOKENS: u64 = 2;

/// The Anthropic `signature` of a thinking block this simulator minted (also the only `redacted_thinking` data
/// it takes back).
pub(crate) fn signature(name: &str) -> String {
    format!("sig_{name}")
}

/// The Gemini `thoughtSignature` this simulator mints: base64 of `sig_{name}`.
pub(crate) fn gemini_signature(name: &str) -> String {
    base64_encode(signature(name).as_bytes())
}

/// Whether a Gemini `thoughtSignature` (already known to be valid base64) is this simulator's own.
pub(crate) fn is_own_gemini_signature(name: &str, given: &str) -> bool {
    base64_decode(given).is_some_and(|bytes| bytes == signature(name).as_bytes())
}

/// The `encrypted_content` of a Responses reasoning item this simulator minted (the only one it takes back).
pub(crate) fn encrypted_content(name: &str) -> String {
    base64_encode(format!("enc_{name}").as_bytes())
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(STANDARD[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decode base64 the way proto JSON reads `bytes` fields: the standard or the URL-safe alphabet, padding optional.
/// `None` when it is not base64.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let trimmed = text.trim_end_matches('=');
    if text.len() - trimmed.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in trimmed.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    // A lone trailing character carries fewer than 8 bits: not base64.
    if trimmed.len() % 4 == 1 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for text in ["", "f", "fo", "foo", "foob", "fooba", "foobar", "sig_alpha"] {
            let encoded = base64_encode(text.as_bytes());
            assert_eq!(base64_decode(&encoded).unwrap(), text.as_bytes(), "{encoded}");
            assert_eq!(base64_decode(encoded.trim_end_matches('=')).unwrap(), text.as_bytes());
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"sig_alpha"), "c2lnX2FscGhh");
        assert_eq!(base64_decode("-_8"), base64_decode("+/8"));
        assert_eq!(base64_decode("not base64!"), None);
        assert_eq!(base64_decode("abcde"), None);
    }

    #[test]
    fn signatures_are_per_name() {
        assert_eq!(signature("alpha"), "sig_alpha");
        assert!(is_own_gemini_signature("alpha", &gemini_signature("alpha")));
        assert!(!is_own_gemini_signature("beta", &gemini_signature("alpha")));
        assert_eq!(thought("alpha"), "alpha thinks.");
        assert_eq!(encrypted_content("alpha"), "ZW5jX2FscGhh");
        assert_ne!(encrypted_content("alpha"), encrypted_content("beta"));
    }
}
