//! Reading providers' rate-limit headers, and a local view of a target's headroom built from them.
//!
//! [`parse`] turns Anthropic's `anthropic-ratelimit-*` headers (resets as RFC 3339 instants) and OpenAI's
//! `x-ratelimit-*` headers (resets as Go-style durations) into [`RateLimits`], each reset made relative to the
//! `now_unix` the caller passes in. [`Headroom`] keeps the newest of those as absolute instants and counts the
//! requests admitted since, so that a target is not sent work it will answer with 429.
//!
//! It never fails: a malformed value leaves its field `None`. It never reads the clock, does I/O or logs: time
//! comes in as arguments (`now_unix` for the wall clock the resets are written in, `now` for instants).

use std::time::Duration;

use http::{HeaderMap, HeaderName};
use tokio::time::Instant;

/// No reset is believed further away than this: a wild value must not bench a target for a week.
const MAX_RESET: Duration = Duration::from_secs(24 * 60 * 60);

/// What a provider said is left before it starts answering 429, each with when it resets.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RateLimits {
    pub requests: Option<Remaining>,
    /// Input and output together (OpenAI's `tokens`, Anthropic's `tokens`).
    pub tokens: Option<Remaining>,
    pub input_tokens: Option<Remaining>,
    pub output_tokens: Option<Remaining>,
}

/// One limit: how much is left, and how long from now until it is full again.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Remaining {
    pub remaining: u64,
    /// From now; never more than 24 h, `Duration::ZERO` for a reset in the past.
    pub reset: Duration,
}

/// How a provider writes its reset times.
#[derive(Clone, Copy)]
enum ResetFormat {
    /// An RFC 3339 instant (Anthropic).
    Rfc3339,
    /// A Go duration such as `6m0s` (OpenAI).
    GoDuration,
}

/// One kind of limit as one provider names it.
struct Source {
    remaining: HeaderName,
    reset: HeaderName,
    format: ResetFormat,
}

const fn source(remaining: &'static str, reset: &'static str, format: ResetFormat) -> Source {
    Source { remaining: HeaderName::from_static(remaining), reset: HeaderName::from_static(reset), format }
}

const ANTHROPIC_REQUESTS: Source = source(
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    ResetFormat::Rfc3339,
);
const ANTHROPIC_TOKENS: Source =
    source("anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset", ResetFormat::Rfc3339);
const ANTHROPIC_INPUT_TOKENS: Source = source(
    "anthropic-ratelimit-input-tokens-remaining",
    "anthropic-ratelimit-input-tokens-reset",
    ResetFormat::Rfc3339,
);
const ANTHROPIC_OUTPUT_TOKENS: Source = source(
    "anthropic-ratelimit-output-tokens-remaining",
    "anthropic-ratelimit-output-tokens-reset",
    ResetFormat::Rfc3339,
);
const OPENAI_REQUESTS: Source =
    source("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests", ResetFormat::GoDuration);
const OPENAI_TOKENS: Source =
    source("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", ResetFormat::GoDuration);

/// Read the rate-limit headers of one upstream answer. `now_unix` is the wall clock (time since the UNIX epoch)
/// the answer arrived at, against which Anthropic's absolute resets are measured.
///
/// `None` when the answer carries no `*-remaining` rate-limit header at all, the common case, found with six
/// lookups. Otherwise every kind that has both a well-formed remaining count and a well-formed reset; a
/// malformed or missing one leaves that kind `None`. Where both providers' headers are present, Anthropic's win.
pub fn parse(headers: &HeaderMap, now_unix: Duration) -> Option<RateLimits> {
    // One pass over the names first: cheaper than six hashed lookups when, as usual, there is none.
    let announced = headers.keys().any(|k| {
        let k = k.as_str();
        k.starts_with("anthropic-ratelimit-") || k.starts_with("x-ratelimit-")
    });
    if !announced {
        return None;
    }
    let anthropic_requests = headers.get(&ANTHROPIC_REQUESTS.remaining);
    let anthropic_tokens = headers.get(&ANTHROPIC_TOKENS.remaining);
    let anthropic_input = headers.get(&ANTHROPIC_INPUT_TOKENS.remaining);
    let anthropic_output = headers.get(&ANTHROPIC_OUTPUT_TOKENS.remaining);
    let openai_requests = headers.get(&OPENAI_REQUESTS.remaining);
    let openai_tokens = headers.get(&OPENAI_TOKENS.remaining);
    if anthropic_requests.is_none()
        && anthropic_tokens.is_none()
        && anthropic_input.is_none()
        && anthropic_output.is_none()
        && openai_requests.is_none()
        && openai_tokens.is_none()
    {
        return None;
    }
    let read = |remaining: Option<&http::HeaderValue>, source: &Source| {
        let remaining = parse_count(remaining?.as_bytes())?;
        let reset = headers.get(&source.reset)?.as_bytes();
        let reset = match source.format {
            ResetFormat::Rfc3339 => parse_rfc3339(reset)?.saturating_sub(now_unix),
            ResetFormat::GoDuration => parse_go_duration(reset)?,
        };
        Some(Remaining { remaining, reset: reset.min(MAX_RESET) })
    };
    Some(RateLimits {
        requests: read(anthropic_requests, &ANTHROPIC_REQUESTS)
            .or_else(|| read(openai_requests, &OPENAI_REQUESTS)),
        tokens: read(anthropic_tokens, &ANTHROPIC_TOKENS).or_else(|| read(openai_tokens, &OPENAI_TOKENS)),
        input_tokens: read(anthropic_input, &ANTHROPIC_INPUT_TOKENS),
        output_tokens: read(anthropic_output, &ANTHROPIC_OUTPUT_TOKENS),
    })
}

/// A non-negative decimal count, surrounding whitespace allowed.
fn parse_count(bytes: &[u8]) -> Option<u64> {
    let digits = bytes.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

/// A small cursor over ASCII bytes.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let (&first, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(first)
    }

    fn eat(&mut self, accept: impl Fn(u8) -> bool) -> Option<u8> {
        let b = self.peek().filter(|&b| accept(b))?;
        self.bump();
        Some(b)
    }

    /// Exactly `n` decimal digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| {
            let d = self.eat(|b| b.is_ascii_digit())?;
            Some(acc * 10 + u32::from(d - b'0'))
        })
    }
}

/// An RFC 3339 date-time (`2026-12-02T03:04:05Z`, `…05.123456789Z`, `…05+01:00`) as time since the UNIX epoch.
/// `None` for anything else, and for instants before the epoch (a reset long past is as good as now).
fn parse_rfc3339(bytes: &[u8]) -> Option<Duration> {
    let mut c = Cursor { rest: bytes.trim_ascii() };
    let year = c.digits(4)?;
    c.eat(|b| b == b'-')?;
    let month = c.digits(2)?;
    c.eat(|b| b == b'-')?;
    let day = c.digits(2)?;
    c.eat(|b| matches!(b, b'T' | b't' | b' '))?;
    let hour = c.digits(2)?;
    c.eat(|b| b == b':')?;
    let minute = c.digits(2)?;
    c.eat(|b| b == b':')?;
    let second = c.digits(2)?;
    let mut nanos = 0u32;
    if c.eat(|b| b == b'.').is_some() {
        let mut scale = 100_000_000u32;
        let mut any = false;
        while let Some(d) = c.eat(|b| b.is_ascii_digit()) {
            nanos += u32::from(d - b'0') * scale;
            scale /= 10;
            any = true;
        }
        if !any {
            return None;
        }
    }
    let offset_secs: i64 = match c.bump()? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let h = c.digits(2)?;
            c.eat(|b| b == b':')?;
            let m = c.digits(2)?;
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i64::from(h * 3600 + m * 60);
            if sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    if !c.rest.is_empty()
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    Some(Duration::new(secs, nanos))
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A Go `time.Duration` string (`20ms`, `1.5s`, `6m0s`, `1h2m3s`, `0`). A negative one is `Duration::ZERO`;
/// a huge one saturates (the caller caps it).
fn parse_go_duration(bytes: &[u8]) -> Option<Duration> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    let (negative, text) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..)?),
        Some(b'+') => (false, text.get(1..)?),
        _ => (false, text),
    };
    if text == "0" {
        return Some(Duration::ZERO);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at_checked(int_len)?;
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(after) => {
                let frac_len = after.bytes().take_while(u8::is_ascii_digit).count();
                after.split_at_checked(frac_len)?
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_len = after.find(|ch: char| ch.is_ascii_digit() || ch == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at_checked(unit_len)?;
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let int_value =
            int_part.bytes().fold(0u128, |n, d| n.saturating_mul(10).saturating_add(u128::from(d - b'0')));
        let mut frac_nanos = 0u128;
        let mut scale = unit_nanos;
        for d in frac_part.bytes() {
            scale /= 10;
            frac_nanos += u128::from(d - b'0') * scale;
        }
        total = total.saturating_add(int_value.saturating_mul(unit_nanos)).saturating_add(frac_nanos);
        rest = after;
    }
    if negative {
        return Some(Duration::ZERO);
    }
    let secs = u64::try_from(total / 1_000_000_000).unwrap_or(u64::MAX);
    let nanos = u32::try_from(total % 1_000_000_000).unwrap_or(0);
    Some(Duration::new(secs, nanos))
}

/// What one request is expected to spend.
#[derive(Clone, Copy, Debug, Default)]
pub struct Need {
    pub input_tokens: u64,
    /// The request's `max_tokens`: providers count the most it may produce.
    pub output_tokens: u64,
}

impl RateLimits {
    /// The latest reset among the limits that are used up (what a 429 without `Retry-After` waits for).
    pub fn exhausted_reset(&self) -> Option<Duration> {
        [self.requests, self.tokens, self.input_tokens, self.output_tokens]
            .iter()
            .flatten()
            .filter(|r| r.remaining == 0)
            .map(|r| r.reset)
            .max()
    }
}

impl Need {
    fn total(self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// One limit in absolute terms: what is left until `reset`.
#[derive(Clone, Copy, Debug)]
struct Window {
    remaining: u64,
    reset: Instant,
}

impl Window {
    fn new(now: Instant, limit: Remaining) -> Option<Window> {
        Some(Window { remaining: limit.remaining, reset: now.checked_add(limit.reset)? })
    }

    /// The window, if its reset has not passed yet: after it, the limit counts as full again (unknown).
    fn live(window: Option<Window>, now: Instant) -> Option<Window> {
        window.filter(|w| now < w.reset)
    }
}

/// Local view of a target's headroom: the last [`RateLimits`] seen, turned into absolute instants, and
/// decremented locally for requests admitted since (so that ten concurrent requests do not all spend the last
/// remaining request).
#[derive(Clone, Debug, Default)]
pub struct Headroom {
    requests: Option<Window>,
    tokens: Option<Window>,
    input_tokens: Option<Window>,
    output_tokens: Option<Window>,
}

impl Headroom {
    /// Take in what an answer said, received at `now`. The newest answer wins for every kind it reports; a kind
    /// it does not report keeps what was known (until that reset passes).
    pub fn update(&mut self, now: Instant, limits: &RateLimits) {
        let slots = [
            (&mut self.requests, limits.requests),
            (&mut self.tokens, limits.tokens),
            (&mut self.input_tokens, limits.input_tokens),
            (&mut self.output_tokens, limits.output_tokens),
        ];
        for (slot, limit) in slots {
            if let Some(limit) = limit {
                *slot = Window::new(now, limit);
            }
        }
    }

    /// Can this target take `need` now? `Err(until)` if not, with the instant the exhausted limit resets (the
    /// latest of them, when several are). A limit whose reset has passed counts as full again (unknown).
    /// `tokens` covers input and output together, `input_tokens` the input, `output_tokens` the output.
    pub fn check(&self, now: Instant, need: Need) -> Result<(), Instant> {
        let demands = [
            (self.requests, 1),
            (self.tokens, need.total()),
            (self.input_tokens, need.input_tokens),
            (self.output_tokens, need.output_tokens),
        ];
        let mut until: Option<Instant> = None;
        for (window, demand) in demands {
            if let Some(w) = Window::live(window, now)
                && (w.remaining == 0 || w.remaining < demand)
            {
                until = Some(until.map_or(w.reset, |u| u.max(w.reset)));
            }
        }
        match until {
            Some(until) => Err(until),
            None => Ok(()),
        }
    }

    /// Count an admitted request against the local view (requests −1, tokens −need), saturating. Limits whose
    /// reset has passed are forgotten.
    pub fn spend(&mut self, now: Instant, need: Need) {
        let slots = [
            (&mut self.requests, 1),
            (&mut self.tokens, need.total()),
            (&mut self.input_tokens, need.input_tokens),
            (&mut self.output_tokens, need.output_tokens),
        ];
        for (slot, cost) in slots {
            *slot = Window::live(*slot, now)
                .map(|w| Window { remaining: w.remaining.saturating_sub(cost), reset: w.reset });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// 2026-12-02T03:04:05Z.
    const DEC_2_2026: u64 = 1_796_180_645;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        map
    }

    fn at(remaining: u64, reset: Duration) -> Option<Remaining> {
        Some(Remaining { remaining, reset })
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn answer_without_rate_limit_headers_is_none() {
        let map = headers(&[("content-type", "application/json"), ("request-id", "req_1")]);
        assert_eq!(parse(&map, secs(DEC_2_2026)), None);
    }

    #[test]
    fn anthropic_headers_give_all_four_kinds() {
        let map = headers(&[
            ("anthropic-ratelimit-requests-limit", "4000"),
            ("anthropic-ratelimit-requests-remaining", "3999"),
            ("anthropic-ratelimit-requests-reset", "2026-12-02T03:04:06Z"),
            ("anthropic-ratelimit-tokens-limit", "480000"),
            ("anthropic-ratelimit-tokens-remaining", "479000"),
            ("anthropic-ratelimit-tokens-reset", "2026-12-02T03:04:11Z"),
            ("anthropic-ratelimit-input-tokens-limit", "400000"),
            ("anthropic-ratelimit-input-tokens-remaining", "399000"),
            ("anthropic-ratelimit-input-tokens-reset", "2026-12-02T03:04:05.500Z"),
            ("anthropic-ratelimit-output-tokens-limit", "80000"),
            ("anthropic-ratelimit-output-tokens-remaining", "80000"),
            ("anthropic-ratelimit-output-tokens-reset", "2026-12-02T03:05:05+00:00"),
            ("retry-after", "1"),
        ]);
        let limits = parse(&map, secs(DEC_2_2026));
        assert_eq!(
            limits,
            Some(RateLimits {
                requests: at(3999, secs(1)),
                tokens: at(479_000, secs(6)),
                input_tokens: at(399_000, Duration::from_millis(500)),
                output_tokens: at(80_000, secs(60)),
            })
        );
    }

    #[test]
    fn openai_headers_give_requests_and_tokens() {
        let map = headers(&[
            ("x-ratelimit-limit-requests", "10000"),
            ("x-ratelimit-limit-tokens", "30000000"),
            ("x-ratelimit-remaining-requests", "9999"),
            ("x-ratelimit-remaining-tokens", "29999966"),
            ("x-ratelimit-reset-requests", "6ms"),
            ("x-ratelimit-reset-tokens", "0s"),
        ]);
        let limits = parse(&map, secs(DEC_2_2026));
        assert_eq!(
            limits,
            Some(RateLimits {
                requests: at(9999, Duration::from_millis(6)),
                tokens: at(29_999_966, Duration::ZERO),
                input_tokens: None,
                output_tokens: None,
            })
        );
    }

    #[test]
    fn reset_in_the_past_is_zero_and_a_far_one_is_capped_at_a_day() {
        let map = headers(&[
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2020-01-01T00:00:00Z"),
            ("anthropic-ratelimit-tokens-remaining", "5"),
            ("anthropic-ratelimit-tokens-reset", "2027-12-02T03:04:05Z"),
        ]);
        let limits = parse(&map, secs(DEC_2_2026)).unwrap_or_default();
        assert_eq!(limits.requests, at(0, Duration::ZERO));
        assert_eq!(limits.tokens, at(5, MAX_RESET));
        let openai =
            headers(&[("x-ratelimit-remaining-requests", "1"), ("x-ratelimit-reset-requests", "90h")]);
        assert_eq!(parse(&openai, secs(0)).unwrap_or_default().requests, at(1, MAX_RESET));
    }

    #[test]
    fn malformed_values_leave_only_their_field_none() {
        let map = headers(&[
            ("anthropic-ratelimit-requests-remaining", "-1"),
            ("anthropic-ratelimit-requests-reset", "2026-12-02T03:04:06Z"),
            ("anthropic-ratelimit-tokens-remaining", "100"),
            ("anthropic-ratelimit-tokens-reset", "tomorrow"),
            ("anthropic-ratelimit-input-tokens-remaining", "100"),
            ("anthropic-ratelimit-output-tokens-remaining", "7"),
            ("anthropic-ratelimit-output-tokens-reset", "2026-12-02T03:04:15Z"),
        ]);
        let limits = parse(&map, secs(DEC_2_2026));
        assert_eq!(
            limits,
            Some(RateLimits { output_tokens: at(7, secs(10)), ..RateLimits::default() }),
            "bad count, bad reset and missing reset each drop only their own kind"
        );
    }

    #[test]
    fn present_but_all_garbage_is_some_and_empty() {
        let map =
            headers(&[("x-ratelimit-remaining-requests", "lots"), ("x-ratelimit-reset-requests", "soon")]);
        assert_eq!(parse(&map, secs(DEC_2_2026)), Some(RateLimits::default()));
    }

    #[test]
    fn anthropic_wins_over_openai_when_both_are_present() {
        let map = headers(&[
            ("anthropic-ratelimit-requests-remaining", "5"),
            ("anthropic-ratelimit-requests-reset", "2026-12-02T03:04:07Z"),
            ("x-ratelimit-remaining-requests", "9"),
            ("x-ratelimit-reset-requests", "1s"),
            ("x-ratelimit-remaining-tokens", "90"),
            ("x-ratelimit-reset-tokens", "1s"),
        ]);
        let limits = parse(&map, secs(DEC_2_2026)).unwrap_or_default();
        assert_eq!(limits.requests, at(5, secs(2)));
        assert_eq!(limits.tokens, at(90, secs(1)));
    }

    #[test]
    fn rfc3339_epoch_is_zero() {
        assert_eq!(parse_rfc3339(b"1970-01-01T00:00:00Z"), Some(Duration::ZERO));
        assert_eq!(parse_rfc3339(b"1970-01-01T00:00:01z"), Some(secs(1)));
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(parse_rfc3339(b"2026-12-02T03:04:05Z"), Some(secs(DEC_2_2026)));
        assert_eq!(parse_rfc3339(b"2000-01-01T00:00:00Z"), Some(secs(946_684_800)));
        assert_eq!(parse_rfc3339(b"2038-01-19T03:14:08Z"), Some(secs(1 << 31)));
        assert_eq!(parse_rfc3339(b"9999-12-31T23:59:59Z"), Some(secs(253_402_300_799)));
    }

    #[test]
    fn rfc3339_leap_years() {
        assert_eq!(parse_rfc3339(b"2024-02-29T00:00:00Z"), Some(secs(1_709_164_800)));
        assert_eq!(parse_rfc3339(b"2000-02-29T00:00:00Z"), Some(secs(951_782_400)));
        assert_eq!(parse_rfc3339(b"2024-03-01T00:00:00Z"), Some(secs(1_709_251_200)));
        assert_eq!(parse_rfc3339(b"2023-02-29T00:00:00Z"), None, "2023 is not a leap year");
        assert_eq!(parse_rfc3339(b"1900-02-29T00:00:00Z"), None, "1900 is not a leap year");
    }

    #[test]
    fn rfc3339_fractional_seconds() {
        assert_eq!(parse_rfc3339(b"1970-01-01T00:00:01.5Z"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_rfc3339(b"1970-01-01T00:00:00.123456789Z"), Some(Duration::from_nanos(123_456_789)));
        assert_eq!(
            parse_rfc3339(b"1970-01-01T00:00:00.1234567891234Z"),
            Some(Duration::from_nanos(123_456_789)),
            "digits past nanoseconds are dropped"
        );
        assert_eq!(parse_rfc3339(b"1970-01-01T00:00:00.Z"), None);
    }

    #[test]
    fn rfc3339_offsets() {
        assert_eq!(parse_rfc3339(b"2026-12-02T03:04:05+00:00"), Some(secs(DEC_2_2026)));
        assert_eq!(parse_rfc3339(b"2026-12-02T04:04:05+01:00"), Some(secs(DEC_2_2026)));
        assert_eq!(parse_rfc3339(b"2026-12-01T21:34:05-05:30"), Some(secs(DEC_2_2026)));
        assert_eq!(parse_rfc3339(b"1970-01-01T00:00:00+01:00"), None, "before the epoch");
    }

    #[test]
    fn rfc3339_garbage_is_none() {
        for bad in [
            &b""[..],
            b"2026-12-02",
            b"2026-12-02T03:04:05",
            b"2026-13-02T03:04:05Z",
            b"2026-00-02T03:04:05Z",
            b"2026-04-31T03:04:05Z",
            b"2026-12-02T24:00:00Z",
            b"2026-12-02T03:60:05Z",
            b"2026-12-02T03:04:05+0100",
            b"2026-12-02T03:04:05Zjunk",
            b"26-12-02T03:04:05Z",
            b"1796180645",
            b"\xff\xfe",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn go_durations() {
        let cases: [(&str, Duration); 12] = [
            ("20ms", Duration::from_millis(20)),
            ("1s", secs(1)),
            ("1.5s", Duration::from_millis(1500)),
            ("6m0s", secs(360)),
            ("1h2m3s", secs(3723)),
            ("0s", Duration::ZERO),
            ("0", Duration::ZERO),
            ("2m59.56s", Duration::from_millis(179_560)),
            ("100us", Duration::from_micros(100)),
            ("100µs", Duration::from_micros(100)),
            ("7ns", Duration::from_nanos(7)),
            (".5h", secs(1800)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_go_duration(text.as_bytes()), Some(want), "{text}");
        }
        assert_eq!(parse_go_duration(b"-3s"), Some(Duration::ZERO), "a negative reset has passed");
    }

    #[test]
    fn go_duration_garbage_is_none() {
        for bad in ["", "s", "5", "1.5", "1x", "1s2", "1 s", ".s", "soon", "1h-2m", "-"] {
            assert_eq!(parse_go_duration(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn counts_reject_signs_and_overflow() {
        assert_eq!(parse_count(b" 42 "), Some(42));
        assert_eq!(parse_count(b"18446744073709551615"), Some(u64::MAX));
        for bad in [&b""[..], b"+1", b"-1", b"1.0", b"18446744073709551616", b"1e3"] {
            assert_eq!(parse_count(bad), None);
        }
    }

    fn limits(requests: Option<Remaining>, tokens: Option<Remaining>) -> RateLimits {
        RateLimits { requests, tokens, ..RateLimits::default() }
    }

    const ONE: Need = Need { input_tokens: 0, output_tokens: 0 };

    #[test]
    fn empty_headroom_admits_anything() {
        let now = Instant::now();
        let need = Need { input_tokens: u64::MAX, output_tokens: u64::MAX };
        assert_eq!(Headroom::default().check(now, need), Ok(()));
    }

    #[test]
    fn no_requests_left_refuses_until_the_reset_then_admits() {
        let now = Instant::now();
        let mut room = Headroom::default();
        room.update(now, &limits(at(0, secs(10)), None));
        let reset = now + secs(10);
        assert_eq!(room.check(now, ONE), Err(reset));
        assert_eq!(room.check(now + secs(9), ONE), Err(reset));
        assert_eq!(room.check(reset, ONE), Ok(()), "at the reset the limit is full again");
        assert_eq!(room.check(now + secs(11), ONE), Ok(()));
    }

    #[test]
    fn tokens_not_covering_the_need_refuse() {
        let now = Instant::now();
        let mut room = Headroom::default();
        room.update(now, &limits(at(100, secs(60)), at(1000, secs(30))));
        assert_eq!(room.check(now, Need { input_tokens: 600, output_tokens: 400 }), Ok(()));
        assert_eq!(room.check(now, Need { input_tokens: 600, output_tokens: 401 }), Err(now + secs(30)));
    }

    #[test]
    fn input_and_output_limits_check_their_own_part() {
        let now = Instant::now();
        let mut room = Headroom::default();
        let input = at(500, secs(5));
        let output = at(100, secs(7));
        room.update(now, &RateLimits { input_tokens: input, output_tokens: output, ..RateLimits::default() });
        assert_eq!(room.check(now, Need { input_tokens: 500, output_tokens: 100 }), Ok(()));
        assert_eq!(room.check(now, Need { input_tokens: 501, output_tokens: 100 }), Err(now + secs(5)));
        assert_eq!(room.check(now, Need { input_tokens: 10, output_tokens: 4096 }), Err(now + secs(7)));
        assert_eq!(
            room.check(now, Need { input_tokens: 501, output_tokens: 4096 }),
            Err(now + secs(7)),
            "with several exhausted, the latest reset"
        );
    }

    #[test]
    fn spend_makes_one_remaining_request_admit_exactly_one() {
        let now = Instant::now();
        let mut room = Headroom::default();
        room.update(now, &limits(at(1, secs(5)), None));
        assert_eq!(room.check(now, ONE), Ok(()));
        room.spend(now, ONE);
        assert_eq!(room.check(now, ONE), Err(now + secs(5)));
        room.spend(now, ONE);
        assert_eq!(room.check(now, ONE), Err(now + secs(5)), "spending saturates at zero");
    }

    #[test]
    fn spend_decrements_tokens_by_the_need() {
        let now = Instant::now();
        let mut room = Headroom::default();
        room.update(now, &limits(None, at(1000, secs(5))));
        let need = Need { input_tokens: 300, output_tokens: 200 };
        room.spend(now, need);
        assert_eq!(room.check(now, need), Ok(()));
        room.spend(now, need);
        assert_eq!(room.check(now, Need { input_tokens: 0, output_tokens: 1 }), Err(now + secs(5)));
    }

    #[test]
    fn newest_answer_wins_and_unreported_kinds_are_kept() {
        let now = Instant::now();
        let mut room = Headroom::default();
        room.update(now, &limits(at(0, secs(5)), at(0, secs(8))));
        let later = now + secs(1);
        room.update(later, &limits(at(3, secs(5)), None));
        assert_eq!(room.check(later, ONE), Err(now + secs(8)), "tokens still exhausted");
        room.update(later, &limits(None, at(10, secs(1))));
        assert_eq!(room.check(later, ONE), Ok(()));
    }

    #[test]
    fn spend_after_the_reset_forgets_the_limit() {
        let now = Instant::now();
        let mut room = Headroom::default();
        room.update(now, &limits(at(1, secs(5)), None));
        room.spend(now + secs(6), ONE);
        assert_eq!(room.check(now + secs(6), ONE), Ok(()));
    }

    #[test]
    fn parsed_headers_feed_the_headroom() {
        let map = headers(&[("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "1.5s")]);
        let now = Instant::now();
        let mut room = Headroom::default();
        room.update(now, &parse(&map, secs(DEC_2_2026)).unwrap_or_default());
        assert_eq!(room.check(now, ONE), Err(now + Duration::from_millis(1500)));
    }
}
