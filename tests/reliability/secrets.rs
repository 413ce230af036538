//! Secrets never reach what kiln prints or stores: a RUN prints each secret in every shape
//! (whole, with its trailing newline, line by line, base64 whole and wrapped) and the probes
//! look for each shape in the plain, rawjson and tty progress, a failing step's error and
//! output tail, `--metadata-file` and the explain records.

use std::path::Path;

use crate::Bench;
use crate::common::proxy::base64;
use crate::common::{kiln, kiln_env};
use crate::support::serial;

/// A file secret without a newline; also the build arg TOKEN and a tag (a value that reaches
/// the metadata file and the explain records only through them).
const PLAIN: &str = "s3cr3t-Plain-V4lue";
/// A file secret ending in a newline, as `echo value > file` writes one.
const NEWLINE: &str = "n3wl1ne-Secret-V4lue\n";
/// A multi-line secret.
const PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n\
MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n\
NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ\n\
-----END PRIVATE KEY-----\n";
/// A secret from the environment.
const ENV_VALUE: &str = "env-S3cret-V4lue";

/// Prints every secret in every shape, then `tail`.
fn dockerfile(tail: &str) -> String {
    format!(
        "FROM busybox\n\
         ARG TOKEN\n\
         RUN --mount=type=secret,id=plain --mount=type=secret,id=nl \
             --mount=type=secret,id=pem --mount=type=secret,id=envs,env=ENVS \
             cat /run/secrets/plain; echo; cat /run/secrets/nl; \
             printf '%s\\n' \"$(cat /run/secrets/nl)\"; \
             cat /run/secrets/pem; grep -v -- ----- /run/secrets/pem; \
             base64 /run/secrets/plain; base64 /run/secrets/nl; \
             base64 /run/secrets/pem; base64 -w0 /run/secrets/pem; echo; \
             echo \"env=$ENVS\"; echo \"token=$TOKEN\"; echo printed-them-all; {tail}\n"
    )
}

/// Every shape a secret may be printed in, each with what it is.
fn shapes() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, value) in [
        ("plain", PLAIN),
        ("newline", NEWLINE),
        ("pem", PEM),
        ("env", ENV_VALUE),
    ] {
        let trimmed = value.trim_end_matches('\n');
        out.push((format!("{name} whole"), trimmed.to_owned()));
        for (i, line) in trimmed.lines().enumerate() {
            out.push((format!("{name} line {i}"), line.to_owned()));
        }
        for (what, bytes) in [("base64", value), ("base64 without newline", trimmed)] {
            let encoded = base64(bytes.as_bytes());
            out.push((format!("{name} {what}"), encoded.clone()));
            for (i, chunk) in encoded.as_bytes().chunks(76).enumerate() {
                let chunk = String::from_utf8_lossy(chunk).into_owned();
                // The short last line of a wrapped value ("Cg==") is no secret of its own.
                if chunk.len() >= 8 {
                    out.push((format!("{name} {what} line {i}"), chunk));
                }
            }
        }
    }
    out
}

/// The shapes of secrets `text` shows, by name.
fn leaks(text: &str) -> Vec<String> {
    shapes()
        .into_iter()
        .filter(|(_, shape)| text.contains(shape.as_str()))
        .map(|(name, _)| name)
        .collect()
}

/// The `--secret` and `--build-arg` flags for the four secrets, written under `dir`.
fn secret_flags(dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let mut flags = Vec::new();
    for (id, value) in [("plain", PLAIN), ("nl", NEWLINE), ("pem", PEM)] {
        let file = dir.join(id);
        std::fs::write(&file, value).unwrap();
        flags.push("--secret".to_owned());
        flags.push(format!("id={id},src={}", file.display()));
    }
    flags.extend([
        "--secret".to_owned(),
        "id=envs,env=KILN_PROBE_SECRET".to_owned(),
    ]);
    flags.extend(["--build-arg".to_owned(), format!("TOKEN={PLAIN}")]);
    flags
}

#[test]
fn no_secret_shape_reaches_progress_errors_metadata_or_explain_records() {
    let _serial = serial();
    let bench = Bench::new("rel-secrets");
    let flags = secret_flags(&bench.t.join("secrets"));
    let env = [("KILN_PROBE_SECRET", ENV_VALUE)];
    let mut failures = Vec::new();

    // Each progress view of a build that prints them all.
    // (The pause lets the live view draw the step's last lines.)
    let ctx = bench.context("ok", &dockerfile("sleep 1"), &[]);
    for mode in ["plain", "rawjson", "tty"] {
        let meta = bench.t.join(&format!("meta-{mode}.json"));
        let tag = format!("app:{PLAIN}");
        let mut args: Vec<&str> = vec!["build", "--no-cache", "--progress", mode, "-t", &tag];
        args.extend(["--metadata-file", meta.to_str().unwrap()]);
        args.extend(flags.iter().map(String::as_str));
        args.push(ctx.to_str().unwrap());
        let run = kiln_env(&bench.root, &args, &env);
        if run.code != 0 {
            failures.push(format!("{mode}: build failed:\n{}", run.stderr));
            continue;
        }
        // The step did print them: its output is there, masked (the live view shows only
        // the last lines of a step).
        let masked = if mode == "tty" { 2 } else { 10 };
        if !run.stderr.contains("printed-them-all") || run.stderr.matches("****").count() < masked {
            failures.push(format!(
                "{mode}: the secrets' output is not in the log:\n{}",
                run.stderr
            ));
        }
        for (place, text) in [
            ("progress", run.stderr.clone()),
            ("stdout", run.stdout.clone()),
            (
                "--metadata-file",
                std::fs::read_to_string(&meta).unwrap_or_default(),
            ),
        ] {
            let leaked = leaks(&text);
            if !leaked.is_empty() {
                failures.push(format!("{mode}: {place} shows {leaked:?}"));
            }
        }
    }

    // The explain records those builds left, and the per-path listings kept beside them.
    let records = bench.root.join("explain");
    let mut read = 0;
    let mut dirs = vec![records.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            read += 1;
            let leaked = leaks(&std::fs::read_to_string(&path).unwrap());
            if !leaked.is_empty() {
                failures.push(format!(
                    "explain record {}: shows {leaked:?}",
                    path.display()
                ));
            }
        }
    }
    if read == 0 {
        failures.push(format!("no explain record under {}", records.display()));
    }

    // A step that fails after printing them: its error quotes the output's tail.
    let ctx = bench.context("fail", &dockerfile("exit 3"), &[]);
    for mode in ["plain", "rawjson", "tty"] {
        let mut args: Vec<&str> = vec!["build", "--progress", mode];
        args.extend(flags.iter().map(String::as_str));
        args.push(ctx.to_str().unwrap());
        let run = kiln_env(&bench.root, &args, &env);
        if run.code == 0 || !run.stderr.contains("printed-them-all") {
            failures.push(format!(
                "{mode}: the failing build did not fail as it should:\n{}",
                run.stderr
            ));
        }
        let leaked = leaks(&run.stderr);
        if !leaked.is_empty() {
            failures.push(format!("{mode}: the failed step's error shows {leaked:?}"));
        }
    }

    // The store's own record of the tag is the real name: only what kiln prints is masked.
    assert!(
        kiln(&bench.root, &["images"]).stdout.contains(PLAIN),
        "the tag itself must keep its name"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
