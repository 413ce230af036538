//! The command-line interface: every subcommand and flag, as clap definitions.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// kiln — build OCI images from Dockerfiles, without a daemon.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about, long_about = None)]
#[command(
    after_help = "Examples:\n  kiln parse Dockerfile\n  kiln parse --format json - < Dockerfile"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Parse a Dockerfile and print its syntax tree.
    #[command(
        after_help = "Examples:\n  kiln parse                       # ./Dockerfile, BuildKit's dump format\n  kiln parse --format json app.Dockerfile\n  cat Dockerfile | kiln parse -"
    )]
    Parse(ParseArgs),
    /// Print kiln's version.
    Version,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ParseArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ParseFormat::Buildkit)]
    pub(crate) format: ParseFormat,
    /// The Dockerfile to parse (`-` reads standard input).
    #[arg(default_value = "Dockerfile")]
    pub(crate) file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ParseFormat {
    /// BuildKit's `Node.Dump()` format, byte for byte.
    Buildkit,
    /// The typed instructions with their spans, as JSON.
    Json,
}
