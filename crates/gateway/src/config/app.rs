//! `[app]`: the "Ask your documents" web app (crates/ask) served under `/app` on the gateway's own listener, as a
//! client of the gateway's routes.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApp {
    pub enabled: Option<bool>,
    /// Where its database, keyword index and PDFs live (default: in memory, gone at exit).
    pub data_dir: Option<PathBuf>,
    /// The NAME of the environment variable holding a Postgres URL: everything is kept there instead (Postgres
    /// with pgvector), and the app's replicas share it.
    pub postgres_url_env: Option<String>,
    /// The route questions are answered through (default "ask").
    pub chat_route: Option<String>,
    /// The route passages are embedded through (default "embed").
    pub embed_route: Option<String>,
    /// Providers whose answers the page marks "local model" (default: ["local"]).
    pub local_providers: Option<Vec<String>>,
    /// The npm package pdfjs-dist's folder (default: none, or `scripts/fetch-pdfjs`'s when it is there).
    pub pdfjs_dir: Option<PathBuf>,
    pub max_upload_bytes: Option<u64>,
    pub max_documents: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppConfig {
    pub enabled: bool,
    pub data_dir: Option<PathBuf>,
    pub postgres_url_env: Option<String>,
    pub chat_route: String,
    pub embed_route: String,
    pub local_providers: Vec<String>,
    pub pdfjs_dir: Option<PathBuf>,
    pub max_upload_bytes: u64,
    pub max_documents: u32,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            enabled: false,
            data_dir: None,
            postgres_url_env: None,
            chat_route: "ask".to_owned(),
            embed_route: "embed".to_owned(),
            local_providers: vec!["local".to_owned()],
            pdfjs_dir: None,
            max_upload_bytes: 32 << 20,
            max_documents: 50,
        }
    }
}

/// The largest upload Postgres keeps (a field holds 1 GB at most; a message carrying it, a little more).
const MAX_UPLOAD_POSTGRES: u64 = 256 << 20;

/// Where `scripts/fetch-pdfjs` puts PDF.js, relative to the working directory.
pub const FETCHED_PDFJS: &str = ".cache/pdfjs/node_modules/pdfjs-dist";

pub fn validate(raw: RawApp, routes: &[&str], errors: &mut Vec<ConfigError>) -> AppConfig {
    let d = AppConfig::default();
    let c = AppConfig {
        enabled: raw.enabled.unwrap_or(false),
        data_dir: raw.data_dir,
        postgres_url_env: raw.postgres_url_env,
        chat_route: raw.chat_route.unwrap_or(d.chat_route),
        embed_route: raw.embed_route.unwrap_or(d.embed_route),
        local_providers: raw.local_providers.unwrap_or(d.local_providers),
        pdfjs_dir: raw.pdfjs_dir.or_else(|| {
            let fetched = PathBuf::from(FETCHED_PDFJS);
            fetched.join("build/pdf.min.mjs").is_file().then_some(fetched)
        }),
        max_upload_bytes: raw.max_upload_bytes.unwrap_or(d.max_upload_bytes),
        max_documents: raw.max_documents.unwrap_or(d.max_documents),
    };
    if c.enabled {
        for (field, route) in [("chat_route", &c.chat_route), ("embed_route", &c.embed_route)] {
            if !routes.contains(&route.as_str()) && !route.contains('/') {
                errors.push(ConfigError::new(
                    format!("app.{field}"),
                    format!("\"{route}\" is not a route of this configuration (nor a provider/model)"),
                ));
            }
        }
    }
    if !(1024..=(1 << 30)).contains(&c.max_upload_bytes) {
        errors.push(ConfigError::new("app.max_upload_bytes", "must be between 1024 and 1073741824"));
    }
    if c.postgres_url_env.is_some() && c.data_dir.is_some() {
        errors.push(ConfigError::new(
            "app.postgres_url_env",
            "the app keeps everything in Postgres or in data_dir, not both: remove one",
        ));
    }
    if c.postgres_url_env.is_some() && c.max_upload_bytes > MAX_UPLOAD_POSTGRES {
        errors.push(ConfigError::new(
            "app.max_upload_bytes",
            format!("at most {MAX_UPLOAD_POSTGRES} with Postgres (a PDF is kept as one bytea value)"),
        ));
    }
    if c.max_documents == 0 {
        errors.push(ConfigError::new("app.max_documents", "must be greater than zero"));
    }
    c
}

#[cfg(test)]
mod tests {
    use crate::config::{Env, parse_and_validate};

    const BASE: &str = "[providers.a]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9\"\n\
                        [routes.ask]\ntargets = [\"a/m\"]\n[routes.embed]\ntargets = [\"a/e\"]\n";

    #[test]
    fn postgres_or_a_folder_not_both_and_its_url_from_the_environment() {
        let both = format!("{BASE}[app]\nenabled = true\ndata_dir = \"/tmp/x\"\npostgres_url_env = \"PG\"\n");
        let e = parse_and_validate(&both).unwrap_err().to_string();
        assert!(e.contains("app.postgres_url_env"), "{e}");
        let big =
            format!("{BASE}[app]\nenabled = true\npostgres_url_env = \"PG\"\nmax_upload_bytes = 536870912\n");
        let e = parse_and_validate(&big).unwrap_err().to_string();
        assert!(e.contains("app.max_upload_bytes"), "{e}");
        let config =
            parse_and_validate(&format!("{BASE}[app]\nenabled = true\npostgres_url_env = \"PG\"\n")).unwrap();
        assert_eq!(config.app.postgres_url_env.as_deref(), Some("PG"));
        let e = crate::app::Runtime::with_env(&config, &Env::default()).unwrap_err().to_string();
        assert_eq!(e, "app.postgres_url_env names PG, which is not set");
        // Set: the pool is made, nothing is connected until the app is used.
        let env = Env::from_pairs([("PG", "postgresql://u:secret@127.0.0.1:9/db")]);
        let runtime = crate::app::Runtime::with_env(&config, &env).unwrap();
        let ask = runtime.ask.unwrap();
        assert_eq!(ask.store.kind(), "postgres");
        assert!(!format!("{ask:?}").contains("secret"));
    }
}
