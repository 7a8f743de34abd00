//! Respond: turn a committed answer into the client's body, in the client's dialect.
//!
//! A whole answer is returned as the upstream's own bytes when the dialects match, and re-encoded otherwise. A
//! stream is delivered by [`stream::body`], a state machine that knows what the client has already received. This
//! module never chooses targets and never retries: after the commit point, a failure ends the stream honestly.

pub mod stream;

use bytes::Bytes;
use nines_wire::{Dialect, EncodeCtx};

use crate::dispatch::WholeBody;

/// The body of a whole answer for a client of `client`'s dialect.
pub fn whole_body(client: Dialect, body: WholeBody, ctx: &EncodeCtx) -> Bytes {
    match body {
        WholeBody::Raw(raw, _) => raw,
        WholeBody::Decoded(response) => Bytes::from(client.encode_response(&response, ctx)),
    }
}

/// Unix seconds now, for OpenAI's `created`.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
