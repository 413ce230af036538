//! `kiln build`: the frontend (parse, lower, pull what is missing), the solve, then the
//! image published (committed, exported, pushed, tagged). Each phase is a function here or
//! a module of its own; `run` only sequences them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result};
use kiln_frontend::diagnostics::Diagnostic;
use kiln_frontend::lower::{LowerOptions, lower};
use kiln_frontend::parser;
use kiln_frontend::span::Span;
use kiln_llb::Source;
use kiln_solver::context::Context;
use kiln_solver::layer::LayerOptions;
use kiln_solver::registry::Registry;
use kiln_solver::secrets::Redactor;
use kiln_solver::solve::{Progress, SolveError, SolveOptions, Solver};
use kiln_solver::store::Store;

use crate::cli::BuildArgs;
use crate::commands::build_cache::import_caches;
use crate::commands::build_images::StoreImages;
use crate::commands::build_input::{build_options, locate, named_contexts, secrets, ssh_agents};
use crate::commands::build_state::{Front, Solved};
use crate::commands::registry::registry_for;
use crate::commands::{open_store, progress, report};
use crate::source::{DockerfileSource, read_dockerfile};
use crate::time;

/// A phase's outcome: carry on, or stop the command with this exit (the error was reported).
type Phase<T> = Result<std::result::Result<T, ExitCode>>;

pub(crate) fn run(args: &BuildArgs) -> Result<ExitCode> {
    if let Some(spec) = args
        .call
        .filter(|c| c.method != crate::call_spec::Method::Build)
    {
        return crate::commands::call::run(args, spec);
    }
    let started = Instant::now();
    let view = progress::View::select(args.progress, args.quiet);
    let store = open_store(&args.store)?;
    // Held for the whole build: `kiln prune` waits for it, so it never removes a blob or a
    // snapshot this build is writing or about to reference.
    let _store_lock = kiln_solver::store::StoreLock::shared(store.root())?;
    let registry = registry_for(&args.registry)?;
    let epoch = time::source_date_epoch(&args.build_args)?;
    // Checked before anything is built, so a typo does not cost a build.
    let cache_to = args
        .cache_to
        .iter()
        .map(|s| crate::commands::cache_spec::parse("--cache-to", s, true))
        .collect::<Result<Vec<_>>>()?;
    let outputs = crate::commands::outputs::Outputs::plan(args)?;
    let front = match frontend(args, &store, &registry, epoch)? {
        Ok(front) => front,
        Err(code) => return Ok(code),
    };
    let secret_values = secrets(&args.secrets)?;
    let redactor = Redactor::new(secret_values.values().map(Vec::as_slice));
    crate::stderr::set_redactor(redactor.clone());
    let (solved, explain_steps) = match solve(args, &store, &registry, &front, secret_values, view)?
    {
        Ok(solved) => solved,
        Err(code) => return Ok(code),
    };
    crate::commands::explain::after_build(
        args,
        &store,
        &front.dockerfile,
        &front.lowered,
        explain_steps,
        &redactor,
    );
    crate::commands::build_publish::publish(
        args, &store, &registry, &front, &solved, &cache_to, &outputs, &redactor, view, started,
    )
}

/// Parses and lowers the Dockerfile, pulling the base images it needs.
fn frontend(
    args: &BuildArgs,
    store: &Store,
    registry: &Registry,
    epoch: Option<i64>,
) -> Phase<Front> {
    let (dockerfile, context_dir) = locate(args)?;
    let src = read_dockerfile(&dockerfile)?;
    let parsed = match parser::parse(&src.text) {
        Ok(p) => p,
        Err(d) => {
            report(&d, &src.name, &src.text);
            return Ok(Err(ExitCode::FAILURE));
        }
    };
    let build = build_options(args)?;
    let (named_dirs, aliases) = named_contexts(&args.build_contexts)?;
    let dir_names: Vec<String> = named_dirs.keys().cloned().collect();
    let lower_opts = LowerOptions {
        build: &build,
        file: &src.name,
        // Without an epoch, times are left to the commit: each new layer's is when its cache
        // record was first made (BuildKit's rule), so a cached rebuild is the same image.
        created: epoch.map(time::rfc3339),
        named_contexts: &dir_names,
        context_aliases: &aliases,
    };
    let images = StoreImages {
        store,
        registry,
        always_pull: args.pull,
        quiet: args.quiet,
        pulled: Default::default(),
    };
    let lowered = match lower(&parsed, &src.text, &lower_opts, &images) {
        Ok(l) => l,
        Err(d) => {
            report(&d, &src.name, &src.text);
            return Ok(Err(ExitCode::FAILURE));
        }
    };
    // Images only read by COPY --from or RUN --mount=from= were not needed while lowering;
    // pull any the store lacks now, before the solver looks for them.
    for (i, op) in lowered.definition.ops.iter().enumerate() {
        if let kiln_llb::Op::Source(Source::Image {
            reference,
            platform,
        }) = op
            && let Err(e) = images.pull_if_needed(reference, platform)
        {
            report(
                &Diagnostic::error(
                    format!("pulling {reference}: {e}"),
                    op_span(&lowered.definition, i),
                ),
                &src.name,
                &src.text,
            );
            return Ok(Err(ExitCode::FAILURE));
        }
    }
    Ok(Ok(Front {
        dockerfile,
        context_dir,
        src,
        lowered,
        named_dirs,
        epoch,
    }))
}

/// Runs the op graph with the build's contexts, secrets, agents, executor and caches.
fn solve(
    args: &BuildArgs,
    store: &Store,
    registry: &Registry,
    front: &Front,
    secret_values: BTreeMap<String, Vec<u8>>,
    view: progress::View,
) -> Phase<(Solved, Vec<kiln_solver::solve::explain::StepRecord>)> {
    let solve_opts = SolveOptions {
        contexts: contexts(front, store)?,
        no_cache: args.no_cache,
        no_cache_stages: args
            .no_cache_filter
            .iter()
            .map(|s| s.to_lowercase())
            .collect(),
        layer: LayerOptions {
            source_date_epoch: front.epoch,
            ..LayerOptions::default()
        },
        executor: match crate::commands::executor_for(args.runtime.as_deref(), store) {
            Ok(e) => Some(e),
            // An explicit --runtime that cannot be used is an error now; without one, only a
            // RUN step needs an executor and it reports the problem itself.
            Err(e) if args.runtime.is_some() => anyhow::bail!("--runtime: {e}"),
            Err(_) => None,
        },
        secrets: secret_values,
        ssh: ssh_agents(&args.ssh)?,
        remote_cache: import_caches(args, store, registry)?,
    };
    let remote_cache = solve_opts.remote_cache.clone();
    let (progress, rx) = Progress::channel();
    let printer = progress::spawn(rx, view);
    let solver = Solver::new(
        store.clone(),
        front.lowered.definition.clone(),
        solve_opts,
        progress,
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the scheduler")?;
    let result = runtime.block_on(solver.solve(front.lowered.target));
    drop(runtime);
    let records = solver.cache_records();
    let explain_steps = solver.explain_steps();
    // The solver holds the progress channel open; the printer ends when it is gone.
    drop(solver);
    let stats = printer.join().unwrap_or_default();
    match result {
        Ok(result) => Ok(Ok((
            Solved {
                result,
                records,
                remote_cache,
                stats,
            },
            explain_steps,
        ))),
        Err(e) => {
            report_solve_error(&e, &front.lowered.definition, &front.src);
            Ok(Err(ExitCode::FAILURE))
        }
    }
}

/// The local directories the build reads: the context (an empty one for `-`) and the named
/// `--build-context` directories.
fn contexts(front: &Front, store: &Store) -> Result<BTreeMap<String, Context>> {
    let mut contexts = BTreeMap::new();
    let df_path = (front.dockerfile != Path::new("-")).then_some(front.dockerfile.as_path());
    match &front.context_dir {
        Some(dir) => {
            contexts.insert("context".to_owned(), Context::open(dir, df_path)?);
        }
        None => {
            let empty = store.root().join("tmp/empty-context");
            std::fs::create_dir_all(&empty)
                .with_context(|| format!("creating {}", empty.display()))?;
            contexts.insert("context".to_owned(), Context::open(&empty, None)?);
        }
    }
    for (name, dir) in &front.named_dirs {
        contexts.insert(name.clone(), Context::open(dir, None)?);
    }
    Ok(contexts)
}

fn report_solve_error(e: &SolveError, def: &kiln_llb::Definition, src: &DockerfileSource) {
    let span = match e {
        SolveError::Op { op, .. } => op_span(def, *op),
        SolveError::Definition(_) => Span::default(),
    };
    report(
        &Diagnostic::error(e.to_string(), span),
        &src.name,
        &src.text,
    );
}

/// The Dockerfile span op `op` was lowered from (empty when the op has no location).
fn op_span(def: &kiln_llb::Definition, op: usize) -> Span {
    def.locations
        .get(op)
        .map(|l| Span::new(l.span.0, l.span.1))
        .unwrap_or_default()
}
