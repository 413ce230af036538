//! Plain progress (`--progress plain`, and `auto` when standard error is not a terminal):
//! BuildKit's CI format. Each step is numbered in the order it is first seen; every line
//! names its step, output lines included:
//!
//! ```text
//! #2 [stage-0 2/3] RUN make
//! #2 cc -c main.c
//! #2 DONE 1.2s
//!
//! #3 [stage-0 3/3] COPY . /app
//! #3 CACHED
//! ```
//!
//! Steps running at the same time interleave: leaving an unfinished step prints `#N ...`,
//! coming back to it prints its name again.

use std::collections::BTreeSet;
use std::sync::mpsc::Receiver;

use kiln_solver::solve::{Event, EventKind};

use super::{Numbers, Stats, seconds};

/// Prints events until the sender is dropped; returns the counts.
pub(super) fn render(rx: Receiver<Event>) -> Stats {
    let mut plain = Plain::default();
    for e in rx {
        crate::stderr::write(&plain.format(&e));
    }
    plain.stats
}

#[derive(Debug, Default)]
struct Plain {
    stats: Stats,
    numbers: Numbers,
    /// The step the last line was about, and whether it had finished.
    last: Option<(usize, bool)>,
    /// Steps whose name has been printed.
    named: BTreeSet<usize>,
}

impl Plain {
    /// The lines for one event, each ending in a newline.
    fn format(&mut self, e: &Event) -> String {
        self.stats.count(e);
        let n = self.numbers.of(e.vertex);
        let mut out = String::new();
        if let Some((last, finished)) = self.last
            && last != n
        {
            if !finished {
                out.push_str(&format!("#{last} ...\n"));
            }
            out.push('\n');
        }
        let finished = matches!(
            e.kind,
            EventKind::Cached | EventKind::Done(_) | EventKind::Error(_)
        );
        let returning = self.last.map(|(l, _)| l) != Some(n);
        if returning
            || !self.named.contains(&n)
            || matches!(e.kind, EventKind::Started | EventKind::Cached)
        {
            out.push_str(&format!("#{n} {}\n", one_line(&e.name)));
            self.named.insert(n);
        }
        match &e.kind {
            EventKind::Started => {}
            EventKind::Cached => out.push_str(&format!("#{n} CACHED\n")),
            EventKind::Done(d) => out.push_str(&format!("#{n} DONE {}\n", seconds(*d))),
            EventKind::Error(msg) => {
                out.push_str(&format!("#{n} ERROR: {}\n", error_line(&e.name, msg)));
            }
            EventKind::Log(l) => out.push_str(&format!("#{n} {l}\n")),
        }
        self.last = Some((n, finished));
        out
    }
}

/// A step name on one line (a heredoc's body may span several).
fn one_line(name: &str) -> String {
    name.replace('\n', " ")
}

/// The cause alone: the step's name is on the line already and its output above it; the
/// full report (Dockerfile line, output tail) follows the progress.
fn error_line<'a>(name: &str, msg: &'a str) -> &'a str {
    let msg = msg
        .strip_prefix(name)
        .and_then(|m| m.strip_prefix(": "))
        .unwrap_or(msg);
    msg.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ev(vertex: usize, name: &str, kind: EventKind) -> Event {
        Event::new(vertex, name.to_owned(), kind)
    }

    #[test]
    fn numbers_steps_and_names_interleaved_ones_again() {
        let mut p = Plain::default();
        let events = [
            ev(7, "[a 1/2] FROM x", EventKind::Cached),
            ev(9, "[a 2/2] RUN make", EventKind::Started),
            ev(9, "[a 2/2] RUN make", EventKind::Log("cc".into())),
            ev(4, "[b 2/2] RUN test", EventKind::Started),
            ev(9, "[a 2/2] RUN make", EventKind::Log("ld".into())),
            ev(
                9,
                "[a 2/2] RUN make",
                EventKind::Done(Duration::from_millis(1234)),
            ),
            ev(
                4,
                "[b 2/2] RUN test",
                EventKind::Error("[b 2/2] RUN test: exit code: 1\n--- tail ---\nx".into()),
            ),
        ];
        let text: String = events.iter().map(|e| p.format(e)).collect();
        assert_eq!(
            text,
            "#1 [a 1/2] FROM x\n#1 CACHED\n\n#2 [a 2/2] RUN make\n#2 cc\n#2 ...\n\n\
             #3 [b 2/2] RUN test\n#3 ...\n\n#2 [a 2/2] RUN make\n#2 ld\n#2 DONE 1.2s\n\n\
             #3 [b 2/2] RUN test\n#3 ERROR: exit code: 1\n"
        );
        assert_eq!((p.stats.run, p.stats.cached), (1, 1));
    }
}
