//! One module per subcommand; `run` dispatches.

pub(crate) mod build;
mod build_cache;
mod build_config;
mod build_front;
mod build_images;
mod build_input;
mod build_publish;
mod build_solve;
mod build_state;
mod cache_spec;
pub(crate) mod call;
mod completion;
mod du;
mod explain;
mod history;
mod images;
mod inspect;
mod outputs;
mod parse;
mod progress;
mod prune;
pub(crate) mod registry;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command, StoreArgs};

/// Runs the chosen subcommand and returns the process exit code.
pub(crate) fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Parse(args) => parse::run(&args),
        Command::Build(args) => build::run(&args),
        Command::Images(args) => images::list(&args),
        Command::Tag(args) => images::tag(&args),
        Command::Rmi(args) => images::rmi(&args),
        Command::Pull(args) => registry::pull(&args),
        Command::Push(args) => registry::push(&args),
        Command::Du(args) => du::run(&args),
        Command::Prune(args) => prune::run(&args),
        Command::History(args) => history::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Completion(args) => completion::completion(&args),
        Command::Man(args) => completion::man(&args),
        Command::Version => {
            crate::commands::print_stdout(&format!("kiln {}\n", env!("CARGO_PKG_VERSION")))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes data to standard output (data goes to stdout; progress and errors to stderr). A
/// reader that went away (`kiln images | head -1`) is not an error: what was done is done.
pub(crate) fn print_stdout(s: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Renders a frontend diagnostic (file:line:col, the source line, a caret and a hint) to
/// standard error.
pub(crate) fn report(diag: &kiln_frontend::diagnostics::Diagnostic, file: &str, src: &str) {
    let report = diag.report(file, src);
    crate::stderr::line(&format!("{report:?}"));
}

/// Opens the store at `--root`, else the default root.
pub(crate) fn open_store(args: &StoreArgs) -> Result<kiln_solver::store::Store> {
    use anyhow::Context as _;
    let root = match &args.root {
        Some(r) => r.clone(),
        None => kiln_solver::store::default_root()?,
    };
    let store = kiln_solver::store::Store::open(&root)
        .with_context(|| format!("opening the store at {}", root.display()))?;
    // What killed kiln processes left goes, without delaying this one.
    kiln_solver::reclaim::in_background(store.root());
    Ok(store)
}

/// The executor `--runtime` names: the built-in sandbox by default (`sandbox`), or an OCI
/// runtime binary (`runc`, or a path to one). The sandbox keeps its per-step temp dirs (in
/// the copy fallback, a whole root filesystem) in the store's `tmp/`: on the store's disk
/// rather than a tmpfs `/tmp`, and reclaimed with the store's other temps.
pub(crate) fn executor_for(
    runtime: Option<&str>,
    store: &kiln_solver::store::Store,
) -> Result<std::sync::Arc<dyn kiln_solver::executor::Executor>, String> {
    use kiln_solver::executor::sandbox::{Sandbox, SandboxOptions};
    match runtime {
        None | Some("" | "sandbox") => {
            Ok(std::sync::Arc::new(Sandbox::with_options(SandboxOptions {
                temp_dir: Some(store.root().join("tmp")),
                ..SandboxOptions::default()
            })))
        }
        Some(other) => Ok(std::sync::Arc::new(kiln_solver::executor::runc::Runc::new(
            other,
        ))),
    }
}
