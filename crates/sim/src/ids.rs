//! Identifiers in the providers' own styles (`msg_…`, `req_…`, `chatcmpl-…`) and the current Unix time.
//!
//! Ids are unique within a process and unpredictable enough for a test tool; they are never secrets and this module
//! never uses them for anything but display.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const HEX: &[u8] = b"0123456789abcdef";

/// `prefix` followed by `len` base-62 characters.
pub(crate) fn base62(prefix: &str, len: usize) -> String {
    with_alphabet(prefix, len, BASE62)
}

/// `prefix` followed by `len` lowercase hex digits.
pub(crate) fn hex(prefix: &str, len: usize) -> String {
    with_alphabet(prefix, len, HEX)
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn with_alphabet(prefix: &str, len: usize, alphabet: &[u8]) -> String {
    let mut out = String::with_capacity(prefix.len() + len);
    out.push_str(prefix);
    let mut bits = next();
    let base = alphabet.len() as u64;
    for i in 0..len {
        if i % 8 == 7 {
            bits = next();
        }
        let digit = usize::try_from(bits % base).unwrap_or(0);
        bits /= base;
        out.push(char::from(alphabet[digit]));
    }
    out
}

fn next() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0x9e37_79b9)
    });
    splitmix64(seed ^ COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_shape_and_differ() {
        let a = base62("msg_01", 22);
        let b = base62("msg_01", 22);
        assert_eq!(a.len(), 28);
        assert!(a.starts_with("msg_01"));
        assert_ne!(a, b);
        assert!(hex("", 32).chars().all(|c| c.is_ascii_hexdigit()));
    }
}
