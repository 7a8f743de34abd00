//! Small helpers the dialects share to describe and check JSON values.
//!
//! Pure functions over `serde_json::Value` (and an order-keeping twin of it); this module never builds an error
//! message in any provider's words.

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

/// How many items `iter` yields, as a `u64`.
pub(crate) fn count<T>(iter: impl Iterator<Item = T>) -> u64 {
    u64::try_from(iter.count()).unwrap_or(u64::MAX)
}

/// A JSON value that keeps object keys in document order. Without serde_json's `preserve_order` feature (which
/// would change the whole workspace) a `Value` sorts its keys; the simulator needs the order a client wrote a tool's
/// schema properties in.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Ordered {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl Ordered {
    /// The member called `key` (the last one, as `Value` keeps, when a key repeats).
    pub(crate) fn get(&self, key: &str) -> Option<&Ordered> {
        match self {
            Ordered::Object(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The first member found among `keys` (e.g. a proto field's camelCase and snake_case spellings).
    pub(crate) fn get_any(&self, keys: &[&str]) -> Option<&Ordered> {
        keys.iter().find_map(|k| self.get(k))
    }

    /// The object's members in document order (empty for anything else).
    pub(crate) fn entries(&self) -> &[(String, Ordered)] {
        match self {
            Ordered::Object(entries) => entries,
            _ => &[],
        }
    }

    /// The array's items (empty for anything else).
    pub(crate) fn items(&self) -> &[Ordered] {
        match self {
            Ordered::Array(items) => items,
            _ => &[],
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Ordered::String(s) => Some(s),
            _ => None,
        }
    }
}

/// Serialized with its members in document order (compact with `serde_json::to_string`).
impl serde::Serialize for Ordered {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Ordered::Null => serializer.serialize_unit(),
            Ordered::Bool(b) => serializer.serialize_bool(*b),
            Ordered::Number(n) => serde::Serialize::serialize(n, serializer),
            Ordered::String(s) => serializer.serialize_str(s),
            Ordered::Array(items) => serializer.collect_seq(items),
            Ordered::Object(entries) => serializer.collect_map(entries.iter().map(|(k, v)| (k, v))),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OrderedVisitor)
    }
}

struct OrderedVisitor;

impl<'de> serde::de::Visitor<'de> for OrderedVisitor {
    type Value = Ordered;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Ordered, E> {
        Ok(Ordered::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Ordered, E> {
        Ok(Ordered::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Ordered, E> {
        Ok(Ordered::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Ordered, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Ordered::Null, Ordered::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Ordered, E> {
        Ok(Ordered::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Ordered, E> {
        Ok(Ordered::String(v))
    }

    fn visit_unit<E>(self) -> Result<Ordered, E> {
        Ok(Ordered::Null)
    }

    fn visit_none<E>(self) -> Result<Ordered, E> {
        Ok(Ordered::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Ordered, D::Error> {
        serde::Deserialize::deserialize(d)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Ordered::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Ordered>()? {
            entries.push((key, value));
        }
        Ok(Ordered::Object(entries))
    }
}

/// Parse `body` keeping key order; `Null` when it is not JSON (the dialect has already refused such a body).
pub(crate) fn ordered(body: &[u8]) -> Ordered {
    serde_json::from_slice(body).unwrap_or(Ordered::Null)
}

/// The first half of `text` (at a character boundary): a JSON object cut there is never valid JSON.
pub(crate) fn half(text: &str) -> &str {
    let mut at = text.len() / 2;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    &text[..at]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_keeps_document_order() {
        let o = ordered(br#"{"z": 1, "a": {"y": [true, null, "s"], "b": 1.5}, "m": -2}"#);
        let keys: Vec<&str> = o.entries().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["z", "a", "m"]);
        let inner: Vec<&str> = o.get("a").unwrap().entries().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(inner, ["y", "b"]);
        assert_eq!(o.get("a").unwrap().get("y").unwrap().items()[2].as_str(), Some("s"));
        assert_eq!(ordered(b"{not json"), Ordered::Null);
    }

    #[test]
    fn ordered_serializes_in_document_order() {
        let text = r#"{"z":1,"a":{"y":[true,null,"s"],"b":1.5},"m":-2}"#;
        let o = ordered(br#" { "z": 1, "a": {"y": [true, null, "s"], "b": 1.50}, "m": -2 } "#);
        assert_eq!(serde_json::to_string(&o).unwrap(), text);
    }
}
