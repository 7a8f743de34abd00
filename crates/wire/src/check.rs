//! Checking an answer without decoding it: what a same-dialect answer must be for the gateway to pass its bytes on
//! as they are. The checks are those [`crate::Dialect::decode_response`] makes before it builds anything (an
//! object, the fields it requires, no error in place of an answer), read with borrowing, typed serde structs that
//! skip everything else: about a third of the cost of a decode into `serde_json::Value` and the canonical model.
//!
//! Never allocates for what it skips, never builds the canonical response.

use serde::Deserialize;
use serde::de::{IgnoredAny, Visitor};

use crate::canonical::Usage;
use crate::{DecodeError, Dialect};

fn invalid(why: &str) -> DecodeError {
    DecodeError::Invalid(why.to_owned())
}

/// Check that `body` is an answer `dialect`'s decoder would accept; its usage, if it reports one (what the gateway
/// records of a passed-through answer).
pub fn check_response(dialect: Dialect, body: &[u8]) -> Result<Option<Usage>, DecodeError> {
    // A derived struct would also read a JSON array; an answer is an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        // The decoder's own message for what is not an object (or not JSON at all).
        return dialect.decode_response(body).map(|r| Some(r.usage));
    }
    match dialect {
        Dialect::OpenAiChat => openai(body),
        Dialect::Anthropic => anthropic(body),
        Dialect::Gemini => gemini(body),
        Dialect::OpenAiResponses => responses(body),
    }
}

/// A key that is there, whatever its value (`null` included, unlike a bare `Option`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// What kind of JSON value a field holds, read without keeping it (a list's items are skipped one by one).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A string; `failed` when it is exactly "failed" (the Responses API's `status`).
    Str {
        failed: bool,
    },
    List {
        empty: bool,
    },
    Other,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Shape, D::Error> {
        d.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, v: &str) -> Result<Shape, E> {
        Ok(Shape::Str { failed: v == "failed" })
    }
    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_none<E>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let mut empty = true;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            empty = false;
        }
        Ok(Shape::List { empty })
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Shape, A::Error> {
        IgnoredAny.visit_map(map).map(|_| Shape::Other)
    }
}

fn is_str(s: Option<Shape>) -> bool {
    matches!(s, Some(Shape::Str { .. }))
}

fn openai(body: &[u8]) -> Result<Option<Usage>, DecodeError> {
    #[derive(Deserialize)]
    struct Answer {
        id: Option<Shape>,
        choices: Option<Vec<Choice>>,
        /// Decoded typed, as the decoder does: a malformed one is refused there too.
        usage: Option<crate::openai::WireUsage>,
    }
    #[derive(Deserialize)]
    struct Choice {
        #[serde(default, deserialize_with = "present")]
        message: Option<IgnoredAny>,
    }
    let a: Answer = serde_json::from_slice(body)?;
    if !is_str(a.id) {
        return Err(invalid("id: required"));
    }
    let Some(first) = a.choices.as_ref().and_then(|c| c.first()) else {
        return Err(invalid("chat.completion without choices"));
    };
    if first.message.is_none() {
        return Err(invalid("choices[0].message: required"));
    }
    Ok(a.usage.map(Usage::from))
}

fn anthropic(body: &[u8]) -> Result<Option<Usage>, DecodeError> {
    #[derive(Deserialize)]
    struct Answer {
        id: Option<Shape>,
        content: Option<Shape>,
        /// Decoded typed, as the decoder does (`null` counts as absent there too).
        usage: Option<crate::anthropic::WireUsage>,
    }
    let a: Answer = serde_json::from_slice(body)?;
    if !is_str(a.id) {
        return Err(invalid("id: required"));
    }
    if !matches!(a.content, Some(Shape::List { .. })) {
        return Err(invalid("content: a list is required"));
    }
    Ok(a.usage.map(|w| {
        let mut u = Usage::default();
        w.apply(&mut u);
        u
    }))
}

fn gemini(body: &[u8]) -> Result<Option<Usage>, DecodeError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        #[serde(default, deserialize_with = "present")]
        error: Option<IgnoredAny>,
        candidates: Option<Shape>,
        #[serde(default, deserialize_with = "present")]
        prompt_feedback: Option<IgnoredAny>,
        /// Read as leniently as the decoder does: a malformed one is no usage, not an error.
        usage_metadata: Option<serde_json::Value>,
    }
    let a: Answer = serde_json::from_slice(body)?;
    if a.error.is_some() {
        return Err(invalid("an error object where a response was expected"));
    }
    if !matches!(a.candidates, Some(Shape::List { empty: false })) && a.prompt_feedback.is_none() {
        return Err(invalid("generateContent response without candidates"));
    }
    let usage = a.usage_metadata.and_then(|u| serde_json::from_value::<crate::gemini::UsageMetadata>(u).ok());
    Ok(usage.map(Usage::from))
}

fn responses(body: &[u8]) -> Result<Option<Usage>, DecodeError> {
    #[derive(Deserialize)]
    struct Answer {
        id: Option<Shape>,
        status: Option<Shape>,
        error: Option<IgnoredAny>,
        // There even when `null`, as the decoder sees it.
        #[serde(default, deserialize_with = "present")]
        output: Option<Shape>,
        usage: Option<serde_json::Value>,
    }
    let a: Answer = serde_json::from_slice(body)?;
    let failed = a.status == Some(Shape::Str { failed: true });
    if failed || (a.error.is_some() && a.output.is_none()) {
        // The decoder's message carries the upstream's own words.
        return Dialect::OpenAiResponses.decode_response(body).map(|r| Some(r.usage));
    }
    if !is_str(a.id) {
        return Err(invalid("id: required"));
    }
    if !matches!(a.output, Some(Shape::List { .. })) {
        return Err(invalid("output: a list is required"));
    }
    Ok(a.usage.as_ref().map(|u| crate::responses::usage_from(Some(u))))
}
