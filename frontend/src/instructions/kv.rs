//! ENV, LABEL and ARG: name/value pairs, kept unexpanded (quotes included) for dispatch.

use serde::Serialize;

use super::{Request, err_at_least_one};
use crate::diagnostics::Diagnostic;
use crate::span::Span;

/// One `key=value` (or legacy `key value`) of ENV or LABEL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    /// The name, unexpanded.
    pub key: String,
    /// The value, unexpanded.
    pub value: String,
    /// True for the legacy space-separated form (`ENV k v`).
    pub no_delim: bool,
}

/// `ENV`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvInstruction {
    /// The pairs, in order.
    pub env: Vec<KeyValue>,
    /// The whole instruction.
    pub span: Span,
}

/// `LABEL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabelInstruction {
    /// The pairs, in order.
    pub labels: Vec<KeyValue>,
    /// The whole instruction.
    pub span: Span,
}

/// One ARG declaration, with its optional default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgPair {
    /// The name, unexpanded.
    pub key: String,
    /// The default after `=`, unexpanded; `None` without `=`.
    pub value: Option<String>,
    /// The `# name description` comment above the ARG, if any.
    pub comment: String,
}

/// `ARG`: one or more declarations on a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgInstruction {
    /// The declarations, in order.
    pub args: Vec<ArgPair>,
    /// The whole instruction.
    pub span: Span,
}

/// The parser gives ENV and LABEL arguments as (key, value, separator) triplets.
fn parse_kvps(req: &Request<'_>, cmd: &str) -> Result<Vec<KeyValue>, Diagnostic> {
    if req.args.is_empty() {
        return Err(err_at_least_one(req, cmd));
    }
    if req.args.len() % 3 != 0 {
        return Err(req.error(format!("Bad input to {cmd}, too many arguments")));
    }
    req.args
        .chunks_exact(3)
        .map(|t| {
            if t[0].is_empty() {
                let near = if t[1].is_empty() { "=" } else { t[1].as_str() };
                return Err(req.error_at(near, format!("{cmd} names can not be blank")));
            }
            Ok(KeyValue {
                key: t[0].clone(),
                value: t[1].clone(),
                no_delim: t[2].is_empty(),
            })
        })
        .collect()
}

pub(crate) fn parse_env(mut req: Request<'_>) -> Result<EnvInstruction, Diagnostic> {
    req.parse_flags()?;
    Ok(EnvInstruction {
        env: parse_kvps(&req, "ENV")?,
        span: req.span(),
    })
}

pub(crate) fn parse_label(mut req: Request<'_>) -> Result<LabelInstruction, Diagnostic> {
    req.parse_flags()?;
    Ok(LabelInstruction {
        labels: parse_kvps(&req, "LABEL")?,
        span: req.span(),
    })
}

/// BuildKit does not check ARG's flags: they are ignored, as there.
pub(crate) fn parse_arg(req: Request<'_>) -> Result<ArgInstruction, Diagnostic> {
    if req.args.is_empty() {
        return Err(err_at_least_one(&req, "ARG"));
    }
    let args = req
        .args
        .iter()
        .map(|arg| {
            let (key, value) = match arg.split_once('=') {
                Some(("", _)) => {
                    return Err(req.error_at(arg, "ARG names can not be blank"));
                }
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (arg.clone(), None),
            };
            let comment = comment_for(&req.node.prev_comment, &key);
            Ok(ArgPair {
                key,
                value,
                comment,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(ArgInstruction {
        args,
        span: req.span(),
    })
}

/// BuildKit's `getComment`: the comment line above that starts with `name `, minus that.
pub(crate) fn comment_for(comments: &[String], name: &str) -> String {
    if name.is_empty() {
        return String::new();
    }
    let prefix = format!("{name} ");
    comments
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or("")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use crate::instructions::test_support::node;
    use crate::instructions::{Instruction, parse_instruction};

    fn parse(keyword: &str, args: &[&str]) -> Result<Instruction, String> {
        let n = node(keyword, &[], args);
        parse_instruction(&n, &n.original).map_err(|e| e.message)
    }

    #[test]
    fn env_triplets() {
        let Ok(Instruction::Env(e)) = parse("ENV", &["a", "1", "=", "b", "2 3", ""]) else {
            panic!()
        };
        assert_eq!(e.env.len(), 2);
        assert!(!e.env[0].no_delim);
        assert!(e.env[1].no_delim);
        assert_eq!(e.env[1].value, "2 3");
    }

    #[test]
    fn kv_errors() {
        assert_eq!(
            parse("ENV", &[]).unwrap_err(),
            "ENV requires at least one argument"
        );
        assert_eq!(
            parse("LABEL", &["a", "b", "c", ""]).unwrap_err(),
            "Bad input to LABEL, too many arguments"
        );
        assert_eq!(
            parse("ENV", &["", "x", "="]).unwrap_err(),
            "ENV names can not be blank"
        );
    }

    #[test]
    fn args_with_and_without_defaults() {
        let mut n = node("ARG", &[], &["A", "B=2", "C=\"x y\""]);
        n.prev_comment = vec!["B the second one".into()];
        let Ok(Instruction::Arg(a)) = parse_instruction(&n, &n.original) else {
            panic!()
        };
        assert_eq!(a.args[0].value, None);
        assert_eq!(a.args[1].value.as_deref(), Some("2"));
        assert_eq!(a.args[1].comment, "the second one");
        assert_eq!(a.args[2].value.as_deref(), Some("\"x y\""));
        assert_eq!(
            parse("ARG", &["=x"]).unwrap_err(),
            "ARG names can not be blank"
        );
        assert_eq!(
            parse("ARG", &[]).unwrap_err(),
            "ARG requires at least one argument"
        );
    }
}
