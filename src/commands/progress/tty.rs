//! The live terminal view (`--progress tty`, and `auto` on a terminal): BuildKit's layout,
//! drawn with indicatif.
//!
//! ```text
//! [+] Building 2.4s (3/4)
//!  => [stage-0 1/4] FROM busybox                                        CACHED
//!  => [stage-0 2/4] COPY . /src                                      DONE 0.1s
//!  => [stage-0 3/4] RUN make                                              1.9s
//!  => => # cc -c main.c
//!  => => # cc -c util.c
//! ```
//!
//! A running step shows a timer and the last lines of its output; when it ends the output
//! collapses and the step keeps one line: `DONE <time>`, `CACHED` or `ERROR <time>` (a step
//! still running when the build stops is `CANCELED`). The header ends as `FINISHED` when
//! every step succeeded. When the steps outgrow the terminal, the oldest finished ones
//! leave the live view; the final frame lists every step. Colors (blue for finished, red
//! for errors, dim output) only with `color`.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use console::Term;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln_solver::solve::{Event, EventKind};

use super::{Stats, seconds};

/// Output lines shown under a running step.
const TAIL: usize = 6;
/// How often timers and output tails are redrawn.
const TICK: Duration = Duration::from_millis(100);

const BLUE: &str = "34";
const RED: &str = "31";
const YELLOW: &str = "33";
const DIM: &str = "2";

/// Draws events until the sender is dropped; returns the counts.
pub(super) fn render(rx: Receiver<Event>, color: bool) -> Stats {
    // Buffered: each frame reaches the terminal in one write, without flicker.
    let term = Term::buffered_stderr();
    // A TermLike target draws even when standard error is not a terminal (`--progress tty`
    // asked for this view); indicatif's Term target would hide itself there.
    let target = ProgressDrawTarget::term_like(Box::new(term.clone()));
    let mut view = Tty::new(term, target, color);
    let mut next = Instant::now() + TICK;
    loop {
        match rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Ok(e) => {
                let redraw = !matches!(e.kind, EventKind::Log(_));
                view.apply(&e);
                if redraw {
                    view.draw();
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() >= next {
            view.draw();
            next = Instant::now() + TICK;
        }
    }
    view.finish();
    view.stats
}

#[derive(Debug)]
enum State {
    Running {
        since: Instant,
        tail: VecDeque<String>,
    },
    Cached,
    Done(Duration),
    Failed(Duration),
}

#[derive(Debug)]
struct Step {
    vertex: usize,
    name: String,
    state: State,
    bar: ProgressBar,
    /// Whether its bar is in the live region (finished steps leave it when it is full).
    shown: bool,
}

impl Step {
    fn running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    /// Its line, and under it at most `tail` output lines while it runs.
    fn render(&self, width: usize, color: bool, last: bool, tail: usize) -> String {
        let (status, code) = match &self.state {
            State::Running { .. } if last => (String::from("CANCELED"), Some(YELLOW)),
            State::Running { since, .. } => (seconds(since.elapsed()), None),
            State::Cached => (String::from("CACHED"), Some(BLUE)),
            State::Done(d) => (format!("DONE {}", seconds(*d)), Some(BLUE)),
            State::Failed(d) => (format!("ERROR {}", seconds(*d)), Some(RED)),
        };
        let line = columns(&format!(" => {}", self.name), &status, width);
        let mut out = paint(&line, code, color);
        if let State::Running { tail: lines, .. } = &self.state
            && !last
        {
            for l in lines.iter().skip(lines.len().saturating_sub(tail)) {
                out.push('\n');
                out.push_str(&paint(
                    &fit(&format!(" => => # {l}"), width),
                    Some(DIM),
                    color,
                ));
            }
        }
        out
    }

    /// How many lines it takes in the live region.
    fn height(&self, tail: usize) -> usize {
        match &self.state {
            _ if !self.shown => 0,
            State::Running { tail: lines, .. } => 1 + lines.len().min(tail),
            _ => 1,
        }
    }
}

struct Tty {
    term: Term,
    multi: MultiProgress,
    header: ProgressBar,
    /// Every step, in the order they appeared.
    steps: Vec<Step>,
    color: bool,
    started: Instant,
    stats: Stats,
    seen: usize,
    finished: usize,
    failed: bool,
}

impl Tty {
    fn new(term: Term, target: ProgressDrawTarget, color: bool) -> Self {
        let multi = MultiProgress::with_draw_target(target);
        let header = multi.add(bar());
        Tty {
            term,
            multi,
            header,
            steps: Vec::new(),
            color,
            started: Instant::now(),
            stats: Stats::default(),
            seen: 0,
            finished: 0,
            failed: false,
        }
    }

    fn apply(&mut self, e: &Event) {
        self.stats.count(e);
        let i = match self.steps.iter().position(|s| s.vertex == e.vertex) {
            Some(i) => i,
            None => {
                self.seen += 1;
                self.steps.push(Step {
                    vertex: e.vertex,
                    name: clean(&e.name),
                    state: State::Running {
                        since: Instant::now(),
                        tail: VecDeque::new(),
                    },
                    bar: self.multi.add(bar()),
                    shown: true,
                });
                self.steps.len() - 1
            }
        };
        let Some(step) = self.steps.get_mut(i) else {
            return;
        };
        let elapsed = match &step.state {
            State::Running { since, .. } => Some(since.elapsed()),
            _ => None,
        };
        let ended = match &e.kind {
            EventKind::Started => {
                step.state = State::Running {
                    since: Instant::now(),
                    tail: VecDeque::new(),
                };
                false
            }
            EventKind::Log(line) => {
                if let State::Running { tail, .. } = &mut step.state {
                    tail.push_back(clean(line));
                    if tail.len() > TAIL {
                        tail.pop_front();
                    }
                }
                false
            }
            EventKind::Cached => {
                step.state = State::Cached;
                true
            }
            EventKind::Done(d) => {
                step.state = State::Done(*d);
                true
            }
            EventKind::Error(_) => {
                step.state = State::Failed(elapsed.unwrap_or_default());
                self.failed = true;
                true
            }
        };
        // Counted once, however many endings a step reports.
        if ended && elapsed.is_some() {
            self.finished += 1;
        }
    }

    /// Replaces the live region with the final frame, written as plain lines: indicatif
    /// fills each line to the terminal's width and relies on wrapping, which would leave
    /// the scrollback as one long line when copied.
    fn finish(&mut self) {
        let (_, cols) = self.term.size();
        let width = usize::from(cols).saturating_sub(1).max(20);
        let mut lines = vec![self.header(width, true)];
        lines.extend(
            self.steps
                .iter()
                .map(|s| s.render(width, self.color, true, 0)),
        );
        let _ = self.multi.clear();
        // Nothing more from indicatif, not even when the bars are dropped.
        self.multi.set_draw_target(ProgressDrawTarget::hidden());
        for line in lines {
            let _ = self.term.write_line(&line);
        }
        let _ = self.term.flush();
    }

    fn header(&self, width: usize, last: bool) -> String {
        let mut header = format!(
            "[+] Building {} ({}/{})",
            seconds(self.started.elapsed()),
            self.finished,
            self.seen
        );
        let code = match (last, self.failed) {
            (true, false) => {
                header.push_str(" FINISHED");
                Some(BLUE)
            }
            (true, true) => Some(RED),
            (false, _) => None,
        };
        paint(&fit(&header, width), code, self.color)
    }

    /// Redraws the live region.
    fn draw(&mut self) {
        let (rows, cols) = self.term.size();
        // One column spare: a line that fills the last column leaves the cursor waiting to
        // wrap, which resizing or copying the final frame handles badly.
        let width = usize::from(cols).saturating_sub(1).max(20);
        // The header and the cursor's line.
        let room = usize::from(rows).saturating_sub(2).max(1);
        // Like BuildKit: when the live region outgrows the terminal, the oldest finished
        // steps leave it (the final frame lists them all again), then the tails shrink.
        while self.height(TAIL) > room {
            let Some(step) = self.steps.iter_mut().find(|s| s.shown && !s.running()) else {
                break;
            };
            step.shown = false;
            self.multi.remove(&step.bar);
        }
        let running = self.steps.iter().filter(|s| s.running()).count();
        let tail = if self.height(TAIL) > room && running > 0 {
            let lines = self.steps.iter().filter(|s| s.shown).count();
            (room.saturating_sub(lines) / running).min(TAIL)
        } else {
            TAIL
        };

        for step in self.steps.iter().filter(|s| s.shown) {
            step.bar
                .set_message(step.render(width, self.color, false, tail));
        }
        self.header.set_message(self.header(width, false));
    }

    fn height(&self, tail: usize) -> usize {
        self.steps.iter().map(|s| s.height(tail)).sum()
    }
}

fn bar() -> ProgressBar {
    let style =
        ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_spinner());
    ProgressBar::new_spinner().with_style(style)
}

/// `left` and `right` on one line of `width` columns, `right` flush right; `left` is cut
/// with an ellipsis when both do not fit.
fn columns(left: &str, right: &str, width: usize) -> String {
    let right_width = console::measure_text_width(right);
    let left = fit(left, width.saturating_sub(right_width + 1));
    let pad = width.saturating_sub(console::measure_text_width(&left) + right_width);
    format!("{left}{}{right}", " ".repeat(pad.max(1)))
}

fn fit(s: &str, width: usize) -> String {
    console::truncate_str(s, width, "…").into_owned()
}

fn paint(s: &str, code: Option<&str>, color: bool) -> String {
    match code {
        Some(code) if color => format!("\x1b[{code}m{s}\x1b[0m"),
        _ => s.to_owned(),
    }
}

/// Text safe to draw: no escape sequences or control characters from a step's output (they
/// would move the cursor under indicatif's feet), tabs as spaces, and of a line redrawn with
/// carriage returns (a download's progress bar) only its last frame.
fn clean(s: &str) -> String {
    let s = console::strip_ansi_codes(s);
    let s = s.trim_end_matches(['\r', '\n']);
    let s = s.rsplit('\r').next().unwrap_or_default();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' => out.push_str("    "),
            '\n' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_fit_the_width_with_the_status_flush_right() {
        assert_eq!(
            columns(" => [s 1/2] RUN make", "DONE 0.1s", 40),
            " => [s 1/2] RUN make           DONE 0.1s"
        );
        let cut = columns(" => [s 1/2] RUN make all install", "CACHED", 24);
        assert_eq!(cut, " => [s 1/2] RUN … CACHED");
        assert_eq!(console::measure_text_width(&cut), 24);
    }

    #[test]
    fn output_is_cleaned_of_escapes_and_carriage_returns() {
        assert_eq!(clean("\x1b[31mred\x1b[0m\tx"), "red    x");
        assert_eq!(clean(" 10%\r 50%\r100%\r"), "100%");
        assert_eq!(clean("a\x07b\x08c"), "abc");
    }

    #[test]
    fn colors_only_when_asked() {
        assert_eq!(paint("x", Some(BLUE), false), "x");
        assert_eq!(paint("x", Some(BLUE), true), "\x1b[34mx\x1b[0m");
        assert_eq!(paint("x", None, true), "x");
    }

    #[test]
    fn a_running_step_shows_its_tail_and_collapses_when_done() {
        let mut v = Tty::new(Term::stderr(), ProgressDrawTarget::hidden(), false);
        let name = String::from("[s 2/2] RUN x");
        v.apply(&Event::new(4, name.clone(), EventKind::Started));
        for i in 0..8 {
            v.apply(&Event::new(
                4,
                name.clone(),
                EventKind::Log(format!("l{i}")),
            ));
        }
        let shown = v.steps[0].render(40, false, false, TAIL);
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 1 + TAIL, "{shown}");
        assert_eq!(lines[1], " => => # l2");
        assert_eq!(lines[6], " => => # l7");
        v.apply(&Event::new(
            4,
            name.clone(),
            EventKind::Done(Duration::from_millis(300)),
        ));
        assert_eq!(
            v.steps[0].render(40, false, false, TAIL),
            " => [s 2/2] RUN x              DONE 0.3s"
        );
        assert_eq!((v.finished, v.seen, v.stats.run), (1, 1, 1));
    }
}
