//! Plain progress output (the CI format): one line per vertex event on standard error,
//! BuildKit style (`#4 [app 2/5] COPY . /app` … `#4 DONE 0.2s` / `#4 CACHED`).

use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::Duration;

use kiln_solver::solve::{CommittedImage, Event, EventKind};

/// What the build did, for the summary.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Stats {
    pub(crate) run: usize,
    pub(crate) cached: usize,
}

/// Prints events until the sender is dropped; returns the counts.
pub(crate) fn spawn_plain(rx: Receiver<Event>, quiet: bool) -> JoinHandle<Stats> {
    std::thread::spawn(move || {
        let mut stats = Stats::default();
        let mut numbers: Vec<usize> = Vec::new();
        for e in rx {
            let n = match numbers.iter().position(|&v| v == e.vertex) {
                Some(i) => i + 1,
                None => {
                    numbers.push(e.vertex);
                    numbers.len()
                }
            };
            let line = match &e.kind {
                EventKind::Started => format!("#{n} {}", e.name),
                EventKind::Cached => {
                    stats.cached += 1;
                    format!("#{n} {}\n#{n} CACHED", e.name)
                }
                EventKind::Done(d) => {
                    stats.run += 1;
                    format!("#{n} DONE {}", seconds(*d))
                }
                EventKind::Error(msg) => format!("#{n} ERROR: {msg}"),
                EventKind::Log(l) => format!("#{n} {l}"),
            };
            if !quiet {
                #[allow(clippy::print_stderr)] // progress goes to stderr by design
                {
                    eprintln!("{line}");
                }
            }
        }
        stats
    })
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// The closing summary: names, digest, size, steps run and cached, total time.
pub(crate) fn summary(names: &[String], image: &CommittedImage, stats: &Stats, total: Duration) {
    let named = if names.is_empty() {
        String::from("(no name: use -t to tag it)")
    } else {
        names.join(", ")
    };
    #[allow(clippy::print_stderr)] // progress goes to stderr by design
    {
        eprintln!(
            "built {} in {}: {} steps run, {} cached; layers {}\nimage {named}",
            image.manifest_digest,
            seconds(total),
            stats.run,
            stats.cached,
            human_size(image.layers_size),
        );
    }
}

/// `12.3MB`-style sizes (decimal units, as docker prints them).
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

/// A one-line note outside any step (a pull, a push, a cache import) on standard error.
pub(crate) fn note(line: &str) {
    #[allow(clippy::print_stderr)] // progress goes to stderr
    {
        eprintln!("{line}");
    }
}
