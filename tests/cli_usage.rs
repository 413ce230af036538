//! The command line's contract: usage errors exit 2 and name the flag or value at fault,
//! `kiln build --call outline|targets` describes a build without running it, a Dockerfile
//! error through `kiln build` is located, and every subcommand's help has examples.
//! Outputs are snapshot-tested (tests/snapshots/cli_usage__*.snap).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{Tmp, write_files};

/// Runs kiln in `dir` (so the Dockerfile shows as `./Dockerfile`); a build keeps its store
/// in `dir` too.
fn kiln_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.args(args);
    if args.first() == Some(&"build") {
        cmd.arg("--root").arg(dir.join("root"));
    }
    let out = cmd
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .env_remove("KILN_ROOT")
        .env_remove("KILN_RUNTIME")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const DOCKERFILE: &str = "\
# syntax=docker/dockerfile:1
# BASE the image every stage starts from
ARG BASE=busybox:latest
ARG UNUSED=1

# base shared setup for the other stages
FROM $BASE AS base
# VERSION the version stamped into the binary
ARG VERSION=0.1
RUN --mount=type=secret,id=token,required=true --mount=type=ssh true

# build compiles the app
FROM base AS build
# GOFLAGS flags for the compiler
ARG GOFLAGS=-trimpath
ARG CGO_ENABLED
RUN --mount=type=secret,id=npmrc --mount=type=ssh,id=git,required=true echo $GOFLAGS

FROM --platform=linux/amd64 busybox AS tools

FROM scratch
COPY --from=build /etc/hostname /x
";

fn fixture(tag: &str) -> Tmp {
    let t = Tmp::new(tag);
    write_files(t.path(), &[("Dockerfile", DOCKERFILE)]);
    t
}

#[test]
fn usage_errors_exit_2_and_name_what_is_wrong() {
    let t = fixture("usage");
    let cases: &[(&str, &[&str], &str)] = &[
        ("unknown-flag", &["build", "--bogus", "."], "--bogus"),
        (
            "network-value",
            &["build", "--network", "bridge", "."],
            "bridge",
        ),
        (
            "progress-value",
            &["build", "--progress", "nope", "."],
            "nope",
        ),
        (
            "build-arg-empty-key",
            &["build", "--build-arg", "=x", "."],
            "=x",
        ),
        (
            "secret-without-id",
            &["build", "--secret", "src=./s", "."],
            "id=",
        ),
        ("call-method", &["build", "--call", "lint", "."], "lint"),
        ("missing-context", &["build", "-t", "app"], "CONTEXT"),
    ];
    for (name, args, needle) in cases {
        let (code, stdout, stderr) = kiln_in(t.path(), args);
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(stdout.is_empty(), "{name}: {stdout}");
        assert!(stderr.contains(needle), "{name}: {stderr}");
        insta::assert_snapshot!(*name, format!("exit: {code}\n{stderr}"));
    }
}

#[test]
fn call_targets_lists_stages_without_building() {
    let t = fixture("targets");
    let (code, stdout, stderr) = kiln_in(t.path(), &["build", "--call", "targets", "."]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(!t.join("root").exists(), "--call must not open the store");
    insta::assert_snapshot!("call-targets", stdout);

    let (code, stdout, _) = kiln_in(t.path(), &["build", "--call=targets,format=json", "."]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let targets = doc["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 4);
    assert_eq!(targets[0]["name"], "base");
    assert_eq!(targets[0]["base"], "$BASE");
    assert_eq!(
        targets[0]["description"],
        "shared setup for the other stages"
    );
    assert_eq!(targets[0]["location"]["ranges"][0]["start"]["line"], 7);
    assert_eq!(targets[2]["platform"], "linux/amd64");
    assert_eq!(targets[3]["index"], 3);
    assert_eq!(targets[3]["default"], true);
    assert!(targets[3].get("name").is_none());
}

#[test]
fn call_outline_shows_what_the_target_takes() {
    let t = fixture("outline");
    let (code, stdout, stderr) = kiln_in(t.path(), &["build", "--call", "outline", "."]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!("call-outline", stdout);

    let (code, stdout, stderr) = kiln_in(
        t.path(),
        &[
            "build",
            "--call",
            "outline",
            "--target",
            "build",
            "--build-arg",
            "VERSION=2.0",
            ".",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!("call-outline-target", stdout);

    let (code, stdout, _) = kiln_in(
        t.path(),
        &[
            "build",
            "--call",
            "outline,format=json",
            "--target",
            "base",
            ".",
        ],
    );
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["name"], "base");
    let args: Vec<_> = doc["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["value"].as_str().unwrap()))
        .collect();
    assert_eq!(args, [("BASE", "busybox:latest"), ("VERSION", "0.1")]);
    assert_eq!(doc["secrets"][0]["name"], "token");
    assert_eq!(doc["secrets"][0]["required"], true);
    assert_eq!(doc["ssh"][0]["name"], "default");
    assert!(doc["ssh"][0].get("required").is_none());

    // An unknown target is the same error a build gives.
    let (code, _, stderr) = kiln_in(
        t.path(),
        &["build", "--call", "outline", "--target", "nope", "."],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("target stage \"nope\" could not be found"),
        "{stderr}"
    );
}

#[test]
fn dockerfile_error_through_build_is_located() {
    let t = Tmp::new("build-parse-error");
    write_files(
        t.path(),
        &[("Dockerfile", "FROM busybox\nRUN echo ok\nCOPPY a /b\n")],
    );
    let (code, stdout, stderr) = kiln_in(t.path(), &["build", "-t", "x", "."]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty());
    insta::assert_snapshot!("build-parse-error", format!("exit: {code}\n{stderr}"));
}

#[test]
fn every_subcommand_help_has_examples() {
    let t = Tmp::new("help");
    for sub in [
        "build",
        "images",
        "tag",
        "rmi",
        "parse",
        "pull",
        "push",
        "du",
        "prune",
        "history",
        "inspect",
        "completion",
        "version",
    ] {
        let (code, stdout, stderr) = kiln_in(t.path(), &[sub, "--help"]);
        assert_eq!(code, 0, "{sub}: {stderr}");
        assert!(stdout.contains("Examples:"), "kiln {sub} --help:\n{stdout}");
    }
    let (code, stdout, _) = kiln_in(t.path(), &["--help"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Examples:"), "{stdout}");
}
