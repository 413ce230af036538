//! `HEALTHCHECK NONE` and `HEALTHCHECK [--interval…] CMD command`.

use serde::Serialize;

use super::duration::parse_go_duration;
use super::{Request, err_at_least_one, json_or_joined, strconv};
use crate::diagnostics::Diagnostic;
use crate::parser::go_quote;
use crate::span::Span;

/// The image's health check, Docker's `HealthConfig`. Durations are nanoseconds; 0 means
/// "inherit the default".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// `["NONE"]`, `["CMD", exe, args…]` or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    /// `--interval`.
    pub interval: i64,
    /// `--timeout`.
    pub timeout: i64,
    /// `--start-period`.
    pub start_period: i64,
    /// `--start-interval`.
    pub start_interval: i64,
    /// `--retries` (0: default).
    pub retries: i64,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthcheckInstruction {
    /// The check.
    pub health: Health,
    /// The whole instruction.
    pub span: Span,
}

const MINIMUM_NS: i64 = 1_000_000;

pub(crate) fn parse_healthcheck(
    mut req: Request<'_>,
) -> Result<HealthcheckInstruction, Diagnostic> {
    let Some(first) = req.args.first().cloned() else {
        return Err(err_at_least_one(&req, "HEALTHCHECK"));
    };
    let typ = first.to_uppercase();
    let rest = req.args[1..].to_vec();
    let mut health = Health {
        test: Vec::new(),
        interval: 0,
        timeout: 0,
        start_period: 0,
        start_interval: 0,
        retries: 0,
    };
    if typ == "NONE" {
        // BuildKit does not look at flags here: `HEALTHCHECK --interval=1s NONE` is accepted.
        if let Some(extra) = rest.first() {
            return Err(req.error_at(extra, "HEALTHCHECK NONE takes no arguments"));
        }
        health.test = vec![typ];
        return Ok(HealthcheckInstruction {
            health,
            span: req.span(),
        });
    }
    for name in [
        "interval",
        "timeout",
        "start-period",
        "start-interval",
        "retries",
    ] {
        req.flags.add_string(name, "");
    }
    req.parse_flags()?;
    if typ != "CMD" {
        return Err(req
            .error_at(
                &first,
                format!("Unknown type {} in HEALTHCHECK (try CMD)", go_quote(&typ)),
            )
            .with_hint("use HEALTHCHECK CMD command or HEALTHCHECK NONE"));
    }
    let cmd = json_or_joined(&rest, req.node.json);
    if cmd.is_empty() {
        return Err(req.error_at(&first, "Missing command after HEALTHCHECK CMD"));
    }
    let kind = if req.node.json { "CMD" } else { "CMD-SHELL" };
    health.test = std::iter::once(kind.to_owned()).chain(cmd).collect();
    health.interval = interval(&req, "interval")?;
    health.timeout = interval(&req, "timeout")?;
    health.start_period = interval(&req, "start-period")?;
    health.start_interval = interval(&req, "start-interval")?;
    let retries = req.flags.string("retries");
    if !retries.is_empty() {
        let span = req.flag_span("retries");
        let n = strconv::parse_int(retries, 32).map_err(|e| Diagnostic::error(e, span))?;
        if n < 0 {
            return Err(Diagnostic::error(
                format!("--retries cannot be negative ({n})"),
                span,
            ));
        }
        health.retries = n;
    }
    Ok(HealthcheckInstruction {
        health,
        span: req.span(),
    })
}

/// BuildKit's `parseOptInterval`: empty and zero mean "default"; otherwise at least 1ms.
fn interval(req: &Request<'_>, name: &str) -> Result<i64, Diagnostic> {
    let value = req.flags.string(name);
    if value.is_empty() {
        return Ok(0);
    }
    let span = req.flag_span(name);
    let ns = parse_go_duration(value).map_err(|e| {
        Diagnostic::error(e, span).with_hint("durations look like 30s, 1m30s or 500ms")
    })?;
    if ns != 0 && ns < MINIMUM_NS {
        return Err(Diagnostic::error(
            format!("Interval {} cannot be less than 1ms", go_quote(name)),
            span,
        ));
    }
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use crate::instructions::test_support::node;
    use crate::instructions::{Instruction, parse_instruction};
    use crate::parser::Node;

    fn parse(n: &Node) -> Result<super::Health, String> {
        match parse_instruction(n, &n.original) {
            Ok(Instruction::Healthcheck(h)) => Ok(h.health),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e.message),
        }
    }

    #[test]
    fn cmd_forms() {
        let h = parse(&node("HEALTHCHECK", &[], &["CMD", "hello world"])).unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "hello world"]);
        let mut n = node(
            "HEALTHCHECK",
            &["--interval=5s", "--retries=3"],
            &["cmd", "a", "b"],
        );
        n.json = true;
        let h = parse(&n).unwrap();
        assert_eq!(h.test, ["CMD", "a", "b"]);
        assert_eq!((h.interval, h.retries), (5_000_000_000, 3));
        let h = parse(&node("HEALTHCHECK", &["--interval=5s"], &["none"])).unwrap();
        assert_eq!(h.test, ["NONE"]);
    }

    #[test]
    fn errors() {
        let cases: [(&[&str], &[&str], &str); 8] = [
            (&[], &[], "HEALTHCHECK requires at least one argument"),
            (&[], &["NONE", "x"], "HEALTHCHECK NONE takes no arguments"),
            (
                &[],
                &["CONNECT", "x"],
                "Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)",
            ),
            (&[], &["CMD"], "Missing command after HEALTHCHECK CMD"),
            (
                &["--interval=50ns"],
                &["CMD", "x"],
                "Interval \"interval\" cannot be less than 1ms",
            ),
            (
                &["--timeout=5"],
                &["CMD", "x"],
                "time: missing unit in duration \"5\"",
            ),
            (
                &["--retries=-1"],
                &["CMD", "x"],
                "--retries cannot be negative (-1)",
            ),
            (&["--foo=1"], &["CMD", "x"], "unknown flag: --foo"),
        ];
        for (flags, args, want) in cases {
            assert_eq!(parse(&node("HEALTHCHECK", flags, args)).unwrap_err(), want);
        }
        let h = parse(&node(
            "HEALTHCHECK",
            &["--start-interval=0ms"],
            &["CMD", "x"],
        ))
        .unwrap();
        assert_eq!(h.start_interval, 0);
    }
}
