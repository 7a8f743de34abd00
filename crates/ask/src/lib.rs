//! Ask your documents: a web app on nines. A reader uploads PDFs into notebooks and asks questions; the answer
//! streams with citations that open the cited page. The app is a client of the gateway it runs in: it embeds and
//! answers through the gateway's own routes over HTTP, with the reader's key, so every failover, resume and limit
//! applies to it, down to a local model when every cloud provider is down.
//!
//! The flow, one module per step: [`web`] (the page and the API) → [`ingest`] (its [`turns`], then [`extract`] → [`chunk`] →
//! [`bm25`] and vectors through [`gateway`]) → [`store`]; a question: [`ask`] ([`retrieve`] → [`gateway`]'s chat
//! route → the page's events).

pub mod ask;
pub mod bm25;
pub mod chunk;
pub mod extract;
pub mod gateway;
pub mod ingest;
pub mod pdf;
pub mod retrieve;
pub mod sample;
pub mod store;
pub mod turns;
pub mod web;

use std::path::PathBuf;
use std::sync::Arc;

/// The app's settings (`[app]` in the gateway's configuration).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where the database, the keyword index and the uploaded PDFs live; `None`: in memory and a temporary folder.
    pub data_dir: Option<PathBuf>,
    /// A Postgres database (with pgvector) that keeps everything instead, shared by the app's replicas.
    pub postgres_url: Option<secrecy::SecretString>,
    /// The gateway route questions are answered through.
    pub chat_model: String,
    /// The gateway route passages and questions are embedded through.
    pub embed_model: String,
    /// Providers that count as local models (the page says "local model" when one of them answers).
    pub local_providers: Vec<String>,
    /// The folder of the npm package pdfjs-dist (its `build/`, `web/`...); without it the page shows the cited
    /// passage as text.
    pub pdfjs_dir: Option<PathBuf>,
    /// The largest PDF taken, in bytes.
    pub max_upload: u64,
    /// The most documents in one notebook.
    pub max_documents: u32,
    pub limits: extract::Limits,
    pub tools: extract::Tools,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: None,
            postgres_url: None,
            chat_model: "ask".to_owned(),
            embed_model: "embed".to_owned(),
            local_providers: vec!["local".to_owned()],
            pdfjs_dir: None,
            max_upload: 32 << 20,
            max_documents: 50,
            limits: extract::Limits::default(),
            tools: extract::Tools::find(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// The running app: its settings, what it keeps, and its background work.
#[derive(Debug)]
pub struct Ask {
    pub settings: Settings,
    pub store: Box<dyn store::Store>,
    pub gateway: gateway::Gateway,
    /// One document indexed at a time, owners taking turns.
    indexing: turns::Turns,
    /// Indexing jobs and answers in progress.
    pub tasks: tokio_util::task::TaskTracker,
    /// How many documents have finished indexing (ready or failed) since start: what a test waits on.
    pub finished: tokio::sync::watch::Sender<u64>,
}

impl Ask {
    /// The app on its store: Postgres when `postgres_url` is set (connected on first use), else embedded in
    /// `data_dir` (or in memory).
    pub fn open(settings: Settings) -> Result<Arc<Ask>, OpenError> {
        let store: Box<dyn store::Store> = match &settings.postgres_url {
            Some(url) => Box::new(store::postgres::Postgres::new(secrecy::ExposeSecret::expose_secret(url))?),
            None => Box::new(store::embedded::Embedded::open(settings.data_dir.as_deref())?),
        };
        Ok(Arc::new(Ask {
            settings,
            store,
            gateway: gateway::Gateway::new(),
            indexing: turns::Turns::default(),
            tasks: tokio_util::task::TaskTracker::new(),
            finished: tokio::sync::watch::Sender::new(0),
        }))
    }

    /// The app's routes, to be nested at `/app`.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        web::router(self.clone())
    }
}
