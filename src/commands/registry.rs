//! `kiln pull` and `kiln push`.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::{PullArgs, PushArgs};

pub(crate) fn pull(args: &PullArgs) -> Result<ExitCode> {
    bail!("kiln pull {}: not wired yet", args.reference)
}

pub(crate) fn push(args: &PushArgs) -> Result<ExitCode> {
    bail!("kiln push {}: not wired yet", args.source)
}
