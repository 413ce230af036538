//! `RUN --device=name[,required]`: CDI devices to expose to the step.

use serde::Serialize;

use super::mount::OptionError;
use super::{csv, strconv, suggest};

/// One `--device`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    /// The CDI device name (`vendor.com/class=name`).
    pub name: String,
    /// Fail the build when the device is not available.
    pub required: bool,
}

/// Parses a `--device` value. A field without a known key is the name, even when it holds
/// `=` (CDI names do), as long as no name was given yet.
pub fn parse_device(value: &str) -> Result<Device, OptionError> {
    let fields = csv::fields(value)
        .map_err(|e| OptionError::new(format!("failed to parse csv devices: {e}"), None))?;
    let mut d = Device {
        name: String::new(),
        required: false,
    };
    for field in fields {
        let f = Some(field.as_str());
        let Some((key, v)) = field.split_once('=') else {
            if field.to_lowercase() == "required" {
                d.required = true;
            } else if d.name.is_empty() {
                d.name = field;
            } else {
                return Err(OptionError::new(
                    format!("invalid field '{field}' must be a key=value pair"),
                    f,
                ));
            }
            continue;
        };
        let key = key.to_lowercase();
        match key.as_str() {
            "name" => {
                if !d.name.is_empty() {
                    let msg = format!("device name already set to {}", d.name);
                    return Err(OptionError::new(msg, f));
                }
                d.name = v.to_owned();
            }
            "required" => {
                d.required = strconv::parse_bool(v)
                    .ok_or_else(|| OptionError::new(format!("invalid value for {key}: {v}"), f))?;
            }
            _ if d.name.is_empty() => d.name = field,
            _ => {
                let err = OptionError::new(format!("unexpected key '{key}' in '{field}'"), f);
                return Err(match suggest::closest(&key, &["name", "required"]) {
                    Some(s) => err.hint(format!("did you mean {s}?")),
                    None => err.hint("the keys are name and required"),
                });
            }
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Result<Device, String> {
        parse_device(v).map_err(|e| e.message)
    }

    #[test]
    fn names_and_required() {
        let d = parse("vendor1.com/device=foo,required").unwrap();
        assert_eq!(
            (d.name.as_str(), d.required),
            ("vendor1.com/device=foo", true)
        );
        let d = parse("name=a.com/b=c,required=false").unwrap();
        assert_eq!((d.name.as_str(), d.required), ("a.com/b=c", false));
        assert_eq!(
            parse("a=b,name=c").unwrap_err(),
            "device name already set to a=b"
        );
        assert_eq!(
            parse("a,b").unwrap_err(),
            "invalid field 'b' must be a key=value pair"
        );
        let e = parse_device("a,requird=1").unwrap_err();
        assert_eq!(e.message, "unexpected key 'requird' in 'requird=1'");
        assert_eq!(e.hint.as_deref(), Some("did you mean required?"));
        assert!(parse("a,required=maybe").is_err());
    }
}
