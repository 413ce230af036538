//! `RUN [--mount=…]… [--network=…] [--security=…] [--device=…]… command`.

use serde::Serialize;

use super::Request;
use super::command::{CommandLine, command_line};
use super::device::{Device, parse_device};
use super::mount::{Mount, OptionError, parse_mount, precheck_mount};
use crate::diagnostics::Diagnostic;
use crate::parser::go_quote;
use crate::span::Span;

/// `--network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// The builder's default network.
    Default,
    /// No network at all.
    None,
    /// The host's network (an entitlement).
    Host,
}

/// `--security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityMode {
    /// The normal sandbox.
    Sandbox,
    /// All capabilities, no seccomp (an entitlement).
    Insecure,
}

/// One `--mount` as written, and typed when it could be without expansion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunMount {
    /// The value after `--mount=`.
    pub value: String,
    /// Where the `--mount=…` word is.
    pub span: Span,
    /// The typed mount; `None` when a value holds `$` or quotes, so that only dispatch, with
    /// the stage's variables, can give it (call [`parse_mount`] with an expander then).
    pub mount: Option<Mount>,
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunInstruction {
    /// The command.
    #[serde(flatten)]
    pub command: CommandLine,
    /// `--mount`s, in order.
    pub mounts: Vec<RunMount>,
    /// `--network` (default `default`).
    pub network: NetworkMode,
    /// `--security` (default `sandbox`).
    pub security: SecurityMode,
    /// `--device`s, in order.
    pub devices: Vec<Device>,
    /// The flags that were given, in order of first use (BuildKit's `FlagsUsed`).
    pub flags_used: Vec<String>,
    /// The whole instruction.
    pub span: Span,
}

pub(crate) fn parse_run(mut req: Request<'_>) -> Result<RunInstruction, Diagnostic> {
    req.flags.add_strings("device");
    req.flags.add_strings("mount");
    req.flags.add_string("network", "default");
    req.flags.add_string("security", "sandbox");
    req.parse_flags()?;
    let command = command_line(&req);
    // BuildKit's post-parse hooks run in this order, so their errors win in this order.
    let devices = req
        .flags
        .strings("device")
        .iter()
        .map(|v| parse_device(v).map_err(|e| option_error(&req, "device", v, e)))
        .collect::<Result<_, _>>()?;
    let mounts = req
        .flags
        .strings("mount")
        .iter()
        .map(|v| run_mount(&req, v))
        .collect::<Result<_, _>>()?;
    let network = match req.flags.string("network") {
        "default" => NetworkMode::Default,
        "none" => NetworkMode::None,
        "host" => NetworkMode::Host,
        other => {
            return Err(Diagnostic::error(
                format!("invalid network mode {}", go_quote(other)),
                req.flag_span("network"),
            )
            .with_hint("--network takes default, none or host"));
        }
    };
    let security = match req.flags.string("security") {
        "sandbox" => SecurityMode::Sandbox,
        "insecure" => SecurityMode::Insecure,
        other => {
            return Err(Diagnostic::error(
                format!("security {} is not valid", go_quote(other)),
                req.flag_span("security"),
            )
            .with_hint("--security takes sandbox or insecure"));
        }
    };
    Ok(RunInstruction {
        command,
        mounts,
        network,
        security,
        devices,
        flags_used: req.flags.used().to_vec(),
        span: req.span(),
    })
}

fn run_mount(req: &Request<'_>, value: &str) -> Result<RunMount, Diagnostic> {
    let literal = precheck_mount(value).map_err(|e| option_error(req, "mount", value, e))?;
    let mount = if literal {
        Some(parse_mount(value, None).map_err(|e| option_error(req, "mount", value, e))?)
    } else {
        None
    };
    Ok(RunMount {
        value: value.to_owned(),
        span: req.at(&format!("--mount={value}")),
        mount,
    })
}

/// Points an option error at its `key=value` field inside the flag word.
fn option_error(req: &Request<'_>, flag: &str, value: &str, e: OptionError) -> Diagnostic {
    let word = req.at(&format!("--{flag}={value}"));
    let span = match &e.field {
        Some(f) if !f.is_empty() => req.within(word, f),
        _ => word,
    };
    let d = Diagnostic::error(e.message, span);
    match e.hint {
        Some(h) => d.with_hint(h),
        None => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instructions::test_support::node;
    use crate::instructions::{Instruction, MountType, parse_instruction};

    fn parse(flags: &[&str]) -> Result<RunInstruction, Diagnostic> {
        let n = node("RUN", flags, &["echo hello"]);
        match parse_instruction(&n, &n.original)? {
            Instruction::Run(r) => Ok(r),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_are_typed() {
        let r = parse(&[
            "--mount=type=tmpfs,target=/foo/",
            "--network=none",
            "--security=insecure",
            "--device=a.com/b=c",
            "--mount=type=cache,target=$HOME/.cache",
        ])
        .unwrap();
        assert_eq!(r.flags_used, ["mount", "network", "security", "device"]);
        assert_eq!(r.network, NetworkMode::None);
        assert_eq!(r.security, SecurityMode::Insecure);
        assert_eq!(r.devices[0].name, "a.com/b=c");
        let m = r.mounts[0].mount.as_ref().unwrap();
        assert_eq!(m.mount_type, MountType::Tmpfs);
        assert!(r.mounts[1].mount.is_none());
        assert_eq!(r.command.cmd_line, ["echo hello"]);
        assert!(r.command.prepend_shell);
        let v = serde_json::to_value(Instruction::Run(r)).unwrap();
        assert_eq!(v["instruction"], "run");
        assert_eq!(v["cmd_line"][0], "echo hello");
        assert_eq!(v["mounts"][0]["mount"]["type"], "tmpfs");
        assert_eq!(v["network"], "none");
        let d = parse(&[]).unwrap();
        assert_eq!(
            (d.network, d.security),
            (NetworkMode::Default, SecurityMode::Sandbox)
        );
    }

    #[test]
    fn errors_point_into_the_flag() {
        let flags = ["--mount=type=cache,sharing=bogus"];
        let n = node("RUN", &flags, &["x"]);
        let e = parse_instruction(&n, &n.original).unwrap_err();
        assert_eq!(e.message, "unsupported sharing value \"bogus\"");
        assert_eq!(&n.original[e.span.start..e.span.end], "sharing=bogus");
        assert_eq!(
            parse(&["--network=bridge"]).unwrap_err().message,
            "invalid network mode \"bridge\""
        );
        assert_eq!(
            parse(&["--security=x"]).unwrap_err().message,
            "security \"x\" is not valid"
        );
        assert_eq!(
            parse(&["--mount=from=$X"]).unwrap_err().message,
            "'from' doesn't support variable expansion, define alias stage instead"
        );
        assert_eq!(
            parse(&["--device=a,name=b"]).unwrap_err().message,
            "device name already set to a"
        );
        assert_eq!(
            parse(&["--network=host", "--network=none"])
                .unwrap_err()
                .message,
            "duplicate flag specified: --network"
        );
    }
}
