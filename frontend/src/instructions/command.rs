//! CMD, ENTRYPOINT and SHELL, and the shell-or-exec command line they share with RUN.

use serde::Serialize;

use super::{Request, err_at_least_one, json_or_joined};
use crate::diagnostics::Diagnostic;
use crate::span::Span;

/// A command in shell form (run through SHELL, `prepend_shell`) or exec form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandLine {
    /// Exec form: the words. Shell form: one string, the rest of the line unexpanded.
    pub cmd_line: Vec<String>,
    /// True for shell form: the current SHELL is put in front at dispatch.
    pub prepend_shell: bool,
    /// Heredoc bodies that followed the line (`RUN <<EOF`), raw.
    pub files: Vec<InlineFile>,
}

/// A heredoc attached to a RUN/CMD/ENTRYPOINT line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InlineFile {
    /// The delimiter word, quotes removed.
    pub name: String,
    /// The body, tabs not yet stripped.
    pub data: String,
    /// `<<-`: leading tabs are to be stripped.
    pub chomp: bool,
}

/// BuildKit's `parseShellDependentCommand`.
pub(crate) fn command_line(req: &Request<'_>) -> CommandLine {
    let files = req
        .node
        .heredocs
        .iter()
        .map(|h| InlineFile {
            name: h.name.clone(),
            data: h.content.clone(),
            chomp: h.chomp,
        })
        .collect();
    CommandLine {
        cmd_line: json_or_joined(&req.args, req.node.json),
        prepend_shell: !req.node.json,
        files,
    }
}

/// `CMD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CmdInstruction {
    /// The command.
    #[serde(flatten)]
    pub command: CommandLine,
    /// The whole instruction.
    pub span: Span,
}

/// `ENTRYPOINT`. An empty exec form (`ENTRYPOINT []`) clears the entrypoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntrypointInstruction {
    /// The command.
    #[serde(flatten)]
    pub command: CommandLine,
    /// The whole instruction.
    pub span: Span,
}

/// `SHELL`: exec form only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShellInstruction {
    /// The shell and its leading arguments.
    pub shell: Vec<String>,
    /// The whole instruction.
    pub span: Span,
}

pub(crate) fn parse_cmd(mut req: Request<'_>) -> Result<CmdInstruction, Diagnostic> {
    req.parse_flags()?;
    Ok(CmdInstruction {
        command: command_line(&req),
        span: req.span(),
    })
}

pub(crate) fn parse_entrypoint(mut req: Request<'_>) -> Result<EntrypointInstruction, Diagnostic> {
    req.parse_flags()?;
    Ok(EntrypointInstruction {
        command: command_line(&req),
        span: req.span(),
    })
}

pub(crate) fn parse_shell(mut req: Request<'_>) -> Result<ShellInstruction, Diagnostic> {
    req.parse_flags()?;
    let shell = json_or_joined(&req.args, req.node.json);
    if shell.is_empty() {
        return Err(err_at_least_one(&req, "SHELL"));
    }
    if !req.node.json {
        return Err(req
            .error("SHELL requires the arguments to be in JSON form")
            .with_hint("write it as SHELL [\"executable\", \"parameters\"]"));
    }
    Ok(ShellInstruction {
        shell,
        span: req.span(),
    })
}

#[cfg(test)]
mod tests {
    use crate::instructions::test_support::node;
    use crate::instructions::{Instruction, parse_instruction};

    fn parse(n: &crate::parser::Node) -> Result<Instruction, String> {
        parse_instruction(n, &n.original).map_err(|e| e.message)
    }

    #[test]
    fn shell_and_exec_forms() {
        let n = node("CMD", &[], &["echo hi"]);
        let Ok(Instruction::Cmd(c)) = parse(&n) else {
            panic!()
        };
        assert_eq!(
            (c.command.cmd_line, c.command.prepend_shell),
            (vec!["echo hi".into()], true)
        );
        let mut n = node("ENTRYPOINT", &[], &["a", "b"]);
        n.json = true;
        let Ok(Instruction::Entrypoint(e)) = parse(&n) else {
            panic!()
        };
        assert_eq!(e.command.cmd_line, ["a", "b"]);
        assert!(!e.command.prepend_shell);
    }

    #[test]
    fn shell_needs_json() {
        let n = node("SHELL", &[], &["bash -c"]);
        assert_eq!(
            parse(&n).unwrap_err(),
            "SHELL requires the arguments to be in JSON form"
        );
        let mut n = node("SHELL", &[], &[]);
        n.json = true;
        assert_eq!(
            parse(&n).unwrap_err(),
            "SHELL requires at least one argument"
        );
        let mut n = node("SHELL", &[], &["bash", "-c"]);
        n.json = true;
        let Ok(Instruction::Shell(s)) = parse(&n) else {
            panic!()
        };
        assert_eq!(s.shell, ["bash", "-c"]);
    }

    #[test]
    fn cmd_takes_no_flags() {
        let n = node("CMD", &["--doit"], &["a"]);
        assert_eq!(parse(&n).unwrap_err(), "unknown flag: --doit");
    }
}
