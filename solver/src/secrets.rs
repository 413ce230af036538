//! Keeping secret values out of every text kiln prints or stores: progress in every view,
//! error messages and the output tails they quote, `--metadata-file`, explain records.
//!
//! A RUN may print a secret in more than one shape, so each value yields several patterns:
//! the value itself without its trailing newline (a file secret usually ends in one, and
//! printed output is split into lines anyway), each line of a multi-line value (a PEM key is
//! printed line by line), and its base64 — of the value with and without the newline, whole
//! and in the 76-column lines the `base64` tool wraps at. Longer patterns are replaced first,
//! so a value is never half redacted.
//!
//! Values shorter than [`MIN_WHOLE`] bytes are left alone: redacting every `1` or `ab` in a log
//! would make it unreadable and protect nothing.

use std::borrow::Cow;

use base64::Engine as _;

/// What a redacted value becomes.
pub const MASK: &str = "****";
/// The shortest value (or line of a value) redacted.
pub const MIN_WHOLE: usize = 3;
/// `base64`'s line width.
const BASE64_WRAP: usize = 76;

/// Every shape of every secret value of a build, ready to be masked.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first.
    patterns: Vec<String>,
}

impl Redactor {
    /// The patterns of `values`.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut patterns: Vec<String> = Vec::new();
        let mut add = |p: &str| {
            if p.len() >= MIN_WHOLE && !patterns.iter().any(|q| q == p) {
                patterns.push(p.to_owned());
            }
        };
        for value in values {
            let text = String::from_utf8_lossy(value);
            let trimmed = text.trim_end_matches(['\n', '\r']);
            if trimmed.len() < MIN_WHOLE {
                continue;
            }
            add(trimmed);
            for line in trimmed.lines() {
                add(line.trim_end_matches('\r'));
            }
            let encoded = [
                base64::engine::general_purpose::STANDARD.encode(value),
                base64::engine::general_purpose::STANDARD.encode(trimmed.as_bytes()),
            ];
            for b64 in encoded {
                add(&b64);
                add(b64.trim_end_matches('='));
                for chunk in b64.as_bytes().chunks(BASE64_WRAP) {
                    add(&String::from_utf8_lossy(chunk));
                }
            }
        }
        patterns.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        Redactor { patterns }
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// `text` with every pattern masked.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for pattern in &self.patterns {
            if out.contains(pattern.as_str()) {
                out = Cow::Owned(out.replace(pattern.as_str(), MASK));
            }
        }
        out
    }

    /// Masks every string inside a JSON value (keys included), before it is written.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(s) => {
                if let Cow::Owned(masked) = self.redact(s) {
                    *s = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (key, mut v) in entries {
                    self.redact_json(&mut v);
                    map.insert(self.redact(&key).into_owned(), v);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_is_masked() {
        let pem =
            b"-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\nZm9vYmFyYmF6cXV4\n-----END KEY-----\n";
        let r = Redactor::new([&b"hunter2\n"[..], &b"s3cr3t-token"[..], &pem[..]]);
        assert_eq!(r.redact("pw=hunter2 ok"), "pw=**** ok");
        assert_eq!(r.redact("Bearer s3cr3t-token."), "Bearer ****.");
        assert_eq!(r.redact("MIIBOgIBAAJBAKj34GkxFhD9"), "****");
        let whole = String::from_utf8_lossy(pem).trim_end().to_owned();
        assert!(!r.redact(&whole).contains("MIIB"));
        let b64 = base64::engine::general_purpose::STANDARD.encode(b"hunter2\n");
        assert_eq!(r.redact(&format!("x {b64} y")), "x **** y");
        let b64 = base64::engine::general_purpose::STANDARD.encode(b"s3cr3t-token");
        assert_eq!(r.redact(&b64), "****");
        // Wrapped as `base64` prints a long value.
        let long = base64::engine::general_purpose::STANDARD.encode(pem);
        for line in long.as_bytes().chunks(76) {
            assert_eq!(r.redact(std::str::from_utf8(line).unwrap()), "****");
        }
        assert_eq!(r.redact("nothing here"), "nothing here");
        assert!(Redactor::new([&b"ab"[..]]).is_empty());
    }

    #[test]
    fn json_strings_and_keys_are_masked() {
        let r = Redactor::new([&b"topsecret"[..]]);
        let mut v = serde_json::json!({"a": ["x topsecret", 1], "topsecret": {"b": "topsecret"}});
        r.redact_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"a": ["x ****", 1], "****": {"b": "****"}})
        );
    }
}
