//! The one-value instructions (MAINTAINER, WORKDIR, USER, STOPSIGNAL), VOLUME and ONBUILD.

use serde::Serialize;

use super::{Request, err_at_least_one, err_exactly_one};
use crate::diagnostics::Diagnostic;
use crate::span::Span;

/// `MAINTAINER`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaintainerInstruction {
    /// The maintainer, as written.
    pub maintainer: String,
    /// The whole instruction.
    pub span: Span,
}

/// `WORKDIR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkdirInstruction {
    /// The path, unexpanded.
    pub path: String,
    /// The whole instruction.
    pub span: Span,
}

/// `USER`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInstruction {
    /// `user[:group]`, unexpanded.
    pub user: String,
    /// The whole instruction.
    pub span: Span,
}

/// `VOLUME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeInstruction {
    /// The paths, trimmed, unexpanded.
    pub volumes: Vec<String>,
    /// The whole instruction.
    pub span: Span,
}

/// `STOPSIGNAL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopSignalInstruction {
    /// The signal name or number, unexpanded.
    pub signal: String,
    /// The whole instruction.
    pub span: Span,
}

/// `ONBUILD`: the trigger is kept as text and parsed when a child image builds FROM this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnbuildInstruction {
    /// The trigger's keyword, uppercase.
    pub trigger: String,
    /// The trigger instruction as written (heredoc bodies appended), stored in the image.
    pub expression: String,
    /// The whole instruction.
    pub span: Span,
}

fn single(req: &Request<'_>, cmd: &str) -> Result<String, Diagnostic> {
    match req.args.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(err_exactly_one(req, cmd)),
    }
}

pub(crate) fn parse_maintainer(mut req: Request<'_>) -> Result<MaintainerInstruction, Diagnostic> {
    let maintainer = single(&req, "MAINTAINER")?;
    req.parse_flags()?;
    Ok(MaintainerInstruction {
        maintainer,
        span: req.span(),
    })
}

pub(crate) fn parse_workdir(mut req: Request<'_>) -> Result<WorkdirInstruction, Diagnostic> {
    let path = single(&req, "WORKDIR")?;
    req.parse_flags()?;
    Ok(WorkdirInstruction {
        path,
        span: req.span(),
    })
}

pub(crate) fn parse_user(mut req: Request<'_>) -> Result<UserInstruction, Diagnostic> {
    let user = single(&req, "USER")?;
    req.parse_flags()?;
    Ok(UserInstruction {
        user,
        span: req.span(),
    })
}

/// BuildKit does not check STOPSIGNAL's flags: they are ignored, as there.
pub(crate) fn parse_stopsignal(req: Request<'_>) -> Result<StopSignalInstruction, Diagnostic> {
    let signal = single(&req, "STOPSIGNAL")?;
    Ok(StopSignalInstruction {
        signal,
        span: req.span(),
    })
}

pub(crate) fn parse_volume(mut req: Request<'_>) -> Result<VolumeInstruction, Diagnostic> {
    if req.args.is_empty() {
        return Err(err_at_least_one(&req, "VOLUME"));
    }
    req.parse_flags()?;
    let mut volumes = Vec::with_capacity(req.args.len());
    for v in &req.args {
        let v = v.trim();
        if v.is_empty() {
            return Err(req.error("VOLUME specified can not be an empty string"));
        }
        volumes.push(v.to_owned());
    }
    Ok(VolumeInstruction {
        volumes,
        span: req.span(),
    })
}

pub(crate) fn parse_onbuild(mut req: Request<'_>) -> Result<OnbuildInstruction, Diagnostic> {
    let Some(first) = req.args.first().cloned() else {
        return Err(err_at_least_one(&req, "ONBUILD"));
    };
    let trigger = first.trim().to_uppercase();
    req.parse_flags()?;
    let trigger_span = req.at(&first);
    match trigger.as_str() {
        "ONBUILD" => {
            return Err(Diagnostic::error(
                "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                trigger_span,
            ));
        }
        "MAINTAINER" | "FROM" => {
            return Err(Diagnostic::error(
                format!("{trigger} isn't allowed as an ONBUILD trigger"),
                trigger_span,
            ));
        }
        _ => {}
    }
    let mut expression = strip_onbuild(&req.node.original).to_owned();
    // The parser may hang the trigger's heredocs on either node; BuildKit has them on ONBUILD.
    let heredocs = match &req.node.sub {
        Some(sub) if req.node.heredocs.is_empty() => &sub.heredocs,
        _ => &req.node.heredocs,
    };
    for h in heredocs {
        expression.push('\n');
        expression.push_str(&h.content);
        expression.push_str(&h.name);
    }
    Ok(OnbuildInstruction {
        trigger,
        expression,
        span: req.span(),
    })
}

/// RE2's `\s`, which is ASCII only and excludes `\v`.
fn is_re2_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

/// BuildKit's `(?i)^\s*ONBUILD\s*` removal from the original line.
fn strip_onbuild(original: &str) -> &str {
    let rest = original.trim_start_matches(is_re2_space);
    match rest.get(..7) {
        Some(k) if k.eq_ignore_ascii_case("onbuild") => rest[7..].trim_start_matches(is_re2_space),
        _ => original,
    }
}

#[cfg(test)]
mod tests {
    use crate::instructions::test_support::node;
    use crate::instructions::{Instruction, parse_instruction};
    use crate::parser::{Heredoc, Node};

    fn parse(n: &Node) -> Result<Instruction, String> {
        parse_instruction(n, &n.original).map_err(|e| e.message)
    }

    fn onbuild(trigger: &str, args: &[&str]) -> Node {
        let sub = node(trigger, &[], args);
        let mut n = node("ONBUILD", &[], &[]);
        n.original = format!("ONBUILD {}", sub.original);
        n.span.end = n.original.len();
        n.sub = Some(Box::new(sub));
        n
    }

    #[test]
    fn counts() {
        for k in ["MAINTAINER", "WORKDIR", "USER", "STOPSIGNAL"] {
            assert_eq!(
                parse(&node(k, &[], &[])).unwrap_err(),
                format!("{k} requires exactly one argument")
            );
        }
        assert_eq!(
            parse(&node("VOLUME", &[], &[])).unwrap_err(),
            "VOLUME requires at least one argument"
        );
        assert_eq!(
            parse(&node("VOLUME", &[], &["  "])).unwrap_err(),
            "VOLUME specified can not be an empty string"
        );
        assert_eq!(
            parse(&node("MAINTAINER", &["--boo"], &["me"])).unwrap_err(),
            "unknown flag: --boo"
        );
    }

    #[test]
    fn onbuild_triggers() {
        assert_eq!(
            parse(&onbuild("ONBUILD", &["RUN x"])).unwrap_err(),
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
        );
        assert_eq!(
            parse(&onbuild("from", &["scratch"])).unwrap_err(),
            "FROM isn't allowed as an ONBUILD trigger"
        );
        assert_eq!(
            parse(&onbuild("MAINTAINER", &["me"])).unwrap_err(),
            "MAINTAINER isn't allowed as an ONBUILD trigger"
        );
        let mut n = onbuild("RUN", &["<<EOF"]);
        n.heredocs.push(Heredoc {
            name: "EOF".into(),
            content: "echo hi\n".into(),
            expand: true,
            chomp: false,
            file_descriptor: 0,
        });
        let Ok(Instruction::Onbuild(o)) = parse(&n) else {
            panic!()
        };
        assert_eq!(o.trigger, "RUN");
        assert_eq!(o.expression, "RUN <<EOF\necho hi\nEOF");
        assert_eq!(
            parse(&node("ONBUILD", &[], &[])).unwrap_err(),
            "ONBUILD requires at least one argument"
        );
    }
}
