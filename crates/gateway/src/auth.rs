//! Client authentication: `Authorization: Bearer K` (OpenAI SDK), `x-api-key: K` (Anthropic SDK),
//! `x-goog-api-key: K` (Google SDK) or, on Gemini's doors, `?key=K`, checked against the configured client keys. With no keys configured the
//! gateway is open (and says so at start-up). This module never sees provider keys.

use http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};

/// The key the client presented, if any.
pub fn presented(headers: &HeaderMap) -> Option<&str> {
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

pub use crate::admit::Caller;

/// The caller of a request: the key it presents (headers, or the door's `query_key`) looked up in this
/// configuration's keys and the admin API's; `None` when it presents no valid key (an open gateway lets anyone in).
pub fn identify(
    admission: &crate::admit::Admission,
    ring: &crate::admit::Keyring,
    headers: &HeaderMap,
    query_key: Option<&str>,
) -> Option<Caller> {
    admission.identify(ring, presented(headers).or(query_key), admission.unix_now())
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
/// admin key, or, with no admin key configured, a client key (`is_client`; anyone when the gateway is `open`).
/// Keys come as for the API, or as the password of HTTP Basic authentication (for a browser).
pub fn may_see_status(
    public: bool,
    admin: Admin<'_>,
    open: bool,
    is_client: impl Fn(&str) -> bool,
    headers: &HeaderMap,
) -> bool {
    if public {
        return true;
    }
    let basic = basic_password(headers);
    let given = presented(headers).or(basic.as_deref()).filter(|k| !k.is_empty());
    match admin {
        Admin::Key(a) => given.is_some_and(|k| same(a.expose_secret().as_bytes(), k.as_bytes())),
        Admin::Missing => false,
        Admin::None if open => true,
        Admin::None => given.is_some_and(is_client),
    }
}

/// Whether the request presents the admin key (never, when none is configured).
pub fn is_admin(admin: Admin<'_>, headers: &HeaderMap) -> bool {
    let basic = basic_password(headers);
    let given = presented(headers).or(basic.as_deref()).filter(|k| !k.is_empty());
    match admin {
        Admin::Key(a) => given.is_some_and(|k| same(a.expose_secret().as_bytes(), k.as_bytes())),
        Admin::None | Admin::Missing => false,
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
        for v in ["Bearer k-123456", "bearer k-123456", "BEARER  k-123456 "] {
            assert_eq!(presented(&headers(&[("authorization", v)])), Some("k-123456"), "{v}");
        }
        assert_eq!(presented(&headers(&[("authorization", "Basic k-123456")])), None);
        assert_eq!(presented(&headers(&[("x-goog-api-key", "k1")])), Some("k1"));
    }

    #[test]
    fn the_status_needs_the_admin_key_or_a_client_key_unless_public() {
        let admin = SecretString::from("adm1n-key".to_owned());
        let client = |k: &str| k == "client-key";
        let none = headers(&[]);
        let by_client = headers(&[("authorization", "Bearer client-key")]);
        let adm = headers(&[("x-api-key", "adm1n-key")]);
        // "user:adm1n-key" in base64.
        let browser = headers(&[("authorization", "Basic dXNlcjphZG0xbi1rZXk=")]);
        assert!(may_see_status(true, Admin::Key(&admin), false, client, &none));
        assert!(!may_see_status(false, Admin::Key(&admin), false, client, &none));
        assert!(
            !may_see_status(false, Admin::Key(&admin), false, client, &by_client),
            "the admin key, not a client's"
        );
        assert!(may_see_status(false, Admin::Key(&admin), false, client, &adm));
        assert!(may_see_status(false, Admin::Key(&admin), false, client, &browser));
        assert!(is_admin(Admin::Key(&admin), &browser));
        assert!(!is_admin(Admin::None, &by_client));
        assert!(may_see_status(false, Admin::None, false, client, &by_client));
        assert!(!may_see_status(false, Admin::None, false, client, &none));
        assert!(may_see_status(false, Admin::None, true, client, &none), "an open gateway");
        let empty_bearer = headers(&[("authorization", "Bearer ")]);
        assert!(
            !may_see_status(false, Admin::Missing, true, client, &empty_bearer),
            "a configured admin key that is unset"
        );
        assert!(!may_see_status(false, Admin::Missing, false, client, &by_client));
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }
}
