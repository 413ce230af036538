//! `FROM [--platform=…] image [AS name]`: the start of a build stage.

use serde::Serialize;

use super::Request;
use super::kv::comment_for;
use crate::diagnostics::Diagnostic;
use crate::parser::go_quote;
use crate::span::Span;

/// `FROM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FromInstruction {
    /// The image reference or stage name, unexpanded.
    pub base_name: String,
    /// Where `base_name` is written.
    pub base_span: Span,
    /// The stage name after `AS`, lowercased.
    pub name: Option<String>,
    /// Where the stage name is written.
    pub name_span: Option<Span>,
    /// `--platform=`, unexpanded.
    pub platform: Option<String>,
    /// Where `--platform` is written.
    pub platform_span: Option<Span>,
    /// The `# name description` comment above the FROM, if any.
    pub comment: String,
    /// The whole instruction.
    pub span: Span,
}

pub(crate) fn parse_from(mut req: Request<'_>) -> Result<FromInstruction, Diagnostic> {
    let name = stage_name(&req)?;
    req.flags.add_string("platform", "");
    req.parse_flags()?;
    let platform = req.flags.opt_string("platform");
    let base_name = req.args.first().cloned().unwrap_or_default();
    let name_span = name.as_ref().and_then(|_| req.args.get(2)).map(|n| {
        // The name follows `AS`, so search after the base name.
        let base = req.at(&base_name);
        req.within(Span::new(base.end, req.span().end), n)
    });
    Ok(FromInstruction {
        base_span: req.at(&base_name),
        comment: comment_for(&req.node.prev_comment, name.as_deref().unwrap_or("")),
        platform_span: platform.as_ref().map(|_| req.flag_span("platform")),
        base_name,
        name,
        name_span,
        platform,
        span: req.span(),
    })
}

fn stage_name(req: &Request<'_>) -> Result<Option<String>, Diagnostic> {
    match req.args.as_slice() {
        [_] => Ok(None),
        [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
            let lower = name.to_lowercase();
            if !valid_stage_name(&lower) {
                return Err(req
                    .error_at(
                        name,
                        format!(
                            "invalid name for build stage: {}, name can't start with a number or contain symbols",
                            go_quote(name)
                        ),
                    )
                    .with_hint("use a letter first, then letters, digits, '-', '_' or '.'"));
            }
            Ok(Some(lower))
        }
        _ => Err(req
            .error("FROM requires either one or three arguments")
            .with_hint("write FROM image or FROM image AS name")),
    }
}

/// BuildKit's `^[a-z][a-z0-9-_.]*$`.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use crate::instructions::test_support::node;
    use crate::instructions::{Instruction, parse_instruction};

    #[test]
    fn stage_name_and_platform() {
        let n = node(
            "FROM",
            &["--platform=$BUILDPLATFORM"],
            &["alpine", "AS", "Build"],
        );
        let Ok(Instruction::From(f)) = parse_instruction(&n, &n.original) else {
            panic!()
        };
        assert_eq!(f.base_name, "alpine");
        assert_eq!(f.name.as_deref(), Some("build"));
        assert_eq!(f.platform.as_deref(), Some("$BUILDPLATFORM"));
        let s = f.name_span.unwrap();
        assert_eq!(&n.original[s.start..s.end], "Build");
        let s = f.base_span;
        assert_eq!(&n.original[s.start..s.end], "alpine");
    }

    #[test]
    fn errors() {
        let cases: [(&[&str], &str); 4] = [
            (&["a", "b"], "FROM requires either one or three arguments"),
            (&[], "FROM requires either one or three arguments"),
            (
                &["a", "as", "1x"],
                "invalid name for build stage: \"1x\", name can't start with a number or contain symbols",
            ),
            (
                &["a", "to", "b"],
                "FROM requires either one or three arguments",
            ),
        ];
        for (args, want) in cases {
            let n = node("FROM", &[], args);
            assert_eq!(
                parse_instruction(&n, &n.original).unwrap_err().message,
                want
            );
        }
        let n = node("FROM", &["--plat=x"], &["a"]);
        let e = parse_instruction(&n, &n.original).unwrap_err();
        assert_eq!(e.message, "unknown flag: --plat");
    }
}
