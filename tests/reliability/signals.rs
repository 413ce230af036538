//! Interruption is all or nothing: SIGTERM during layer compression, an export and a push
//! leaves nothing tagged, exported or pushed and kiln exits within 10 s; a broken standard
//! error never decides a build's outcome; a second SIGINT stops kiln at once.

use std::path::Path;
use std::time::Duration;

use crate::Bench;
use crate::common::registry::{Registry, get_manifest};
use crate::support::{Background, Stderr, incompressible, serial, tags, wait_until};

/// How long kiln may take to exit after a signal.
const DEADLINE: Duration = Duration::from_secs(10);

/// A context whose one layer (`size` incompressible bytes) takes a while to compress.
fn big_context(bench: &Bench, name: &str, size: usize) -> std::path::PathBuf {
    let ctx = bench.context(name, "FROM busybox\nCOPY big /big\n", &[]);
    std::fs::write(ctx.join("big"), incompressible(size)).unwrap();
    ctx
}

/// Files in `dir` with at least one byte written, whose name satisfies `name`.
fn growing_files(dir: &Path, name: impl Fn(&str) -> bool) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(&name))
        .filter(|e| e.metadata().is_ok_and(|m| m.is_file() && m.len() > 0))
        .count()
}

/// Sends `signal` once `ready` holds, then checks kiln exits within the deadline with 130
/// and tags nothing. Returns a description of what went wrong, if anything.
fn interrupt_when(
    bench: &Bench,
    mut kiln: Background,
    signal: &str,
    what: &str,
    ready: impl FnMut() -> bool,
) -> Option<String> {
    if !wait_until(Duration::from_secs(120), ready) {
        return Some(format!(
            "{what}: never reached the moment to signal:\n{}",
            kiln.stderr()
        ));
    }
    let at = kiln.running_for();
    kiln.signal(signal);
    let outcome = kiln.wait(DEADLINE + Duration::from_secs(20));
    let mut problems = Vec::new();
    match outcome {
        None => problems.push(format!("still running {DEADLINE:?} after SIG{signal}")),
        Some((status, took)) => {
            if took > DEADLINE {
                problems.push(format!("exited {took:?} after SIG{signal}"));
            }
            if status.code() != Some(130) {
                problems.push(format!("exit status {status} (want 130)"));
            }
        }
    }
    crate::support::note(&format!(
        "{what}: signalled {at:?} in, exit {:?}",
        outcome.map(|(s, took)| (s.code(), took))
    ));
    let tagged = tags(&bench.root);
    if tagged.iter().any(|t| t.starts_with("interrupted")) {
        problems.push(format!("tagged anyway: {tagged:?}"));
    }
    (!problems.is_empty()).then(|| {
        format!(
            "{what} (signalled {at:?} in): {}\n{}",
            problems.join("; "),
            kiln.stderr()
        )
    })
}

#[test]
fn sigterm_during_layer_compression_tags_nothing() {
    let _serial = serial();
    let bench = Bench::new("rel-sig-compress");
    let ctx = big_context(&bench, "big", 96 << 20);
    let kiln = Background::start(
        &bench.root,
        &bench.t.join("logs"),
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            "interrupted:1",
            ctx.to_str().unwrap(),
        ],
        Stderr::File,
    );
    let ingest = bench.root.join("ingest");
    let failure = interrupt_when(&bench, kiln, "TERM", "SIGTERM while compressing", || {
        growing_files(&ingest, |_| true) > 0
    });
    assert!(failure.is_none(), "{}", failure.unwrap_or_default());
}

#[test]
fn sigterm_during_an_export_writes_nothing_and_its_temps_go() {
    let _serial = serial();
    let bench = Bench::new("rel-sig-export");
    let ctx = big_context(&bench, "big", 64 << 20);
    let out = bench.t.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let dest = out.join("image.tar");
    let output = format!("type=oci,dest={},tar=true", dest.display());
    let args = [
        "build",
        "--progress",
        "plain",
        "-t",
        "interrupted:1",
        "-o",
        &output,
        ctx.to_str().unwrap(),
    ];
    // The layer is built and cached first, so the signal lands in the export itself.
    let warm = crate::common::kiln(&bench.root, &["build", "-q", ctx.to_str().unwrap()]);
    assert_eq!(warm.code, 0, "{}", warm.stderr);
    let hidden = |n: &str| n.starts_with('.') && n.contains("image.tar");

    let kiln = Background::start(&bench.root, &bench.t.join("logs"), &args, Stderr::File);
    let failure = interrupt_when(&bench, kiln, "TERM", "SIGTERM while exporting", || {
        growing_files(&out, hidden) > 0
    });
    assert!(failure.is_none(), "{}", failure.unwrap_or_default());
    assert!(
        !dest.exists(),
        "an interrupted export left {}",
        dest.display()
    );

    // kill -9 mid-export leaves the hidden temp; the next export there removes it.
    let mut killed = Background::start(&bench.root, &bench.t.join("logs"), &args, Stderr::File);
    assert!(wait_until(Duration::from_secs(120), || growing_files(
        &out, hidden
    ) > 0));
    killed.signal("KILL");
    killed.wait(DEADLINE).unwrap();
    let left = growing_files(&out, hidden);
    let args_tagged = [
        "build",
        "--progress",
        "plain",
        "-t",
        "exported:1",
        "-o",
        &output,
        ctx.to_str().unwrap(),
    ];
    let again = crate::common::kiln(&bench.root, &args_tagged);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["image.tar"],
        "after a killed export ({left} temp files) and a new one"
    );
}

#[test]
fn sigterm_during_a_push_pushes_and_tags_nothing() {
    let _serial = serial();
    let bench = Bench::new("rel-sig-push");
    let registry = Registry::start();
    let ctx = big_context(&bench, "big", 96 << 20);
    let warm = crate::common::kiln(&bench.root, &["build", "-q", ctx.to_str().unwrap()]);
    assert_eq!(warm.code, 0, "{}", warm.stderr);
    let reference = format!("{}/reliability/interrupted:1", registry.addr());
    let kiln = Background::start(
        &bench.root,
        &bench.t.join("logs"),
        &[
            "build",
            "--progress",
            "plain",
            "--push",
            "-t",
            &reference,
            ctx.to_str().unwrap(),
        ],
        Stderr::File,
    );
    let uploads = registry
        .storage()
        .join("docker/registry/v2/repositories/reliability/interrupted/_uploads");
    let failure = interrupt_when(&bench, kiln, "TERM", "SIGTERM while pushing", || {
        std::fs::read_dir(&uploads).is_ok_and(|mut d| d.next().is_some())
    });
    // `interrupted` is a registry reference here: check the store by its full name too.
    let tagged = tags(&bench.root);
    assert!(failure.is_none(), "{}", failure.unwrap_or_default());
    assert!(
        !tagged.iter().any(|t| t.contains("interrupted")),
        "tagged anyway: {tagged:?}"
    );
    let manifest = get_manifest(registry.addr(), "reliability/interrupted", "1");
    assert_eq!(manifest.status, 404, "the manifest was pushed anyway");
}

#[test]
fn a_broken_stderr_never_decides_the_build() {
    let _serial = serial();
    let bench = Bench::new("rel-broken-stderr");
    let ctx = bench.context(
        "chatty",
        "FROM busybox\nRUN for i in $(seq 1 200); do echo line $i; done; sleep 1; echo done\n",
        &[],
    );
    // stderr's reader goes after the first line (as `kiln build … 2>&1 | head -1` does).
    let mut kiln = Background::start(
        &bench.root,
        &bench.t.join("logs"),
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            "chatty:1",
            ctx.to_str().unwrap(),
        ],
        Stderr::BrokenAfterFirstLine,
    );
    let (status, _) = kiln.wait(Duration::from_secs(120)).expect("kiln hung");
    assert_eq!(
        status.code(),
        Some(0),
        "the build's outcome was decided by a broken pipe"
    );
    assert!(tags(&bench.root).contains(&"chatty:1".to_owned()));

    // And standard output closed before `-q` prints the id.
    let mut cmd = std::process::Command::new(crate::support::bin());
    cmd.args(["build", "-q", "--no-cache", "--root"])
        .arg(&bench.root)
        .arg(&ctx)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // SIGTERM while a step runs, with stderr broken: out within the deadline, nothing tagged.
    let ctx = bench.context("sleepy", "FROM busybox\nRUN echo started; sleep 60\n", &[]);
    let kiln = Background::start(
        &bench.root,
        &bench.t.join("logs"),
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            "interrupted:2",
            ctx.to_str().unwrap(),
        ],
        Stderr::BrokenAfterFirstLine,
    );
    let started = std::time::Instant::now();
    let failure = interrupt_when(
        &bench,
        kiln,
        "TERM",
        "SIGTERM in RUN, stderr broken",
        || started.elapsed() > Duration::from_secs(3),
    );
    assert!(failure.is_none(), "{}", failure.unwrap_or_default());
}

#[test]
fn a_second_sigint_stops_at_once() {
    let _serial = serial();
    let bench = Bench::new("rel-double-sigint");
    let ctx = bench.context("sleepy", "FROM busybox\nRUN echo started; sleep 60\n", &[]);
    let mut kiln = Background::start(
        &bench.root,
        &bench.t.join("logs"),
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            "interrupted:3",
            ctx.to_str().unwrap(),
        ],
        Stderr::File,
    );
    assert!(wait_until(Duration::from_secs(60), || kiln
        .stderr()
        .contains("started")));
    kiln.signal("INT");
    std::thread::sleep(Duration::from_millis(50));
    if kiln.running() {
        kiln.signal("INT");
    }
    let (status, took) = kiln
        .wait(DEADLINE + Duration::from_secs(20))
        .expect("kiln hung");
    assert!(
        took < Duration::from_secs(2),
        "took {took:?} after the second SIGINT"
    );
    assert_eq!(status.code(), Some(130), "{}", kiln.stderr());
    assert!(
        !tags(&bench.root)
            .iter()
            .any(|t| t.starts_with("interrupted"))
    );
}
