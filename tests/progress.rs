//! `kiln build --progress`: snapshots of the plain and rawjson forms and of a failing RUN,
//! quiet modes, and the live tty view driven in a real terminal (tmux) — its step lines,
//! the output tail of a running step, CACHED on a rebuild, the summary, and NO_COLOR.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Tmp, busybox, kiln, tool, write_files};
use regex::Regex;

/// First built alone so that the bigger Dockerfile finds it cached.
const WARM: &str = "FROM busybox\nRUN echo warm > /warm\n";
const SMALL: &str = "FROM busybox\nRUN echo warm > /warm\n\
                     RUN echo line one && echo line two\nCOPY a.txt /a.txt\n";

/// A store with busybox and [`WARM`] built, and a context holding [`SMALL`].
fn small_build(t: &Tmp) -> (PathBuf, PathBuf) {
    let root = t.join("root");
    busybox(&root, t);
    let ctx = t.join("ctx");
    write_files(&ctx, &[("Dockerfile", WARM), ("a.txt", "a\n")]);
    kiln(&root, &["build", "-q", ctx.to_str().unwrap()]).ok();
    write_files(&ctx, &[("Dockerfile", SMALL)]);
    (root, ctx)
}

/// Times, digests, sizes and the temp path made stable for a snapshot.
fn filter(text: &str, ctx: &Path) -> String {
    let text = text.replace(ctx.to_str().unwrap(), "[CTX]");
    let rules = [
        (r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]"),
        (r"\b\d+\.\ds\b", "[T]"),
        (r"layers \d+(\.\d+)?[kMGTP]?B", "layers [SIZE]"),
        (
            r#""time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z""#,
            r#""time":"[TIME]""#,
        ),
        (r#""duration_ms":\d+"#, r#""duration_ms":"[MS]""#),
        (r#""size":\d+"#, r#""size":"[SIZE]""#),
    ];
    rules.iter().fold(text, |acc, (re, to)| {
        Regex::new(re).unwrap().replace_all(&acc, *to).into_owned()
    })
}

#[test]
fn plain_progress_snapshot() {
    let t = Tmp::new("progress-plain");
    let (root, ctx) = small_build(&t);
    let run = kiln(
        &root,
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            "progress:1",
            ctx.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(run.stdout, "", "data only with -q; progress on stderr");
    insta::assert_snapshot!("plain", filter(&run.stderr, &ctx));
}

#[test]
fn rawjson_events_snapshot() {
    let t = Tmp::new("progress-json");
    let (root, ctx) = small_build(&t);
    let run = kiln(
        &root,
        &[
            "build",
            "--progress",
            "rawjson",
            "-t",
            "progress:1",
            ctx.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(run.stdout, "");
    for line in run.stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["time"].is_string() && v["status"].is_string(), "{line}");
    }
    let shown = filter(&run.stderr, &ctx);
    // Every time had the RFC 3339 form the filter expects.
    assert_eq!(
        shown.matches(r#""time":"[TIME]""#).count(),
        run.stderr.lines().count(),
        "{}",
        run.stderr
    );
    insta::assert_snapshot!("rawjson", shown);
}

#[test]
fn failing_run_plain_snapshot() {
    let t = Tmp::new("progress-fail");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo one && echo two >&2 && exit 7\n",
        )],
    );
    let run = kiln(
        &root,
        &["build", "--progress", "plain", ctx.to_str().unwrap()],
    )
    .failed();
    assert!(run.stderr.contains("exit code: 7"), "{}", run.stderr);
    insta::assert_snapshot!("failing_run_plain", filter(&run.stderr, &ctx));
}

#[test]
fn quiet_modes_print_nothing_but_the_id() {
    let t = Tmp::new("progress-quiet");
    let (root, ctx) = small_build(&t);
    let c = ctx.to_str().unwrap();
    let quiet = kiln(&root, &["build", "--progress", "quiet", c]).ok();
    assert_eq!((quiet.stdout.as_str(), quiet.stderr.as_str()), ("", ""));
    let q = kiln(&root, &["build", "-q", "--progress", "plain", c]).ok();
    assert_eq!(q.stderr, "");
    assert!(
        Regex::new(r"^sha256:[0-9a-f]{64}\n$")
            .unwrap()
            .is_match(&q.stdout),
        "{:?}",
        q.stdout
    );
    // Forced onto a pipe, the live view still draws, without colors.
    let tty = kiln(&root, &["build", "--progress", "tty", c]).ok();
    assert!(tty.stderr.contains("[+] Building"), "{}", tty.stderr);
    assert!(tty.stderr.contains("FINISHED"), "{}", tty.stderr);
    assert!(tty.stderr.contains("built sha256:"), "{}", tty.stderr);
    let sgr = Regex::new(r"\x1b\[[0-9;]*m").unwrap();
    assert!(!sgr.is_match(&tty.stderr), "{:?}", tty.stderr);
}

/// A `kiln build` running in a tmux pane of its own server: a real pseudo-terminal with a
/// terminal emulator whose screen can be read back.
struct Pane {
    sock: PathBuf,
}

impl Pane {
    /// Starts `kiln ARGS --root ROOT` in a 120x40 pane, with NO_COLOR set or unset.
    fn start(t: &Tmp, tag: &str, root: &Path, args: &[&str], no_color: bool) -> Pane {
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let mut cmd = vec![quote(env!("CARGO_BIN_EXE_kiln"))];
        cmd.extend(args.iter().map(|a| quote(a)));
        cmd.push("--root".into());
        cmd.push(quote(root.to_str().unwrap()));
        let color = if no_color {
            "export NO_COLOR=1"
        } else {
            "unset NO_COLOR CLICOLOR CLICOLOR_FORCE"
        };
        let script = t.join(&format!("{tag}.sh"));
        std::fs::write(
            &script,
            format!(
                "{color}\nunset KILN_ROOT SOURCE_DATE_EPOCH\n{}\necho \"EXIT:$?\"\nexec sleep 600\n",
                cmd.join(" ")
            ),
        )
        .unwrap();
        let sock = t.join(&format!("{tag}.sock"));
        let s = sock.to_str().unwrap();
        let run = tool(
            "tmux",
            &[
                "-S",
                s,
                "new-session",
                "-d",
                "-x",
                "120",
                "-y",
                "40",
                "-s",
                "kiln",
                "sh",
                script.to_str().unwrap(),
            ],
        );
        assert_eq!(run.code, 0, "tmux: {}", run.stderr);
        Pane { sock }
    }

    /// The screen as text; with `escapes`, with its colors as SGR sequences.
    fn screen(&self, escapes: bool) -> String {
        let mut args = vec![
            "-S",
            self.sock.to_str().unwrap(),
            "capture-pane",
            "-p",
            "-t",
            "kiln",
        ];
        if escapes {
            args.push("-e");
        }
        tool("tmux", &args).stdout
    }

    /// Polls the screen until `done` holds.
    fn wait(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let screen = self.screen(false);
            if done(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "no {what} on screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for kiln to exit and returns the screen.
    fn finish(&self) -> String {
        let screen = self.wait("exit", |s| s.contains("EXIT:"));
        assert!(screen.contains("EXIT:0"), "{screen}");
        screen
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .args(["-S", self.sock.to_str().unwrap(), "kill-server"])
            .output();
    }
}

/// Lines of the view that name a step.
fn step_lines(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .filter(|l| l.starts_with(" => [stage-0"))
        .collect()
}

#[test]
fn tty_view_in_a_terminal() {
    let t = Tmp::new("progress-tty");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    // The output lines differ from the command text, so only the tail can show them.
    write_files(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM busybox\nRUN for i in 1 2 3; do echo out-$i; done; sleep 3\n\
                 COPY a.txt /a.txt\n",
            ),
            ("a.txt", "a\n"),
        ],
    );
    let c = ctx.to_str().unwrap();

    let first = Pane::start(
        &t,
        "first",
        &root,
        &["build", "--progress", "tty", "-t", "tty:1", c],
        false,
    );
    let live = first.wait("output tail", |s| s.contains(" => => # out-3"));
    assert!(
        live.contains("[stage-0 2/3] RUN for i in 1 2 3"),
        "the running step above its tail:\n{live}"
    );
    let screen = first.finish();
    let steps = step_lines(&screen);
    assert_eq!(steps.len(), 3, "{screen}");
    assert!(steps[0].contains("[stage-0 1/3] FROM busybox"), "{screen}");
    assert!(steps[0].trim_end().ends_with("CACHED"), "{screen}");
    let done = Regex::new(r"DONE \d+\.\ds$").unwrap();
    for s in &steps[1..] {
        assert!(done.is_match(s.trim_end()), "{screen}");
    }
    assert!(!screen.contains("out-3"), "the tail collapses:\n{screen}");
    assert!(screen.contains("FINISHED"), "{screen}");
    assert!(
        screen.contains("2 steps run, 1 cached") && screen.contains("image tty:1"),
        "{screen}"
    );
    assert!(
        first.screen(true).contains("\x1b[34m"),
        "finished steps are blue on a color terminal"
    );

    // `auto` picks the live view on a terminal; NO_COLOR turns colors off.
    let second = Pane::start(&t, "second", &root, &["build", "-t", "tty:1", c], true);
    let screen = second.finish();
    assert!(screen.contains("[+] Building"), "{screen}");
    let steps = step_lines(&screen);
    assert_eq!(steps.len(), 3, "{screen}");
    assert!(
        steps.iter().all(|s| s.trim_end().ends_with("CACHED")),
        "{screen}"
    );
    assert!(screen.contains("0 steps run, 3 cached"), "{screen}");
    let raw = second.screen(true);
    assert!(!raw.contains("\x1b["), "NO_COLOR: {raw:?}");
}
