//! RUN end to end on the busybox fixture: layer diffs (whiteouts, opaque dirs, owners,
//! hardlinks) checked with umoci, isolation checked from inside the step, every mount type,
//! secrets kept out of every blob, parallel stages, failures and interruption.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Tmp, busybox, describe, kiln, kiln_env, tool, write_files};

fn build_local(root: &Path, ctx: &Path, out: &Path, extra: &[&str]) -> common::Run {
    let mut args = vec!["build".to_owned()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push("-o".into());
    args.push(format!("type=local,dest={}", out.display()));
    args.push(ctx.to_str().unwrap().to_owned());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    kiln(root, &refs)
}

#[test]
fn run_diffs_become_exact_layers() {
    let t = Tmp::new("run-diff");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\n\
             RUN mkdir -p /d/sub /keep && echo a > /d/sub/a && echo k > /keep/k && echo m > /moved \
                 && chown 1000:50 /keep/k && chmod 0640 /keep/k && ln /keep/k /keep/hard\n\
             RUN rm /etc/group && mv /moved /moved2 && rm -rf /d && mkdir /d && echo new > /d/n\n",
        )],
    );
    let oci = t.join("oci");
    kiln(
        &root,
        &[
            "build",
            "-t",
            "diff:1",
            "-o",
            &format!("type=oci,tar=false,dest={}", oci.display()),
            ctx.to_str().unwrap(),
        ],
    )
    .ok();
    let bundle = t.join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:1", oci.display()),
            bundle.to_str().unwrap(),
        ],
    )
    .ok();
    let rootfs = bundle.join("rootfs");
    assert!(
        !rootfs.join("etc/group").exists(),
        "rm /etc/group: whiteout missing"
    );
    assert!(!rootfs.join("moved").exists());
    assert_eq!(describe(&rootfs, "/moved2"), "644 0:0 file:m\n");
    assert!(
        !rootfs.join("d/sub").exists(),
        "rm -rf d && mkdir d: opaque dir missing"
    );
    assert_eq!(describe(&rootfs, "/d/n"), "644 0:0 file:new\n");
    assert_eq!(describe(&rootfs, "/keep/k"), "640 1000:50 file:k\n");
    use std::os::unix::fs::MetadataExt as _;
    let ino = |p: &str| std::fs::metadata(rootfs.join(p)).unwrap().ino();
    assert_eq!(ino("keep/hard"), ino("keep/k"), "hardlink not kept");
    // The layer itself carries the overlay conventions as OCI whiteouts.
    let layers = std::fs::read_dir(oci.join("blobs/sha256")).unwrap().count();
    assert!(layers >= 4);
}

#[test]
fn isolation_seen_from_inside_a_step() {
    let t = Tmp::new("run-iso");
    let root = t.join("root");
    busybox(&root, &t);
    std::fs::write("/tmp/kiln-host-marker", "host").unwrap();
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\n\
             RUN mkdir /out && echo $$ > /out/pid && ls /proc | grep -E '^[0-9]+$' | wc -l > /out/nprocs \
                 && hostname > /out/hostname && grep CapEff /proc/self/status > /out/cap \
                 && grep NoNewPrivs /proc/self/status > /out/nnp && grep Seccomp: /proc/self/status > /out/seccomp \
                 && (cat /proc/kcore 2>/dev/null | head -c 1 | wc -c > /out/kcore) \
                 && (test -e /tmp/kiln-host-marker && echo visible || echo hidden) > /out/host\n\
             RUN --network=none cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' > /out/ifaces\n",
        )],
    );
    let out = t.join("out");
    build_local(&root, &ctx, &out, &[]).ok();
    let read = |f: &str| {
        std::fs::read_to_string(out.join("out").join(f))
            .unwrap()
            .trim()
            .to_owned()
    };
    let pid: u32 = read("pid").parse().unwrap();
    assert!(
        pid <= 2,
        "the step's shell is PID {pid}, not the namespace's first process"
    );
    let nprocs: u32 = read("nprocs").parse().unwrap();
    assert!(
        nprocs <= 6,
        "the step sees {nprocs} processes: host processes visible"
    );
    assert_eq!(read("hostname"), "buildkitsandbox");
    assert_eq!(read("cap"), "CapEff:\t00000000a80425fb");
    assert_eq!(read("nnp"), "NoNewPrivs:\t1");
    assert_eq!(read("seccomp"), "Seccomp:\t2");
    assert_eq!(read("kcore"), "0", "/proc/kcore is not masked");
    assert_eq!(read("host"), "hidden", "the host's /tmp is visible");
    assert_eq!(
        read("ifaces"),
        "lo",
        "--network=none has more than loopback"
    );
}

#[test]
fn mounts_bind_cache_tmpfs_secret() {
    let t = Tmp::new("run-mounts");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    let secret_value = "s3cr3t-v4lue-that-must-not-leak";
    write_files(
        &ctx,
        &[
            ("ctxfile.txt", "from the context\n"),
            ("secret.txt", secret_value),
            (
                "Dockerfile",
                "FROM busybox AS other\nRUN mkdir /stuff && echo other > /stuff/o\n\
              FROM busybox\n\
              RUN --mount=type=bind,source=ctxfile.txt,target=/m/c.txt cp /m/c.txt /copied\n\
              RUN --mount=type=bind,from=other,source=/stuff,target=/o,rw echo scratch > /o/w && cp /o/o /from-other\n\
              RUN --mount=type=cache,target=/cache,id=c1 date +%s%N >> /cache/stamps && wc -l < /cache/stamps > /count\n\
              RUN --mount=type=tmpfs,target=/t,size=1048576 echo t > /t/x && grep -q ' /t tmpfs' /proc/mounts && echo ok > /tmpfs-ok\n\
              RUN --mount=type=secret,id=tok,mode=0400 cat /run/secrets/tok | wc -c > /secret-len\n\
              RUN --mount=type=secret,id=tok,env=TOKEN test -n \"$TOKEN\" && echo ok > /secret-env-ok\n",
            ),
        ],
    );
    let secret_arg = format!("id=tok,src={}", ctx.join("secret.txt").display());
    let out = t.join("out");
    let oci = t.join("oci");
    let run = kiln(
        &root,
        &[
            "build",
            "--secret",
            &secret_arg,
            "-o",
            &format!("type=local,dest={}", out.display()),
            "-o",
            &format!("type=oci,tar=false,dest={}", oci.display()),
            ctx.to_str().unwrap(),
        ],
    )
    .ok();
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    assert_eq!(read("copied"), "from the context\n");
    assert_eq!(read("from-other"), "other\n");
    assert!(
        !out.join("o/w").exists() && !out.join("m").exists(),
        "mount stubs or rw writes leaked"
    );
    assert_eq!(read("count").trim(), "1");
    assert_eq!(read("tmpfs-ok"), "ok\n");
    assert!(!out.join("t").exists() && !out.join("cache").exists());
    assert_eq!(read("secret-len").trim(), secret_value.len().to_string());
    assert_eq!(read("secret-env-ok"), "ok\n");
    assert!(!out.join("run/secrets/tok").exists());
    // The secret's bytes are in no blob of the store or the output, nor in the log.
    for dir in [root.join("blobs"), oci.join("blobs")] {
        for e in walk(&dir) {
            let data = std::fs::read(&e).unwrap();
            assert!(
                !contains(&data, secret_value.as_bytes()),
                "secret found in {}",
                e.display()
            );
            let plain = gunzip(&data);
            assert!(
                !contains(&plain, secret_value.as_bytes()),
                "secret found in {}",
                e.display()
            );
        }
    }
    assert!(!run.stderr.contains(secret_value));
    // A cache mount keeps its contents between builds (the step itself must rerun).
    let out2 = t.join("out2");
    build_local(&root, &ctx, &out2, &["--no-cache", "--secret", &secret_arg]).ok();
    assert_eq!(
        std::fs::read_to_string(out2.join("count")).unwrap().trim(),
        "2"
    );
}

/// A stage's absolute symlinks lead inside that stage's filesystem wherever a step reads
/// through them: COPY --from sources (buildah-bud's symlink fixtures), bind-mount sources (the
/// host's `/etc` must never be what gets mounted) and cache-mount seeds (`from=` with and
/// without `source=`, whose cache directory did not exist yet).
#[test]
fn symlinked_sources_resolve_inside_their_stage() {
    let t = Tmp::new("run-symlinked-sources");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox AS builder
             RUN mkdir -p /my/data /etc/kiln-probe && touch /my/data/myexe && ln -s /my/data /data                  && echo symlink-test > /bin/myexe.1 && ln -s /bin/myexe.1 /bin/myexe                  && echo stage > /etc/kiln-probe/where && ln -s /etc /etc-link
             FROM busybox
             COPY --from=builder /data /data
             COPY --from=builder /bin/myexe /bin/
             RUN --mount=type=bind,from=builder,source=/etc-link,target=/m cat /m/kiln-probe/where > /bound
             RUN --mount=type=cache,from=builder,target=/c ls /c/my/data > /seeded-root
             RUN --mount=type=cache,id=sub,from=builder,source=/data,target=/c ls /c > /seeded-sub
",
        )],
    );
    let out = t.join("out");
    build_local(&root, &ctx, &out, &[]).ok();
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    assert!(out.join("data").is_dir() && !out.join("data").is_symlink());
    assert!(out.join("data/myexe").is_file());
    assert_eq!(read("bin/myexe"), "symlink-test\n");
    assert!(!out.join("bin/myexe").is_symlink());
    assert_eq!(read("bound"), "stage\n");
    assert_eq!(read("seeded-root"), "myexe\n");
    assert_eq!(read("seeded-sub"), "myexe\n");
}

/// BuildKit's testDockerfileCheckHostname and testBuiltinArgs: BUILDKIT_SANDBOX_HOSTNAME
/// names the container (/etc/hosts, `hostname`, the shell's $HOSTNAME); a proxy build arg
/// in either case is seen in both, undeclared, and is not part of the cache key (a changed
/// proxy reuses the step).
#[test]
fn sandbox_hostname_and_proxy_build_args() {
    let t = Tmp::new("run-hostname-proxy");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\n\
             RUN grep -q foo /etc/hosts && [ \"$(hostname)\" = foo ] && echo $HOSTNAME > /host\n\
             ARG FOO\n\
             RUN echo -n $HTTP_PROXY:$http_proxy:$NO_PROXY:$FOO > /proxy\n",
        )],
    );
    let out = t.join("out");
    let args = |proxy: &str| {
        vec![
            "--build-arg".to_owned(),
            "BUILDKIT_SANDBOX_HOSTNAME=foo".to_owned(),
            "--build-arg".to_owned(),
            format!("http_proxy={proxy}"),
            "--build-arg".to_owned(),
            "FOO=f".to_owned(),
        ]
    };
    let a1 = args("hp1");
    build_local(
        &root,
        &ctx,
        &out,
        &a1.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .ok();
    assert_eq!(std::fs::read_to_string(out.join("host")).unwrap(), "foo\n");
    assert_eq!(
        std::fs::read_to_string(out.join("proxy")).unwrap(),
        "hp1:hp1::f"
    );
    let out2 = t.join("out2");
    let a2 = args("hp2");
    build_local(
        &root,
        &ctx,
        &out2,
        &a2.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .ok();
    assert_eq!(
        std::fs::read_to_string(out2.join("proxy")).unwrap(),
        "hp1:hp1::f",
        "a changed proxy must not invalidate the step"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut child = std::process::Command::new("gzip")
        .args(["-dc"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    out.stdout
}

#[test]
fn independent_stages_run_in_parallel() {
    let t = Tmp::new("run-par");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox AS a\nRUN sleep 2 && echo a > /a\n\
            FROM busybox AS b\nRUN sleep 2 && echo b > /b\n\
            FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
        )],
    );
    let start = Instant::now();
    kiln(&root, &["build", ctx.to_str().unwrap()]).ok();
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(3500),
        "two 2 s stages took {took:?}: not parallel"
    );
}

#[test]
fn failing_run_names_line_command_and_exit_code() {
    let t = Tmp::new("run-fail");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo about to fail && exit 3\n",
        )],
    );
    let run = kiln(&root, &["build", "-t", "fails:1", ctx.to_str().unwrap()]).failed();
    assert!(run.stderr.contains("exit code: 3"), "{}", run.stderr);
    assert!(run.stderr.contains("about to fail"), "{}", run.stderr);
    assert!(run.stderr.contains("Dockerfile:2"), "{}", run.stderr);
    assert!(!kiln(&root, &["images"]).ok().stdout.contains("fails"));
}

#[test]
fn sandbox_and_runc_give_identical_layers() {
    let t = Tmp::new("run-runc");
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN mkdir -p /app && echo hi > /app/x && rm /etc/group && chmod 0700 /app\n\
             RUN true\nRUN true # empty layers repeat: overlay must not see one twice\nRUN true # 3\n",
        )],
    );
    let mut ids = Vec::new();
    for runtime in ["sandbox", "runc"] {
        let root = t.join(runtime);
        let env = [("SOURCE_DATE_EPOCH", "1700000000")];
        common::busybox_env(&root, &t, &env);
        let run = kiln_env(
            &root,
            &["build", "-q", "--runtime", runtime, ctx.to_str().unwrap()],
            &env,
        )
        .ok();
        ids.push(run.stdout.trim().to_owned());
    }
    assert_eq!(ids[0], ids[1], "sandbox and runc produced different images");
}

#[test]
fn interrupted_run_leaves_nothing_behind() {
    let t = Tmp::new("run-int");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[("Dockerfile", "FROM busybox\nRUN echo started && sleep 30\n")],
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "build",
            "--root",
            root.to_str().unwrap(),
            ctx.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the step runs (its `sleep 30` exists), then interrupt like Ctrl-C does.
    let deadline = Instant::now() + Duration::from_secs(20);
    let step_running = || {
        tool("ps", &["-eo", "args"])
            .stdout
            .lines()
            .any(|l| l.trim_end().ends_with("sleep 30"))
    };
    while Instant::now() < deadline && !step_running() {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(step_running(), "the step never started");
    std::thread::sleep(Duration::from_millis(200));
    nix_kill(child.id());
    let interrupted = Instant::now();
    let status = child.wait().unwrap();
    assert!(!status.success());
    // The step is killed, not waited for: the `sleep 30` must not run to its end.
    assert!(
        interrupted.elapsed() < Duration::from_secs(5),
        "kiln took {:?} to stop after SIGINT",
        interrupted.elapsed()
    );
    std::thread::sleep(Duration::from_millis(300));
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(root.to_str().unwrap()),
        "mounts left behind:\n{mounts}"
    );
    // The step's processes are killed with its container; on a loaded machine the kernel
    // may take a moment to reap them, so they get a few seconds to be gone.
    let gone_by = Instant::now() + Duration::from_secs(5);
    while step_running() && Instant::now() < gone_by {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!step_running(), "the step's processes survived");
    let tmp = root.join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.iter()
            .all(|n| n.to_string_lossy().starts_with("empty")),
        "temp dirs left: {left:?}"
    );
    // The next build works.
    write_files(
        &ctx,
        &[("Dockerfile", "FROM busybox\nRUN echo fine > /f\n")],
    );
    kiln(&root, &["build", ctx.to_str().unwrap()]).ok();
}

fn nix_kill(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn mount_options_ssh_and_required_secrets() {
    let t = Tmp::new("run-opts");
    let root = t.join("root");
    busybox(&root, &t);
    // A stand-in SSH agent: any unix socket the step must see at $SSH_AUTH_SOCK.
    let sock = t.join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\n\
             RUN --mount=type=cache,target=/c,id=opts,sharing=locked,mode=0700,uid=1000,gid=50 \
                 stat -c '%a %u %g' /c > /cache-meta\n\
             RUN --mount=type=cache,target=/p,sharing=private touch /p/x && echo ok > /private-ok\n\
             RUN --mount=type=tmpfs,target=/t,size=65536 df -k /t | tail -1 | awk '{print $2}' > /tmpfs-kb\n\
             RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo ok > /ssh-ok\n\
             RUN --mount=type=secret,id=opt,uid=1000,gid=50,mode=0440,target=/s stat -c '%a %u %g' /s > /secret-meta\n",
        )],
    );
    let secret = t.join("opt.txt");
    std::fs::write(&secret, "x").unwrap();
    let out = t.join("out");
    let run = common::kiln_env(
        &root,
        &[
            "build",
            "--ssh",
            "default",
            "--secret",
            &format!("id=opt,src={}", secret.display()),
            "-o",
            &format!("type=local,dest={}", out.display()),
            ctx.to_str().unwrap(),
        ],
        &[("SSH_AUTH_SOCK", sock.to_str().unwrap())],
    )
    .ok();
    let read = |f: &str| {
        std::fs::read_to_string(out.join(f))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(read("cache-meta"), "700 1000 50", "{}", run.stderr);
    assert_eq!(read("private-ok"), "ok");
    assert_eq!(read("tmpfs-kb"), "64");
    assert_eq!(read("ssh-ok"), "ok");
    assert_eq!(read("secret-meta"), "440 1000 50");
    // A required secret that was not given fails the build, naming it.
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=secret,id=absent,required true\n",
        )],
    );
    let fail = kiln(&root, &["build", ctx.to_str().unwrap()]).failed();
    assert!(
        fail.stderr.contains("secret absent: not provided"),
        "{}",
        fail.stderr
    );
}

#[test]
fn failing_run_error_snapshot() {
    let t = Tmp::new("run-snap");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\nWORKDIR /w\nRUN echo one && echo two >&2 \\\n  && exit 7\n",
        )],
    );
    let run = kiln(&root, &["build", ctx.to_str().unwrap()]).failed();
    // Keep the diagnostic, not the progress lines; hide the temp path.
    let start = run.stderr.find("  x ").unwrap_or(0);
    let shown = run.stderr[start..].replace(ctx.to_str().unwrap(), "[CTX]");
    insta::assert_snapshot!("failing_run", shown);
}

#[test]
fn user_by_name_workdir_shell_and_exec_forms() {
    let t = Tmp::new("run-user");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\nARG BUILD_ONLY=arg-value\nENV FROM_ENV=env-value\n\
             WORKDIR /srv/app\nUSER app:staff\n\
             RUN id -u > /tmp/uid && id -g > /tmp/gid && pwd > /tmp/pwd \
                 && echo \"$BUILD_ONLY $FROM_ENV\" > /tmp/env\n\
             USER 0\nSHELL [\"/bin/sh\", \"-e\", \"-c\"]\n\
             RUN [\"/bin/sh\", \"-c\", \"echo exec > /tmp/exec\"]\n\
             RUN <<EOF\necho heredoc > /tmp/heredoc\nEOF\n",
        )],
    );
    let out = t.join("out");
    build_local(&root, &ctx, &out, &[]).ok();
    let read = |f: &str| {
        std::fs::read_to_string(out.join("tmp").join(f))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(read("uid"), "1000");
    assert_eq!(read("gid"), "50");
    assert_eq!(read("pwd"), "/srv/app");
    assert_eq!(read("env"), "arg-value env-value");
    assert_eq!(read("exec"), "exec");
    assert_eq!(read("heredoc"), "heredoc");
}

/// The README's quick start builds examples/multi-stage: it must keep working.
#[test]
fn readme_example_builds_and_runs_its_steps() {
    let t = Tmp::new("example");
    let root = t.join("root");
    busybox(&root, &t);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/multi-stage");
    let out = t.join("out");
    build_local(&root, &example, &out, &["-t", "hello:1.0"]).ok();
    assert_eq!(
        std::fs::read_to_string(out.join("greeting")).unwrap(),
        "hello, kiln\n"
    );
}
