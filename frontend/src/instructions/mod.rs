//! Typed instructions: BuildKit's `frontend/dockerfile/instructions` package. Each AST
//! [`Node`] becomes one [`Instruction`] with its flags checked and parsed (RUN mounts,
//! network, security and devices; COPY/ADD options and heredoc sources; HEALTHCHECK
//! durations…), with BuildKit's error messages and spans narrowed to the word at fault.
//!
//! Words stay unexpanded, as in BuildKit, which expands them at dispatch time; the parts that
//! need expansion then ([`flags::BFlags::parse_with`], [`mount::parse_mount`],
//! [`expose::parse_port_specs`]) take an optional expander.

mod command;
mod copy;
mod csv;
mod device;
mod duration;
pub mod expose;
pub mod flags;
mod from;
mod healthcheck;
mod kv;
mod misc;
pub mod mount;
mod run;
mod strconv;
mod suggest;

pub use command::{
    CmdInstruction, CommandLine, EntrypointInstruction, InlineFile, ShellInstruction,
};
pub use copy::{AddInstruction, CopyInstruction, SourceContent};
pub use device::{Device, parse_device};
pub use expose::{ExposeInstruction, parse_port_spec, parse_port_specs};
pub use flags::{BFlags, Expander, FlagError, FlagKind};
pub use from::FromInstruction;
pub use healthcheck::{Health, HealthcheckInstruction};
pub use kv::{ArgInstruction, ArgPair, EnvInstruction, KeyValue, LabelInstruction};
pub use misc::{
    MaintainerInstruction, OnbuildInstruction, StopSignalInstruction, UserInstruction,
    VolumeInstruction, WorkdirInstruction,
};
pub use mount::{Mount, MountType, OptionError, Relabel, ShareMode, parse_mount, precheck_mount};
pub use run::{NetworkMode, RunInstruction, RunMount, SecurityMode};

use serde::Serialize;

use crate::diagnostics::{Diagnostic, span_of};
use crate::parser::Node;
use crate::span::Span;

/// One typed Dockerfile instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "instruction", rename_all = "lowercase")]
pub enum Instruction {
    /// `FROM [--platform=…] image [AS name]`: starts a stage.
    From(FromInstruction),
    /// `RUN [--mount…] [--network…] [--security…] [--device…] command`.
    Run(RunInstruction),
    /// `CMD command`.
    Cmd(CmdInstruction),
    /// `ENTRYPOINT command`.
    Entrypoint(EntrypointInstruction),
    /// `SHELL ["exe", "arg"]`.
    Shell(ShellInstruction),
    /// `LABEL k=v …`.
    Label(LabelInstruction),
    /// `MAINTAINER name` (deprecated).
    Maintainer(MaintainerInstruction),
    /// `EXPOSE port[/proto] …`.
    Expose(ExposeInstruction),
    /// `ENV k=v …` or `ENV k v`.
    Env(EnvInstruction),
    /// `ADD [flags] src… dest`.
    Add(AddInstruction),
    /// `COPY [flags] src… dest`.
    Copy(CopyInstruction),
    /// `VOLUME path…`.
    Volume(VolumeInstruction),
    /// `USER user[:group]`.
    User(UserInstruction),
    /// `WORKDIR path`.
    Workdir(WorkdirInstruction),
    /// `ARG name[=default] …`.
    Arg(ArgInstruction),
    /// `ONBUILD instruction`.
    Onbuild(OnbuildInstruction),
    /// `STOPSIGNAL signal`.
    StopSignal(StopSignalInstruction),
    /// `HEALTHCHECK NONE` or `HEALTHCHECK [flags] CMD command`.
    Healthcheck(HealthcheckInstruction),
}

impl Instruction {
    /// The source span of the whole instruction.
    pub fn span(&self) -> Span {
        match self {
            Instruction::From(i) => i.span,
            Instruction::Run(i) => i.span,
            Instruction::Cmd(i) => i.span,
            Instruction::Entrypoint(i) => i.span,
            Instruction::Shell(i) => i.span,
            Instruction::Label(i) => i.span,
            Instruction::Maintainer(i) => i.span,
            Instruction::Expose(i) => i.span,
            Instruction::Env(i) => i.span,
            Instruction::Add(i) => i.span,
            Instruction::Copy(i) => i.span,
            Instruction::Volume(i) => i.span,
            Instruction::User(i) => i.span,
            Instruction::Workdir(i) => i.span,
            Instruction::Arg(i) => i.span,
            Instruction::Onbuild(i) => i.span,
            Instruction::StopSignal(i) => i.span,
            Instruction::Healthcheck(i) => i.span,
        }
    }
}

/// The instruction keywords, uppercase, as BuildKit's dispatch table knows them.
pub const KEYWORDS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Turns one AST node into a typed instruction; `src` is the Dockerfile the node's spans
/// point into (errors are narrowed to the word they are about).
pub fn parse_instruction(node: &Node, src: &str) -> Result<Instruction, Diagnostic> {
    let req = Request::new(node, src);
    Ok(match node.keyword().as_str() {
        "env" => Instruction::Env(kv::parse_env(req)?),
        "maintainer" => Instruction::Maintainer(misc::parse_maintainer(req)?),
        "label" => Instruction::Label(kv::parse_label(req)?),
        "add" => Instruction::Add(copy::parse_add(req)?),
        "copy" => Instruction::Copy(copy::parse_copy(req)?),
        "from" => Instruction::From(from::parse_from(req)?),
        "onbuild" => Instruction::Onbuild(misc::parse_onbuild(req)?),
        "workdir" => Instruction::Workdir(misc::parse_workdir(req)?),
        "run" => Instruction::Run(run::parse_run(req)?),
        "cmd" => Instruction::Cmd(command::parse_cmd(req)?),
        "healthcheck" => Instruction::Healthcheck(healthcheck::parse_healthcheck(req)?),
        "entrypoint" => Instruction::Entrypoint(command::parse_entrypoint(req)?),
        "expose" => Instruction::Expose(expose::parse_expose(req)?),
        "user" => Instruction::User(misc::parse_user(req)?),
        "volume" => Instruction::Volume(misc::parse_volume(req)?),
        "stopsignal" => Instruction::StopSignal(misc::parse_stopsignal(req)?),
        "arg" => Instruction::Arg(kv::parse_arg(req)?),
        "shell" => Instruction::Shell(command::parse_shell(req)?),
        _ => return Err(unknown_instruction(&req)),
    })
}

fn unknown_instruction(req: &Request<'_>) -> Diagnostic {
    let word = &req.node.value;
    let err = Diagnostic::error(format!("unknown instruction: {word}"), req.keyword_span());
    match suggest::closest(word, &KEYWORDS) {
        Some(k) => err.with_hint(format!("did you mean {k}?")),
        None => err.with_hint(format!("instructions are {}", KEYWORDS.join(", "))),
    }
}

/// What every instruction parser works from: the node, its flattened arguments, its flags.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub(crate) node: &'a Node,
    pub(crate) src: &'a str,
    pub(crate) args: Vec<String>,
    pub(crate) flags: BFlags,
}

impl<'a> Request<'a> {
    fn new(node: &'a Node, src: &'a str) -> Self {
        Request {
            node,
            src,
            args: node_args(node),
            flags: BFlags::new(node.flags.clone()),
        }
    }

    /// The whole instruction.
    pub(crate) fn span(&self) -> Span {
        self.node.span
    }

    /// The keyword as written.
    pub(crate) fn keyword_span(&self) -> Span {
        let s = self.node.span;
        Span::new(s.start, (s.start + self.node.value.len()).min(s.end))
    }

    /// The first occurrence of `needle` after the keyword, else the whole instruction.
    pub(crate) fn at(&self, needle: &str) -> Span {
        let s = self.node.span;
        let rest = Span::new(self.keyword_span().end, s.end);
        let found = span_of(self.src, rest, needle);
        if found == rest { s } else { found }
    }

    /// `needle` searched inside `within` (a flag word, say), else `within`.
    pub(crate) fn within(&self, within: Span, needle: &str) -> Span {
        span_of(self.src, within, needle)
    }

    /// An error about the whole instruction.
    pub(crate) fn error(&self, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::error(msg, self.span())
    }

    /// An error pointing at the keyword (a missing argument, say).
    pub(crate) fn keyword_error(&self, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::error(msg, self.keyword_span())
    }

    /// An error pointing at one word of the instruction.
    pub(crate) fn error_at(&self, needle: &str, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::error(msg, self.at(needle))
    }

    /// The span of the flag word that set `name`.
    pub(crate) fn flag_span(&self, name: &str) -> Span {
        match self.flags.word_for(name) {
            Some(w) => self.at(w),
            None => self.span(),
        }
    }

    /// Checks the flag words against the declared flags.
    pub(crate) fn parse_flags(&mut self) -> Result<(), Diagnostic> {
        self.flags.parse().map_err(|e| self.flag_error(e))
    }

    fn flag_error(&self, e: FlagError) -> Diagnostic {
        let span = if e.word.is_empty() {
            self.span()
        } else {
            self.at(&e.word)
        };
        let keyword = self.node.value.to_ascii_uppercase();
        let accepted = self.flags.accepted();
        let list = if accepted.is_empty() {
            format!("{keyword} takes no flags")
        } else {
            let names: Vec<String> = accepted.iter().map(|n| format!("--{n}")).collect();
            format!("{keyword} accepts {}", names.join(", "))
        };
        let hint = match &e.suggestion {
            Some(s) => format!("did you mean --{s}? {list}"),
            None => list,
        };
        Diagnostic::error(e.message, span).with_hint(hint)
    }
}

/// BuildKit's `nodeArgs`: the node's arguments, then (for ONBUILD) the trigger's keyword and
/// its arguments.
fn node_args(node: &Node) -> Vec<String> {
    let mut out = node.args.clone();
    if let Some(sub) = &node.sub {
        out.push(sub.value.clone());
        out.extend(node_args(sub));
    }
    out
}

/// BuildKit's `handleJSONArgs`: exec form keeps the words, shell form is one string.
pub(crate) fn json_or_joined(args: &[String], json: bool) -> Vec<String> {
    if args.is_empty() {
        Vec::new()
    } else if json {
        args.to_vec()
    } else {
        vec![args.join(" ")]
    }
}

pub(crate) fn err_at_least_one(req: &Request<'_>, cmd: &str) -> Diagnostic {
    req.keyword_error(format!("{cmd} requires at least one argument"))
}

pub(crate) fn err_exactly_one(req: &Request<'_>, cmd: &str) -> Diagnostic {
    let msg = format!("{cmd} requires exactly one argument");
    match req.args.get(1) {
        Some(extra) => req.error_at(extra, msg),
        None => req.keyword_error(msg),
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::parser::Node;
    use crate::span::Span;

    /// A node like the parser would give for `keyword flags… args…` at the start of `src`.
    pub(crate) fn node(keyword: &str, flags: &[&str], args: &[&str]) -> Node {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut original = keyword.to_owned();
        for w in flags.iter().chain(args) {
            original.push(' ');
            original.push_str(w);
        }
        Node {
            value: keyword.to_owned(),
            flags: own(flags),
            args: own(args),
            sub: None,
            json: false,
            heredocs: Vec::new(),
            span: Span::new(0, original.len()),
            original,
            start_line: 1,
            end_line: 1,
            prev_comment: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::node;
    use super::*;

    #[test]
    fn unknown_instruction_keeps_spelling_and_suggests() {
        let n = node("fomr", &[], &["x"]);
        let e = parse_instruction(&n, &n.original).unwrap_err();
        assert_eq!(e.message, "unknown instruction: fomr");
        assert_eq!(e.hint.as_deref(), Some("did you mean FROM?"));
        assert_eq!(e.span, Span::new(0, 4));
    }

    #[test]
    fn unknown_flag_points_at_flag_and_lists_accepted() {
        let n = node("COPY", &["--form=a"], &["x", "/y"]);
        let e = parse_instruction(&n, &n.original).unwrap_err();
        assert_eq!(e.message, "unknown flag: --form");
        assert_eq!(&n.original[e.span.start..e.span.end], "--form=a");
        let hint = e.hint.unwrap();
        assert!(
            hint.starts_with("did you mean --from? COPY accepts --chmod"),
            "{hint}"
        );
    }

    #[test]
    fn keyword_case_is_free() {
        let n = node("rUn", &[], &["echo hi"]);
        assert!(matches!(
            parse_instruction(&n, &n.original),
            Ok(Instruction::Run(_))
        ));
    }

    #[test]
    fn serializes_with_a_tag() {
        let n = node("USER", &[], &["app"]);
        let i = parse_instruction(&n, &n.original).unwrap();
        let v = serde_json::to_value(&i).unwrap();
        assert_eq!(v["instruction"], "user");
        assert_eq!(v["user"], "app");
        assert_eq!(v["span"]["end"], 8);
    }
}
