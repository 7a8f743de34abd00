//! Route planning: the client's `model` → the [`Plan`]: the route's targets (its balanced pool, then its
//! fallbacks) and the strategy that orders the pool for each request ([`strategy`]).
//!
//! A route name gives its configured targets; `provider/model` goes straight to that provider; with
//! `dispatch.infer_models`, a provider's own model names (`claude-…`, `gpt-…`, `gemini-…`) go to a provider of that
//! kind. Each target carries its stable [`TargetId`] and a handle on its health, resolved when the configuration is
//! built (ad-hoc targets: when planned). Planning never does I/O and never consults health: the policy in
//! `dispatch` does, per attempt.

pub mod strategy;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{Capabilities, Config, ProviderKind, Strategy, StreamPolicy};
use crate::health::{Health, TargetHealth, TargetId};
use crate::provider::Provider;
use crate::record::stats::{DIRECT, RouteStats, Stats, TargetStats};

/// One place a request may be sent.
#[derive(Clone, Debug)]
pub struct Target {
    pub provider: Arc<Provider>,
    pub model: String,
    /// `provider/model`: stable across reloads, the key of its health.
    pub id: TargetId,
    /// What this model can take, resolved once.
    pub caps: Capabilities,
    /// Its context window in tokens, when declared.
    pub context_window: Option<u64>,
    /// Its share under the weighted strategy.
    pub weight: u32,
    pub health: Arc<TargetHealth>,
    /// Its history, metrics and incident (`record`).
    pub stats: Arc<TargetStats>,
}

impl Target {
    pub fn new(provider: Arc<Provider>, model: impl Into<String>, health: &Health, stats: &Stats) -> Self {
        let model = model.into();
        let s = stats.target(&provider, &model, false);
        Self::build(provider, model, |id| health.target(id), s)
    }

    /// `provider/model`, as text.
    pub fn label(&self) -> &str {
        self.id.as_str()
    }

    /// A target a client named (`provider/model`), whose health is kept only within the ad-hoc bounds.
    pub fn ad_hoc(provider: Arc<Provider>, model: impl Into<String>, health: &Health, stats: &Stats) -> Self {
        let model = model.into();
        let s = stats.target(&provider, &model, true);
        Self::build(provider, model, |id| health.ad_hoc(id), s)
    }

    fn build(
        provider: Arc<Provider>,
        model: String,
        health: impl FnOnce(&TargetId) -> Arc<TargetHealth>,
        stats: Arc<TargetStats>,
    ) -> Self {
        let id = TargetId::new(provider.name(), &model);
        let m = provider.config.model(&model);
        let health = health(&id);
        Target {
            provider,
            model,
            id,
            caps: m.capabilities,
            context_window: m.context_window,
            weight: 1,
            health,
            stats,
        }
    }
}

/// What to try for one request: the targets, of which the first `pool` form the balanced pool (ordered per request
/// by `strategy`) and the rest are fallbacks, tried in order.
#[derive(Clone, Debug)]
pub struct Plan {
    pub targets: Arc<[Target]>,
    pub pool: usize,
    pub strategy: Strategy,
    /// Resume and hedging, for streams.
    pub streams: StreamPolicy,
    /// The route's history and metrics (`record`).
    pub stats: Arc<RouteStats>,
}

impl Plan {
    fn single(target: Target, stats: Arc<RouteStats>) -> Plan {
        let streams = StreamPolicy::default();
        Plan { targets: Arc::from(vec![target]), pool: 1, strategy: Strategy::Priority, streams, stats }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("model \"{model}\" is not a route of this gateway; known models: {}", known_list(.known))]
pub struct UnknownModel {
    pub model: String,
    pub known: Vec<String>,
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "none (address a provider directly as provider/model)".into()
    } else {
        known.join(", ")
    }
}

/// The routing table, built once per configuration.
#[derive(Debug)]
pub struct Routes {
    routes: BTreeMap<String, Plan>,
    providers: BTreeMap<String, Arc<Provider>>,
    infer: bool,
    health: Arc<Health>,
    stats: Arc<Stats>,
    direct: Arc<RouteStats>,
}

impl Routes {
    pub fn build(
        config: &Config,
        providers: &BTreeMap<String, Arc<Provider>>,
        health: &Arc<Health>,
        stats: &Arc<Stats>,
    ) -> Routes {
        let routes = config
            .routes
            .iter()
            .map(|(name, route)| {
                let target = |rt: &crate::config::RouteTarget| {
                    providers.get(&rt.target.provider).map(|p| Target {
                        weight: rt.weight,
                        ..Target::new(p.clone(), &rt.target.model, health, stats)
                    })
                };
                let pool: Vec<Target> = route.pool.iter().filter_map(target).collect();
                let pool_len = pool.len();
                let mut all = pool;
                all.extend(route.fallbacks.iter().filter_map(target));
                let plan = Plan {
                    targets: Arc::from(all),
                    pool: pool_len,
                    strategy: route.strategy,
                    streams: route.streams,
                    stats: stats.route(name),
                };
                (name.clone(), plan)
            })
            .collect();
        Routes {
            routes,
            providers: providers.clone(),
            infer: config.dispatch.infer_models,
            health: health.clone(),
            stats: stats.clone(),
            direct: stats.route(DIRECT),
        }
    }

    /// Every distinct target of every route (for probes and reports).
    pub fn targets(&self) -> Vec<&Target> {
        let mut seen = std::collections::HashSet::new();
        self.routes.values().flat_map(|p| p.targets.iter()).filter(|t| seen.insert(&t.id)).collect()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }

    pub fn plan(&self, model: &str) -> Result<Plan, UnknownModel> {
        if let Some(plan) = self.routes.get(model) {
            return Ok(plan.clone());
        }
        if let Some((prov, m)) = model.split_once('/')
            && let Some(p) = self.providers.get(prov)
            && !m.is_empty()
        {
            return Ok(Plan::single(
                Target::ad_hoc(p.clone(), m, &self.health, &self.stats),
                self.direct.clone(),
            ));
        }
        if self.infer
            && let Some(kind) = kind_of_model(model)
            && let Some(p) = self.providers.values().find(|p| p.config.kind == kind)
        {
            return Ok(Plan::single(
                Target::ad_hoc(p.clone(), model, &self.health, &self.stats),
                self.direct.clone(),
            ));
        }
        let mut known: Vec<String> = self.routes.keys().cloned().collect();
        known.extend(self.providers.keys().map(|p| format!("{p}/<model>")));
        Err(UnknownModel { model: model.to_owned(), known })
    }
}

fn kind_of_model(model: &str) -> Option<ProviderKind> {
    if model.starts_with("claude-") {
        Some(ProviderKind::Anthropic)
    } else if model.starts_with("gemini-") {
        Some(ProviderKind::Gemini)
    } else if ["gpt-", "o1", "o3", "o4", "chatgpt-"].iter().any(|p| model.starts_with(p)) {
        Some(ProviderKind::OpenAi)
    } else {
        None
    }
}
