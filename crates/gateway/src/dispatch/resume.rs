//! Asking a target to continue an answer another target broke off: the operation the engine runs for it.
//!
//! The continuation is the client's request plus what the client already has: an assistant prefill with the
//! delivered text on a target that takes one (`capabilities.prefill`), else (or when the target refuses the prefill
//! with a 400) the same with an explicit instruction to continue. It is always translated from the canonical
//! request, whatever the dialects. Whether a break may be continued at all (no tool call delivered…) is the
//! transcript's to say (`nines_wire::resume`), before this runs.

use nines_wire::resume::{Form, Transcript, continuation};

use super::deliver::Resume;
use super::{Answer, Limits, Operation, Prepared, Skip, chat_attempt, lacks, translated};
use crate::health::ratelimit::Need;
use crate::provider::{ErrorKind, ProviderError};
use crate::route::Target;

pub struct Continue<'a> {
    pub resume: &'a Resume,
    pub transcript: &'a Transcript,
}

impl Continue<'_> {
    fn prepare_as(&self, target: &Target, form: Form) -> Result<Prepared, Skip> {
        let request = &self.resume.request;
        if let Some(e) = lacks(target, request) {
            return Err(Skip::Cannot(e));
        }
        translated(target, &continuation(request, self.transcript, form), Some(form))
    }
}

impl Operation for Continue<'_> {
    type Output = Answer;

    fn prepare(&self, target: &Target) -> Result<Prepared, Skip> {
        let prefill = target.caps.prefill && !target.health.refuses_prefill();
        let form = if prefill { Form::Prefill } else { Form::Instruction };
        self.prepare_as(target, form)
    }

    /// A target that refuses the prefill (a 400) is asked again at once with the instruction, and from then on.
    fn instead(&self, target: &Target, prepared: &Prepared, error: &ProviderError) -> Option<Prepared> {
        if prepared.continuation != Some(Form::Prefill) || error.kind != ErrorKind::BadRequest {
            return None;
        }
        // Remembered (with its health, outside the configuration): the next continuation asks it right.
        target.health.refused_prefill();
        self.prepare_as(target, Form::Instruction).ok()
    }

    async fn attempt(
        &self,
        target: &Target,
        prepared: &Prepared,
        limits: Limits,
    ) -> Result<Answer, ProviderError> {
        chat_attempt(target, prepared, true, &self.resume.headers, limits).await
    }

    fn need(&self) -> Need {
        let text = self.transcript.text().len() as u64;
        Need {
            input_tokens: super::estimate_input(&self.resume.request) + text / 4,
            output_tokens: u64::from(self.resume.request.max_tokens.unwrap_or(0)),
        }
    }
}
