//! Client authentication: `Authorization: Bearer K` (OpenAI SDK), `x-api-key: K` (Anthropic SDK),
//! `x-goog-api-key: K` (Google SDK) or, on Gemini's doors, `?key=K`, checked against the configured client keys. With no keys configured the
//! gateway is open (and says so at start-up). This module never sees provider keys.

use http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};

/// The key the client presented, if any.
fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        // The scheme is case-insensitive (RFC 9110): `Bearer`, `bearer`, `BEARER`.
        if let Some((scheme, k)) = v.trim().split_once(' ')
            && scheme.eq_ignore_ascii_case("bearer")
        {
            return Some(k.trim());
        }
    }
    ["x-api-key", "x-goog-api-key"].iter().find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
}

/// Compare in time that tells nothing of where, or whether in length, the two differ: both are hashed with a key
/// random to this process (SipHash) and the hashes compared; only equal hashes (the right key, or a 2^-64 chance)
/// are then compared byte for byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    use std::hash::{BuildHasher, Hasher};
    static KEYED: std::sync::OnceLock<std::collections::hash_map::RandomState> = std::sync::OnceLock::new();
    let state = KEYED.get_or_init(std::collections::hash_map::RandomState::new);
    let hash = |x: &[u8]| {
        let mut h = state.build_hasher();
        h.write(x);
        h.finish()
    };
    hash(a) == hash(b) && a == b
}

/// Who is calling: the client key that authenticated the request (its position in the configured list), or
/// nobody in particular when the gateway is open. Per-key limits and budgets attach here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// No client keys are configured: anyone may call.
    Open,
    /// The n-th configured key (0-based).
    Key(u16),
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Open => f.write_str("open"),
            Caller::Key(n) => write!(f, "key#{n}"),
        }
    }
}

/// The caller, or `None` when the request presents no valid key. Every configured key is compared (no early exit
/// on a match), so timing does not tell which key matched.
pub fn authenticate(keys: &[SecretString], headers: &HeaderMap, query_key: Option<&str>) -> Option<Caller> {
    if keys.is_empty() {
        return Some(Caller::Open);
    }
    let k = presented(headers).or(query_key)?;
    let mut found = None;
    for (i, key) in keys.iter().enumerate() {
        if same(key.expose_secret().as_bytes(), k.as_bytes()) && found.is_none() {
            found = u16::try_from(i).ok().map(Caller::Key);
        }
    }
    found
}

/// Who owns what a request stores (Responses conversations): a digest of the client key it presented (SHA-256,
/// so the store never holds a key), or "" on an open gateway; `None` when the request presents no valid key. The
/// digest of the key, not its place in the list: reordering or rotating other keys changes nobody's ownership.
pub fn owner(keys: &[SecretString], headers: &HeaderMap) -> Option<String> {
    use sha2::{Digest, Sha256};
    match authenticate(keys, headers, None)? {
        Caller::Open => Some(String::new()),
        Caller::Key(_) => {
            let key = presented(headers)?;
            let digest = Sha256::digest(key.as_bytes());
            Some(digest.iter().take(16).map(|b| format!("{b:02x}")).collect())
        }
    }
}

/// Whether the request may pass. `keys` empty means the gateway is open.
pub fn allowed(keys: &[SecretString], headers: &HeaderMap) -> bool {
    authenticate(keys, headers, None).is_some()
}

/// [`allowed`], also accepting a key from the query string (Gemini's `?key=`).
pub fn allowed_with(keys: &[SecretString], headers: &HeaderMap, query_key: Option<&str>) -> bool {
    authenticate(keys, headers, query_key).is_some()
}

/// The password of `Authorization: Basic …` (what a browser sends after its login prompt; the user name is
/// ignored).
fn basic_password(headers: &HeaderMap) -> Option<String> {
    use base64::Engine;
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?.trim();
    let b64 = v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    text.split_once(':').map(|(_, p)| p.to_owned())
}

/// The admin key, as configured.
#[derive(Clone, Copy, Debug)]
pub enum Admin<'a> {
    /// None configured (`auth.admin_key_env` unset).
    None,
    Key(&'a SecretString),
    /// Configured, but its variable is unset or empty: nobody is the admin (never fail open).
    Missing,
}

/// Whether a request may see the status page, its JSON and the metrics: anyone when they are public; else the
/// admin key, or, with no admin key configured, a client key (and anyone when the gateway has no keys at all).
/// Keys come as for the API, or as the password of HTTP Basic authentication (for a browser).
pub fn may_see_status(public: bool, admin: Admin<'_>, keys: &[SecretString], headers: &HeaderMap) -> bool {
    if public {
        return true;
    }
    let basic = basic_password(headers);
    let given = presented(headers).or(basic.as_deref()).filter(|k| !k.is_empty());
    let matches = |key: &SecretString, k: &str| same(key.expose_secret().as_bytes(), k.as_bytes());
    match admin {
        Admin::Key(a) => given.is_some_and(|k| matches(a, k)),
        Admin::Missing => false,
        Admin::None if keys.is_empty() => true,
        Admin::None => given.is_some_and(|k| keys.iter().fold(false, |found, key| found | matches(key, k))),
    }
}

/// Split a comma-separated key list.
pub fn parse_keys(list: &str) -> Vec<SecretString> {
    list.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| SecretString::from(k.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_whole_and_the_bearer_scheme_in_any_case() {
        assert!(same(b"secret-key", b"secret-key"));
        assert!(!same(b"secret-key", b"secret-kez"));
        assert!(!same(b"secret-key", b"secret-key-longer"));
        assert!(!same(b"", b"x"));
        let keys = parse_keys("k-123456");
        for v in ["Bearer k-123456", "bearer k-123456", "BEARER  k-123456 "] {
            assert!(allowed(&keys, &headers(&[("authorization", v)])), "{v}");
        }
        assert!(!allowed(&keys, &headers(&[("authorization", "Basic k-123456")])));
    }

    #[test]
    fn the_status_needs_the_admin_key_or_a_client_key_unless_public() {
        let admin = SecretString::from("adm1n-key".to_owned());
        let keys = parse_keys("client-key");
        let none = headers(&[]);
        let client = headers(&[("authorization", "Bearer client-key")]);
        let adm = headers(&[("x-api-key", "adm1n-key")]);
        // "user:adm1n-key" in base64.
        let browser = headers(&[("authorization", "Basic dXNlcjphZG0xbi1rZXk=")]);
        assert!(may_see_status(true, Admin::Key(&admin), &keys, &none));
        assert!(!may_see_status(false, Admin::Key(&admin), &keys, &none));
        assert!(!may_see_status(false, Admin::Key(&admin), &keys, &client), "the admin key, not a client's");
        assert!(may_see_status(false, Admin::Key(&admin), &keys, &adm));
        assert!(may_see_status(false, Admin::Key(&admin), &keys, &browser));
        assert!(may_see_status(false, Admin::None, &keys, &client));
        assert!(!may_see_status(false, Admin::None, &keys, &none));
        assert!(may_see_status(false, Admin::None, &[], &none), "an open gateway");
        let empty_bearer = headers(&[("authorization", "Bearer ")]);
        assert!(
            !may_see_status(false, Admin::Missing, &[], &empty_bearer),
            "a configured admin key that is unset"
        );
        assert!(!may_see_status(false, Admin::Missing, &keys, &client));
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn open_without_keys_and_checked_with_them() {
        let keys = parse_keys("k1, k2,");
        assert_eq!(keys.len(), 2);
        assert!(allowed(&[], &HeaderMap::new()));
        assert!(!allowed(&keys, &HeaderMap::new()));
        assert!(allowed(&keys, &headers(&[("authorization", "Bearer k1")])));
        assert!(allowed(&keys, &headers(&[("x-api-key", "k2")])));
        assert!(allowed(&keys, &headers(&[("x-goog-api-key", "k1")])));
        assert!(!allowed(&keys, &headers(&[("x-api-key", "k3")])));
        assert!(!allowed(&keys, &headers(&[("authorization", "Bearer k")])));
        assert!(allowed_with(&keys, &HeaderMap::new(), Some("k2")));
        assert!(!allowed_with(&keys, &HeaderMap::new(), Some("k")));
        assert_eq!(authenticate(&keys, &headers(&[("x-api-key", "k2")]), None), Some(Caller::Key(1)));
        assert_eq!(authenticate(&[], &HeaderMap::new(), None), Some(Caller::Open));
    }
}
