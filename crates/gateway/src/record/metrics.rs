//! Prometheus metrics (`GET /metrics`), kept with `prometheus-client`. Labels are few and bounded by the
//! configuration: route, provider, target (`provider/model`; every ad-hoc target of a provider shares
//! `provider/*`), outcome, error kind, ending. Handles for a target's and a route's series are made once, when the
//! target or route is first seen ([`TargetMetrics`], [`RouteMetrics`]), so the hot path only touches atomics (and a
//! histogram's short lock); a failure's duration series (rare) is looked up by its labels. Every counter series a
//! target or route can have is there from the start, at 0 (each error kind's too): a series born at its first
//! increment loses that increment to `rate()` and `increase()`.
//!
//! Names follow Prometheus conventions (`nines_…_total`, `_seconds`) and OpenTelemetry's GenAI conventions where
//! they have one (`gen_ai_client_operation_duration_seconds`, `gen_ai_client_token_usage`,
//! `gen_ai_server_time_to_first_token_seconds`, `gen_ai_server_request_duration_seconds`), with their attributes as
//! labels (`gen_ai_provider_name`, `gen_ai_request_model`, `gen_ai_token_type`, `error_type`).

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::config::ProviderKind;
use crate::provider::ErrorKind;
use crate::record::Ending;

/// Seconds: from a fast cached answer to a long reasoning stream.
const DURATION_BUCKETS: [f64; 14] =
    [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0];
/// Seconds to a first token.
const TTFT_BUCKETS: [f64; 12] = [0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6];
/// Tokens per answer (the GenAI convention's buckets, powers of four).
const TOKEN_BUCKETS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn ttft_histogram() -> Histogram {
    Histogram::new(TTFT_BUCKETS)
}

fn token_histogram() -> Histogram {
    Histogram::new(TOKEN_BUCKETS)
}

/// The GenAI conventions' `gen_ai.provider.name` for a provider kind.
pub fn gen_ai_provider(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Anthropic => "anthropic",
        ProviderKind::Gemini => "gcp.gemini",
        _ => "openai",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    provider: String,
    target: String,
    outcome: &'static str,
    error_kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    provider: String,
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GenAiLabels {
    gen_ai_provider_name: &'static str,
    gen_ai_request_model: String,
    gen_ai_operation_name: &'static str,
    error_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    gen_ai_provider_name: &'static str,
    gen_ai_request_model: String,
    gen_ai_token_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokensTotalLabels {
    provider: String,
    target: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    ending: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResumeLabels {
    route: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    gen_ai_request_model: String,
    error_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TtftServerLabels {
    gen_ai_request_model: String,
}

/// Every metric family of the gateway, and their registry.
pub struct Metrics {
    registry: Registry,
    attempts: Family<AttemptLabels, Counter>,
    attempt_duration: Family<GenAiLabels, Histogram, fn() -> Histogram>,
    ttft: Family<TargetLabels, Histogram, fn() -> Histogram>,
    token_usage: Family<TokenLabels, Histogram, fn() -> Histogram>,
    tokens: Family<TokensTotalLabels, Counter>,
    breaker: Family<TargetLabels, Gauge>,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<ServerLabels, Histogram, fn() -> Histogram>,
    server_ttft: Family<TtftServerLabels, Histogram, fn() -> Histogram>,
    failovers: Family<RouteLabels, Counter>,
    retries: Family<RouteLabels, Counter>,
    hedges: Family<RouteLabels, Counter>,
    resumes: Family<ResumeLabels, Counter>,
    pub in_flight: Gauge,
    /// Encoding is rare (a scrape) and needs the families still: serialized here.
    encode: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let attempts = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "nines_attempts",
            "Upstream attempts by target and outcome (success, failure, client_error, abandoned), failures by kind",
            attempts.clone(),
        );
        let attempt_duration = Family::new_with_constructor(duration_histogram as fn() -> Histogram);
        registry.register(
            "gen_ai_client_operation_duration_seconds",
            "Duration of upstream attempts (GenAI semantic conventions)",
            attempt_duration.clone(),
        );
        let token_usage = Family::new_with_constructor(token_histogram as fn() -> Histogram);
        registry.register(
            "gen_ai_client_token_usage",
            "Tokens per answer, input and output (GenAI semantic conventions)",
            token_usage.clone(),
        );
        let ttft = Family::new_with_constructor(ttft_histogram as fn() -> Histogram);
        registry.register(
            "nines_attempt_time_to_first_token_seconds",
            "Time from sending an attempt to its first token (streams)",
            ttft.clone(),
        );
        let tokens = Family::<TokensTotalLabels, Counter>::default();
        registry.register(
            "nines_tokens",
            "Tokens reported by answers, by direction (input, output)",
            tokens.clone(),
        );
        let breaker = Family::<TargetLabels, Gauge>::default();
        registry.register(
            "nines_breaker_state",
            "A target's breaker: 0 closed, 1 half-open, 2 open, 3 down (its key refused), 4 rate-limited",
            breaker.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "nines_requests",
            "Requests by route and ending (served, saved, resumed, failed, broken_stream, refused, cancelled)",
            requests.clone(),
        );
        let request_duration = Family::new_with_constructor(duration_histogram as fn() -> Histogram);
        registry.register(
            "gen_ai_server_request_duration_seconds",
            "Duration of client requests, first byte in to last byte out (GenAI semantic conventions)",
            request_duration.clone(),
        );
        let server_ttft = Family::new_with_constructor(ttft_histogram as fn() -> Histogram);
        registry.register(
            "gen_ai_server_time_to_first_token_seconds",
            "Time from a streamed request's arrival to its first token leaving (GenAI semantic conventions)",
            server_ttft.clone(),
        );
        let failovers = Family::<RouteLabels, Counter>::default();
        registry.register("nines_failovers", "Requests that moved on to another target", failovers.clone());
        let retries = Family::<RouteLabels, Counter>::default();
        registry.register("nines_retries", "Attempts that retried the same target", retries.clone());
        let hedges = Family::<RouteLabels, Counter>::default();
        registry.register(
            "nines_hedges",
            "Hedged attempts started because a first token was late",
            hedges.clone(),
        );
        let resumes = Family::<ResumeLabels, Counter>::default();
        registry.register(
            "nines_resumes",
            "Streams that broke after their first token: resumed elsewhere, or not",
            resumes.clone(),
        );
        let in_flight = Gauge::default();
        registry.register("nines_in_flight_requests", "Requests in flight", in_flight.clone());
        Metrics {
            registry,
            attempts,
            attempt_duration,
            ttft,
            token_usage,
            tokens,
            breaker,
            requests,
            request_duration,
            server_ttft,
            failovers,
            retries,
            hedges,
            resumes,
            in_flight,
            encode: Mutex::new(()),
        }
    }

    /// The handles of one target's series.
    pub fn target(&self, provider: &str, kind: ProviderKind, label: &str, model: &str) -> TargetMetrics {
        let t = |outcome: &'static str| AttemptLabels {
            provider: provider.to_owned(),
            target: label.to_owned(),
            outcome,
            error_kind: "",
        };
        let tl = TargetLabels { provider: provider.to_owned(), target: label.to_owned() };
        let gen_ai = gen_ai_provider(kind);
        let g = |operation: &'static str, error_type: &'static str| GenAiLabels {
            gen_ai_provider_name: gen_ai,
            gen_ai_request_model: model.to_owned(),
            gen_ai_operation_name: operation,
            error_type,
        };
        let tok = |ty: &'static str| TokenLabels {
            gen_ai_provider_name: gen_ai,
            gen_ai_request_model: model.to_owned(),
            gen_ai_token_type: ty,
        };
        let tt = |direction: &'static str| TokensTotalLabels {
            provider: provider.to_owned(),
            target: label.to_owned(),
            direction,
        };
        TargetMetrics {
            model: model.to_owned(),
            gen_ai,
            success: self.attempts.get_or_create_owned(&t("success")),
            abandoned: self.attempts.get_or_create_owned(&t("abandoned")),
            failures: ErrorKind::ALL.map(|kind| {
                self.attempts.get_or_create_owned(&AttemptLabels {
                    provider: provider.to_owned(),
                    target: label.to_owned(),
                    outcome: failure_outcome(kind),
                    error_kind: kind.label(),
                })
            }),
            duration_ok: self.attempt_duration.get_or_create_owned(&g("chat", "")),
            ttft: self.ttft.get_or_create_owned(&tl),
            usage_in: self.token_usage.get_or_create_owned(&tok("input")),
            usage_out: self.token_usage.get_or_create_owned(&tok("output")),
            tokens_in: self.tokens.get_or_create_owned(&tt("input")),
            tokens_out: self.tokens.get_or_create_owned(&tt("output")),
            breaker: self.breaker.get_or_create_owned(&tl),
        }
    }

    /// The handles of one route's series.
    pub fn route(&self, name: &str) -> RouteMetrics {
        let ending = |e: Ending| {
            self.requests.get_or_create_owned(&RequestLabels { route: name.to_owned(), ending: e.label() })
        };
        let r = RouteLabels { route: name.to_owned() };
        let server =
            |error_type: &'static str| ServerLabels { gen_ai_request_model: name.to_owned(), error_type };
        RouteMetrics {
            endings: Ending::ALL.map(ending),
            duration_ok: self.request_duration.get_or_create_owned(&server("")),
            duration_failed: self.request_duration.get_or_create_owned(&server("failed")),
            ttft: self
                .server_ttft
                .get_or_create_owned(&TtftServerLabels { gen_ai_request_model: name.to_owned() }),
            failovers: self.failovers.get_or_create_owned(&r),
            retries: self.retries.get_or_create_owned(&r),
            hedges: self.hedges.get_or_create_owned(&r),
            resumed: self
                .resumes
                .get_or_create_owned(&ResumeLabels { route: name.to_owned(), outcome: "resumed" }),
            not_resumed: self
                .resumes
                .get_or_create_owned(&ResumeLabels { route: name.to_owned(), outcome: "not_resumed" }),
        }
    }

    /// A failed attempt (rare: its duration series is looked up by its labels).
    pub fn attempt_failed(&self, t: &TargetMetrics, kind: ErrorKind, seconds: f64) {
        t.failures[kind.index()].inc();
        let g = GenAiLabels {
            gen_ai_provider_name: t.gen_ai,
            gen_ai_request_model: t.model.clone(),
            gen_ai_operation_name: "chat",
            error_type: kind.label(),
        };
        self.attempt_duration.get_or_create(&g).observe(seconds);
    }

    /// The text exposition (Prometheus 0.0.4).
    pub fn encode(&self) -> String {
        let _one = self.encode.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String does not fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// A failed attempt's `outcome` label: the target's failure, or the client's request at fault.
fn failure_outcome(kind: ErrorKind) -> &'static str {
    if kind.counts_against_target() { "failure" } else { "client_error" }
}

/// One target's series.
#[derive(Debug)]
pub struct TargetMetrics {
    model: String,
    gen_ai: &'static str,
    pub success: Counter,
    pub abandoned: Counter,
    /// Failed attempts, by [`ErrorKind::index`].
    failures: [Counter; ErrorKind::ALL.len()],
    pub duration_ok: Histogram,
    pub ttft: Histogram,
    pub usage_in: Histogram,
    pub usage_out: Histogram,
    pub tokens_in: Counter,
    pub tokens_out: Counter,
    pub breaker: Gauge,
}

/// One route's series.
#[derive(Debug)]
pub struct RouteMetrics {
    endings: [Counter; Ending::ALL.len()],
    pub duration_ok: Histogram,
    pub duration_failed: Histogram,
    pub ttft: Histogram,
    pub failovers: Counter,
    pub retries: Counter,
    pub hedges: Counter,
    pub resumed: Counter,
    pub not_resumed: Counter,
}

impl RouteMetrics {
    pub fn ended(&self, ending: Ending) {
        self.endings[ending.index()].inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_the_conventional_names_and_only_the_labels_given() {
        let m = Metrics::new();
        let t = m.target("anthropic", ProviderKind::Anthropic, "anthropic/claude", "claude");
        t.success.inc();
        t.tokens_in.inc_by(12);
        m.attempt_failed(&t, ErrorKind::Overloaded, 0.2);
        let r = m.route("chat");
        r.ended(Ending::Saved);
        r.failovers.inc();
        let text = m.encode();
        for line in [
            "nines_attempts_total{provider=\"anthropic\",target=\"anthropic/claude\",outcome=\"success\",error_kind=\"\"} 1",
            "nines_attempts_total{provider=\"anthropic\",target=\"anthropic/claude\",outcome=\"failure\",error_kind=\"overload\"} 1",
            // Every kind's series is there before its first failure (else rate() would miss that failure).
            "nines_attempts_total{provider=\"anthropic\",target=\"anthropic/claude\",outcome=\"failure\",error_kind=\"timeout\"} 0",
            "nines_attempts_total{provider=\"anthropic\",target=\"anthropic/claude\",outcome=\"client_error\",error_kind=\"bad_request\"} 0",
            "nines_tokens_total{provider=\"anthropic\",target=\"anthropic/claude\",direction=\"input\"} 12",
            "nines_requests_total{route=\"chat\",ending=\"saved\"} 1",
            "nines_failovers_total{route=\"chat\"} 1",
            "gen_ai_client_operation_duration_seconds_count{gen_ai_provider_name=\"anthropic\",gen_ai_request_model=\"claude\",gen_ai_operation_name=\"chat\",error_type=\"overload\"} 1",
        ] {
            assert!(text.contains(line), "{line} not in:\n{text}");
        }
    }
}
