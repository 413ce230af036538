//! kill -9 at random points of a build (steps running, layers compressing, an export, in both
//! executors), each followed by a rerun that must succeed: after every trial the store's blobs
//! match their digests and nothing is tagged that was not built, the rerun's own sweep leaves
//! the temp areas empty, and after them all `kiln prune` leaves no temp area, cgroup, bundle,
//! mount or process behind.

use std::time::{Duration, Instant};

use crate::Bench;
use crate::common::kiln;
use crate::support::{Background, Stderr, incompressible, leftovers, note, serial, verify_blobs};

/// Kills that must land while kiln works (a trial whose build finished first does not count).
const KILLS: u64 = 20;
/// Trials at most, each one kill -9 and a rerun.
const MAX_TRIALS: u64 = 40;
/// Marks the probe's processes, to find any that outlive kiln.
const MARKER: &str = "kiln-crash-probe-marker";

/// A tiny deterministic generator (xorshift), seeded from the clock unless
/// KILN_CRASH_SEED says otherwise, so a failing run can be repeated.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn seed() -> u64 {
    std::env::var("KILN_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

/// Processes still running the probe's steps.
fn marked_processes() -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(MARKER) {
            found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

#[test]
fn kill_9_at_random_points_then_rerun() {
    let _serial = serial();
    let bench = Bench::new("rel-crash");
    let dockerfile = format!(
        "FROM busybox AS base\n\
         ARG TRIAL\n\
         RUN echo $TRIAL > /trial && i=0; while [ $i -lt 300 ]; do echo $i > /f$i; i=$((i+1)); done\n\
         COPY big /big\n\
         RUN sh -c 'sha256sum /big /trial > /sums; sleep 0.5' {MARKER}\n\
         FROM busybox\n\
         COPY --from=base /sums /sums\n\
         RUN cat /sums\n"
    );
    let ctx = bench.context("ctx", &dockerfile, &[]);
    std::fs::write(ctx.join("big"), incompressible(48 << 20)).unwrap();
    let out = bench.t.join("out");
    std::fs::create_dir_all(&out).unwrap();

    let args = |trial: u64, runtime: &str| -> Vec<String> {
        let mut a: Vec<String> = ["build", "--progress", "plain", "--runtime", runtime]
            .map(String::from)
            .to_vec();
        a.extend(["--build-arg".into(), format!("TRIAL={trial}")]);
        a.extend(["-t".into(), format!("crash:{trial}")]);
        if trial % 2 == 0 {
            let dest = out.join(format!("image-{trial}.tar"));
            a.extend([
                "-o".into(),
                format!("type=oci,dest={},tar=true", dest.display()),
            ]);
        }
        a.push(ctx.display().to_string());
        a
    };

    // How long a whole build takes: the kills land anywhere inside it.
    let started = Instant::now();
    let full: Vec<String> = args(1000, "sandbox");
    let run = kiln(
        &bench.root,
        &full.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let span = started.elapsed().as_millis() as u64;

    let seed = seed();
    note(&format!(
        "crash probe: kills over {span} ms, KILN_CRASH_SEED={seed}"
    ));
    let mut random = Random(seed);
    let mut failures = Vec::new();
    let mut kills = 0;
    for trial in 0..MAX_TRIALS {
        if kills >= KILLS {
            break;
        }
        let runtime = if trial % 3 == 2 { "runc" } else { "sandbox" };
        let trial_args = args(trial, runtime);
        let argv: Vec<&str> = trial_args.iter().map(String::as_str).collect();
        let delay = Duration::from_millis(random.next() % (span * 9 / 10).max(1));
        let mut killed = Background::start(&bench.root, &bench.t.join("logs"), &argv, Stderr::File);
        std::thread::sleep(delay);
        let finished_first = !killed.running();
        killed.signal("KILL");
        kills += u64::from(!finished_first);
        killed
            .wait(Duration::from_secs(10))
            .expect("kill -9 did not end kiln");
        let what = format!("trial {trial} ({runtime}, killed at {delay:?})");
        note(&format!(
            "{what}{}",
            if finished_first {
                ": it had already finished"
            } else {
                ""
            }
        ));

        // The store as the kill left it: every blob whole.
        verify_blobs(&bench.root);
        let rerun = kiln(&bench.root, &argv);
        if rerun.code != 0 {
            failures.push(format!("{what}: the rerun failed:\n{}", rerun.stderr));
            continue;
        }
        verify_blobs(&bench.root);
        if trial % 2 == 0 {
            let dest = out.join(format!("image-{trial}.tar"));
            if !dest.is_file() {
                failures.push(format!(
                    "{what}: the rerun exported nothing to {}",
                    dest.display()
                ));
            }
        }
        // The rerun swept what the killed one left (it had no reason to leave anything
        // itself); outside the store, cgroups and bundles go as well.
        let left = leftovers(&bench.root);
        if !left.is_empty() {
            failures.push(format!("{what}: after the rerun, left behind: {left:?}"));
        }
    }
    // Hidden temps of killed exports went with the next export there.
    let stray: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    if !stray.is_empty() {
        failures.push(format!(
            "hidden export temps left in {}: {stray:?}",
            out.display()
        ));
    }
    let checked = verify_blobs(&bench.root);
    let prune = kiln(&bench.root, &["prune", "-f"]);
    assert_eq!(prune.code, 0, "{}", prune.stderr);
    let left = leftovers(&bench.root);
    if !left.is_empty() {
        failures.push(format!("after kiln prune, left behind: {left:?}"));
    }
    let processes = marked_processes();
    if !processes.is_empty() {
        failures.push(format!("processes outlived kiln: {processes:?}"));
    }
    note(&format!(
        "crash probe: {kills} kills, {checked} blobs verified by digest"
    ));
    assert!(
        kills >= KILLS,
        "only {kills} kills landed while kiln worked"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
