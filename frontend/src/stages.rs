//! The stage graph: instructions grouped into stages, global ARGs evaluated, FROM lines and
//! stage references (`FROM <stage>`, `COPY --from`, `RUN --mount from=`) resolved, ENV/ARG
//! scope tracked through every stage, `--target` selection and the order stages must run in.
//! Unknown targets and stage indexes, references to stages not yet defined and cycles are errors;
//! a name used twice means its last stage, as in BuildKit.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::diagnostics::Diagnostic;
use crate::instructions::{
    ArgInstruction, FromInstruction, Instruction, parse_instruction, parse_mount, parse_port_spec,
};
use crate::parser::Parsed;
use crate::scope::{ArgDecl, BuildOptions, GlobalScope, StageScope};
use crate::shell::Lexer;
use crate::span::Span;

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Base {
    /// `FROM scratch`: an empty filesystem.
    Scratch,
    /// An earlier stage of this Dockerfile.
    Stage(usize),
    /// An image reference (or named build context), expanded.
    Image(String),
}

/// Where a `COPY --from` or `RUN --mount from=` takes its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceRef {
    /// Another stage.
    Stage(usize),
    /// An image reference or named build context.
    Image(String),
}

/// One stage with its resolved base, references and scope.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    /// Position in the Dockerfile, from 0.
    pub index: usize,
    /// The `AS` name, lowercased.
    pub name: Option<String>,
    /// The `# name description` comment above FROM.
    pub description: String,
    /// The FROM instruction as written.
    pub from: FromInstruction,
    /// What it starts from.
    pub base: Base,
    /// `--platform`, expanded.
    pub platform: Option<String>,
    /// The instructions after FROM.
    pub instructions: Vec<Instruction>,
    /// Per instruction, the stage it reads from through `--from` (None for the rest).
    pub sources: Vec<Vec<SourceRef>>,
    /// The ARGs declared in this stage with their values.
    pub args: Vec<(String, Option<String>)>,
    /// The ENV in force at the end of the stage (inherited from a base stage).
    pub env: Vec<(String, String)>,
    /// Stages this one needs: its base stage and every stage it copies or mounts from.
    pub deps: BTreeSet<usize>,
}

impl Stage {
    /// The name used in messages: the `AS` name, or the index.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.index.to_string())
    }
}

/// A Dockerfile resolved for one set of build options.
#[derive(Debug, Clone, Serialize)]
pub struct StageGraph {
    /// The global ARGs (before the first FROM) as declared.
    pub global_args: Vec<ArgInstruction>,
    /// Every stage, in order.
    pub stages: Vec<Stage>,
    /// The stage `--target` selects (the last one by default).
    pub target: usize,
    /// The stages the target needs, dependencies first, the target last.
    pub order: Vec<usize>,
    /// The global ARGs' values for this build (defaults expanded, `--build-arg` applied).
    #[serde(skip)]
    pub global_values: Vec<(String, Option<String>)>,
}

impl StageGraph {
    /// The value of global ARG `name` for this build, if it has one.
    pub fn global_value(&self, name: &str) -> Option<&str> {
        self.global_values
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Where global ARG `name` is declared.
    pub fn global_span(&self, name: &str) -> Option<Span> {
        self.global_args
            .iter()
            .rev()
            .find(|a| a.args.iter().any(|p| p.key == name))
            .map(|a| a.span)
    }
}

/// Types every instruction of `parsed`, groups them into stages and resolves them.
pub fn resolve(parsed: &Parsed, src: &str, opts: &BuildOptions) -> Result<StageGraph, Diagnostic> {
    let typed = parsed
        .nodes
        .iter()
        .map(|n| parse_instruction(n, src))
        .collect::<Result<Vec<_>, _>>()?;
    resolve_typed(typed, parsed, opts)
}

/// Groups already typed instructions (those of `parsed`, in order) into stages and
/// resolves them under `opts`.
pub fn resolve_typed(
    typed: Vec<Instruction>,
    parsed: &Parsed,
    opts: &BuildOptions,
) -> Result<StageGraph, Diagnostic> {
    let lexer = Lexer::new(parsed.escape);
    let mut global_args = Vec::new();
    let mut raw: Vec<(FromInstruction, Vec<Instruction>)> = Vec::new();
    for inst in typed {
        match (inst, raw.last_mut()) {
            (Instruction::From(f), _) => raw.push((f, Vec::new())),
            (Instruction::Arg(a), None) => global_args.push(a),
            (other, Some((_, body))) => body.push(other),
            (other, None) => {
                return Err(
                    Diagnostic::error("no build stage in current context", other.span())
                        .with_hint("start the Dockerfile with FROM (only ARG may come before it)"),
                );
            }
        }
    }
    if raw.is_empty() {
        let span = parsed.nodes.first().map(|n| n.span).unwrap_or_default();
        return Err(Diagnostic::error("no build stage in current context", span)
            .with_hint("add a FROM instruction"));
    }
    let decls: Vec<(ArgDecl, Span)> = global_args
        .iter()
        .flat_map(|a| {
            a.args.iter().map(|p| {
                (
                    ArgDecl {
                        name: p.key.clone(),
                        default: p.value.clone(),
                    },
                    a.span,
                )
            })
        })
        .collect();
    let only: Vec<ArgDecl> = decls.iter().map(|(d, _)| d.clone()).collect();
    let last_stage = raw.last().and_then(|(f, _)| f.name.as_deref());
    let global = GlobalScope::new(&only, opts, &lexer, last_stage).map_err(|(i, e)| {
        Diagnostic::error(e.to_string(), decls.get(i).map(|d| d.1).unwrap_or_default())
    })?;

    let names: Vec<Option<String>> = raw.iter().map(|(f, _)| f.name.clone()).collect();
    let mut stages: Vec<Stage> = Vec::with_capacity(raw.len());
    for (index, (from, instructions)) in raw.into_iter().enumerate() {
        let stage = resolve_stage(
            index,
            from,
            instructions,
            &names,
            &stages,
            &global,
            opts,
            &lexer,
        )?;
        stages.push(stage);
    }
    let target = select_target(&stages, opts.target.as_deref())?;
    let order = build_order(&stages, target);
    let global_values = only
        .iter()
        .map(|d| (d.name.clone(), global.value(&d.name).map(str::to_owned)))
        .collect();
    Ok(StageGraph {
        global_args,
        stages,
        target,
        order,
        global_values,
    })
}

/// Finds a stage by name (case-insensitive) or index. A name used twice means its last
/// stage: BuildKit only warns about duplicates (the DuplicateStageName check) and its
/// name map keeps the stage added last.
fn find_stage(names: &[Option<String>], reference: &str) -> Option<usize> {
    let lower = reference.to_lowercase();
    if let Some(i) = names
        .iter()
        .rposition(|n| n.as_deref() == Some(lower.as_str()))
    {
        return Some(i);
    }
    reference.parse::<usize>().ok().filter(|&i| i < names.len())
}

#[allow(clippy::too_many_arguments)] // the scopes a stage is resolved in, each needed
fn resolve_stage(
    index: usize,
    from: FromInstruction,
    instructions: Vec<Instruction>,
    names: &[Option<String>],
    earlier: &[Stage],
    global: &GlobalScope,
    opts: &BuildOptions,
    lexer: &Lexer,
) -> Result<Stage, Diagnostic> {
    let expand_global = |word: &str, span: Span| {
        lexer
            .process_word(word, global)
            .map_err(|e| Diagnostic::error(e.to_string(), span))
    };
    let base_name = expand_global(&from.base_name, from.base_span)?;
    if base_name.is_empty() {
        return Err(Diagnostic::error(
            format!("base name ({}) should not be blank", from.base_name),
            from.base_span,
        )
        .with_hint("set the ARG it uses, with a default or --build-arg"));
    }
    let platform = match (&from.platform, from.platform_span) {
        (Some(p), span) => Some(expand_global(p, span.unwrap_or(from.span))?),
        (None, _) => None,
    };
    let mut deps = BTreeSet::new();
    // FROM only sees stages defined before it; a later stage's name is an image reference.
    let base = match earlier
        .iter()
        .rposition(|s| s.name.as_deref() == Some(base_name.to_lowercase().as_str()))
    {
        Some(i) => {
            deps.insert(i);
            Base::Stage(i)
        }
        None if base_name.eq_ignore_ascii_case("scratch") => Base::Scratch,
        None => Base::Image(base_name),
    };
    let mut scope = match &base {
        Base::Stage(i) => StageScope::with_env(earlier[*i].env.clone()),
        _ => StageScope::default(),
    };
    let mut sources = Vec::with_capacity(instructions.len());
    for inst in &instructions {
        let mut refs = Vec::new();
        let expand = |word: &str, span: Span, scope: &StageScope| {
            lexer
                .process_word(word, scope)
                .map_err(|e| Diagnostic::error(e.to_string(), span))
        };
        match inst {
            Instruction::Arg(a) => {
                for p in &a.args {
                    let decl = ArgDecl {
                        name: p.key.clone(),
                        default: p.value.clone(),
                    };
                    scope
                        .declare_arg(&decl, global, opts, lexer)
                        .map_err(|e| Diagnostic::error(e.to_string(), a.span))?;
                }
            }
            Instruction::Env(e) => {
                // Every value on one ENV line is expanded with the scope before the line.
                let before = scope.clone();
                for kv in &e.env {
                    let key = expand(&kv.key, e.span, &before)?;
                    let value = expand(&kv.value, e.span, &before)?;
                    scope.set_env(&key, &value);
                }
            }
            Instruction::Expose(e) => {
                // BuildKit checks port specs at dispatch, after expansion; so do we.
                // Each port is expanded into words (`ARG PORTS="3000 4000/udp"` gives two).
                for port in &e.ports {
                    let words = lexer
                        .process_words(port, &scope)
                        .map_err(|err| Diagnostic::error(err.buildkit_message(port), e.span))?;
                    for spec in words {
                        parse_port_spec(&spec).map_err(|msg| Diagnostic::error(msg, e.span))?;
                    }
                }
            }
            Instruction::Copy(c) => {
                if let Some(f) = &c.from {
                    // BuildKit expands --from with no variables at all and refuses any change.
                    if expand(f, c.span, &StageScope::default())? != *f {
                        return Err(Diagnostic::error(
                            "variable expansion is not supported for --from, define a new stage \
                             with FROM using ARG from global scope as a workaround",
                            c.span,
                        ));
                    }
                    let r = source_ref(f, index, names, c.span)?;
                    if let SourceRef::Stage(i) = r
                        && i >= index
                    {
                        return Err(Diagnostic::error(
                            format!(
                                "cannot copy from stage {f:?}, it needs to be defined before \
                                 current stage {:?}",
                                from.name.as_deref().unwrap_or_default()
                            ),
                            c.span,
                        ));
                    }
                    refs.push(r);
                }
            }
            Instruction::Run(r) => {
                for m in &r.mounts {
                    let mount = match &m.mount {
                        Some(m) => m.clone(),
                        None => {
                            let ex =
                                |w: &str| lexer.process_word(w, &scope).map_err(|e| e.to_string());
                            parse_mount(&m.value, Some(&ex))
                                .map_err(|e| Diagnostic::error(e.to_string(), m.span))?
                        }
                    };
                    if let Some(f) = &mount.from {
                        let r = source_ref(f, index, names, m.span)?;
                        if let SourceRef::Stage(i) = r
                            && i >= index
                        {
                            return Err(Diagnostic::error(
                                format!(
                                    "cannot mount from stage {f:?} to {:?}, stage needs to be \
                                     defined before current command",
                                    mount.target.as_deref().unwrap_or_default()
                                ),
                                m.span,
                            ));
                        }
                        refs.push(r);
                    }
                }
            }
            _ => {}
        }
        for r in &refs {
            if let SourceRef::Stage(i) = r {
                deps.insert(*i);
            }
        }
        sources.push(refs);
    }
    Ok(Stage {
        index,
        name: from.name.clone(),
        description: from.comment.clone(),
        from,
        base,
        platform,
        instructions,
        sources,
        args: scope.args().to_vec(),
        env: scope.env().to_vec(),
        deps,
    })
}

/// Resolves a `--from` value: a stage name, a stage index, or else an image reference.
fn source_ref(
    reference: &str,
    current: usize,
    names: &[Option<String>],
    span: Span,
) -> Result<SourceRef, Diagnostic> {
    if let Some(i) = find_stage(names, reference) {
        return Ok(SourceRef::Stage(i));
    }
    if reference.parse::<usize>().is_ok() {
        return Err(Diagnostic::error(
            format!(
                "invalid stage index {reference}: stages are numbered 0 to {}",
                names.len().saturating_sub(1)
            ),
            span,
        )
        .with_hint(format!(
            "stage {current} can refer to stages by name or index"
        )));
    }
    if reference.is_empty() {
        return Err(Diagnostic::error("--from must not be empty", span));
    }
    Ok(SourceRef::Image(reference.to_owned()))
}

fn select_target(stages: &[Stage], target: Option<&str>) -> Result<usize, Diagnostic> {
    let Some(t) = target else {
        return Ok(stages.len() - 1);
    };
    let lower = t.to_lowercase();
    stages
        .iter()
        .rposition(|s| s.name.as_deref() == Some(lower.as_str()))
        .ok_or_else(|| {
            let names: Vec<String> = stages.iter().filter_map(|s| s.name.clone()).collect();
            let d = Diagnostic::error(
                format!("target stage {t:?} could not be found"),
                Span::default(),
            );
            if names.is_empty() {
                d.with_hint("no stage has a name: add `AS <name>` to a FROM line")
            } else {
                d.with_hint(format!("the named stages are: {}", names.join(", ")))
            }
        })
}

/// Depth-first post-order from the target: every stage after the stages it needs.
fn build_order(stages: &[Stage], target: usize) -> Vec<usize> {
    fn visit(i: usize, stages: &[Stage], seen: &mut Vec<bool>, out: &mut Vec<usize>) {
        if seen[i] {
            return;
        }
        seen[i] = true;
        for &d in &stages[i].deps {
            visit(d, stages, seen, out);
        }
        out.push(i);
    }
    let mut seen = vec![false; stages.len()];
    let mut out = Vec::new();
    visit(target, stages, &mut seen, &mut out);
    out
}

#[cfg(test)]
mod tests;
