//! Active probes: for providers configured with `probe`, a cheap request to each of their route targets whose
//! breaker is open (or that is down after an auth failure), every `interval`, so that recovery is noticed without
//! a client request paying for the trial. A success closes the breaker (traffic then ramps up); a failure keeps it
//! open. Probed targets never get client trials (see `health::TargetHealth::admit`).
//!
//! Each probe is one upstream call held to a short limit; results go to the recorder. This module never decides
//! anything about client requests.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use nines_wire::{ChatRequest, Message, Part, Role};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Limits;
use super::attempt::{self, AttemptSpec};
use crate::app::AppState;
use crate::config::ProbeRequest;
use crate::provider::{ErrorKind, ProviderError, parse_uri};
use crate::route::Target;

/// How often the loop looks for targets due a probe (the finest `interval` that means anything).
const TICK: Duration = Duration::from_millis(100);
/// The longest a probe may take.
const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// Probe until `stop` is cancelled.
pub async fn run(app: Arc<AppState>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let snap = app.snapshot();
        if snap.providers.values().all(|p| p.config.probe.is_none()) {
            continue;
        }
        let now = Instant::now();
        for target in snap.routes.targets() {
            let Some(probe) = target.provider.config.probe else { continue };
            if target.provider.unusable.is_some() || !target.health.probe_due(now, probe.interval) {
                continue;
            }
            let target = target.clone();
            let app2 = app.clone();
            let cfg = snap.config.health.clone();
            let stop = stop.clone();
            app.tracker.spawn(async move {
                // A shutdown does not wait for probes.
                tokio::select! {
                    () = stop.cancelled() => {}
                    result = probe_once(&target, probe.request) => app2.runtime.recorder.probed(&target, &cfg, result),
                }
            });
        }
    }
}

/// One probe of `target`.
async fn probe_once(target: &Target, request: ProbeRequest) -> Result<(), ProviderError> {
    let provider = &target.provider;
    let limit = provider.config.timeouts.first_byte.min(PROBE_LIMIT);
    let limits = Limits { deadline: Instant::now() + limit, first_token: limit };
    match request {
        ProbeRequest::Models => {
            let req = provider.get(parse_uri(provider.models_url())?);
            let resp = tokio::time::timeout(limit, provider.send(req))
                .await
                .map_err(|_| ProviderError::new(ErrorKind::Timeout, "no answer to the probe"))??;
            let status = resp.status().as_u16();
            if resp.status().is_success() {
                Ok(())
            } else {
                Err(ProviderError::from_status(status, resp.headers(), b""))
            }
        }
        ProbeRequest::Chat => {
            let req = ChatRequest {
                messages: vec![Message { role: Role::User, content: vec![Part::Text("ping".to_owned())] }],
                max_tokens: Some(1),
                ..ChatRequest::default()
            };
            let opts = provider.encode_opts(target.caps);
            let body = provider.dialect().encode_request(&req, &target.model, &opts).map_err(|e| {
                ProviderError::new(ErrorKind::BadRequest, format!("cannot make a probe: {e}")).with_source(e)
            })?;
            let spec = AttemptSpec {
                provider,
                model: &target.model,
                body: Bytes::from(body.body),
                stream: false,
                passthrough: false,
                headers: &HeaderMap::new(),
                limits,
            };
            attempt::run(spec).await.map(|_| ())
        }
    }
}
