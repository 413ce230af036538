//! Progress output for `kiln build`: the solver's events rendered on standard error as a live
//! terminal view (`tty`), BuildKit-style plain lines for logs and CI (`plain`) or one JSON
//! object per line for programs (`json`), and the closing summary in the same form. Data
//! (the image id of `-q`) goes to standard output, never here.

mod json;
mod plain;
mod tty;

use std::io::IsTerminal as _;
use std::sync::OnceLock;
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::Duration;

use kiln_solver::solve::{CommittedImage, Event, EventKind};

use crate::cli::ProgressMode;
use crate::units::human_size;

/// How progress is shown, once `--progress auto` and `-q` are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// The live view; `color` when standard error is a terminal and `NO_COLOR` is unset.
    Tty { color: bool },
    /// Plain lines.
    Plain,
    /// Nothing but warnings and errors.
    Quiet,
    /// JSON lines.
    RawJson,
}

/// The build's view, for [`note`]s printed outside the event stream.
static CURRENT: OnceLock<View> = OnceLock::new();

impl View {
    /// Resolves `--progress` (`-q` wins: only the image id is printed) and makes it the
    /// view [`note`] uses.
    pub(crate) fn select(mode: ProgressMode, quiet: bool) -> View {
        let view = match mode {
            _ if quiet => View::Quiet,
            ProgressMode::Auto if std::io::stderr().is_terminal() => View::tty(),
            ProgressMode::Auto | ProgressMode::Plain => View::Plain,
            ProgressMode::Tty => View::tty(),
            ProgressMode::Quiet => View::Quiet,
            ProgressMode::Rawjson => View::RawJson,
        };
        let _ = CURRENT.set(view);
        view
    }

    fn tty() -> View {
        // False when standard error is not a terminal, TERM=dumb, or NO_COLOR is set.
        View::Tty {
            color: console::colors_enabled_stderr(),
        }
    }
}

/// What the build did, for the summary.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Stats {
    pub(crate) run: usize,
    pub(crate) cached: usize,
}

impl Stats {
    fn count(&mut self, e: &Event) {
        match e.kind {
            EventKind::Cached => self.cached += 1,
            EventKind::Done(_) => self.run += 1,
            _ => {}
        }
    }
}

/// Renders events in `view` until the sender is dropped; returns the counts.
pub(crate) fn spawn(rx: Receiver<Event>, view: View) -> JoinHandle<Stats> {
    std::thread::spawn(move || match view {
        View::Tty { color } => tty::render(rx, color),
        View::Plain => plain::render(rx),
        View::RawJson => json::render(rx),
        View::Quiet => {
            let mut stats = Stats::default();
            for e in rx {
                stats.count(&e);
            }
            stats
        }
    })
}

/// BuildKit's step numbers: `#1`, `#2`… in the order vertices are first seen.
#[derive(Debug, Default)]
struct Numbers(Vec<usize>);

impl Numbers {
    fn of(&mut self, vertex: usize) -> usize {
        match self.0.iter().position(|&v| v == vertex) {
            Some(i) => i + 1,
            None => {
                self.0.push(vertex);
                self.0.len()
            }
        }
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// The closing summary (names, digest, size, steps run and cached, total time) in `view`:
/// text for people, one `summary` object for `rawjson`, nothing when quiet.
pub(crate) fn summary(
    view: View,
    names: &[String],
    image: &CommittedImage,
    stats: &Stats,
    total: Duration,
) {
    let text = match view {
        View::Quiet => return,
        View::RawJson => {
            json::summary(names, image, stats, total);
            return;
        }
        View::Tty { .. } | View::Plain => {
            let named = if names.is_empty() {
                String::from("(no name: use -t to tag it)")
            } else {
                names.join(", ")
            };
            format!(
                "built {} in {}: {} steps run, {} cached; layers {}\nimage {named}",
                image.manifest_digest,
                seconds(total),
                stats.run,
                stats.cached,
                human_size(image.layers_size),
            )
        }
    };
    crate::stderr::line(&text);
}

/// A one-line note outside any step (a pull, a push, a cache import) on standard error, in
/// the build's view: a `note` object for `rawjson`; only warnings when quiet.
pub(crate) fn note(line: &str) {
    match CURRENT.get() {
        Some(View::RawJson) => json::note(line),
        Some(View::Quiet) if !line.starts_with("warning:") => {}
        _ => crate::stderr::line(line),
    }
}
