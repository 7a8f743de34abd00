//! End-to-end tests of the simulator over real sockets on 127.0.0.1:0: each dialect's shapes, validation and
//! auth, tool calls, tool results, images, JSON mode and thinking in every dialect, continuations, every fault
//! kind, rate limits and the control API. No test sleeps to wait for background work (one sleeps past a rate-limit
//! window: that wait is the scenario itself).

// This whole crate is test code: helpers outside `#[test]` functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod anthropic;
mod common;
mod continuation;
mod control;
mod faults;
mod gemini;
mod http2;
mod openai;
mod ratelimit;
mod responses;
mod results;
mod script;
mod thinking;
mod tools;
