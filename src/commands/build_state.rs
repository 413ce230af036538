//! What one `kiln build` carries from phase to phase (`build` makes them, `build_publish`
//! uses them), apart from both so neither imports the other back.

use std::process::ExitCode;
use std::sync::Arc;

use kiln_frontend::lower::Lowered;
use kiln_solver::cache::remote::{CacheRecord, RemoteCaches};
use kiln_solver::solve::OpResult;

use crate::commands::progress;
use crate::source::DockerfileSource;

/// What the frontend made of the Dockerfile.
pub(super) struct Front {
    pub(super) src: DockerfileSource,
    pub(super) lowered: Lowered,
    /// `SOURCE_DATE_EPOCH`: from `--build-arg` or the environment, else the Dockerfile's
    /// global `ARG SOURCE_DATE_EPOCH` default.
    pub(super) epoch: Option<i64>,
    /// The build's base images, shared by the frontend and the solve (a pull happens once).
    pub(super) images: Arc<kiln_solver::source::image::ImageSource>,
}

/// What the solve produced.
pub(super) struct Solved {
    pub(super) result: Arc<OpResult>,
    pub(super) records: Vec<CacheRecord>,
    pub(super) remote_cache: RemoteCaches,
    pub(super) stats: progress::Stats,
}

/// One platform's image: what the frontend made of the Dockerfile for it and what the solve
/// produced.
pub(super) struct PlatformBuild {
    pub(super) front: Front,
    pub(super) solved: Solved,
    pub(super) platform: kiln_llb::Platform,
}

/// A phase's outcome: carry on, or stop the command with this exit (the error was reported).
pub(super) type Phase<T> = anyhow::Result<std::result::Result<T, ExitCode>>;
