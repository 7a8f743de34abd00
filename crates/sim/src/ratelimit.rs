//! Rate limits: a request budget and a token budget per fixed window ([`RateLimit`]), the accounting of one
//! simulator's window (`Limiter`), the rough token cost of a request, and the headers each provider reports a limit
//! in: Anthropic's `anthropic-ratelimit-*` with RFC 3339 reset times, OpenAI's `x-ratelimit-*` with Go-style
//! durations (Google sends none).
//!
//! The window is fixed: it starts at the first request counted against it and ends `window_ms` later; requests
//! that would go over a budget are refused and not counted. This module keeps no clock: callers pass a
//! `tokio::time::Instant` for the window and a wall-clock `SystemTime` only to print Anthropic's reset timestamp.
//! It never touches a socket and never decides a status or an error shape (`routes` and the dialects do).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

/// A rate limit on chat model requests: at most `requests` requests and `tokens` tokens in each fixed window of
/// `window_ms` milliseconds. A budget left out is unlimited.
///
/// JSON form (as `POST /_sim/ratelimit` takes it): `{"requests":2,"tokens":10000,"window_ms":60000}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// Tokens allowed per window: each request costs its body length / 4 plus its maximum output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// Length of the window, from the first request counted in it.
    pub window_ms: u64,
}

/// A limit and the window in progress, if one has started.
#[derive(Debug)]
pub(crate) struct Limiter {
    limit: RateLimit,
    window: Option<Window>,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    requests: u64,
    tokens: u64,
}

/// What the limit says about one request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// No limit applies to it.
    Unlimited,
    /// Counted; the quota left after it.
    Admitted(Quota),
    /// Refused without counting it; the quota left as it stands.
    Refused(Quota),
}

/// A budget's size and what is left of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Budget {
    pub limit: u64,
    pub remaining: u64,
}

/// The state of a limit as a response reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Quota {
    pub requests: Option<Budget>,
    pub tokens: Option<Budget>,
    /// Until the window ends (a whole window when none has started).
    pub reset_in: Duration,
}

impl Limiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self { limit, window: None }
    }

    /// Count a request costing `cost` tokens that arrives at `now`, or refuse it if it does not fit.
    pub(crate) fn admit(&mut self, cost: u64, now: Instant) -> Admission {
        let length = Duration::from_millis(self.limit.window_ms);
        if self.window.as_ref().is_some_and(|w| now.saturating_duration_since(w.start) >= length) {
            self.window = None;
        }
        let (requests, tokens, elapsed) = match &self.window {
            Some(w) => (w.requests, w.tokens, now.saturating_duration_since(w.start)),
            None => (0, 0, Duration::ZERO),
        };
        let reset_in = length.saturating_sub(elapsed);
        let fits = self.limit.requests.is_none_or(|max| requests < max)
            && self.limit.tokens.is_none_or(|max| tokens.saturating_add(cost) <= max);
        if !fits {
            return Admission::Refused(self.quota(requests, tokens, reset_in));
        }
        let window = self.window.get_or_insert(Window { start: now, requests: 0, tokens: 0 });
        window.requests += 1;
        window.tokens = window.tokens.saturating_add(cost);
        let (requests, tokens) = (window.requests, window.tokens);
        Admission::Admitted(self.quota(requests, tokens, reset_in))
    }

    fn quota(&self, requests: u64, tokens: u64, reset_in: Duration) -> Quota {
        let budget = |limit: u64, used: u64| Budget { limit, remaining: limit.saturating_sub(used) };
        Quota {
            requests: self.limit.requests.map(|limit| budget(limit, requests)),
            tokens: self.limit.tokens.map(|limit| budget(limit, tokens)),
            reset_in,
        }
    }
}

impl Quota {
    /// Seconds for `Retry-After`: the rest of the window rounded up, at least 1.
    pub(crate) fn retry_after(&self) -> u64 {
        ceil_secs(self.reset_in).max(1)
    }
}

/// The rough token cost of a request: its body length / 4 plus the output tokens it allows (`max_tokens`,
/// `max_completion_tokens`, `max_output_tokens`, or Gemini's `generationConfig.maxOutputTokens`; 0 if none).
pub(crate) fn cost(body: &[u8], json: Option<&Value>) -> u64 {
    let estimate = u64::try_from(body.len() / 4).unwrap_or(u64::MAX);
    estimate.saturating_add(json.and_then(max_output).unwrap_or(0))
}

fn max_output(json: &Value) -> Option<u64> {
    let top = ["max_tokens", "max_completion_tokens", "max_output_tokens"];
    if let Some(n) = top.iter().find_map(|key| json.get(key).and_then(Value::as_u64)) {
        return Some(n);
    }
    let config = json.get("generationConfig").or_else(|| json.get("generation_config"))?;
    config.get("maxOutputTokens").or_else(|| config.get("max_output_tokens")).and_then(Value::as_u64)
}

/// Anthropic's headers, by budget: limit, remaining, reset.
const ANTHROPIC_REQUESTS: [&str; 3] = [
    "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
];
const ANTHROPIC_TOKENS: [[&str; 3]; 3] = [
    [
        "anthropic-ratelimit-tokens-limit",
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
    ],
    [
        "anthropic-ratelimit-input-tokens-limit",
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
    ],
    [
        "anthropic-ratelimit-output-tokens-limit",
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
    ],
];

/// OpenAI's headers, by budget: limit, remaining, reset.
const OPENAI_REQUESTS: [&str; 3] =
    ["x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"];
const OPENAI_TOKENS: [&str; 3] =
    ["x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"];

/// Add Anthropic's `anthropic-ratelimit-*` headers; `now` is the wall clock the reset timestamp counts from. The
/// sim has one token budget, so input and output tokens both report it.
pub(crate) fn stamp_anthropic(headers: &mut HeaderMap, quota: &Quota, now: SystemTime) {
    let reset = now.duration_since(UNIX_EPOCH).unwrap_or_default().saturating_add(quota.reset_in);
    let reset = rfc3339(ceil_secs(reset));
    if let Some(budget) = quota.requests {
        stamp(headers, ANTHROPIC_REQUESTS, budget, &reset);
    }
    if let Some(budget) = quota.tokens {
        for names in ANTHROPIC_TOKENS {
            stamp(headers, names, budget, &reset);
        }
    }
}

/// Add OpenAI's `x-ratelimit-*` headers.
pub(crate) fn stamp_openai(headers: &mut HeaderMap, quota: &Quota) {
    let reset = go_duration(quota.reset_in);
    if let Some(budget) = quota.requests {
        stamp(headers, OPENAI_REQUESTS, budget, &reset);
    }
    if let Some(budget) = quota.tokens {
        stamp(headers, OPENAI_TOKENS, budget, &reset);
    }
}

fn stamp(headers: &mut HeaderMap, [limit, remaining, reset]: [&'static str; 3], budget: Budget, when: &str) {
    headers.insert(limit, HeaderValue::from(budget.limit));
    headers.insert(remaining, HeaderValue::from(budget.remaining));
    if let Ok(value) = HeaderValue::from_str(when) {
        headers.insert(reset, value);
    }
}

/// Whole seconds, rounded up.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

/// The last second of year 9999: timestamps are clamped to it so that they keep four-digit years.
const MAX_RFC3339_SECS: u64 = 253_402_300_799;

/// A UNIX time in seconds as an RFC 3339 UTC timestamp with seconds (`2026-12-02T03:04:05Z`).
pub(crate) fn rfc3339(unix_secs: u64) -> String {
    let secs = unix_secs.min(MAX_RFC3339_SECS);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (rest / 3600, rest / 60 % 60, rest % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, so that leap days fall at the end of a (March-based) year.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// A duration the way Go prints one and OpenAI sends it (`20ms`, `1s`, `1.5s`, `6m0s`, `1h0m0s`), to the
/// millisecond, rounded up.
pub(crate) fn go_duration(d: Duration) -> String {
    let ms = d.as_millis().saturating_add(u128::from(!d.subsec_nanos().is_multiple_of(1_000_000)));
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (hours, minutes, seconds, millis) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&seconds.to_string());
    if millis > 0 {
        let fraction = format!("{millis:03}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('s');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rfc3339_from_known_unix_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_644_645), "2025-12-02T03:04:05Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339(4_107_542_400), "2100-03-01T00:00:00Z");
        assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn rfc3339_agrees_with_counting_days() {
        // Walk day by day from 1970, counting the calendar by hand.
        let (mut year, mut month, mut day) = (1970u64, 1u64, 1u64);
        for days in 0..(366 * 140) {
            assert_eq!(rfc3339(days * 86_400 + 3661), format!("{year:04}-{month:02}-{day:02}T01:01:01Z"));
            let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
            let length = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            day += 1;
            if day > length {
                (day, month) = (1, month + 1);
            }
            if month > 12 {
                (month, year) = (1, year + 1);
            }
        }
    }

    #[test]
    fn go_durations_as_openai_sends_them() {
        assert_eq!(go_duration(Duration::from_millis(20)), "20ms");
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(360)), "6m0s");
        assert_eq!(go_duration(Duration::from_millis(61_250)), "1m1.25s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_micros(19_001)), "20ms", "rounded up to the millisecond");
    }

    #[test]
    fn cost_is_a_quarter_of_the_body_plus_the_output_allowance() {
        let body = [b'x'; 41];
        assert_eq!(cost(&body, None), 10);
        assert_eq!(cost(&body, Some(&json!({"max_tokens": 100}))), 110);
        assert_eq!(cost(&body, Some(&json!({"max_completion_tokens": 7}))), 17);
        assert_eq!(cost(&body, Some(&json!({"max_output_tokens": 5}))), 15);
        assert_eq!(cost(&body, Some(&json!({"generationConfig": {"maxOutputTokens": 3}}))), 13);
        assert_eq!(cost(&body, Some(&json!({"generation_config": {"max_output_tokens": 2}}))), 12);
    }

    #[test]
    fn window_counts_refuses_without_counting_and_resets() {
        let mut limiter = Limiter::new(RateLimit { requests: Some(2), tokens: Some(100), window_ms: 1000 });
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let quota = |requests, tokens, reset_ms| Quota {
            requests: Some(Budget { limit: 2, remaining: requests }),
            tokens: Some(Budget { limit: 100, remaining: tokens }),
            reset_in: Duration::from_millis(reset_ms),
        };
        assert_eq!(limiter.admit(60, at(0)), Admission::Admitted(quota(1, 40, 1000)));
        assert_eq!(limiter.admit(50, at(100)), Admission::Refused(quota(1, 40, 900)));
        assert_eq!(limiter.admit(40, at(200)), Admission::Admitted(quota(0, 0, 800)));
        assert_eq!(limiter.admit(0, at(999)), Admission::Refused(quota(0, 0, 1)));
        assert_eq!(limiter.admit(10, at(1000)), Admission::Admitted(quota(1, 90, 1000)));
        // A request larger than the whole budget never fits, and starts no window.
        let mut limiter = Limiter::new(RateLimit { requests: None, tokens: Some(5), window_ms: 300 });
        let refused = Quota {
            requests: None,
            tokens: Some(Budget { limit: 5, remaining: 5 }),
            reset_in: Duration::from_millis(300),
        };
        assert_eq!(limiter.admit(6, at(0)), Admission::Refused(refused));
        assert_eq!(refused.retry_after(), 1);
    }

    #[test]
    fn headers_in_each_providers_names() {
        let quota = Quota {
            requests: Some(Budget { limit: 2, remaining: 1 }),
            tokens: Some(Budget { limit: 100, remaining: 40 }),
            reset_in: Duration::from_millis(1500),
        };
        let mut headers = HeaderMap::new();
        stamp_anthropic(&mut headers, &quota, UNIX_EPOCH + Duration::from_secs(1_764_644_645));
        assert_eq!(headers["anthropic-ratelimit-requests-limit"], "2");
        assert_eq!(headers["anthropic-ratelimit-requests-remaining"], "1");
        assert_eq!(headers["anthropic-ratelimit-requests-reset"], "2025-12-02T03:04:07Z");
        for kind in ["tokens", "input-tokens", "output-tokens"] {
            assert_eq!(headers[format!("anthropic-ratelimit-{kind}-limit").as_str()], "100");
            assert_eq!(headers[format!("anthropic-ratelimit-{kind}-remaining").as_str()], "40");
            assert_eq!(headers[format!("anthropic-ratelimit-{kind}-reset").as_str()], "2025-12-02T03:04:07Z");
        }
        assert_eq!(headers.len(), 12);
        let mut headers = HeaderMap::new();
        stamp_openai(&mut headers, &Quota { tokens: None, ..quota });
        assert_eq!(headers["x-ratelimit-limit-requests"], "2");
        assert_eq!(headers["x-ratelimit-remaining-requests"], "1");
        assert_eq!(headers["x-ratelimit-reset-requests"], "1.5s");
        assert_eq!(headers.len(), 3);
    }

    #[test]
    fn json_form() {
        let limit: RateLimit = serde_json::from_str(r#"{"requests":2,"window_ms":300}"#).unwrap();
        assert_eq!(limit, RateLimit { requests: Some(2), tokens: None, window_ms: 300 });
        assert_eq!(serde_json::to_value(limit).unwrap(), json!({"requests": 2, "window_ms": 300}));
        assert!(serde_json::from_str::<RateLimit>(r#"{"request":2,"window_ms":300}"#).is_err());
        assert!(serde_json::from_str::<RateLimit>(r#"{"requests":2}"#).is_err());
    }
}
