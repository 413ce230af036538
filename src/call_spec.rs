//! `--call`'s value, parsed as buildx parses it: kept apart from the command it selects so
//! that the argument parser (`cli`) does not depend on a command module.

/// What `--call` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// Build (the default).
    Build,
    /// The build ARGs, secrets and SSH agents the target stage takes.
    Outline,
    /// The stages one can build.
    Targets,
}

/// A parsed `--call` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CallSpec {
    /// The method.
    pub(crate) method: Method,
    /// `format=json`.
    pub(crate) json: bool,
}

/// Parses `--call` as buildx does: a method and optional `format=json|text`.
pub(crate) fn parse_spec(value: &str) -> Result<CallSpec, String> {
    let mut method = None;
    let mut json = false;
    for field in value.split(',').map(str::trim) {
        match field.split_once('=') {
            Some(("format", "json")) => json = true,
            Some(("format", "text")) => json = false,
            Some(("format", other)) => {
                return Err(format!("unknown format {other:?}: use json or text"));
            }
            Some(_) => return Err(format!("unknown option {field:?}: only format= is known")),
            None if method.is_some() => return Err(format!("{field:?}: one method only")),
            None => {
                method = Some(match field {
                    "build" => Method::Build,
                    "outline" => Method::Outline,
                    "targets" => Method::Targets,
                    "check" => {
                        return Err("check is not supported by kiln: use outline or targets".into());
                    }
                    other => {
                        return Err(format!(
                            "unknown method {other:?}: use build, outline or targets"
                        ));
                    }
                });
            }
        }
    }
    match method {
        Some(method) => Ok(CallSpec { method, json }),
        None => Err("a method is required: build, outline or targets".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_values_parse_like_buildx() {
        assert_eq!(
            parse_spec("outline"),
            Ok(CallSpec {
                method: Method::Outline,
                json: false
            })
        );
        assert_eq!(
            parse_spec("targets,format=json"),
            Ok(CallSpec {
                method: Method::Targets,
                json: true
            })
        );
        assert!(parse_spec("nope").unwrap_err().contains("nope"));
        assert!(parse_spec("outline,format=yaml").is_err());
        assert!(parse_spec("outline,targets").is_err());
        assert!(parse_spec("format=json").is_err());
        assert!(parse_spec("check").unwrap_err().contains("not supported"));
    }
}
