//! `kiln build`'s second phase: the op graph run with the build's contexts, secrets, agents,
//! executor and caches.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use kiln_frontend::diagnostics::Diagnostic;
use kiln_frontend::span::Span;
use kiln_solver::cache::remote::RemoteCaches;
use kiln_solver::context::Context;
use kiln_solver::solve::{Progress, SolveError, SolveOptions};
use kiln_solver::store::Store;

use crate::commands::build_config::BuildConfig;
use crate::commands::build_state::{Front, Phase, Solved};
use crate::commands::{progress, report};
use crate::source::DockerfileSource;

/// Runs the op graph with the build's contexts, secrets, agents, executor and the caches
/// imported (once per build, for every platform).
pub(super) fn solve(
    config: &BuildConfig,
    front: &Front,
    remote_cache: &RemoteCaches,
) -> Phase<(Solved, Vec<kiln_solver::solve::explain::StepRecord>)> {
    let store = &config.store;
    let solve_opts = SolveOptions {
        contexts: contexts(config, store)?,
        no_cache: config.no_cache,
        no_cache_stages: config.no_cache_stages.clone(),
        source_date_epoch: front.epoch,
        executor: match crate::commands::executor_for(config.runtime.as_deref(), store) {
            Ok(e) => Some(e),
            // An explicit --runtime that cannot be used is an error now; without one, only a
            // RUN step needs an executor and it reports the problem itself.
            Err(e) if config.runtime.is_some() => anyhow::bail!("--runtime: {e}"),
            Err(_) => None,
        },
        secrets: config.secrets.clone(),
        ssh: config.ssh.clone(),
        remote_cache: remote_cache.clone(),
        images: Some(front.images.clone()),
        edge: config.outputs.edge_compression(),
    };
    let remote_cache = solve_opts.remote_cache.clone();
    let (progress, rx) = Progress::channel();
    let printer = progress::spawn(rx, config.view);
    let outcome = kiln_solver::solve::run(
        store.clone(),
        front.lowered.definition.clone(),
        front.lowered.target,
        solve_opts,
        progress,
    );
    // The progress channel closed with the solver; the printer has seen everything.
    let stats = printer.join().unwrap_or_default();
    match outcome {
        Ok(solution) => Ok(Ok((
            Solved {
                result: solution.result,
                records: solution.records,
                remote_cache,
                stats,
            },
            solution.explain,
        ))),
        Err(e) => {
            report_solve_error(&e, &front.src);
            Ok(Err(ExitCode::FAILURE))
        }
    }
}

/// The local directories the build reads: the context (an empty one for `-`) and the named
/// `--build-context` directories.
fn contexts(config: &BuildConfig, store: &Store) -> Result<BTreeMap<String, Context>> {
    let mut contexts = BTreeMap::new();
    let df_path = (config.dockerfile != Path::new("-")).then_some(config.dockerfile.as_path());
    match &config.context_dir {
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
    for (name, dir) in &config.named_dirs {
        contexts.insert(name.clone(), Context::open(dir, None)?);
    }
    Ok(contexts)
}

fn report_solve_error(e: &SolveError, src: &DockerfileSource) {
    let span = match e {
        SolveError::Op { span, .. } => span.map_or_else(Span::default, |(a, b)| Span::new(a, b)),
        SolveError::Definition(_) | SolveError::Runtime(_) => Span::default(),
    };
    report(
        &Diagnostic::error(e.to_string(), span),
        &src.name,
        &src.text,
    );
}
