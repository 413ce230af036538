//! Lowering: the resolved stages become `kiln-llb` ops plus the image config and history the
//! target stage produces, the way BuildKit's `dockerfile2llb` does it. Config-only steps
//! change the config and add an `empty_layer` history entry; COPY, ADD and WORKDIR add a
//! file op and RUN an exec op (one layer each).

mod add_url;
mod history;
mod paths;
mod run;

use kiln_llb::{
    CopyParams, Definition, FileAction, FileOp, Healthcheck, History, ImageConfig, Op, OpId,
    Source, SourceLocation,
};

use crate::diagnostics::Diagnostic;
use crate::instructions::{
    AddInstruction, CopyInstruction, Instruction, SourceContent, parse_instruction, parse_port_spec,
};
use crate::parser::{self, Parsed};
use crate::scope::{ArgDecl, BuildOptions, GlobalScope, Platform, StageScope};
use crate::shell::Lexer;
use crate::span::{LineIndex, Span};
use crate::stages::{Base, SourceRef, Stage, StageGraph, resolve};

/// BuildKit's history comment.
const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// The PATH a scratch image starts with (BuildKit's default for Linux).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Looks up the config of a base image; implemented by the caller over its image store, so
/// the frontend never touches storage itself.
pub trait BaseImages {
    /// The config of the image `source` names (an [`Source::Image`] or [`Source::OciLayout`]).
    fn config(&self, source: &Source) -> Result<ImageConfig, BaseImageError>;
}

/// Why a base image's config could not be had: the caller's own error, kept whole.
pub type BaseImageError = Box<dyn std::error::Error + Send + Sync>;

/// What lowering needs besides the Dockerfile.
#[derive(Debug, Clone)]
pub struct LowerOptions<'a> {
    /// Build args, platforms and `--target`.
    pub build: &'a BuildOptions,
    /// The Dockerfile's display name, for source locations.
    pub file: &'a str,
    /// RFC 3339 time stamped on the config and new history entries (`SOURCE_DATE_EPOCH` or
    /// now); `None` leaves them out.
    pub created: Option<String>,
    /// Names given with `--build-context NAME=DIR`: in FROM and `--from` they mean that
    /// local directory, not an image.
    pub named_contexts: &'a [String],
    /// Names given with `--build-context NAME=oci-layout://…` (or another image
    /// reference): in FROM and `--from` they stand for that reference.
    pub context_aliases: &'a [(String, String)],
}

/// The lowered build.
#[derive(Debug, Clone)]
pub struct Lowered {
    /// All ops of the stages the target needs.
    pub definition: Definition,
    /// The op whose state is the target stage's filesystem.
    pub target: OpId,
    /// The target's image config; `rootfs.diff_ids` holds the base image's layers only, the
    /// solver fills in the rest.
    pub config: ImageConfig,
    /// The stage graph it came from.
    pub graph: StageGraph,
}

/// Lowers `parsed` for `opts`, asking `images` for base image configs.
pub fn lower(
    parsed: &Parsed,
    src: &str,
    opts: &LowerOptions<'_>,
    images: &dyn BaseImages,
) -> Result<Lowered, Diagnostic> {
    let graph = resolve(parsed, src, opts.build)?;
    let lexer = Lexer::new(parsed.escape);
    let decls: Vec<ArgDecl> = graph
        .global_args
        .iter()
        .flat_map(|a| &a.args)
        .map(|p| ArgDecl {
            name: p.key.clone(),
            default: p.value.clone(),
        })
        .collect();
    let last_stage = graph.stages.last().and_then(|s| s.name.as_deref());
    let global = GlobalScope::new(&decls, opts.build, &lexer, last_stage)
        .map_err(|(_, e)| Diagnostic::error(e.to_string(), Span::default()))?;
    let mut cx = Lowering {
        def: Definition::default(),
        lexer,
        opts,
        images,
        global,
        index: LineIndex::new(src),
        outs: vec![None; graph.stages.len()],
        stage: String::new(),
        stages: graph.stages.clone(),
        in_progress: vec![false; graph.stages.len()],
    };
    for &i in &graph.order {
        cx.ensure_stage(i, Span::default())?;
    }
    let (target, mut config) = cx.outs[graph.target]
        .clone()
        .ok_or_else(|| Diagnostic::error("internal: target stage not lowered", Span::default()))?;
    config.created = opts.created.clone();
    if opts.build.explicit_platform {
        // BuildKit's rule: an explicit target platform names the image; the variant follows
        // it when it has one or when os/arch change.
        let target = &opts.build.target_platform;
        let same = config.os == target.os && config.architecture == target.architecture;
        config.os = target.os.clone();
        config.architecture = target.architecture.clone();
        if !target.variant.is_empty() || !same {
            config.variant = target.variant.clone();
        }
    }
    Ok(Lowered {
        definition: cx.def,
        target,
        config,
        graph,
    })
}

struct Lowering<'a> {
    def: Definition,
    lexer: Lexer,
    opts: &'a LowerOptions<'a>,
    images: &'a dyn BaseImages,
    global: GlobalScope,
    index: LineIndex<'a>,
    outs: Vec<Option<(OpId, ImageConfig)>>,
    /// The `AS` name of the stage being lowered, recorded in every op's location.
    stage: String,
    /// Every stage of the Dockerfile: an ONBUILD trigger may name one the target's graph
    /// did not need.
    stages: Vec<Stage>,
    /// Stages being lowered, to refuse a trigger that leads back into one.
    in_progress: Vec<bool>,
}

/// The state of the stage being lowered.
struct StageState {
    op: OpId,
    config: ImageConfig,
    scope: StageScope,
    name: String,
    step: usize,
    steps: usize,
    platform: Platform,
    /// A CMD was written in this stage (an ENTRYPOINT then keeps it).
    cmd_set: bool,
}

fn empty_image(p: &Platform) -> ImageConfig {
    let mut c = ImageConfig {
        architecture: p.architecture.clone(),
        os: p.os.clone(),
        variant: p.variant.clone(),
        ..ImageConfig::default()
    };
    c.set_env("PATH", DEFAULT_PATH);
    c
}

fn env_pairs(config: &ImageConfig) -> Vec<(String, String)> {
    config
        .config
        .env
        .iter()
        .map(|e| {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

impl StageState {
    /// The ENV value of `key` in this stage, which shadows an ARG of the same name.
    fn scope_env_value(&self, key: &str) -> Option<String> {
        self.scope
            .env()
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }
}

impl<'a> Lowering<'a> {
    fn location(&self, name: String, span: Span) -> SourceLocation {
        SourceLocation {
            name,
            file: self.opts.file.to_owned(),
            line: self.index.line_col(span.start).line,
            span: (span.start, span.end),
            stage: self.stage.clone(),
        }
    }

    /// Whether `--build-context` gave `name`.
    fn is_named_context(&self, name: &str) -> bool {
        self.opts.named_contexts.iter().any(|n| n == name)
            || self.opts.context_aliases.iter().any(|(n, _)| n == name)
    }

    /// The source a FROM or `--from` reference names: a named build context, an OCI layout,
    /// or an image.
    fn source_for(&self, reference: &str, platform: &Platform) -> Source {
        let reference = self
            .opts
            .context_aliases
            .iter()
            .find(|(name, _)| name == reference)
            .map_or(reference, |(_, target)| target.as_str());
        if self.opts.named_contexts.iter().any(|n| n == reference) {
            return Source::Local {
                name: reference.to_owned(),
            };
        }
        // `--build-context base=docker-image://scratch` (testNamedImageContextScratch).
        if reference.eq_ignore_ascii_case("scratch") {
            return Source::Scratch;
        }
        if let Some(rest) = reference.strip_prefix("oci-layout://") {
            let (path, selector) = split_layout_selector(rest);
            return Source::OciLayout {
                path: path.to_owned(),
                selector: selector.map(str::to_owned),
                platform: platform.clone(),
            };
        }
        Source::Image {
            reference: reference.to_owned(),
            platform: platform.clone(),
        }
    }

    /// Lowers stage `i` unless it already is; `span` is what asked for it.
    fn ensure_stage(&mut self, i: usize, span: Span) -> Result<(), Diagnostic> {
        if self.outs[i].is_some() {
            return Ok(());
        }
        if self.in_progress[i] {
            return Err(Diagnostic::error(
                format!(
                    "circular dependency detected on stage: {}",
                    self.stages[i].display_name()
                ),
                span,
            ));
        }
        self.in_progress[i] = true;
        let outer = std::mem::take(&mut self.stage);
        let stage = self.stages[i].clone();
        let out = self.stage(&stage);
        self.stage = outer;
        self.in_progress[i] = false;
        self.outs[i] = Some(out?);
        Ok(())
    }

    /// The sources of an ONBUILD trigger: `COPY --from=NAME` means this Dockerfile's stage
    /// of that name when there is one (BuildKit resolves triggers against the Dockerfile
    /// that builds FROM the image), else an image.
    fn trigger_sources(
        &mut self,
        inst: &Instruction,
        span: Span,
    ) -> Result<Vec<SourceRef>, Diagnostic> {
        let Instruction::Copy(c) = inst else {
            return Ok(Vec::new());
        };
        let Some(from) = &c.from else {
            return Ok(Vec::new());
        };
        let lower = from.to_lowercase();
        let stage = self
            .stages
            .iter()
            .rposition(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| {
                from.parse::<usize>()
                    .ok()
                    .filter(|&i| i < self.stages.len())
            });
        match stage {
            Some(i) => {
                self.ensure_stage(i, span)?;
                Ok(vec![SourceRef::Stage(i)])
            }
            None => Ok(vec![SourceRef::Image(from.clone())]),
        }
    }

    fn stage(&mut self, stage: &Stage) -> Result<(OpId, ImageConfig), Diagnostic> {
        // A build context named like a stage replaces the stage: none of its instructions
        // run (BuildKit's buildDispatchStates gives it the named context's state).
        let replaced;
        let stage = match &stage.name {
            Some(name) if self.is_named_context(name) => {
                replaced = Stage {
                    base: Base::Image(name.clone()),
                    instructions: Vec::new(),
                    sources: Vec::new(),
                    ..stage.clone()
                };
                &replaced
            }
            _ => stage,
        };
        self.stage = stage.name.clone().unwrap_or_default();
        let platform = match &stage.platform {
            Some(p) => Platform::parse(p).map_err(|e| {
                Diagnostic::error(e, stage.from.platform_span.unwrap_or(stage.from.span))
            })?,
            None => self.opts.build.target_platform.clone(),
        };
        let mut name = match &stage.name {
            Some(n) => n.clone(),
            None => format!("stage-{}", stage.index),
        };
        if self.opts.build.platform_in_names {
            // BuildKit's names in a multi-platform build: `[linux/arm64 build 2/4]`, and a
            // stage on another platform than the target `[linux/amd64->arm64 build 2/4]`.
            let target = &self.opts.build.target_platform;
            name = if platform == *target {
                format!("{target} {name}")
            } else {
                let arch = target.to_string();
                let arch = arch
                    .strip_prefix(&format!("{}/", target.os))
                    .unwrap_or(&arch);
                format!("{platform}->{arch} {name}")
            };
        }
        let label = format!("[{name} 1/{}] FROM", stage.instructions.len() + 1);
        let (op, mut config, triggers) = match &stage.base {
            Base::Scratch => {
                let op = self.def.push(
                    Op::Source(Source::Scratch),
                    self.location(format!("{label} scratch"), stage.from.span),
                );
                (op, empty_image(&platform), Vec::new())
            }
            Base::Stage(j) => {
                let (op, mut config) = self.outs[*j].clone().ok_or_else(|| {
                    Diagnostic::error("internal: base stage not lowered", stage.from.span)
                })?;
                // A stage's ONBUILD fires in the stages built FROM it, as an image's does.
                let triggers = std::mem::take(&mut config.config.on_build);
                (op, config, triggers)
            }
            Base::Image(reference) => {
                let source = self.source_for(reference, &platform);
                let mut config = match &source {
                    Source::Local { .. } | Source::Scratch => empty_image(&platform),
                    _ => self.images.config(&source).map_err(|e| {
                        Diagnostic::error(
                            format!("failed to resolve base image {reference}: {e}"),
                            stage.from.base_span,
                        )
                    })?,
                };
                let triggers = std::mem::take(&mut config.config.on_build);
                let op = self.def.push(
                    Op::Source(source),
                    self.location(format!("{label} {reference}"), stage.from.span),
                );
                (op, config, triggers)
            }
        };
        // BuildKit: PATH is always set, appended to the base's Env when it has none.
        if config.env_value("PATH").is_none() {
            config.set_env("PATH", DEFAULT_PATH);
        }
        let mut st = StageState {
            op,
            scope: StageScope::with_env(env_pairs(&config)),
            config,
            name,
            step: 1,
            steps: stage.instructions.len() + triggers.len() + 1,
            platform,
            cmd_set: false,
        };
        // ONBUILD triggers of the base image run first, as if written right after FROM.
        for trigger in &triggers {
            let inst = parse_trigger(trigger, stage.from.span)?;
            let refs = self.trigger_sources(&inst, stage.from.span)?;
            self.instruction(&mut st, &inst, &refs)?;
        }
        for (k, inst) in stage.instructions.iter().enumerate() {
            let refs = stage.sources.get(k).cloned().unwrap_or_default();
            self.instruction(&mut st, inst, &refs)?;
        }
        Ok((st.op, st.config))
    }

    fn expand(&self, word: &str, scope: &StageScope, span: Span) -> Result<String, Diagnostic> {
        self.lexer
            .process_word(word, scope)
            .map_err(|e| Diagnostic::error(e.buildkit_message(word), span))
    }

    fn history(&self, st: &mut StageState, created_by: String, layer: bool) {
        st.config.history.push(History {
            created: self.opts.created.clone(),
            created_by,
            comment: HISTORY_COMMENT.to_owned(),
            empty_layer: !layer,
            ..History::default()
        });
    }

    fn step_name(&self, st: &mut StageState, text: &str) -> String {
        st.step += 1;
        format!("[{} {}/{}] {text}", st.name, st.step, st.steps)
    }

    fn instruction(
        &mut self,
        st: &mut StageState,
        inst: &Instruction,
        refs: &[SourceRef],
    ) -> Result<(), Diagnostic> {
        match inst {
            Instruction::From(f) => {
                return Err(Diagnostic::error("FROM inside a stage", f.span));
            }
            Instruction::Run(r) => self.run(st, r, refs)?,
            Instruction::Env(e) => {
                let before = st.scope.clone();
                let mut msg = String::from("ENV");
                for kv in &e.env {
                    let key = self.expand(&kv.key, &before, e.span)?;
                    let value = self.expand(&kv.value, &before, e.span)?;
                    st.scope.set_env(&key, &value);
                    st.config.set_env(&key, &value);
                    msg.push_str(&format!(" {key}={value}"));
                }
                self.history(st, msg, false);
            }
            Instruction::Arg(a) => {
                let mut parts = Vec::new();
                for p in &a.args {
                    let decl = ArgDecl {
                        name: p.key.clone(),
                        default: p.value.clone(),
                    };
                    st.scope
                        .declare_arg(&decl, &self.global, self.opts.build, &self.lexer)
                        .map_err(|e| Diagnostic::error(e.to_string(), a.span))?;
                    let value = st
                        .scope
                        .args()
                        .iter()
                        .rev()
                        .find(|(k, _)| *k == p.key)
                        .and_then(|(_, v)| v.clone());
                    parts.push(match value {
                        Some(v) => format!("{}={v}", p.key),
                        None => p.key.clone(),
                    });
                }
                self.history(st, format!("ARG {}", parts.join(" ")), false);
            }
            Instruction::Label(l) => {
                let mut msg = String::from("LABEL");
                for kv in &l.labels {
                    let key = self.expand(&kv.key, &st.scope, l.span)?;
                    let value = self.expand(&kv.value, &st.scope, l.span)?;
                    msg.push_str(&format!(" {key}={value}"));
                    st.config.config.labels.insert(key, value);
                }
                self.history(st, msg, false);
            }
            Instruction::Maintainer(m) => {
                st.config.author = m.maintainer.clone();
                self.history(st, format!("MAINTAINER {}", m.maintainer), false);
            }
            Instruction::Workdir(w) => {
                let path = self.expand(&w.path, &st.scope, w.span)?;
                let wd = paths::workdir(&st.config.config.working_dir, &path);
                st.config.config.working_dir = wd.clone();
                let layer = wd != "/";
                if layer {
                    let chown =
                        (!st.config.config.user.is_empty()).then(|| st.config.config.user.clone());
                    let name = self.step_name(st, &format!("WORKDIR {wd}"));
                    st.op = self.def.push(
                        Op::File(FileOp {
                            base: st.op,
                            // The file op cleans its path (llb's normalizePath).
                            actions: vec![FileAction::Mkdir {
                                path: paths::clean(&wd),
                                chown,
                            }],
                        }),
                        self.location(name, w.span),
                    );
                }
                self.history(st, format!("WORKDIR {wd}"), layer);
            }
            Instruction::User(u) => {
                let user = self.expand(&u.user, &st.scope, u.span)?;
                st.config.config.user = user.clone();
                self.history(st, format!("USER {user}"), false);
            }
            Instruction::Expose(e) => {
                let mut ports = Vec::new();
                for p in &e.ports {
                    let words = self
                        .lexer
                        .process_words(p, &st.scope)
                        .map_err(|err| Diagnostic::error(err.buildkit_message(p), e.span))?;
                    for w in words {
                        ports.extend(
                            parse_port_spec(&w).map_err(|msg| Diagnostic::error(msg, e.span))?,
                        );
                    }
                }
                for p in &ports {
                    st.config
                        .config
                        .exposed_ports
                        .insert(p.clone(), Default::default());
                }
                self.history(
                    st,
                    format!("EXPOSE {}", history::port_map(ports.iter())),
                    false,
                );
            }
            Instruction::Volume(v) => {
                let mut vols = Vec::new();
                for raw in &v.volumes {
                    let vol = self.expand(raw, &st.scope, v.span)?;
                    if vol.is_empty() {
                        return Err(Diagnostic::error(
                            "VOLUME specified can not be an empty string",
                            v.span,
                        ));
                    }
                    st.config
                        .config
                        .volumes
                        .insert(vol.clone(), Default::default());
                    vols.push(vol);
                }
                self.history(st, format!("VOLUME {}", history::plain_list(&vols)), false);
            }
            Instruction::StopSignal(s) => {
                let sig = self.expand(&s.signal, &st.scope, s.span)?;
                check_signal(&sig).map_err(|m| Diagnostic::error(m, s.span))?;
                st.config.config.stop_signal = sig.clone();
                self.history(st, format!("STOPSIGNAL {sig}"), false);
            }
            Instruction::Shell(s) => {
                st.config.config.shell = s.shell.clone();
                self.history(
                    st,
                    format!("SHELL {}", history::plain_list(&s.shell)),
                    false,
                );
            }
            Instruction::Cmd(c) => {
                let args = with_shell(&st.config, &c.command.cmd_line, c.command.prepend_shell);
                st.config.config.cmd = Some(args.clone());
                st.config.config.args_escaped = true;
                st.cmd_set = true;
                self.history(st, format!("CMD {}", history::quoted_list(&args)), false);
            }
            Instruction::Entrypoint(e) => {
                let args = with_shell(&st.config, &e.command.cmd_line, e.command.prepend_shell);
                st.config.config.entrypoint = Some(args.clone());
                // ENTRYPOINT resets a CMD inherited from the base; a CMD written earlier in
                // this stage is kept, as BuildKit does.
                if !st.cmd_set {
                    st.config.config.cmd = None;
                }
                self.history(
                    st,
                    format!("ENTRYPOINT {}", history::quoted_list(&args)),
                    false,
                );
            }
            Instruction::Healthcheck(h) => {
                let hc = Healthcheck {
                    test: h.health.test.clone(),
                    interval: h.health.interval,
                    timeout: h.health.timeout,
                    start_period: h.health.start_period,
                    start_interval: h.health.start_interval,
                    retries: h.health.retries,
                };
                let msg = format!(
                    "HEALTHCHECK &{{{} \"{}\" \"{}\" \"{}\" \"{}\" {}}}",
                    history::quoted_list(&hc.test),
                    history::go_duration(hc.interval),
                    history::go_duration(hc.timeout),
                    history::go_duration(hc.start_period),
                    history::go_duration(hc.start_interval),
                    history::go_quote_rune(hc.retries),
                );
                st.config.config.healthcheck = Some(hc);
                self.history(st, msg, false);
            }
            Instruction::Onbuild(o) => {
                st.config.config.on_build.push(o.expression.clone());
            }
            Instruction::Copy(c) => self.copy(st, &CopyLike::from_copy(c), refs)?,
            Instruction::Add(a) => self.copy(st, &CopyLike::from_add(a), refs)?,
        }
        Ok(())
    }

    fn copy(
        &mut self,
        st: &mut StageState,
        c: &CopyLike<'_>,
        refs: &[SourceRef],
    ) -> Result<(), Diagnostic> {
        let scope = st.scope.clone();
        let ex = |w: &str| self.expand(w, &scope, c.span);
        let dest_raw = ex(c.dest)?;
        let dest = paths::dest(&st.config.config.working_dir, &dest_raw);
        let chown = c.chown.map(&ex).transpose()?;
        let chmod = c.chmod.map(&ex).transpose()?;
        let mut sources = Vec::new();
        for s in c.sources {
            let s = ex(s)?;
            if add_url::is_http_url(&s) {
                if c.keyword != "ADD" {
                    return Err(Diagnostic::error("source can't be a URL for COPY", c.span)
                        .with_hint("ADD downloads a URL; COPY only reads local files"));
                }
            } else if s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@")
            {
                return Err(Diagnostic::error(
                    format!(
                        "{} from a URL or git repository is not supported yet: {s}",
                        c.keyword
                    ),
                    c.span,
                )
                .with_hint(
                    "download the file into the build context and ADD or COPY it from there",
                ));
            }
            sources.push(s);
        }
        let checksum = c.checksum.map(&ex).transpose()?.filter(|s| !s.is_empty());
        if let Some(sum) = &checksum {
            let [only] = sources.as_slice() else {
                return Err(Diagnostic::error(
                    "checksum can't be specified for multiple sources",
                    c.span,
                ));
            };
            if !add_url::is_http_url(only) {
                return Err(Diagnostic::error(
                    "checksum can't be specified for non-HTTP(S) sources",
                    c.span,
                ));
            }
            add_url::check_checksum(sum, c.span)?;
        }
        let excludes = c
            .excludes
            .iter()
            .map(|e| ex(e))
            .collect::<Result<Vec<_>, _>>()?;
        let urls = sources.iter().filter(|s| add_url::is_http_url(s)).count();
        let source_op = match refs.first() {
            // Only URLs: nothing is read from the context.
            _ if urls > 0 && urls == sources.len() => None,
            Some(SourceRef::Stage(j)) => {
                Some(self.outs[*j].as_ref().map(|(op, _)| *op).ok_or_else(|| {
                    Diagnostic::error("internal: source stage not lowered", c.span)
                })?)
            }
            Some(SourceRef::Image(r)) => {
                let source = self.source_for(r, &st.platform);
                Some(self.def.push(
                    Op::Source(source),
                    self.location(format!("{} --from={r}", c.keyword), c.span),
                ))
            }
            None => Some(self.def.push(
                Op::Source(Source::Local {
                    name: "context".to_owned(),
                }),
                self.location("[internal] load build context".to_owned(), c.span),
            )),
        };
        let local_copy = |sources: Vec<String>| {
            source_op.map(|source| FileAction::Copy {
                source,
                params: CopyParams {
                    sources,
                    dest: dest.clone(),
                    chown: chown.clone(),
                    chmod: chmod.clone(),
                    parents: c.parents,
                    excludes: excludes.clone(),
                    unpack_archives: c.keyword == "ADD" && c.unpack.unwrap_or(true),
                    link: c.link,
                },
            })
        };
        let name = self.step_name(st, &c.display(&sources, &dest_raw, refs));
        let url_copy = add_url::UrlCopy {
            name: &name,
            dest: &dest,
            chown: chown.as_deref(),
            chmod: chmod.as_deref(),
            checksum: checksum.as_deref(),
            unpack: c.unpack,
            link: c.link,
            span: c.span,
        };
        // Sources are copied in order, as BuildKit chains one copy per source; runs of local
        // sources stay one copy, so wildcards and the several-sources rule see them together.
        let mut actions = Vec::new();
        let mut locals = Vec::new();
        for s in &sources {
            if add_url::is_http_url(s) {
                if !locals.is_empty() {
                    actions.extend(local_copy(std::mem::take(&mut locals)));
                }
                actions.push(self.url_copy(s, &url_copy));
            } else {
                locals.push(s.clone());
            }
        }
        if !locals.is_empty() {
            actions.extend(local_copy(locals));
        }
        for content in c.contents {
            let data = if content.expand {
                let mut raw = self.lexer;
                raw.skip_process_quotes = true;
                raw.process_word(&content.data, &st.scope)
                    .map_err(|e| Diagnostic::error(e.buildkit_message(&content.data), c.span))?
            } else {
                content.data.clone()
            };
            actions.push(FileAction::Mkfile {
                dest: dest.clone(),
                name: content.path.clone(),
                data: data.into_bytes(),
                chown: chown.clone(),
                chmod: chmod.clone(),
            });
        }
        let mut msg = c.keyword.to_owned();
        if c.parents {
            msg.push_str(" --parents");
        }
        if let Some(o) = &chown {
            msg.push_str(&format!(" --chown={o}"));
        }
        if let Some(m) = &chmod {
            msg.push_str(&format!(" --chmod={m}"));
        }
        for s in &sources {
            msg.push_str(&format!(" {s}"));
        }
        for content in c.contents {
            msg.push_str(&format!(" <<{}", content.path));
        }
        msg.push_str(&format!(" {dest_raw}"));
        st.op = self.def.push(
            Op::File(FileOp {
                base: st.op,
                actions,
            }),
            self.location(name, c.span),
        );
        self.history(st, format!("{msg} # buildkit"), true);
        Ok(())
    }
}

/// COPY and ADD seen through the fields they share.
struct CopyLike<'a> {
    keyword: &'static str,
    sources: &'a [String],
    contents: &'a [SourceContent],
    dest: &'a str,
    chown: Option<&'a str>,
    chmod: Option<&'a str>,
    parents: bool,
    excludes: &'a [String],
    link: bool,
    unpack: Option<bool>,
    checksum: Option<&'a str>,
    from: Option<&'a str>,
    span: Span,
}

impl<'a> CopyLike<'a> {
    fn from_copy(c: &'a CopyInstruction) -> Self {
        CopyLike {
            keyword: "COPY",
            sources: &c.sources,
            contents: &c.contents,
            dest: &c.dest,
            chown: c.chown.as_deref(),
            chmod: c.chmod.as_deref(),
            parents: c.parents,
            excludes: &c.excludes,
            link: c.link,
            unpack: None,
            checksum: None,
            from: c.from.as_deref(),
            span: c.span,
        }
    }

    fn from_add(a: &'a AddInstruction) -> Self {
        CopyLike {
            keyword: "ADD",
            sources: &a.sources,
            contents: &a.contents,
            dest: &a.dest,
            chown: a.chown.as_deref(),
            chmod: a.chmod.as_deref(),
            parents: false,
            excludes: &a.excludes,
            link: a.link,
            unpack: a.unpack,
            checksum: a.checksum.as_deref(),
            from: None,
            span: a.span,
        }
    }

    /// The progress name: `COPY --from=builder /out /app`.
    fn display(&self, sources: &[String], dest: &str, refs: &[SourceRef]) -> String {
        let mut s = self.keyword.to_owned();
        if let (Some(f), Some(_)) = (self.from, refs.first()) {
            s.push_str(&format!(" --from={f}"));
        }
        for src in sources {
            s.push(' ');
            s.push_str(src);
        }
        for c in self.contents {
            s.push_str(&format!(" <<{}", c.path));
        }
        s.push(' ');
        s.push_str(dest);
        s
    }
}

/// Shell form runs through SHELL (default `/bin/sh -c`), the words joined by spaces.
fn with_shell(config: &ImageConfig, cmd: &[String], prepend: bool) -> Vec<String> {
    if !prepend {
        return cmd.to_vec();
    }
    let mut args = if config.config.shell.is_empty() {
        vec!["/bin/sh".to_owned(), "-c".to_owned()]
    } else {
        config.config.shell.clone()
    };
    args.push(cmd.join(" "));
    args
}

/// Accepts what Docker's `signal.ParseSignal` accepts: a number or a known name.
fn check_signal(sig: &str) -> Result<(), String> {
    const NAMES: [&str; 31] = [
        "ABRT", "ALRM", "BUS", "CHLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
        "PIPE", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
        "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU",
    ];
    if let Ok(n) = sig.parse::<u32>() {
        return if n == 0 {
            Err(format!("Invalid signal: {sig}"))
        } else {
            Ok(())
        };
    }
    let name = sig.strip_prefix("SIG").unwrap_or(sig);
    let rt = name
        .strip_prefix("RTMIN")
        .or_else(|| name.strip_prefix("RTMAX"))
        .is_some_and(|r| r.is_empty() || r.trim_start_matches(['+', '-']).parse::<u32>().is_ok());
    if NAMES.contains(&name) || name == "XFSZ" || rt {
        Ok(())
    } else {
        Err(format!("Invalid signal: {sig}"))
    }
}

fn split_layout_selector(rest: &str) -> (&str, Option<&str>) {
    if let Some((path, digest)) = rest.rsplit_once('@') {
        return (path, Some(digest));
    }
    // A tag follows the last ':' after the last '/'.
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
        None => (rest, None),
    }
}

fn parse_trigger(trigger: &str, span: Span) -> Result<Instruction, Diagnostic> {
    let located = |d: Diagnostic| {
        Diagnostic::error(
            format!(
                "ONBUILD trigger {trigger:?} of the base image: {}",
                d.message
            ),
            span,
        )
    };
    let parsed = parser::parse(trigger).map_err(located)?;
    let [node] = parsed.nodes.as_slice() else {
        return Err(Diagnostic::error(
            "onbuild trigger should be a single expression",
            span,
        ));
    };
    parse_instruction(node, trigger).map_err(located)
}

#[cfg(test)]
mod tests;
