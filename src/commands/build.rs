//! `kiln build`: its arguments resolved once (`build_config`), then the frontend
//! (`build_front`: parse, lower, pull the bases lowering needs), the solve (`build_solve`), and
//! the image published (`build_publish`: committed, exported, pushed, tagged). `run` only
//! sequences the phases — once per platform for a multi-platform build, whose images are
//! published together.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;

use crate::cli::BuildArgs;
use crate::commands::build_cache::import_caches;
use crate::commands::build_config::BuildConfig;
use crate::commands::build_front::frontend;
use crate::commands::build_publish::publish;
use crate::commands::build_solve::solve;
use crate::commands::build_state::PlatformBuild;

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
    // One graph per platform, solved one after another: a step the platforms share (a
    // `FROM --platform=$BUILDPLATFORM` builder stage, a COPY of the same files) has the same
    // key in each, so the later platforms find it cached.
    let remote_cache = import_caches(&config)?;
    let mut built = Vec::new();
    for (build, platform) in config.per_platform() {
        if let Some(p) = &platform
            && !config.quiet
        {
            crate::commands::progress::note(&format!("building for {p}"));
        }
        let front = match frontend(&config, &build)? {
            Ok(front) => front,
            Err(code) => return Ok(code),
        };
        let (solved, explain_steps) = match solve(&config, &front, &remote_cache)? {
            Ok(solved) => solved,
            Err(code) => return Ok(code),
        };
        crate::commands::explain::after_build(&config, &front, platform.as_ref(), explain_steps);
        built.push(PlatformBuild {
            front,
            solved,
            platform: build.target_platform,
        });
    }
    publish(&config, &built, started)
}
