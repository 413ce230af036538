//! Rootless kiln: builds run as an ordinary user (made by the test, removed after it), kiln
//! re-executing itself in a user namespace mapped from /etc/subuid and /etc/subgid by
//! newuidmap/newgidmap. The same builds as root give the same image digests with
//! `SOURCE_DATE_EPOCH`; without subordinate ids a single-owner build works and says what will
//! not. Needs root (to make the users) and Debian's uidmap (`bash .ci/setup`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{Run, Tmp, kiln_bin, tool, write_files};

/// A user made for one test, with or without subordinate ids; deleted when dropped.
struct TestUser {
    name: String,
}

/// useradd, usermod, userdel and this file's own edits of /etc/sub[ug]id, one at a time
/// (the tests of this file run in parallel threads; the tools lock, edits would race).
static ACCOUNTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl TestUser {
    fn create(tag: &str, subordinate_ids: bool) -> Self {
        let _one_at_a_time = ACCOUNTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let name = format!("kiln-{tag}-{}", std::process::id() % 100_000);
        let made = tool("useradd", &["-M", "-s", "/bin/sh", &name]);
        assert_eq!(made.code, 0, "useradd {name}: {}", made.stderr);
        let user = TestUser { name };
        for file in ["/etc/subuid", "/etc/subgid"] {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let prefix = format!("{}:", user.name);
            let has = text.lines().any(|l| l.starts_with(&prefix));
            if subordinate_ids && !has {
                // useradd gives new users a range where login.defs says so; else one free
                // above every range there.
                let end = text
                    .lines()
                    .filter_map(|l| {
                        let f: Vec<&str> = l.split(':').collect();
                        Some(f.get(1)?.parse::<u64>().ok()? + f.get(2)?.parse::<u64>().ok()?)
                    })
                    .max()
                    .unwrap_or(100_000)
                    .max(100_000);
                let flag = if file.ends_with("subuid") {
                    "--add-subuids"
                } else {
                    "--add-subgids"
                };
                let range = format!("{end}-{}", end + 65_535);
                let added = tool("usermod", &[flag, &range, &user.name]);
                assert_eq!(added.code, 0, "usermod {flag}: {}", added.stderr);
            }
            if !subordinate_ids && has {
                let kept: String = text
                    .lines()
                    .filter(|l| !l.starts_with(&prefix))
                    .map(|l| format!("{l}\n"))
                    .collect();
                std::fs::write(file, kept).unwrap();
            }
        }
        user
    }

    fn uid(&self) -> String {
        tool("id", &["-u", &self.name]).stdout.trim().to_owned()
    }

    /// Gives `dir` (recursively) to this user, as a user's own checkout and store are.
    fn own(&self, dir: &Path) {
        let owned = tool(
            "chown",
            &["-R", &format!("{0}:{0}", self.name), dir.to_str().unwrap()],
        );
        assert_eq!(owned.code, 0, "chown: {}", owned.stderr);
    }

    /// Runs kiln as this user.
    fn kiln(&self, root: &Path, args: &[&str]) -> Run {
        let out = Command::new("runuser")
            .args(["-u", &self.name, "--"])
            .arg(kiln_bin())
            .args(args)
            .arg("--root")
            .arg(root)
            .env("SOURCE_DATE_EPOCH", "0")
            .env_remove("KILN_ROOT")
            .output()
            .unwrap();
        run_of(&out)
    }
}

fn run_of(out: &std::process::Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _one_at_a_time = ACCOUNTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// Runs kiln as root, with the same pinned epoch.
fn kiln_root(root: &Path, args: &[&str]) -> Run {
    common::kiln_env(root, args, &[("SOURCE_DATE_EPOCH", "0")])
}

/// Runs a fixture script of this repository with `interpreter`, making `out`.
fn fixture(interpreter: &str, script: &str, out: &Path) {
    let made = Command::new(interpreter)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(script))
        .arg(out)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&made.stderr)
    );
}

/// The busybox base context and the example contexts, in `work`.
fn contexts(work: &Tmp) {
    fixture("bash", "fixtures/busybox/make-context.sh", &work.join("bb"));
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/multi-stage");
    let copied = tool(
        "cp",
        &[
            "-r",
            example.to_str().unwrap(),
            work.join("example").to_str().unwrap(),
        ],
    );
    assert_eq!(copied.code, 0, "{}", copied.stderr);
    write_files(
        &work.join("owners"),
        &[
            (
                "Dockerfile",
                "FROM busybox AS build\n\
                 RUN --mount=type=cache,target=/cache echo cached > /cache/x && cp /cache/x /built\n\
                 RUN --mount=type=secret,id=token wc -c < /run/secrets/token > /token-len\n\
                 FROM busybox\n\
                 COPY --from=build /built /token-len /out/\n\
                 RUN mkdir /data && echo hi > /data/f && chown 1234:5678 /data/f \\\n\
                 \x20 && chown 42:43 /data && chmod 0640 /data/f\n",
            ),
            ("token", "s3cret"),
        ],
    );
}

/// The image id each build gives, in order: the base, the multi-stage example, the owners one.
fn build_all(run: &dyn Fn(&[&str]) -> Run, work: &Tmp) -> Vec<String> {
    let mut ids = Vec::new();
    let token = format!("id=token,src={}", work.join("owners/token").display());
    for args in [
        vec![
            "build",
            "-q",
            "-t",
            "busybox",
            work.join("bb").to_str().unwrap(),
        ],
        vec!["build", "-q", work.join("example").to_str().unwrap()],
        vec![
            "build",
            "-q",
            "--secret",
            &token,
            work.join("owners").to_str().unwrap(),
        ],
    ] {
        let done = run(&args);
        assert_eq!(done.code, 0, "kiln {args:?}: {}", done.stderr);
        ids.push(done.stdout.trim().to_owned());
    }
    ids
}

#[test]
fn a_rootless_build_is_the_root_build() {
    let work = Tmp::new("rootless");
    contexts(&work);
    let as_root = build_all(&|args| kiln_root(&work.join("root-store"), args), &work);

    let user = TestUser::create("sub", true);
    let store = work.join("user-store");
    std::fs::create_dir_all(&store).unwrap();
    user.own(work.path());
    let rootless = build_all(&|args| user.kiln(&store, args), &work);
    assert_eq!(rootless, as_root, "the same images, byte for byte");
    // And through the OCI runtime (runc, rootless too).
    let token = format!("id=token,src={}", work.join("owners/token").display());
    let runc = user.kiln(
        &store,
        &[
            "build",
            "-q",
            "--runtime",
            "runc",
            "--no-cache",
            "--secret",
            &token,
            work.join("owners").to_str().unwrap(),
        ],
    );
    assert_eq!(runc.code, 0, "{}", runc.stderr);
    assert_eq!(runc.stdout.trim(), as_root[2]);

    // The store is the user's on disk; the files of the image keep their owners inside it.
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(store.join("blobs")).unwrap();
    assert_eq!(meta.uid().to_string(), user.uid());
    let tar = work.join("fs.tar");
    let out = format!("type=tar,dest={}", tar.display());
    let exported = user.kiln(
        &store,
        &[
            "build",
            "-q",
            "--secret",
            &token,
            "-o",
            &out,
            work.join("owners").to_str().unwrap(),
        ],
    );
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    let listing = tool("tar", &["--numeric-owner", "-tvf", tar.to_str().unwrap()]).stdout;
    let line = |path: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(path))
            .unwrap_or_else(|| panic!("{path} not in:\n{listing}"))
            .to_owned()
    };
    assert!(
        line("data/f").starts_with("-rw-r----- 1234/5678"),
        "{}",
        line("data/f")
    );
    assert!(
        line("data/").starts_with("drwxr-xr-x 42/43"),
        "{}",
        line("data/")
    );
}

#[test]
fn without_subordinate_ids_a_single_owner_build_works_and_says_what_will_not() {
    let work = Tmp::new("rootless-single");
    contexts(&work);
    write_files(
        &work.join("single"),
        &[("Dockerfile", "FROM busybox\nRUN echo hi > /f && mkdir /d\n")],
    );
    let as_root = kiln_root(
        &work.join("root-store"),
        &[
            "build",
            "-q",
            "-t",
            "busybox",
            work.join("bb").to_str().unwrap(),
        ],
    );
    assert_eq!(as_root.code, 0, "{}", as_root.stderr);
    let root_single = kiln_root(
        &work.join("root-store"),
        &["build", "-q", work.join("single").to_str().unwrap()],
    );

    let user = TestUser::create("nosub", false);
    let store = work.join("user-store");
    std::fs::create_dir_all(&store).unwrap();
    user.own(work.path());
    let base = user.kiln(
        &store,
        &[
            "build",
            "-q",
            "-t",
            "busybox",
            work.join("bb").to_str().unwrap(),
        ],
    );
    assert_eq!(base.code, 0, "{}", base.stderr);
    assert!(
        base.stderr.contains("no subordinate ids") && base.stderr.contains("--add-subuids"),
        "{}",
        base.stderr
    );
    assert_eq!(base.stdout, as_root.stdout, "an all-root image is the same");
    let single = user.kiln(
        &store,
        &["build", "-q", work.join("single").to_str().unwrap()],
    );
    assert_eq!(single.code, 0, "{}", single.stderr);
    assert_eq!(single.stdout, root_single.stdout);
    // What the warning says will not work, does not.
    let chown = user.kiln(
        &store,
        &[
            "build",
            "-q",
            "--secret",
            &format!("id=token,src={}", work.join("owners/token").display()),
            work.join("owners").to_str().unwrap(),
        ],
    );
    assert_ne!(chown.code, 0);
    assert!(chown.stderr.contains("chown 1234:5678"), "{}", chown.stderr);
}

#[test]
fn root_without_cap_sys_admin_builds_through_a_user_namespace() {
    // An unprivileged container's root: uid 0 without CAP_SYS_ADMIN (setpriv drops it; no
    // seccomp profile). kiln goes into a user namespace mapped to itself, where it has what
    // RUN's namespaces need, and builds the same images.
    let work = Tmp::new("rootless-capless");
    contexts(&work);
    let as_root = build_all(&|args| kiln_root(&work.join("root-store"), args), &work);
    let capless = |args: &[&str]| {
        let out = Command::new("setpriv")
            .args(["--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin"])
            .arg(kiln_bin())
            .args(args)
            .arg("--root")
            .arg(work.join("capless-store"))
            .env("SOURCE_DATE_EPOCH", "0")
            .env_remove("KILN_ROOT")
            .output()
            .unwrap();
        run_of(&out)
    };
    assert_eq!(build_all(&capless, &work), as_root);
}

#[test]
fn in_a_container_that_refuses_namespaces_kiln_says_what_to_allow() {
    // kiln's own sandbox is Docker's default container: root without CAP_SYS_ADMIN, under
    // Docker's seccomp profile, which also refuses unshare(CLONE_NEWUSER). A kiln run in a RUN
    // step there (on the Debian fixture, for its glibc) cannot make a RUN step's namespaces,
    // and says which options allow them.
    let work = Tmp::new("rootless-container");
    contexts(&work);
    fixture(
        "python3",
        "fixtures/debian/make-debian.py",
        &work.join("debian"),
    );
    let bin = work.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(kiln_bin(), bin.join("kiln")).unwrap();
    write_files(
        &work.join("bb"),
        &[(
            "Dockerfile.inner",
            "FROM scratch\nCOPY rootfs/ /\nRUN echo inside\n",
        )],
    );
    write_files(
        &work.join("outer"),
        &[(
            "Dockerfile",
            "FROM debian\n\
             RUN --mount=type=bind,from=kilnbin,target=/kiln \\\n\
             \x20   --mount=type=bind,from=bbctx,target=/ctx \\\n\
             \x20   /kiln/kiln build --root /tmp/store --progress plain -f /ctx/Dockerfile.inner /ctx \\\n\
             \x20   > /inner.log 2>&1; echo \"exit $?\" >> /inner.log\n",
        )],
    );
    let out = work.join("out");
    kiln_root(
        &work.join("root-store"),
        &[
            "build",
            "--build-context",
            &format!(
                "debian=oci-layout://{}:latest",
                work.join("debian/layouts/debian-gnutar").display()
            ),
            "--build-context",
            &format!("kilnbin={}", bin.display()),
            "--build-context",
            &format!("bbctx={}", work.join("bb").display()),
            "-o",
            &format!("type=local,dest={}", out.display()),
            work.join("outer").to_str().unwrap(),
        ],
    )
    .ok();
    let log = std::fs::read_to_string(out.join("inner.log")).unwrap();
    if std::env::var_os("KILN_SHOW_LOG").is_some() {
        eprintln!("{log}");
    }
    assert!(log.trim_end().ends_with("exit 1"), "{log}");
    assert!(
        log.contains("could not make a user namespace") && log.contains("seccomp=unconfined"),
        "the warning names the setting: {log}"
    );
    assert!(
        log.contains("--cap-add SYS_ADMIN") && log.contains("RUN echo inside"),
        "the RUN error says what allows it: {log}"
    );
}
