//! Small helpers the dialects share to describe and check JSON values.
//!
//! Pure functions over `serde_json::Value`; this module never builds an error message in any provider's words.

use serde_json::Value;

/// JSON type name as the providers' messages spell it.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "decimal",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The value as an integer, if it is one (JSON numbers without a fraction).
pub(crate) fn integer(v: &Value) -> Option<i128> {
    v.as_i64().map(i128::from).or_else(|| v.as_u64().map(i128::from))
}

/// Render a number the way a message quoting it would.
pub(crate) fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Clamp a non-negative integer into `u64`.
pub(crate) fn to_u64(n: i128) -> u64 {
    u64::try_from(n.max(0)).unwrap_or(u64::MAX)
}
