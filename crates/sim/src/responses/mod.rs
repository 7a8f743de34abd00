//! OpenAI Responses (`POST /v1/responses`): bearer authentication and OpenAI's error shape (both shared with
//! [`crate::openai`]), strict body validation with the Responses API's own messages (`Unknown parameter: 'foo'.`,
//! `Missing required parameter: 'tools[0].name'.`, `No tool call found for function call output with call_id …`),
//! and answers as a Response object or as its event stream (`event: response.created` … `response.completed`, each
//! event with its `sequence_number`).
//!
//! Answers are the shared deterministic answer ([`crate::answer`]): text as one `message` item, or `function_call`
//! items when function tools are offered, after a `reasoning` item when reasoning is asked for. The simulator keeps
//! no state, so everything that points at stored state (`previous_response_id`, `conversation`, `prompt`,
//! `item_reference`, a reasoning item without `encrypted_content`) is refused the way the real API refuses an id it
//! does not know; and it takes back only the `encrypted_content` it minted itself. `request` and `content` validate
//! the body, `response` renders the answer; this module never accepts a parameter the real API would call unknown.

mod content;
mod request;
mod response;
#[cfg(test)]
mod tests;

use crate::error::ApiError;
use crate::openai;
use crate::routes::{Call, Reply};

/// Serve one Responses request.
pub(crate) fn handle(call: &Call<'_>) -> Result<Reply, ApiError> {
    openai::authenticate(call)?;
    let body = openai::parse_body(call.body)?;
    let mut request = request::validate(&body, call.body, call.name)?;
    let outcome = call.respond(&mut request.prompt)?;
    let answer = response::Rendered::new(call.name, &request, outcome);
    Ok(if request.stream {
        Reply::Sse(call.stream(
            answer.stream(),
            || answer.malformed(),
            |status, at| answer.failed(status, at),
        ))
    } else {
        Reply::Json(answer.response())
    })
}

/// The prompt a valid request body reads as (for the crate's tests).
#[cfg(test)]
pub(crate) fn prompt_of(body: &serde_json::Value, name: &str) -> Result<crate::answer::Prompt, ApiError> {
    request::validate(body, body.to_string().as_bytes(), name).map(|r| r.prompt)
}
