//! `kiln build --explain-cache` end to end: after a first build, one thing changes (a context
//! file, a build arg, the base image, an instruction) and the explanation must name exactly
//! that cause at the step where it enters, and "because step N changed" after it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::{Tmp, busybox, kiln, write_files};

const DOCKERFILE: &str = "FROM busybox\n\
    ARG V=one\n\
    COPY a.txt b.txt /app/\n\
    RUN --mount=type=secret,id=tok cat /run/secrets/tok > /dev/null && echo \"$V\" > /v.txt\n\
    RUN echo a > /x.txt\n\
    RUN cat /app/a.txt /v.txt /x.txt > /all.txt\n";

const RUN_V: &str = "RUN cat /run/secrets/tok > /dev/null && echo \"$V\" > /v.txt";

struct Setup {
    t: Tmp,
    root: PathBuf,
    ctx: PathBuf,
    secret: PathBuf,
}

impl Setup {
    fn new(tag: &str) -> Self {
        let t = Tmp::new(tag);
        let root = t.join("root");
        busybox(&root, &t);
        let ctx = t.join("ctx");
        write_files(
            &ctx,
            &[
                ("Dockerfile", DOCKERFILE),
                ("a.txt", "alpha\n"),
                ("b.txt", "beta\n"),
            ],
        );
        let secret = t.join("secret.txt");
        std::fs::write(&secret, "first-secret-value").unwrap();
        Setup {
            t,
            root,
            ctx,
            secret,
        }
    }

    fn build(&self, extra: &[&str]) -> common::Run {
        let secret = format!("id=tok,src={}", self.secret.display());
        let mut args = vec!["build", "--secret", &secret];
        args.extend_from_slice(extra);
        args.push(self.ctx.to_str().unwrap());
        kiln(&self.root, &args).ok()
    }

    fn dockerfile(&self) -> String {
        std::fs::canonicalize(self.ctx.join("Dockerfile"))
            .unwrap()
            .display()
            .to_string()
    }

    /// The explanation block of a build's output.
    fn explain(&self, extra: &[&str]) -> String {
        let mut args = vec!["--explain-cache"];
        args.extend_from_slice(extra);
        let run = self.build(&args);
        explanation(&run.stderr)
    }
}

fn explanation(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("explain-cache: "))
        .unwrap_or_else(|| panic!("no explanation in:\n{stderr}"));
    let len = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with("explain-cache: "))
        .map_or(1, |n| n + 2);
    lines[start..start + len].join("\n")
}

fn header(s: &Setup) -> String {
    format!(
        "explain-cache: compared with the last build of {} (default target)",
        s.dockerfile()
    )
}

#[test]
fn first_build_has_nothing_to_compare_with_then_a_rebuild_is_all_cached() {
    let s = Setup::new("explain-first");
    assert_eq!(
        s.explain(&[]),
        format!(
            "explain-cache: no earlier build of {} (default target) in this store to compare with",
            s.dockerfile()
        )
    );
    assert_eq!(
        s.explain(&[]),
        format!("{}\nexplain-cache: 0 steps missed, 4 cached", header(&s))
    );
    // Another Dockerfile is another record.
    let other = s.ctx.join("Other.Dockerfile");
    std::fs::write(&other, DOCKERFILE).unwrap();
    let e = s.explain(&["-f", other.to_str().unwrap()]);
    assert!(e.starts_with("explain-cache: no earlier build of "), "{e}");
}

#[test]
fn a_changed_context_file_is_named_at_the_copy() {
    let s = Setup::new("explain-file");
    s.build(&[]);
    std::fs::write(s.ctx.join("a.txt"), "ALPHA\n").unwrap();
    let copy = "step 2 (COPY a.txt b.txt /app/)";
    assert_eq!(
        s.explain(&[]),
        format!(
            "{}\n\
             [stage-0 2/6] COPY a.txt b.txt /app/ missed\n  \
             - context files modified: a.txt\n\
             [stage-0 3/6] {RUN_V} missed\n  \
             - because {copy} changed\n\
             [stage-0 4/6] RUN echo a > /x.txt missed\n  \
             - because step 3 ({RUN_V}) changed\n\
             [stage-0 5/6] RUN cat /app/a.txt /v.txt /x.txt > /all.txt missed\n  \
             - because step 4 (RUN echo a > /x.txt) changed\n\
             explain-cache: 4 steps missed, 0 cached",
            header(&s)
        )
    );
    // A new file and a removed one are named as such.
    std::fs::rename(s.ctx.join("b.txt"), s.ctx.join("c.txt")).unwrap();
    write_files(
        &s.ctx,
        &[("Dockerfile", &DOCKERFILE.replace("b.txt", "c.txt"))],
    );
    let e = s.explain(&[]);
    assert!(
        e.contains("  - instruction changed: COPY a.txt b.txt /app/ → COPY a.txt c.txt /app/\n  - context files added: c.txt\n  - context files removed: b.txt\n"),
        "{e}"
    );
}

#[test]
fn a_changed_build_arg_is_named_at_the_first_step_using_it_and_secrets_never_show() {
    let s = Setup::new("explain-arg");
    s.build(&["--build-arg", "V=two"]);
    std::fs::write(&s.secret, "second-secret-value").unwrap();
    let e = s.explain(&["--build-arg", "V=three"]);
    assert_eq!(
        e,
        format!(
            "{}\n\
             [stage-0 3/6] {RUN_V} missed\n  \
             - build arg V changed: \"two\" → \"three\"\n\
             [stage-0 4/6] RUN echo a > /x.txt missed\n  \
             - because step 3 ({RUN_V}) changed\n\
             [stage-0 5/6] RUN cat /app/a.txt /v.txt /x.txt > /all.txt missed\n  \
             - because step 4 (RUN echo a > /x.txt) changed\n\
             explain-cache: 3 steps missed, 1 cached",
            header(&s)
        )
    );
    // Back to the Dockerfile's default: the arg is shown going back to it.
    let e = s.explain(&[]);
    assert!(
        e.contains("  - build arg V changed: \"three\" → \"one\"\n"),
        "{e}"
    );
    // Neither a record nor the listings kept beside it holds the secret.
    let mut files = 0;
    let mut dirs = vec![s.root.join("explain")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files += 1;
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(!text.contains("secret-value"), "a secret was recorded");
            }
        }
    }
    assert!(files > 1, "a record and its listings");
}

#[test]
fn a_new_base_image_is_named_with_both_digests() {
    let s = Setup::new("explain-base");
    s.build(&[]);
    let old = inspect_id(&s.root, "busybox");
    let base = s.t.join("base");
    write_files(
        &base,
        &[("Dockerfile", "FROM busybox\nRUN echo extra > /extra\n")],
    );
    let new = kiln(
        &s.root,
        &[
            "build",
            "-q",
            "-t",
            "busybox:latest",
            base.to_str().unwrap(),
        ],
    )
    .ok()
    .stdout
    .trim()
    .to_owned();
    assert_ne!(old, new);
    assert_eq!(
        s.explain(&[]),
        format!(
            "{}\n\
             [stage-0 1/6] FROM busybox changed\n  \
             - base image busybox changed: {old} → {new}\n\
             [stage-0 2/6] COPY a.txt b.txt /app/ missed\n  \
             - because step 1 (FROM busybox) changed\n\
             [stage-0 3/6] {RUN_V} missed\n  \
             - because step 2 (COPY a.txt b.txt /app/) changed\n\
             [stage-0 4/6] RUN echo a > /x.txt missed\n  \
             - because step 3 ({RUN_V}) changed\n\
             [stage-0 5/6] RUN cat /app/a.txt /v.txt /x.txt > /all.txt missed\n  \
             - because step 4 (RUN echo a > /x.txt) changed\n\
             explain-cache: 4 steps missed, 0 cached",
            header(&s)
        )
    );
}

#[test]
fn a_changed_instruction_shows_both_texts() {
    let s = Setup::new("explain-text");
    s.build(&[]);
    write_files(
        &s.ctx,
        &[(
            "Dockerfile",
            &DOCKERFILE.replace("RUN echo a > /x.txt", "RUN echo b > /x.txt"),
        )],
    );
    assert_eq!(
        s.explain(&[]),
        format!(
            "{}\n\
             [stage-0 4/6] RUN echo b > /x.txt missed\n  \
             - instruction changed: RUN echo a > /x.txt → RUN echo b > /x.txt\n\
             [stage-0 5/6] RUN cat /app/a.txt /v.txt /x.txt > /all.txt missed\n  \
             - because step 4 (RUN echo b > /x.txt) changed\n\
             explain-cache: 2 steps missed, 2 cached",
            header(&s)
        )
    );
}

fn inspect_id(root: &Path, image: &str) -> String {
    let out = kiln(root, &["inspect", image]).ok().stdout;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0]["Id"].as_str().unwrap().to_owned()
}
