//! Canonical JSON (object keys sorted, no whitespace), so the same content always gives the
//! same bytes and the same digest, whatever order a `HashMap` or struct happens to use.

use serde::Serialize;
use serde_json::{Map, Value};

/// Serializes `value` with every object's keys in sorted order.
pub(crate) fn canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&sorted(serde_json::to_value(value)?))
}

/// Rebuilds objects in key order; needed even with serde_json's default `BTreeMap` because
/// another crate in the build may turn on `preserve_order`.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn keys_sorted_at_every_level() {
        let mut inner = HashMap::new();
        inner.insert("z", 1);
        inner.insert("a", 2);
        let value = serde_json::json!({"b": [inner], "a": {"d": null, "c": true}});
        assert_eq!(
            String::from_utf8(canonical_json(&value).unwrap()).unwrap(),
            r#"{"a":{"c":true,"d":null},"b":[{"a":2,"z":1}]}"#
        );
    }
}
