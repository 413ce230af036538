//! `kiln build`: the frontend (`build_front`: parse, lower, pull what is missing), the solve
//! (`build_solve`), then the image published (`build_publish`: committed, exported, pushed,
//! tagged). `run` only sequences the phases.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use kiln_solver::secrets::Redactor;

use crate::cli::BuildArgs;
use crate::commands::build_front::frontend;
use crate::commands::build_input::secrets;
use crate::commands::build_solve::solve;
use crate::commands::registry::registry_for;
use crate::commands::{open_store, progress};
use crate::time;

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
