//! Strict JSON: `serde_json::Value`, but a duplicate object key at any depth is an error.
//!
//! Parsers disagree on `{"mobile":"A","mobile":"B"}` (first wins, last wins, error), so a document with
//! duplicate keys cannot be checked once and trusted everywhere. Keys are compared after unescaping, so
//! `"a"` and `"\u0061"` are the same key. serde_json's recursion limit (128) still applies.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::OwnershipError;

/// Strict JSON parse: like `serde_json::from_slice::<Value>` but refuses duplicate object keys at any depth.
///
/// Every failure (invalid JSON, invalid UTF-8, trailing data, a duplicate key) is
/// `Ambiguous("invalid or ambiguous JSON")`; callers parsing an upstream's answer map it to `BadUpstream`.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, OwnershipError> {
    const ERR: OwnershipError = OwnershipError::Ambiguous("invalid or ambiguous JSON");
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictSeed.deserialize(&mut de).map_err(|_| ERR)?;
    de.end().map_err(|_| ERR)?;
    Ok(value)
}

/// Deserializes one JSON value, refusing duplicate keys in every object it contains.
#[derive(Clone, Copy)]
struct StrictSeed;

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value without duplicate object keys")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element_seed(StrictSeed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom("duplicate object key"));
            }
            let value = map.next_value_seed(StrictSeed)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}
