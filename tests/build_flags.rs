//! `kiln build --network` and `--no-cache-filter` end to end on the busybox fixture.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{Tmp, busybox, kiln, write_files};

/// Builds `ctx` and exports the result's files to `out`.
fn build_local(root: &Path, ctx: &Path, out: &Path, extra: &[&str]) -> common::Run {
    let mut args = vec!["build".to_owned()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push("-o".into());
    args.push(format!("type=local,dest={}", out.display()));
    args.push(ctx.to_str().unwrap().to_owned());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    kiln(root, &refs)
}

/// The interface names a `/proc/net/dev` lists.
fn interfaces(proc_net_dev: &str) -> BTreeSet<String> {
    proc_net_dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn network_flag_sets_the_default_for_run_steps() {
    let t = Tmp::new("network");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\n\
             RUN cat /proc/net/dev > /plain\n\
             RUN --network=default cat /proc/net/dev > /default\n\
             RUN --network=none cat /proc/net/dev > /none\n\
             RUN --network=host cat /proc/net/dev > /host\n",
        )],
    );
    let host = interfaces(&read(Path::new("/proc/net/dev")));
    let lo: BTreeSet<String> = ["lo".to_owned()].into();
    assert_ne!(
        host, lo,
        "this machine has no interface but lo to test with"
    );

    let out = t.join("out-default");
    build_local(&root, &ctx, &out, &[]).ok();
    assert_eq!(interfaces(&read(&out.join("plain"))), host);
    assert_eq!(interfaces(&read(&out.join("default"))), host);
    assert_eq!(interfaces(&read(&out.join("none"))), lo);
    assert_eq!(interfaces(&read(&out.join("host"))), host);

    let out = t.join("out-none");
    build_local(&root, &ctx, &out, &["--network", "none"]).ok();
    assert_eq!(interfaces(&read(&out.join("plain"))), lo);
    assert_eq!(interfaces(&read(&out.join("default"))), lo);
    assert_eq!(interfaces(&read(&out.join("none"))), lo);
    // A step that asks for the host's network keeps it.
    assert_eq!(interfaces(&read(&out.join("host"))), host);

    let out = t.join("out-host");
    build_local(&root, &ctx, &out, &["--network=host"]).ok();
    assert_eq!(interfaces(&read(&out.join("plain"))), host);
    assert_eq!(interfaces(&read(&out.join("none"))), lo);

    let bad = kiln(
        &root,
        &["build", "--network", "bridge", ctx.to_str().unwrap()],
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("bridge"), "{}", bad.stderr);
}

#[test]
fn no_cache_filter_reruns_only_the_named_stages() {
    let t = Tmp::new("no-cache-filter");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    // Each RUN writes something that differs on every run: a step that ran again shows.
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox AS one\n\
             RUN cat /proc/sys/kernel/random/uuid > /one\n\
             RUN cat /proc/sys/kernel/random/uuid > /one-b\n\
             FROM busybox AS Two\n\
             RUN cat /proc/sys/kernel/random/uuid > /two\n\
             FROM busybox\n\
             COPY --from=one /one /one-b /\n\
             COPY --from=two /two /\n\
             RUN cat /one /two > /final\n",
        )],
    );
    let first = t.join("first");
    build_local(&root, &ctx, &first, &[]).ok();
    let again = t.join("again");
    let r = build_local(&root, &ctx, &again, &[]).ok();
    for f in ["one", "one-b", "two", "final"] {
        assert_eq!(
            read(&first.join(f)),
            read(&again.join(f)),
            "{f}: {}",
            r.stderr
        );
    }

    let filtered = t.join("filtered");
    let r = build_local(&root, &ctx, &filtered, &["--no-cache-filter", "one"]).ok();
    assert_ne!(
        read(&first.join("one")),
        read(&filtered.join("one")),
        "{}",
        r.stderr
    );
    assert_ne!(read(&first.join("one-b")), read(&filtered.join("one-b")));
    assert_eq!(
        read(&first.join("two")),
        read(&filtered.join("two")),
        "{}",
        r.stderr
    );
    // The final stage copies content that changed, so its own steps run again too.
    assert_ne!(read(&first.join("final")), read(&filtered.join("final")));

    // Stage names match case-insensitively, as `--target` does; several may be given.
    let both = t.join("both");
    let r = build_local(
        &root,
        &ctx,
        &both,
        &["--no-cache-filter", "TWO", "--no-cache-filter", "one"],
    )
    .ok();
    assert_ne!(
        read(&filtered.join("one")),
        read(&both.join("one")),
        "{}",
        r.stderr
    );
    assert_ne!(
        read(&filtered.join("two")),
        read(&both.join("two")),
        "{}",
        r.stderr
    );
}
