//! kiln: a daemonless Dockerfile image builder.
//!
//! This binary owns the command line (clap), resolved configuration, progress rendering and
//! error reports; the work itself happens in `kiln-frontend` and `kiln-solver`.

mod call_spec;
mod cli;
mod commands;
mod signals;
mod source;
mod stderr;
mod time;
mod units;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    install_report_style();
    let cli = cli::Cli::parse();
    // An ordinary user's kiln runs again inside a user namespace where it is root (before any
    // thread exists); this process only waits for it.
    let building = matches!(cli.command, cli::Command::Build(_));
    let rootless = kiln_solver::executor::rootless::reexec_in_user_namespace(&mut |notice| {
        use kiln_solver::executor::rootless::Notice;
        match notice {
            Notice::SingleId(why) if building => stderr::line(&format!("warning: {why}")),
            Notice::NoNamespace(why) if building => stderr::line(&format!("warning: {why}")),
            _ => {}
        }
    });
    match rootless {
        Ok(Some(code)) => return ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Ok(None) => {}
        Err(e) => {
            stderr::line(&format!("error: re-running kiln in a user namespace: {e}"));
            return ExitCode::FAILURE;
        }
    }
    if building {
        // Before any thread exists: the kernel refuses a new mount namespace to a process
        // whose threads share their filesystem context. Views of layer chains are mounted
        // there and vanish with the process.
        kiln_solver::snapshot::use_private_mounts();
    }
    signals::install();
    let code = match commands::run(cli) {
        Ok(_) if kiln_solver::cancel::is_cancelled() => ExitCode::from(130),
        Ok(code) => code,
        Err(e) => {
            stderr::line(&format!("error: {e:#}"));
            // Work stopped by SIGINT/SIGTERM fails the way an interrupted shell command does.
            if kiln_solver::cancel::is_cancelled() {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
        }
    };
    kiln_solver::snapshot::release_views();
    // A dead kiln's leftovers are being removed beside the command: a moment more to finish
    // (the next kiln goes on where this one stops), none at all after a signal.
    if !kiln_solver::cancel::is_cancelled() {
        kiln_solver::reclaim::wait_for_background(std::time::Duration::from_secs(2));
    }
    // The metadata database lingers open between transactions; close it cleanly.
    kiln_solver::store::close_all();
    code
}

/// Diagnostics use colour and Unicode art on a terminal, plain ASCII in logs and pipes (and
/// no colour when `NO_COLOR` is set), so CI output and snapshots stay stable.
fn install_report_style() {
    use std::io::IsTerminal as _;
    let tty = std::io::stderr().is_terminal();
    let color = tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .terminal_links(false)
                .unicode(tty)
                .color(color)
                .width(100)
                .build(),
        )
    }));
}
