//! kiln: a daemonless Dockerfile image builder.
//!
//! This binary owns the command line (clap), resolved configuration, progress rendering and
//! error reports; the work itself happens in `kiln-frontend` and `kiln-solver`.

mod cli;
mod commands;
mod source;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            #[allow(clippy::print_stderr)] // the last resort for errors that carry no source
            {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}
