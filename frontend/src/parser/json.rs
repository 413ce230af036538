//! Exec-form JSON arrays (`["a", "b"]`), with the three outcomes BuildKit distinguishes.

/// What a candidate exec-form argument turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum JsonArray {
    /// A JSON array whose elements are all strings.
    Strings(Vec<String>),
    /// Valid JSON array with a non-string element: an error, never shell form.
    NotStrings,
    /// Not a JSON array at all: the caller falls back to shell form.
    Invalid,
}

/// Parses `rest` as a JSON array of strings.
pub fn parse_json_array(rest: &str) -> JsonArray {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return JsonArray::Invalid;
    }
    let values: Vec<serde_json::Value> = match serde_json::from_str(rest) {
        Ok(v) => v,
        // Go's decoder has no depth limit: an array nested past serde_json's is still an
        // array, and so still "not strings" rather than shell form.
        Err(e) if e.to_string().contains("recursion limit") => return JsonArray::NotStrings,
        Err(_) => return JsonArray::Invalid,
    };
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        match v {
            serde_json::Value::String(s) => out.push(s),
            _ => return JsonArray::NotStrings,
        }
    }
    JsonArray::Strings(out)
}
