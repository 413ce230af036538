//! `kiln build`: its arguments resolved once (`build_config`), then the frontend
//! (`build_front`: parse, lower, pull the bases lowering needs), the solve (`build_solve`), and
//! the image published (`build_publish`: committed, exported, pushed, tagged). `run` only
//! sequences the phases.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;

use crate::cli::BuildArgs;
use crate::commands::build_config::BuildConfig;
use crate::commands::build_front::frontend;
use crate::commands::build_publish::publish;
use crate::commands::build_solve::solve;

pub(crate) fn run(args: &BuildArgs) -> Result<ExitCode> {
    if let Some(spec) = args
        .call
        .filter(|c| c.method != crate::call_spec::Method::Build)
    {
        return crate::commands::call::run(args, spec);
    }
    let started = Instant::now();
    let config = BuildConfig::resolve(args)?;
    // Held for the whole build: `kiln prune` waits for it, so it never removes a blob or a
    // snapshot this build is writing or about to reference.
    let _store_lock = kiln_solver::store::StoreLock::shared(config.store.root())?;
    crate::stderr::set_redactor(config.redactor.clone());
    let front = match frontend(&config)? {
        Ok(front) => front,
        Err(code) => return Ok(code),
    };
    let (solved, explain_steps) = match solve(&config, &front)? {
        Ok(solved) => solved,
        Err(code) => return Ok(code),
    };
    crate::commands::explain::after_build(&config, &front, explain_steps);
    publish(&config, &front, &solved, started)
}
