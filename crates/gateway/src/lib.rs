//! nines: an outage-proof gateway for LLM APIs.
//!
//! A request's life, in module order: `server` (accept, the one extractor) → `auth` (the caller) → decode
//! (nines-wire) → `route` (the plan) → `dispatch` (the flight: attempts, retries, failover, asking `health` through
//! its policy) → `respond` (translate out, stream) → `record` (the one recorder of the flight's events, which feeds
//! `health`). `config` builds what they share; `app` composes it.

pub mod admit;
pub mod app;
pub mod auth;
pub mod config;
pub mod demo;
pub mod demo_app;
pub mod dispatch;
pub mod health;
pub mod provider;
pub mod record;
pub mod respond;
pub mod route;
pub mod server;
pub mod shared;
pub mod status_cli;
pub mod store;

pub use app::{App, Snapshot};
