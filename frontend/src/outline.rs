//! What `--call outline` and `--call targets` report, computed the way BuildKit's
//! `dockerfile2llb` does (`ListTargets`, `dispatchState.Outline`), over the parsed Dockerfile
//! and its stage graph alone: no image is resolved and nothing is built.
//!
//! * Targets: every stage in order, its `AS` name, its FROM base and `--platform` as written,
//!   the `# NAME description` comment right above its FROM; the last stage is the default.
//! * Outline of the target stage: the build ARGs that affect it (global ARGs its FROM lines
//!   use, with the global ARGs their defaults read, and every ARG declared in a stage it
//!   needs), each with its value under the given build args and the `# NAME description`
//!   comment above its ARG; the secrets and SSH agents its RUN steps mount. A stage counts
//!   when the target is built from it, copies from it or mounts it.
//!
//! The types serialize to the JSON BuildKit's frontend returns for these calls
//! (`result.json`, what `--call outline,format=json` prints), with `index` added to targets.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde::ser::{SerializeStruct as _, Serializer};

use crate::diagnostics::Diagnostic;
use crate::instructions::{ArgPair, Instruction, MountType, parse_instruction, parse_mount};
use crate::parser::Parsed;
use crate::scope::{ArgDecl, BuildOptions, GlobalScope, StageScope};
use crate::shell::Lexer;
use crate::span::{LineIndex, Span};
use crate::stages::{Base, StageGraph, resolve};

/// The first and last 1-based line of an instruction (BuildKit's source location).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lines {
    /// The line the instruction starts on.
    pub start: usize,
    /// The line it ends on (continuations and heredocs included).
    pub end: usize,
}

/// As BuildKit's `pb.Location`: `{"ranges":[{"start":{"line":N},"end":{"line":M}}]}`.
impl Serialize for Lines {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Position {
            line: usize,
        }
        #[derive(Serialize)]
        struct Range {
            start: Position,
            end: Position,
        }
        let ranges = [Range {
            start: Position { line: self.start },
            end: Position { line: self.end },
        }];
        let mut st = s.serialize_struct("Location", 1)?;
        st.serialize_field("ranges", &ranges)?;
        st.end()
    }
}

/// One stage, as `--call targets` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// The `AS` name (lowercased), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Position in the Dockerfile, from 0.
    pub index: usize,
    /// True for the last stage, which a build without `--target` builds.
    #[serde(skip_serializing_if = "is_false")]
    pub default: bool,
    /// The `# NAME description` comment above the FROM.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The FROM base as written (unexpanded).
    pub base: String,
    /// `--platform` as written, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Where the FROM is.
    #[serde(rename = "location")]
    pub lines: Lines,
}

/// One build ARG in an outline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutlineArg {
    /// The name.
    pub name: String,
    /// The `# NAME description` comment above the ARG.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The value under the given build args (the expanded default without one); `None` when
    /// the ARG has no value at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Where the ARG that defines it is.
    #[serde(rename = "location")]
    pub lines: Lines,
}

/// A secret or SSH agent a RUN step of the outline mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutlineMount {
    /// The secret or SSH id.
    #[serde(rename = "name")]
    pub id: String,
    /// `required=true`: the build fails when it is not provided.
    #[serde(skip_serializing_if = "is_false")]
    pub required: bool,
    /// Where the first RUN that mounts it is.
    #[serde(rename = "location")]
    pub lines: Lines,
}

/// What building the target stage takes from the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outline {
    /// The target stage's `AS` name, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The `# NAME description` comment above the target's FROM.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The build ARGs that affect the target, in Dockerfile order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<OutlineArg>,
    /// The secrets its RUN steps mount, in Dockerfile order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<OutlineMount>,
    /// The SSH agents its RUN steps mount, in Dockerfile order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ssh: Vec<OutlineMount>,
}

/// `--call targets,format=json`: BuildKit's `targets.List` without its `sources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetList {
    /// Every stage, in order.
    pub targets: Vec<Target>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_false(b: &bool) -> bool {
    !*b
}

/// Every stage of `parsed`, as BuildKit's `ListTargets`: instructions are typed but nothing
/// is expanded, so a FROM that needs a build arg is listed as written.
pub fn targets(parsed: &Parsed, src: &str) -> Result<TargetList, Diagnostic> {
    let index = LineIndex::new(src);
    let mut out = Vec::new();
    for node in &parsed.nodes {
        if let Instruction::From(f) = parse_instruction(node, src)? {
            out.push(Target {
                index: out.len(),
                name: f.name,
                base: f.base_name,
                platform: f.platform,
                description: f.comment,
                default: false,
                lines: lines(&index, f.span),
            });
        }
    }
    match out.last_mut() {
        Some(last) => last.default = true,
        None => {
            let span = parsed.nodes.first().map(|n| n.span).unwrap_or_default();
            return Err(Diagnostic::error("no build stage in current context", span)
                .with_hint("add a FROM instruction"));
        }
    }
    Ok(TargetList { targets: out })
}

/// The outline of the stage `opts.target` selects (the last one by default).
pub fn outline(parsed: &Parsed, src: &str, opts: &BuildOptions) -> Result<Outline, Diagnostic> {
    let graph = resolve(parsed, src, opts)?;
    let cx = Context::new(&graph, parsed.escape, src, opts)?;
    let captures = graph
        .stages
        .iter()
        .map(|s| cx.capture(s.index))
        .collect::<Result<Vec<_>, _>>()?;

    // BuildKit walks the target, then its base, then the stages it reads, keeping the first
    // definition of each name; the lists are then sorted by line.
    let mut args: Vec<OutlineArg> = Vec::new();
    let mut secrets: Vec<OutlineMount> = Vec::new();
    let mut ssh: Vec<OutlineMount> = Vec::new();
    let (mut seen_args, mut seen_secrets, mut seen_ssh) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for i in walk(&graph, graph.target) {
        let c = &captures[i];
        for name in &c.used {
            if let Some(a) = c.args.get(name)
                && seen_args.insert(name.clone())
            {
                args.push(a.clone());
            }
        }
        for m in &c.secrets {
            if seen_secrets.insert(m.id.clone()) {
                secrets.push(m.clone());
            }
        }
        for m in &c.ssh {
            if seen_ssh.insert(m.id.clone()) {
                ssh.push(m.clone());
            }
        }
    }
    // Stable: names on one line keep the order they are written in.
    let order = |name: &str| cx.order.get(name).copied().unwrap_or(usize::MAX);
    args.sort_by_key(|a| (a.lines.start, order(&a.name)));
    secrets.sort_by_key(|m| m.lines.start);
    ssh.sort_by_key(|m| m.lines.start);
    let target = &graph.stages[graph.target];
    Ok(Outline {
        name: target.name.clone(),
        description: target.description.clone(),
        args,
        secrets,
        ssh,
    })
}

/// The target, then (depth first) its base stage and the stages it copies or mounts from,
/// each once.
fn walk(graph: &StageGraph, target: usize) -> Vec<usize> {
    fn visit(graph: &StageGraph, i: usize, out: &mut Vec<usize>) {
        if out.contains(&i) {
            return;
        }
        out.push(i);
        let stage = &graph.stages[i];
        if let Base::Stage(b) = stage.base {
            visit(graph, b, out);
        }
        for &d in &stage.deps {
            visit(graph, d, out);
        }
    }
    let mut out = Vec::new();
    visit(graph, target, &mut out);
    out
}

fn lines(index: &LineIndex<'_>, span: Span) -> Lines {
    let start = index.line_col(span.start).line;
    // The span ends after the last line's newline, if any: that is still the last line.
    let end = index
        .line_col(span.end.saturating_sub(1).max(span.start))
        .line;
    Lines { start, end }
}

/// What one stage contributes: the ARG definitions in force in it (global ones, then its
/// own), the names it uses, and its secret and SSH mounts.
#[derive(Debug, Default)]
struct Capture {
    args: BTreeMap<String, OutlineArg>,
    used: Vec<String>,
    secrets: Vec<OutlineMount>,
    ssh: Vec<OutlineMount>,
}

impl Capture {
    fn use_name(&mut self, name: &str) {
        if !self.used.iter().any(|n| n == name) {
            self.used.push(name.to_owned());
        }
    }
}

/// The global scope and the global ARG definitions, shared by every stage.
struct Context<'a> {
    graph: &'a StageGraph,
    lexer: Lexer,
    index: LineIndex<'a>,
    opts: &'a BuildOptions,
    global: GlobalScope,
    /// Global ARG definitions by name (the last declaration wins).
    global_args: BTreeMap<String, OutlineArg>,
    /// The global ARGs each global ARG's default reads (BuildKit's `argInfo.deps`).
    global_deps: BTreeMap<String, BTreeSet<String>>,
    /// Every ARG name's first position among the declarations, to order names on one line.
    order: BTreeMap<String, usize>,
}

impl<'a> Context<'a> {
    fn new(
        graph: &'a StageGraph,
        escape: char,
        src: &'a str,
        opts: &'a BuildOptions,
    ) -> Result<Self, Diagnostic> {
        let lexer = Lexer::new(escape);
        let index = LineIndex::new(src);
        let pairs: Vec<(&ArgPair, Span)> = graph
            .global_args
            .iter()
            .flat_map(|a| a.args.iter().map(move |p| (p, a.span)))
            .collect();
        let decls: Vec<ArgDecl> = pairs.iter().map(|(p, _)| decl(p)).collect();
        let last_stage = graph.stages.last().and_then(|s| s.name.as_deref());
        let global = GlobalScope::new(&decls, opts, &lexer, last_stage).map_err(|(i, e)| {
            Diagnostic::error(e.to_string(), pairs.get(i).map(|p| p.1).unwrap_or_default())
        })?;
        let mut global_args = BTreeMap::new();
        let mut global_deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut order = BTreeMap::new();
        for (i, (p, span)) in pairs.iter().enumerate() {
            let n = order.len();
            order.entry(p.key.clone()).or_insert(n);
            let mut deps = BTreeSet::new();
            let value = match (opts.build_args.get(&p.key), &p.value) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(default)) => {
                    let before = GlobalScope::new(&decls[..i], opts, &lexer, last_stage)
                        .map_err(|(_, e)| Diagnostic::error(e.to_string(), *span))?;
                    let x = lexer
                        .process_word_with_matches(default, &before)
                        .map_err(|e| Diagnostic::error(e.to_string(), *span))?;
                    deps = x.matched;
                    // `ARG A=$A-x` keeps what the earlier A read.
                    if deps.remove(&p.key)
                        && let Some(old) = global_deps.get(&p.key)
                    {
                        deps.extend(old.iter().cloned());
                    }
                    Some(x.result)
                }
                (None, None) => None,
            };
            global_deps.insert(p.key.clone(), deps);
            global_args.insert(
                p.key.clone(),
                OutlineArg {
                    name: p.key.clone(),
                    value,
                    description: p.comment.clone(),
                    lines: lines(&index, *span),
                },
            );
        }
        for stage in &graph.stages {
            for inst in &stage.instructions {
                if let Instruction::Arg(a) = inst {
                    for p in &a.args {
                        let n = order.len();
                        order.entry(p.key.clone()).or_insert(n);
                    }
                }
            }
        }
        Ok(Context {
            graph,
            lexer,
            index,
            opts,
            global,
            global_args,
            global_deps,
            order,
        })
    }

    /// Replays stage `i` as BuildKit's dispatch does for its outline.
    fn capture(&self, i: usize) -> Result<Capture, Diagnostic> {
        let stage = &self.graph.stages[i];
        let mut c = Capture {
            args: self.global_args.clone(),
            ..Capture::default()
        };
        // The global ARGs the FROM line reads, and those their defaults read.
        let mut from_words = vec![(stage.from.base_name.as_str(), stage.from.base_span)];
        if let Some(p) = &stage.from.platform {
            from_words.push((
                p.as_str(),
                stage.from.platform_span.unwrap_or(stage.from.span),
            ));
        }
        for (word, span) in from_words {
            let x = self
                .lexer
                .process_word_with_matches(word, &self.global)
                .map_err(|e| Diagnostic::error(e.to_string(), span))?;
            for name in &x.matched {
                self.use_global(&mut c, name, &mut BTreeSet::new());
            }
        }
        let mut scope = match stage.base {
            Base::Stage(b) => StageScope::with_env(self.graph.stages[b].env.clone()),
            _ => StageScope::default(),
        };
        for inst in &stage.instructions {
            match inst {
                Instruction::Arg(a) => {
                    for p in &a.args {
                        self.declare(&mut c, &mut scope, p, a.span)?;
                    }
                }
                Instruction::Env(e) => {
                    let before = scope.clone();
                    for kv in &e.env {
                        let key = self.expand(&kv.key, &before, e.span)?;
                        let value = self.expand(&kv.value, &before, e.span)?;
                        scope.set_env(&key, &value);
                    }
                }
                Instruction::Run(r) => {
                    for m in &r.mounts {
                        let mount = match &m.mount {
                            Some(mount) => mount.clone(),
                            None => {
                                let lexer = self.lexer;
                                let ex = |w: &str| {
                                    lexer.process_word(w, &scope).map_err(|e| e.to_string())
                                };
                                parse_mount(&m.value, Some(&ex))
                                    .map_err(|e| Diagnostic::error(e.to_string(), m.span))?
                            }
                        };
                        let lines = lines(&self.index, r.span);
                        let (list, id) = match mount.mount_type {
                            // As lowering names it: the id, else the target's file name.
                            MountType::Secret => (
                                &mut c.secrets,
                                mount.id.clone().or_else(|| {
                                    mount
                                        .target
                                        .as_deref()
                                        .and_then(|t| t.rsplit('/').next())
                                        .map(str::to_owned)
                                }),
                            ),
                            MountType::Ssh => (
                                &mut c.ssh,
                                Some(mount.id.clone().unwrap_or_else(|| "default".to_owned())),
                            ),
                            _ => continue,
                        };
                        if let Some(id) = id.filter(|id| !id.is_empty())
                            && !list.iter().any(|x| x.id == id)
                        {
                            list.push(OutlineMount {
                                id,
                                required: mount.required,
                                lines,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(c)
    }

    /// Marks a global ARG used, with every global ARG its default reads.
    fn use_global(&self, c: &mut Capture, name: &str, seen: &mut BTreeSet<String>) {
        if !seen.insert(name.to_owned()) {
            return;
        }
        c.use_name(name);
        if let Some(deps) = self.global_deps.get(name) {
            for d in deps {
                self.use_global(c, d, seen);
            }
        }
    }

    /// An ARG inside a stage: BuildKit's `dispatchArg`. One that only takes its value from
    /// the global scope keeps the global definition (and its description).
    fn declare(
        &self,
        c: &mut Capture,
        scope: &mut StageScope,
        p: &ArgPair,
        span: Span,
    ) -> Result<(), Diagnostic> {
        let from_cli = self.opts.build_args.get(&p.key);
        let inherited =
            p.value.is_none() && from_cli.is_none() && self.global.value(&p.key).is_some();
        if !inherited {
            let value = match (from_cli, &p.value) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(default)) => Some(self.expand(default, scope, span)?),
                (None, None) => None,
            };
            c.args.insert(
                p.key.clone(),
                OutlineArg {
                    name: p.key.clone(),
                    value,
                    description: p.comment.clone(),
                    lines: lines(&self.index, span),
                },
            );
        }
        c.use_name(&p.key);
        scope
            .declare_arg(&decl(p), &self.global, self.opts, &self.lexer)
            .map_err(|e| Diagnostic::error(e.to_string(), span))
    }

    fn expand(&self, word: &str, scope: &StageScope, span: Span) -> Result<String, Diagnostic> {
        self.lexer
            .process_word(word, scope)
            .map_err(|e| Diagnostic::error(e.buildkit_message(word), span))
    }
}

fn decl(p: &ArgPair) -> ArgDecl {
    ArgDecl {
        name: p.key.clone(),
        default: p.value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser;

    fn outline_of(src: &str, opts: &BuildOptions) -> Outline {
        let parsed = parser::parse(src).unwrap();
        outline(&parsed, src, opts).unwrap()
    }

    fn arg_rows(o: &Outline) -> Vec<(String, Option<String>, String, usize)> {
        o.args
            .iter()
            .map(|a| {
                (
                    a.name.clone(),
                    a.value.clone(),
                    a.description.clone(),
                    a.lines.start,
                )
            })
            .collect()
    }

    const SRC: &str = "\
# BASE the image everything starts from
ARG BASE=busybox
ARG TAG=1.36
ARG UNUSED=x
# base the shared base stage
FROM $BASE:$TAG AS base
# VERSION the version stamped into the binary
ARG VERSION=0.1
RUN --mount=type=secret,id=token,required=true --mount=type=ssh true

FROM base AS build
# GOFLAGS flags for the compiler
ARG GOFLAGS=-trimpath EXTRA
RUN --mount=type=secret,target=/run/secrets/npmrc --mount=type=ssh,id=git,required true

FROM scratch AS other
ARG OTHER=1

# release the image that ships
FROM busybox AS release
COPY --from=build /out /out
";

    #[test]
    fn targets_list_every_stage_with_base_and_description() {
        let parsed = parser::parse(SRC).unwrap();
        let t = targets(&parsed, SRC).unwrap().targets;
        let rows: Vec<_> = t
            .iter()
            .map(|t| {
                (
                    t.name.as_deref().unwrap_or("").to_owned(),
                    t.base.clone(),
                    t.description.clone(),
                    t.default,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (
                    "base".into(),
                    "$BASE:$TAG".into(),
                    "the shared base stage".into(),
                    false
                ),
                ("build".into(), "base".into(), String::new(), false),
                ("other".into(), "scratch".into(), String::new(), false),
                (
                    "release".into(),
                    "busybox".into(),
                    "the image that ships".into(),
                    true
                ),
            ]
        );
        assert_eq!(t[0].lines, Lines { start: 6, end: 6 });
    }

    #[test]
    fn json_has_buildkit_field_names_and_locations() {
        let o = outline_of(
            "FROM busybox AS app\n# V the version\nARG V=1\nRUN --mount=type=ssh,required true\n",
            &BuildOptions::default(),
        );
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({
                "name": "app",
                "args": [{"name": "V", "description": "the version", "value": "1",
                          "location": {"ranges": [{"start": {"line": 3}, "end": {"line": 3}}]}}],
                "ssh": [{"name": "default", "required": true,
                         "location": {"ranges": [{"start": {"line": 4}, "end": {"line": 4}}]}}],
            })
        );
    }

    #[test]
    fn outline_follows_the_stages_the_target_needs() {
        let o = outline_of(SRC, &BuildOptions::default());
        assert_eq!(o.name.as_deref(), Some("release"));
        assert_eq!(o.description, "the image that ships");
        assert_eq!(
            arg_rows(&o),
            [
                (
                    "BASE".into(),
                    Some("busybox".into()),
                    "the image everything starts from".into(),
                    2
                ),
                ("TAG".into(), Some("1.36".into()), String::new(), 3),
                (
                    "VERSION".into(),
                    Some("0.1".into()),
                    "the version stamped into the binary".into(),
                    8
                ),
                (
                    "GOFLAGS".into(),
                    Some("-trimpath".into()),
                    "flags for the compiler".into(),
                    13
                ),
                ("EXTRA".into(), None, String::new(), 13),
            ]
        );
        let secrets: Vec<_> = o
            .secrets
            .iter()
            .map(|m| (m.id.as_str(), m.required))
            .collect();
        assert_eq!(secrets, [("token", true), ("npmrc", false)]);
        let ssh: Vec<_> = o.ssh.iter().map(|m| (m.id.as_str(), m.required)).collect();
        assert_eq!(ssh, [("default", false), ("git", true)]);
    }

    #[test]
    fn target_and_build_args_change_the_outline() {
        let mut opts = BuildOptions {
            target: Some("base".into()),
            ..BuildOptions::default()
        };
        opts.build_args.insert("VERSION".into(), "2.0".into());
        opts.build_args.insert("TAG".into(), "latest".into());
        let o = outline_of(SRC, &opts);
        assert_eq!(o.name.as_deref(), Some("base"));
        let names: Vec<_> = o
            .args
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("BASE", Some("busybox")),
                ("TAG", Some("latest")),
                ("VERSION", Some("2.0"))
            ]
        );
        assert_eq!(o.ssh.len(), 1);
        let o = outline_of(
            SRC,
            &BuildOptions {
                target: Some("other".into()),
                ..BuildOptions::default()
            },
        );
        assert_eq!(
            arg_rows(&o),
            [("OTHER".into(), Some("1".into()), String::new(), 17)]
        );
        assert!(o.secrets.is_empty() && o.ssh.is_empty());
    }

    #[test]
    fn redeclared_global_keeps_its_global_definition_and_defaults_pull_in_deps() {
        let src = "\
# V the version
ARG V=1
ARG IMG=busybox:$V
FROM $IMG
ARG V
# LOCAL a stage arg
ARG LOCAL=${V}-x
";
        let o = outline_of(src, &BuildOptions::default());
        assert_eq!(
            arg_rows(&o),
            [
                ("V".into(), Some("1".into()), "the version".into(), 2),
                ("IMG".into(), Some("busybox:1".into()), String::new(), 3),
                ("LOCAL".into(), Some("1-x".into()), "a stage arg".into(), 7),
            ]
        );
    }

    #[test]
    fn platform_args_are_not_listed_unless_declared_globally() {
        let src = "FROM --platform=$BUILDPLATFORM busybox\nARG TARGETARCH\nRUN true\n";
        let o = outline_of(src, &BuildOptions::default());
        assert!(o.args.is_empty(), "{:?}", o.args);
        assert_eq!(o.name, None);
    }

    #[test]
    fn mounts_with_variables_are_expanded_in_the_stage_scope() {
        let src = "FROM busybox\nARG S=tok\nRUN --mount=type=secret,id=$S true\n";
        let o = outline_of(src, &BuildOptions::default());
        assert_eq!(o.secrets[0].id, "tok");
        assert_eq!(o.secrets[0].lines, Lines { start: 3, end: 3 });
    }
}
