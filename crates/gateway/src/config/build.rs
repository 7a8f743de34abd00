//! The I/O stage of configuration: the environment (read here and nowhere else), and the configuration built from
//! it when no file is given.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use nines_wire::openai::MaxTokensField;
use secrecy::SecretString;

use super::{
    AuthConfig, Capabilities, Config, DEFAULT_LISTEN, DispatchConfig, ProviderConfig, ProviderKind, Timeouts,
};

/// A snapshot of the process environment, taken once at start-up. Tests build their own.
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// The one place the gateway reads its environment.
    pub fn from_process() -> Env {
        Env { vars: std::env::vars().collect() }
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Env
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Env { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn secret(&self, name: &str) -> Option<SecretString> {
        self.get(name).map(|v| SecretString::from(v.to_owned()))
    }
}

const OLLAMA_ADDR: &str = "127.0.0.1:11434";

/// Build a configuration from the environment: a provider for each of `ANTHROPIC_API_KEY`, `OPENAI_API_KEY` and
/// `GEMINI_API_KEY` that is set, and one for an Ollama server if one answers on its default port. Returns the
/// config and one line per thing found, for the start-up log.
pub async fn config_from_env(env: &Env) -> (Config, Vec<String>) {
    let mut found = Vec::new();
    let mut providers = BTreeMap::new();
    for (name, kind, var) in [
        ("anthropic", ProviderKind::Anthropic, "ANTHROPIC_API_KEY"),
        ("openai", ProviderKind::OpenAi, "OPENAI_API_KEY"),
        ("gemini", ProviderKind::Gemini, "GEMINI_API_KEY"),
    ] {
        if env.get(var).is_some() {
            found.push(format!("{var} is set: provider \"{name}\" ({})", kind.default_base_url()));
            providers.insert(name.to_owned(), hosted(name, kind, var));
        }
    }
    let ollama =
        tokio::time::timeout(Duration::from_millis(300), tokio::net::TcpStream::connect(OLLAMA_ADDR)).await;
    if matches!(ollama, Ok(Ok(_))) {
        found.push(format!("an Ollama server answers on {OLLAMA_ADDR}: provider \"ollama\""));
        providers.insert(
            "ollama".to_owned(),
            ProviderConfig {
                name: "ollama".to_owned(),
                kind: ProviderKind::OpenAi,
                base_url: format!("http://{OLLAMA_ADDR}/v1"),
                api_key_env: None,
                retries: 0,
                max_concurrency: None,
                max_tokens_field: MaxTokensField::MaxTokens,
                anthropic_version: crate::provider::ANTHROPIC_VERSION.to_owned(),
                timeouts: Timeouts::default(),
                capabilities: Capabilities::default_for(ProviderKind::OpenAi),
                models: BTreeMap::new(),
                probe: None,
                tls_ca: None,
                model_dir: None,
                command: None,
            },
        );
    }
    if providers.is_empty() {
        found.push(
            "no provider found: set ANTHROPIC_API_KEY, OPENAI_API_KEY or GEMINI_API_KEY, run Ollama, or pass --config"
                .to_owned(),
        );
    }
    let listen = DEFAULT_LISTEN.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 4000)));
    let keys_env = env.get("NINES_KEYS").map(|_| "NINES_KEYS".to_owned());
    let admin_key_env = env.get("NINES_ADMIN_KEY").map(|_| "NINES_ADMIN_KEY".to_owned());
    let config = Config {
        listen,
        providers,
        routes: BTreeMap::new(),
        auth: AuthConfig { keys_env, admin_key_env, store: None },
        dispatch: DispatchConfig { infer_models: true, ..DispatchConfig::default() },
        responses: super::ResponsesConfig::default(),
        health: super::HealthConfig::default(),
        status: super::StatusConfig::default(),
        traces: super::TracesConfig::default(),
        protect: super::protect::Protect::default(),
        app: super::app::AppConfig::default(),
    };
    (config, found)
}

fn hosted(name: &str, kind: ProviderKind, var: &str) -> ProviderConfig {
    ProviderConfig {
        name: name.to_owned(),
        kind,
        base_url: kind.default_base_url().to_owned(),
        api_key_env: Some(var.to_owned()),
        retries: 1,
        max_concurrency: None,
        max_tokens_field: MaxTokensField::MaxCompletionTokens,
        anthropic_version: crate::provider::ANTHROPIC_VERSION.to_owned(),
        timeouts: Timeouts::default(),
        capabilities: Capabilities::default_for(kind),
        models: BTreeMap::new(),
        probe: None,
        tls_ca: None,
        model_dir: None,
        command: None,
    }
}
