//! Route planning: the client's `model` → the ordered targets to try.
//!
//! A route name gives its configured targets; `provider/model` goes straight to that provider; with
//! `dispatch.infer_models`, a provider's own model names (`claude-…`, `gpt-…`, `gemini-…`) go to a provider of that
//! kind. Planning never looks at health (that will be `health`'s job) and never does I/O.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{Capabilities, Config, ProviderKind};
use crate::provider::Provider;

/// One place a request may be sent.
#[derive(Clone, Debug)]
pub struct Target {
    pub provider: Arc<Provider>,
    pub model: String,
    /// `provider/model`, computed once.
    pub label: String,
    /// What this model can take, resolved once.
    pub caps: Capabilities,
}

impl Target {
    pub fn new(provider: Arc<Provider>, model: impl Into<String>) -> Self {
        let model = model.into();
        let label = format!("{}/{}", provider.name(), model);
        let caps = provider.config.capabilities_of(&model);
        Target { provider, model, label, caps }
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
#[derive(Debug, Default)]
pub struct Routes {
    routes: BTreeMap<String, Arc<[Target]>>,
    providers: BTreeMap<String, Arc<Provider>>,
    infer: bool,
}

impl Routes {
    pub fn build(config: &Config, providers: &BTreeMap<String, Arc<Provider>>) -> Routes {
        let routes = config
            .routes
            .iter()
            .map(|(name, targets)| {
                let ts: Vec<Target> = targets
                    .iter()
                    .filter_map(|t| providers.get(&t.provider).map(|p| Target::new(p.clone(), &t.model)))
                    .collect();
                (name.clone(), Arc::from(ts))
            })
            .collect();
        Routes { routes, providers: providers.clone(), infer: config.dispatch.infer_models }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }

    pub fn plan(&self, model: &str) -> Result<Arc<[Target]>, UnknownModel> {
        if let Some(ts) = self.routes.get(model) {
            return Ok(ts.clone());
        }
        if let Some((prov, m)) = model.split_once('/')
            && let Some(p) = self.providers.get(prov)
            && !m.is_empty()
        {
            return Ok(Arc::from(vec![Target::new(p.clone(), m)]));
        }
        if self.infer
            && let Some(kind) = kind_of_model(model)
            && let Some(p) = self.providers.values().find(|p| p.config.kind == kind)
        {
            return Ok(Arc::from(vec![Target::new(p.clone(), model)]));
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
