//! Small accessors over `serde_json::Value`, for the content blocks whose many variants are read by hand.

mod write;

use serde_json::{Map, Value};
pub(crate) use write::{map_to_vec, value_to_vec};

use crate::DecodeError;
use crate::canonical::ImageSource;

pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

pub(crate) fn arr_of<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

pub(crate) fn require_str<'a>(v: &'a Value, key: &str, path: &str) -> Result<&'a str, DecodeError> {
    str_of(v, key).ok_or_else(|| DecodeError::Invalid(format!("{path}.{key}: a string is required")))
}

/// JSON arguments text → an object for the dialects that want one (Anthropic `input`, Gemini `args`). Text that
/// is not a JSON object (a model's malformed arguments) is kept under `_raw` rather than lost.
pub(crate) fn args_object(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return Value::Object(Map::new());
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        Ok(other) => serde_json::json!({ "_raw": other }),
        Err(_) => serde_json::json!({ "_raw": arguments }),
    }
}

/// Compact JSON text of a value (our own values always serialise).
pub(crate) fn to_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Split a `data:` URL into its media type and base64 data.
pub(crate) fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, data))
}

/// An image given by URL (a `data:` URL is base64 data), as OpenAI's `image_url` fields carry it.
pub(crate) fn image_from_url(url: &str) -> ImageSource {
    match parse_data_url(url) {
        Some((media_type, data)) => {
            ImageSource::Base64 { media_type: media_type.to_owned(), data: data.to_owned() }
        }
        None => ImageSource::Url(url.to_owned()),
    }
}

/// An image as a URL, base64 data as a `data:` URL (the inverse of [`image_from_url`]).
pub(crate) fn image_to_url(src: &ImageSource) -> String {
    match src {
        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        ImageSource::Url(u) => u.clone(),
    }
}

/// A media type for an image URL, from its extension (Gemini's `fileData` wants one).
pub(crate) fn guess_image_type(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url).to_ascii_lowercase();
    if path.ends_with(".png") {
        "image/png"
    } else if path.ends_with(".gif") {
        "image/gif"
    } else if path.ends_with(".webp") {
        "image/webp"
    } else {
        "image/jpeg"
    }
}

/// Record a parameter left out for a target, once.
pub(crate) fn note(dropped: &mut Vec<String>, what: &str) {
    if !dropped.iter().any(|d| d == what) {
        dropped.push(what.to_owned());
    }
}

/// Record a field a translation cannot carry (`ChatRequest::untranslated`), once.
pub(crate) fn note_untranslated(list: &mut Vec<&'static str>, field: &'static str) {
    if !list.contains(&field) {
        list.push(field);
    }
}

/// The top-level keys of `v` not in `known`, in order.
pub(crate) fn unknown_keys(v: &Value, known: &[&str]) -> Vec<String> {
    v.as_object()
        .map(|o| o.keys().filter(|k| !known.contains(&k.as_str())).cloned().collect())
        .unwrap_or_default()
}
