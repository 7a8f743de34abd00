//! nines: an outage-proof gateway for LLM APIs.
//!
//! A request's life, in module order: `server` (accept) → `auth` → decode (nines-wire) → `route` (plan) →
//! `dispatch` (attempts, retries, failover) → `respond` (translate out, stream) → `record` (typed events).
//! `config` builds what they share; `app` composes it.

pub mod app;
pub mod auth;
pub mod config;
pub mod demo;
pub mod dispatch;
pub mod provider;
pub mod record;
pub mod respond;
pub mod route;
pub mod server;
pub mod store;

pub use app::{App, Snapshot};
