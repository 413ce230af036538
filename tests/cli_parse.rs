//! `kiln parse` end to end: the BuildKit dump of every conformance case, the JSON form,
//! standard input, exit codes, and snapshot-tested diagnostics for bad Dockerfiles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn kiln(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NO_COLOR")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn conformance_dir() -> PathBuf {
    std::env::var_os("KILN_CONFORMANCE_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance"),
        PathBuf::from,
    )
}

#[test]
fn buildkit_dump_equals_every_conformance_result() {
    let dir = conformance_dir().join("buildkit-parser/testfiles");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 33, "expected the 33 BuildKit parser cases");
    for case in cases {
        let file = case.join("Dockerfile");
        let out = kiln(
            &["parse", "--format", "buildkit", file.to_str().unwrap()],
            None,
        );
        assert!(
            out.status.success(),
            "{}: {}",
            case.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let want = std::fs::read(case.join("result")).unwrap();
        assert!(
            out.stdout == want,
            "{}:\n--- want\n{}--- got\n{}",
            case.display(),
            String::from_utf8_lossy(&want),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn stdin_and_default_format() {
    let out = kiln(&["parse", "-"], Some("from a\nrun echo hi\n"));
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "(from \"a\")\n(run \"echo hi\")\n"
    );
}

#[test]
fn default_file_is_dockerfile_in_the_current_directory() {
    let dir = std::env::temp_dir().join(format!("kiln-parse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("parse")
        .current_dir(&dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "(from \"scratch\")\n"
    );
}

#[test]
fn json_lists_typed_instructions_with_spans_and_stages() {
    let out = kiln(
        &[
            "parse",
            "--format",
            "json",
            "examples/multi-stage/Dockerfile",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let insts = doc["instructions"].as_array().unwrap();
    assert_eq!(insts[1]["instruction"], "from");
    assert_eq!(insts[1]["name"], "builder");
    assert_eq!(insts[1]["start"]["line"], 6);
    assert_eq!(insts[1]["start"]["col"], 1);
    let run = insts.iter().find(|i| i["instruction"] == "run").unwrap();
    assert_eq!(run["start"]["line"], 9);
    assert_eq!(run["end"]["line"], 11);
    assert_eq!(doc["stages"][1]["deps"], serde_json::json!([0]));
    assert_eq!(doc["stages"][0]["base"]["image"], "busybox:latest");
    assert_eq!(doc["directives"][0]["name"], "syntax");
}

#[test]
fn missing_file_names_the_path() {
    let out = kiln(&["parse", "does/not/exist.Dockerfile"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("does/not/exist.Dockerfile"), "{err}");
}

#[test]
fn invalid_utf8_names_line_and_column() {
    let dir = std::env::temp_dir().join(format!("kiln-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("Dockerfile");
    std::fs::write(&file, b"FROM a\nRUN echo \xff\n").unwrap();
    let out = kiln(&["parse", file.to_str().unwrap()], None);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("Dockerfile:2:10: the Dockerfile is not valid UTF-8 (byte 0xff)"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2_and_name_the_flag() {
    let out = kiln(&["parse", "--frmat", "json"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("--frmat"));
    let out = kiln(&["parse", "--format", "yaml"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("yaml"));
}

/// Every Dockerfile under testdata/diagnostics: exit code and rendered diagnostics.
#[test]
fn diagnostics_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/diagnostics");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    files.sort();
    assert!(files.len() >= 15);
    for file in files {
        let name = file.file_stem().unwrap().to_str().unwrap().to_owned();
        let rel = format!("testdata/diagnostics/{name}.Dockerfile");
        let out = kiln(&["parse", "--format", "json", &rel], None);
        let shown = format!(
            "exit: {}\n{}",
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr)
        );
        insta::assert_snapshot!(name, shown);
    }
}
