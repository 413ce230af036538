#!/usr/bin/env python3
"""Differential runner over buildah's own `bud` test fixtures: buildah (the oracle) vs kiln.

The corpus is `shared/conformance/buildah-bud/` (buildah's `tests/bud/`: 126 fixture dirs holding
about 300 Dockerfile/Containerfile variants), and `shared/conformance/index/buildah-bud-bats-tests.jsonl`
maps the bats tests of upstream's `tests/bud.bats` to the dirs they use.  The bats assertions were
not copied, so what a fixture needs beyond itself (a `--secret`, a `--device`, an image the test
builds first, a file it creates at test time, an expected failure) is written down here, in the
tables below, each entry naming its bats test.

What a bats test provides that needs nothing beyond this machine is provided here too, the same to
both builders (INPUTS): build args (`--build-arg`, image names among them mapped onto the stand-ins),
secrets (`--secret id=..,src=FILE` or `id=..,env=VAR`), files the test makes in the context (`touch`,
`ln -s`, a `tar -cJf` archive), its HTTP server (starthttpd: Python's http.server on 127.0.0.1, a free
port, passed as --build-arg HTTP_SERVER_PORT), an SSH agent (ssh-agent with a fresh key, `--ssh
default=SOCKET`), and a Dockerfile it builds first in the same store (a cache mount another build
fills: each builder pre-builds the writer in a store of the case's own, then builds the case there).

All the machinery comes from the conformance runner of buildah's docker-vs-buildah corpus,
`shared/conformance/buildah-conformance/run.py`, imported as a module (--runner): its throw-away
`docker-registry` on 127.0.0.1 (`Registry`), the busybox-static stand-in bases pushed there, one tag
per upstream image name (`Bases`), the FROM/`--from` rewriting onto them (`rewrite_dockerfile`), its
unsupported-here rules (`unsupported_reason`), the oracle command (`ORACLE_TEMPLATE`: buildah bud
--isolation chroot --format oci, then a push to an OCI layout), process handling (`run_cmd`), the
image model (`load_image`) and the comparison of rootfs and config (`compare`).

For every Dockerfile-like file of every fixture dir (`Dockerfile*`, `Containerfile*`, `Docker*`/
`Container*` files holding a FROM, and cpp `*.in` sources; not the `*.dockerignore`/`*.containerignore`
companions) the runner
  1. classifies it, counting what INPUTS gives it as there: cannot-run-here (with a one-line reason:
     needs the internet, a tool, file, user or platform the busybox stand-in lacks, a buildah-only
     feature, something only a bats flag provides that INPUTS does not, a file the bats test creates
     or a build arg it passes that INPUTS lacks), or expected to fail (`*.bad`, or a bats test that
     expects the build to fail), or to be built;
  2. prepares a fresh copy of the fixture dir as the context (modes as a git checkout gives them,
     git's symlink placeholders turned back into symlinks, INPUTS' files added), maps external bases
     onto the stand-ins and writes the rewritten Dockerfile in place of the original;
  3. builds it with buildah and with kiln
     (`kiln build --progress plain -f {dockerfile} -o type=oci,tar=false,dest={out} {args} {context}`,
     KILN_ROOT a per-run store, or the case's own when it has a pre-build), one context copy each,
     {args} being INPUTS' --build-arg/--secret/--ssh words (the same for buildah);
  4. compares the two images with run.compare (plus the config's `author`, which run.py does not
     look at).
Images a fixture needs that its bats test builds first (`FROM onbuild`, `from=buildkitbase`, ...) are
built by buildah from their fixture Dockerfile (`--format docker`, so ONBUILD survives), pushed to
the registry and referenced from there by both builders.

Verdicts (one line per Dockerfile: `<dir>/<file>  <verdict>  <detail>`):
  pass             same image; or, for a build that must fail, both builders failed
  deviation        buildah 1.28 and BuildKit differ here and kiln's result is exactly the one pinned in
                   DEVIATIONS (what BuildKit does, with the code that decides it)
  FAIL             a difference; kiln failed where buildah built (or timed out), or failed a pre-build
                   buildah did; kiln built what must fail
  cannot-run-here  the reason says why
  oracle-failed    buildah (1.28 here) cannot build it, or builds what must fail: nothing to compare
Then a summary line, a JSON report (--report, default WORK/report.json), exit status 1 on any FAIL.

Usage:
  bud.py [--only DIR[/FILE],...] [--work DIR] [--report PATH] [--keep] [--jobs N] [--kiln PATH]
         [--runner PATH] [--timeout S] [--slow] [--list]
"""
import argparse
import concurrent.futures
import functools
import http.server
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
DEFAULT_WORK = "/tmp/bud-run"
WORK_MARKER = ".bud-run"  # --work is wiped per run: only a dir holding this marker (or empty) is


def conformance_root():
    """$KILN_CONFORMANCE_DIR, else ../shared/conformance next to the repo (as tests/conformance/main.rs)."""
    env = os.environ.get("KILN_CONFORMANCE_DIR")
    return os.path.abspath(env) if env else os.path.normpath(os.path.join(REPO, "..", "shared", "conformance"))


def load_runner(path):
    """Import run.py as a module (its main() only runs under __main__)."""
    spec = importlib.util.spec_from_file_location("buildah_conformance_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --no-cache as the oracle's: the builder store is shared by all cases, and a step another case
# ran (with a secret this one lacks) must not make this one's result depend on the order.
KILN_TEMPLATE = "kiln build --no-cache --progress plain -f {dockerfile} -o type=oci,tar=false,dest={out} {args} {context}"

# =============================================================================================
# What the bats tests know and the fixtures do not say.  Keys are `<dir>/<path in the dir>`;
# every entry names the bats test (of tests/bud.bats @ the corpus commit) it comes from, or None
# for a fixture no bats test in bud.bats uses (see README.corpus.md's "referenced only indirectly").

# Builds the bats test expects to fail (`run_buildah 125|1|2 build ...` without a flag being the
# cause).  Files named `*.bad`/`*bad` are expected to fail even when not listed.
EXPECTED_FAILURES = {
    "add-checksum/Containerfile.bad": (
        "bud with ADD with bad checksum flag", "`ADD --checksum URL`: the flag has no value"),
    "add-chmod/Dockerfile.bad": (
        "bud with chmod add with bad chmod flag in Dockerfile with --layers", "`ADD --chmod 777`: a flag without `=`"),
    "add-chown/Dockerfile.bad": (
        "bud with chown add with bad chown flag in Dockerfile with --layers", "`ADD --chown 2367:3267`: a flag without `=`"),
    "copy-chmod/Dockerfile.bad": (
        "bud with chmod copy with bad chmod flag in Dockerfile with --layers", "`COPY --chmod 777`: a flag without `=`"),
    "copy-chown/Dockerfile.bad": (
        "bud with chown copy with bad chown flag in Dockerfile with --layers", "`COPY --chown 2367:3267`: a flag without `=`"),
    "copy-chown/Dockerfile.bad2": (
        "bud with chown copy with unknown substitutions in Dockerfile",
        "`COPY --chown=${BOGUS}:${BOGUS}` expands to `:` (buildah: can't find uid for user)"),
    "copy-from/Dockerfile.bad": (
        "bud with copy-from with bad from flag in Dockerfile with --layers", "`COPY --from registry.com/...`: a flag without `=`"),
    "copy-from/Dockerfile2.bad": (
        "bud with copy-from referencing the current stage", "`COPY --from=build` inside the stage `build` itself"),
    "copy-multistage-paths/Dockerfile.invalid_from": (
        "bud multi-stage COPY with invalid from statement", "`COPY --from builder`: a flag without `=`"),
    "copy-globs/Containerfile.bad": ("bud with .dockerignore #3", "`COPY *foo /testdir`: the glob matches nothing"),
    "copy-globs/Dockerfile": (
        None, "`COPY --from=alpine /we/never/get/here`: a source no image has (bats builds this dir's Containerfile, "
              "never this file; its paths say it must fail)"),
    "base-with-arg/Containerfilebad": (
        "build with basename resolving user arg - should fail",
        "`FROM platform-${CUSTOM_TARGET}` with CUSTOM_TARGET never declared: invalid reference"),
    "containerignore/Dockerfile": ("bud with .containerignore", "`COPY subdir ./`: subdir is excluded by .containerignore"),
    "dockerignore/Dockerfile": ("bud with .dockerignore #1", "`COPY subdir ./`: subdir is excluded by .dockerignore"),
    "dockerignore3/Dockerfile": ("bud with .dockerignore #2", "`COPY test1.txt`: excluded by .dockerignore"),
    "dockerignore4/Dockerfile.test": (
        "bud with .dockerignore #4", "`COPY test1.txt`: excluded by the per-Dockerfile Dockerfile.test.dockerignore"),
    "dockerignore6/Dockerfile": (
        "bud with .dockerignore #6", "`COPY subdir ./`: excluded by the per-Dockerfile Dockerfile.dockerignore"),
    "context-escape-dir/testdir/Containerfile": (
        "bud file above context directory", "`COPY ../upperfile.txt`: a source above the context directory"),
    "from-invalid-registry/Containerfile": (
        "bud for multi-stage Containerfile with invalid registry and --authfile as a fd, should fail with no such host",
        "`FROM myrepository.example/image:tag`: no such registry"),
    "inline-network/Dockerfile2": ("build with inline RUN --network=none", "`RUN --network=none wget google.com`: no network"),
    "inline-network/Dockerfile3": ("build with inline RUN --network=fake", "`RUN --network=fake`: not a network mode"),
    "run-mounts/Dockerfile.secret-required": (
        "bud with containerfile secret required", "`--mount=type=secret,required=true` and no secret given"),
    "run-mounts/Dockerfile.secret-required-wo-value": (
        "bud with containerfile secret required", "`--mount=type=secret,required` and no secret given"),
    "run-mounts/Dockerfile.secret-required-false": (
        "bud with containerfile secret not required", "no secret given, so `cat /run/secrets/mysecret` fails"),
    "run-scenarios/Dockerfile.cmd-empty-run": ("bud with CMD and empty RUN", "`RUN` with no command"),
    "run-scenarios/Dockerfile.entrypoint-empty-run": ("bud with ENTRYPOINT and empty RUN", "`RUN` with no command"),
    "run-scenarios/Dockerfile.entrypoint-cmd-empty-run": ("bud with ENTRYPOINT, CMD and empty RUN", "`RUN` with no command"),
    "symlink/Dockerfile.symlink-points-to-itself": (
        "bud with multiple symlink pointing to itself", "`VOLUME /test-log/test` below a symlink to itself"),
    "unrecognized/Dockerfile": ("bud-unrecognized-instruction", "`BOGUS` is not an instruction"),
    "use-layers/Dockerfile.fail-case": ("bud with --force-rm flag", "`COPY non-existent world/`: no such source"),
    "use-layers/Dockerfile.non-existent-registry": (
        "bud --layers with non-existent/down registry", "`FROM non-existent-registry.com/alpine`: no such registry"),
    "buildkit-mount-from/Dockerfilebindfromwithemptyfrom": (
        "bud-with-mount-bind-from-with-empty-from-like-buildkit", "`--mount=...,from=,...`: an empty `from`"),
    "heredoc/Containerfile.verify_mount_leak": (
        "bud build with heredoc verify mount leak", "the last `RUN ls -a /dev/pipes` must fail"),
    "exit42/Containerfile": (None, "`RUN sh -c \"exit 42\"`: the fixture exists to fail with status 42"),
}

# Cannot run here, for what only the bats test provides (content-based rules catch the rest).
# Values: (bats test, category, reason).
BATS_ONLY = {
    "cdi/Dockerfile": (
        None, "bats flag (--device)",
        "needs /dev/containers-cdi.yaml and /dev/outsidenull, which cdi.bats injects with --cdi-config-dir/--device"),
    "device/Dockerfile": ("bud with additional device", "bats flag (--device)",
                          "needs /dev/fuse, which the bats test passes with --device"),
    "from-base/Containerfile": (
        None, "bats flag (--from)",
        "`FROM base`: lists.bats replaces the base with `--from localhost:$PORT/base`, a manifest list it builds first"),
    "from-multiple-files/Dockerfile2.nofrom": (
        "bud-from-multiple-files-one-from", "buildah-only feature",
        "has no FROM: the bats test appends it to Dockerfile1.* with a second `-f` (buildah concatenates "
        "several -f files)"),
    "no-history/Dockerfile": (
        "bud-implicit-no-history", "image the bats test assembles",
        "`FROM fakeregistry.podman.invalid/notreal`: a history-less base image the bats test assembles by hand "
        "as an OCI layout"),
    "multiarch/Containerfile.reset-platform": (
        "build must reset platform for stages if needed", "stand-in lacks a tool or file",
        "`FROM --platform=linux/$FOREIGNARCH busybox`, FOREIGNARCH=arm64 (a platform other than the host's), and "
        "`RUN ! cmp` needs that busybox to differ from the host's: the stand-ins are amd64 only"),
    "dest-final-slash/Dockerfile": (
        "bud-multistage-copy-final-slash", "stand-in lacks a tool or file",
        "copies /bin/ls and /bin/sh out of busybox into scratch and runs them: busybox's applets are hard links "
        "to one binary, the stand-in's are symlinks to /bin/busybox, which scratch lacks"),
}

# Built only with --slow: the bats test never lets it finish.
SLOW = {
    "long-sleep/Dockerfile": (
        None, "slow (--slow builds it)",
        "`RUN sleep 300`: the bats test kills this build mid-RUN to check signal handling; a complete build "
        "sleeps 5 minutes per builder (--slow builds it)"),
}

# Images the bats test builds first and the Dockerfile then uses by name: {name: Dockerfile in the
# same fixture dir}.  They are built by buildah, pushed to the registry, and used from there.
PREREQS = {
    "env/Dockerfile.env-from-image": (
        "bud access ENV variable defined in FROM image", {"env-from-image": "Dockerfile.env-same-file"}),
    "onbuild/Dockerfile1": ("bud-onbuild", {"onbuild": "Dockerfile"}),
    "multi-stage-only-base/Containerfile3": (
        "Multi-stage should not remove used base-image without --layers",
        {"localhost/parent-one": "Containerfile1", "localhost/parent-two": "Containerfile2"}),
    "buildkit-mount-from/Dockerfilebindfrom": (
        "bud-with-mount-bind-from-like-buildkit", {"buildkitbase": "Dockerfilebuildkitbase"}),
    "buildkit-mount-from/Dockerfilebindfromwriteable": (
        "bud-with-writeable-mount-bind-from-like-buildkit", {"buildkitbase": "Dockerfilebuildkitbase"}),
    "buildkit-mount-from/Dockerfilebindfromwithoutsource": (
        "bud-with-mount-bind-from-without-source-like-buildkit", {"buildkitbase": "Dockerfilebuildkitbase"}),
    "buildkit-mount-from/Dockerfilecachefromimage": (
        "bud-with-mount-cache-image-from-like-buildkit", {"buildkitbase": "Dockerfilebuildkitbase"}),
    "buildkit-mount-from/Dockerfilebindfromrelative": (
        "bud-with-mount-bind-from-relative-like-buildkit", {"buildkitbaserelative": "Dockerfilebuildkitbaserelative"}),
}

# Where buildah 1.28 and BuildKit disagree, kiln does what BuildKit does (tests/conformance/
# DEVIATIONS.md has the same cases from the docker-vs-buildah corpus, each with the BuildKit code
# that decides it).  The runner would report these as FAIL; a case listed here is a `deviation`
# instead, but only while kiln's result is exactly the pinned one, so a regression still FAILs:
#   ("diffs", [regex, ...])   kiln built it and every difference matches one regex, each used
#   ("kiln-fails", regex)     kiln failed, with an error matching the regex
#   ("kiln-builds", None)     a build the bats test expects to fail: kiln builds it
# Values: (kind, pin, why BuildKit differs from buildah).
BUILDKIT_MOUNT_Z = ("kiln-fails", r"invalid field 'z' must be a key=value pair",
                    "`,z` (an SELinux relabel flag of buildah) is not a --mount key: BuildKit's parseMount "
                    "(frontend/dockerfile/instructions/commands_runmount.go) rejects any value-less field but "
                    "ro/rw/required")
MOUNT_STUB_KEPT = "buildah 1.28 whites out a RUN's mount target that an earlier RUN made (the known bug run.py " \
                  "lists for mount-targets-mount); BuildKit removes only stubs it created (executor/stubs.go)"
VOLUME_RECORDS_ONLY = "VOLUME only records the path in the config: BuildKit neither creates it nor freezes its " \
                      "content (dockerfile2llb/convert.go dispatchVolume; reference.md: 'When using Buildkit, the " \
                      "changes will instead be kept')"
REINCLUDED_BY_EXCEPTION = "`!*/sub1*` re-includes subdir/sub1.txt below the excluded subdir (fsutil filter.go " \
                          "MatchesUsingParentResults; DEVIATIONS.md copy-integration1)"
FROM_INDEX = ("kiln-fails", r"docker\.io/library/0",
              "`FROM 0` is an image name to BuildKit: it resolves FROM by stage name only (convert.go "
              "findStateByName; indexes are for COPY --from), and there is no docker.io here")
DEVIATIONS = {
    "add-run-dir/Dockerfile": ("kiln-fails", r"touch /run/hello",
                               "BuildKit provides no /run (executor/oci/spec_linux.go withRemovedMount(\"/run\"), "
                               "moby/buildkit#429) and the stand-in has none; alpine has one"),
    "buildkit-mount/Dockerfile": BUILDKIT_MOUNT_Z,
    "buildkit-mount/Dockerfile2": BUILDKIT_MOUNT_Z,
    "buildkit-mount/Dockerfile3": BUILDKIT_MOUNT_Z,
    "buildkit-mount/Dockerfile4": BUILDKIT_MOUNT_Z,
    "buildkit-mount/Dockerfile6": BUILDKIT_MOUNT_Z,
    "buildkit-mount/Dockerfilecachewrite": BUILDKIT_MOUNT_Z,
    "buildkit-mount/Dockerfilecachewritesharing": BUILDKIT_MOUNT_Z,
    "buildkit-mount/Dockerfilecacheread": BUILDKIT_MOUNT_Z,
    "buildkit-mount/Dockerfilecachewritewithoutz": ("diffs", [r"test2: only in builder \(dir 0755 0:0\)"],
                                                    MOUNT_STUB_KEPT),
    "buildkit-mount/Dockerfilecachereadwithoutz": ("diffs", [r"test2: only in builder \(dir 0755 0:0\)"],
                                                   MOUNT_STUB_KEPT),
    "buildkit-mount-from/Dockerfilebindfromrelative": ("diffs", [r"test: only in builder \(dir 0755 0:0\)"],
                                                       MOUNT_STUB_KEPT),
    "buildkit-mount-from/Dockerfilebindfromwithoutsource": ("diffs", [r"test: only in builder \(dir 0755 0:0\)"],
                                                            MOUNT_STUB_KEPT),
    "buildkit-mount-from/Dockerfilecachefrom": ("diffs", [r"test: only in builder \(dir 0755 0:0\)"],
                                                MOUNT_STUB_KEPT),
    "buildkit-mount-from/Dockerfilecachemultiplefrom": ("diffs", [r"test: only in builder \(dir 0755 0:0\)"],
                                                        MOUNT_STUB_KEPT),
    "buildkit-mount-from/Dockerfilebindfromwithemptyfrom": (
        "kiln-builds", None, "an empty `from=` is no source at all: the bind comes from the build context "
                             "(commands_runmount.go keeps From \"\"; convert_runmount.go uses the context then)"),
    "cache-chown/Dockerfile.tar1": ("diffs", [r"testfile: uid oracle=2510 builder=1, gid oracle=2516 builder=1"],
                                    "ADD --chown applies to what a local archive extracts (solver/llbsolver/file/"
                                    "unpack.go passes ChownOpts to the untar); buildah ignores it"),
    "cache-chown/Dockerfile.tar2": ("diffs", [r"testfile: uid oracle=2510 builder=2, gid oracle=2516 builder=2"],
                                    "as cache-chown/Dockerfile.tar1"),
    "containerignore/Dockerfile.succeed": (
        "diffs", [r"test2\.txt: missing in builder"],
        "BuildKit reads .dockerignore (and <Dockerfile>.dockerignore) only, never .containerignore "
        "(frontend/dockerui/build.go); this fixture's .dockerignore is `*`"),
    "copy-globs/Containerfile.bad": (
        "kiln-builds", None, "a wildcard that matches nothing copies nothing (dockerfile2llb/convert_copy.go sets "
                             "AllowEmptyWildcard; DEVIATIONS.md copy-multiple-missing-file-with-nomatch-on-glob)"),
    "copy-globs/Containerfile.missing": (
        "diffs", [r"^testdir: type oracle=dir", r"^testdir/test1\.txt: missing in builder",
                  r"^testdir/test2\.txt: missing in builder"],
        "several sources into `/testdir` (no trailing slash, not there) are copied in turn onto that path, the last "
        "one staying: neither convert_copy.go nor fsutil's Copy makes it a directory"),
    "dockerignore/Dockerfile": ("kiln-builds", None, REINCLUDED_BY_EXCEPTION),
    "dockerignore/Dockerfile.succeed": ("diffs", [r"^subdir: only in builder", r"^subdir/sub1\.txt: only in builder"],
                                        REINCLUDED_BY_EXCEPTION),
    "dockerignore6/Dockerfile": ("kiln-builds", None, REINCLUDED_BY_EXCEPTION),
    "dockerignore6/Dockerfile.succeed": ("diffs", [r"^subdir: only in builder", r"^subdir/sub1\.txt: only in builder"],
                                         REINCLUDED_BY_EXCEPTION),
    "env/Dockerfile.env-precedence": FROM_INDEX,
    "save-stages/Dockerfile.chained-two-build-stages-no-aliases": FROM_INDEX,
    "from-with-arg/Containerfile": (
        "kiln-fails", r"variable expansion is not supported for --from",
        "`COPY --from=${toolchainname}`: BuildKit expands --from with no variables and refuses a change "
        "(dockerfile2llb/convert.go toCommand; testDockerfileCopyFromArgs)"),
    "no-hostname/Containerfile": ("kiln-fails", r"cat /etc/hostname",
                                  "BuildKit provides /etc/hosts and /etc/resolv.conf, not /etc/hostname "
                                  "(executor/stubs.go, executor/oci/spec.go); the stand-in has none"),
    "preserve-volumes/Dockerfile": ("diffs", [r"^vol/anothervolfile: only in builder",
                                              r"^vol/subvol/subvolfile: only in builder"], VOLUME_RECORDS_ONLY),
    "use-layers/Dockerfile": ("diffs", [r"^var/lib: missing in builder", r"^var/lib/testdata: missing in builder"],
                              VOLUME_RECORDS_ONLY),
    "volume-perms/Dockerfile": ("kiln-fails", r"chmod 0711 /vol/subvol", VOLUME_RECORDS_ONLY),
    "symlink/Dockerfile.symlink-points-to-itself": ("kiln-builds", None, VOLUME_RECORDS_ONLY),
    "run-scenarios/Dockerfile.cmd-empty-run": (
        "kiln-builds", None, "`RUN` with nothing after it runs `/bin/sh -c \"\"` (instructions/parse.go "
                             "parseShellDependentCommand accepts no words; convert.go withShell)"),
    "run-scenarios/Dockerfile.entrypoint-empty-run": ("kiln-builds", None, "as run-scenarios/Dockerfile.cmd-empty-run"),
    "run-scenarios/Dockerfile.entrypoint-cmd-empty-run": ("kiln-builds", None,
                                                          "as run-scenarios/Dockerfile.cmd-empty-run"),
}


def apply_deviation(res):
    """A FAIL that is a listed buildah-vs-BuildKit difference, with kiln's result exactly as pinned,
    becomes `deviation`; a listed case whose result differs from its pin stays FAIL and says so."""
    entry = DEVIATIONS.get(res["id"])
    if entry is None or res["verdict"] != "FAIL":
        return res
    kind, pin, why = entry
    text = "\n".join([res.get("reason", "")] + res.get("diffs", []) + [res.get("builder_tail") or ""])
    if kind == "diffs":
        diffs = res.get("diffs", [])
        unmatched = [d for d in diffs if not any(re.search(p, d) for p in pin)]
        unused = [p for p in pin if not any(re.search(p, d) for d in diffs)]
        ok = bool(diffs) and res.get("builder", {}).get("rc") == 0 and not unmatched and not unused
    elif kind == "kiln-fails":
        ok = "kiln built it" not in res.get("reason", "") and re.search(pin, text) is not None
    else:  # kiln-builds
        ok = res.get("reason", "").startswith("kiln built it, but it must fail")
    if ok:
        res["verdict"], res["deviation"] = "deviation", why
        res["reason"] = f"as BuildKit: {why}"
        res["diffs"] = []
    else:
        res["reason"] = f"listed deviation ({kind}) but kiln's result differs from the pin: {res['reason']}"
    return res


# What the bats test passes on its command line or creates at test time, given alike to both
# builders: {case: (bats test, spec)}.  A case whose every need the spec meets is built (or must
# fail, with must_fail); the content rules of classify() still apply to the rest of it.  Spec keys:
#   args       {NAME: value}: `--build-arg NAME=value`; value None: `--build-arg NAME` (a bare name,
#              which takes NAME from the environment, as the bats test passes it)
#   unset      ARGs the bats test leaves without a value on purpose (they expand to "")
#   secrets    {id: (kind, data)}: ("text", content) written to a file outside the context, ("context",
#              path in the fixture) as the bats test's `src=$BUDFILES/...`: `--secret id=ID,src=FILE`;
#              ("env", value): `--secret id=ID,env=ID` with ID=value in the builder's environment
#   files      [(kind, path, data, mode)] made in the fixture copy before building: ("file", path, text,
#              mode), ("dir", path, None, mode), ("symlink", path, target, None), ("tar.xz", path,
#              {member: text}, mode) -- an archive as `tar -cJf` makes it of those files
#   http       {path: text} served, or HTTP_FIXTURE for the fixture dir itself, by an HTTP server on
#              127.0.0.1 (a free port; the bats test's starthttpd), passed as --build-arg HTTP_SERVER_PORT.
#              `http://0.0.0.0:PORT/` URLs are left as they are: on Linux, connecting to 0.0.0.0
#              reaches a listener on 127.0.0.1
#   ssh        True: an ssh-agent holding a fresh RSA key (the bats test's ssh-keygen), `--ssh default=SOCKET`
#   prebuild   a Dockerfile of the same dir each builder builds first in the same store (a store of
#              this case's own, so parallel cases cannot touch it): its cache mounts are this build's input
#   must_fail  why the bats test expects the build (with these inputs) to fail
#   notes      where this differs from what the bats test does
HTTP_FIXTURE = "fixture dir"
SAFEIMAGE = "quay.io/libpod/testimage:20221018"  # tests/helpers.bash
INPUTS = {
    "base-with-arg/Containerfile2": (
        "build with basename resolving user arg", {
            "args": {"CUSTOM_TARGET": "first"},
            "notes": "the bats test builds CUSTOM_TARGET=second too; one build here"}),
    "buildkit-mount/Dockerfilecacheread": (
        "bud-with-mount-cache-like-buildkit", {"prebuild": "Dockerfilecachewrite"}),
    "buildkit-mount/Dockerfilecachereadwithoutz": (
        "bud-with-mount-cache-like-buildkit-verify-default-selinux-option", {"prebuild": "Dockerfilecachewritewithoutz"}),
    "cache-chown/Dockerfile.url1": (
        "bud cache add-copy-chown", {"http": {"README.md": "sure, this counts as a readme file\n"}}),
    "cache-chown/Dockerfile.url2": (
        "bud cache add-copy-chown", {"http": {"README.md": "sure, this counts as a readme file\n"}}),
    "copy-archive/Containerfile": (
        "bud containerfile with tar archive in copy", {
            "files": [("file", "test", "Mon Jun  1 16:49:05 EDT 2026\n", 0o644),
                      ("tar.xz", "test.tar.xz", {"bud/copy-archive/test": "Mon Jun  1 16:49:05 EDT 2026\n"}, 0o644)],
            "notes": "`date > test; tar -C $TEST_SOURCES -cJf test.tar.xz bud/copy-archive/test`, with a fixed date"}),
    "copy-chown/Containerfile.chown_user": (
        "bud copy chown with newuser", {"args": {"SAFEIMAGE": SAFEIMAGE}}),
    "from-with-arg/Containerfile": (
        "bud run check --from with arg", {
            "args": {"base": "alpine", "toolchainname": "busybox", "destinationpath": "/tmp"},
            "notes": "the bats test's context is its cwd (nothing is copied from it); here the fixture dir"}),
    "multiarch/Dockerfile.fail-multistage": (
        "bud-multiple-platform-failure", {
            "args": {"SAFEIMAGE": SAFEIMAGE}, "must_fail": "`RUN false` in the fourth stage",
            "notes": "the bats test builds --platform=linux/arm64,linux/amd64; here the host's platform only"}),
    "multiarch/Dockerfile.no-run": (
        "bud-multiple-platform-no-run", {
            "args": {"SAFEIMAGE": SAFEIMAGE},
            "notes": "the bats test builds --all-platforms into a manifest list; here the host's platform only"}),
    "namespaces/Containerfile": (
        None, {
            "files": [("file", "somefile", "", 0o644), ("dir", "somedir", None, 0o755),
                      ("file", "somedir/someotherfile", "", 0o4700)],
            "notes": "namespaces.bats `idmapping` makes somefile and somedir/someotherfile (chmod 700, u+s) in its "
                     "context; its --userns-uid-map flags are not passed"}),
    "run-mounts/Dockerfile.secret": (
        "bud with containerfile secret", {"secrets": {"mysecret": ("text", "SOMESECRETDATA\n")}}),
    "run-mounts/Dockerfile.secret-access": (
        "bud with containerfile secret accessed on second RUN", {
            "secrets": {"mysecret": ("text", "SOMESECRETDATA\n")},
            "must_fail": "the second `RUN cat /mysecret` runs without the secret mount"}),
    "run-mounts/Dockerfile.secret-mode": (
        "bud with default mode perms", {"secrets": {"mysecret": ("text", "SOMESECRETDATA\n")}}),
    "run-mounts/Dockerfile.secret-options": (
        "bud with containerfile secret options", {"secrets": {"mysecret": ("text", "SOMESECRETDATA\n")}}),
    "run-mounts/Dockerfile.ssh": (
        None, {"ssh": True, "notes": "ssh.bats `bud with ssh key` (its --ssh default=KEYFILE; here the agent socket)"}),
    "run-mounts/Dockerfile.ssh_access": (
        None, {"ssh": True, "must_fail": "the second RUN has no SSH agent (`ssh-add -l` fails)",
               "notes": "ssh.bats `bud with ssh key secret accessed on second RUN`"}),
    "run-mounts/Dockerfile.ssh_options": (
        None, {"ssh": True, "notes": "ssh.bats `bud with containerfile ssh options` passes --ssh default=KEYFILE; "
                                     "here the socket of an agent holding such a key"}),
    "run-privd/Dockerfile": (
        "bud test RUN with a privileged command", {
            "http": HTTP_FIXTURE,
            "notes": "RUN wget http://localhost:PORT/ reaches the server through the host network (bats: --network=host; "
                     "buildah's chroot isolation and kiln's default both use the host's)"}),
    "secret-env/Dockerfile": (
        "build-test --mount=type=secret test from env with chroot isolation", {
            "secrets": {"MYSECRET": ("env", "SOMESECRETDATA")},
            "notes": "the bats test exports MYSECRET and passes `--secret id=MYSECRET`; here `id=MYSECRET,env=MYSECRET`"}),
    "secret-relative/Dockerfile": (
        "build-test --mount=type=secret test relative to workdir mount", {
            "secrets": {"secret-foo": ("context", "secret1.txt"), "secret-bar": ("context", "secret2.txt")}}),
    "use-args/Containerfile": (
        "bud containerfile with args", {
            "args": {"abc.txt": None}, "unset": ("testArg",), "files": [("file", "abc.txt", "", 0o644)],
            "notes": "`--build-arg=abc.txt` sets no testArg: `COPY ${testArg} .` copies the whole context"}),
    "use-args/Containerfile.dest_nobrace": (
        "bud containerfile with args", {
            "args": {"testArg": "abc.txt", "destination": "/tmp"}, "files": [("file", "abc.txt", "", 0o644)]}),
    "use-args/Containerfile.destination": (
        "bud containerfile with args", {
            "args": {"testArg": "abc.txt", "destination": "/tmp"}, "files": [("file", "abc.txt", "", 0o644)]}),
    "use-layers/Dockerfile": (
        "bud with --layers and --no-cache flags", {
            "http": {"README.md": "somebody told me that this counts as a README file\n"}}),
    "use-layers/Dockerfile.3": (
        "bud with --layers and --no-cache flags", {
            "files": [("dir", "mount", None, 0o755), ("dir", "mount/subdir", None, 0o755),
                      ("file", "mount/subdir/file.txt", "", 0o644)],
            "notes": "the context of the bats test's last Dockerfile.3 build (mkdir -p mount/subdir; touch "
                     "mount/subdir/file.txt)"}),
    "use-layers/Dockerfile.4": (
        "bud with --layers and symlink file", {
            "files": [("file", "hello.sh", 'echo "Hello World!"\n', 0o644),
                      ("symlink", "hello_world.sh", "hello.sh", None)]}),
    "use-layers/Dockerfile.dangling-symlink": (
        "bud with --layers and dangling symlink", {
            "files": [("dir", "blah", None, 0o755),
                      ("symlink", "blah/policy.json", "/buildah-tests/policy.json", None)],
            "notes": "blah/policy.json links to ${TEST_SOURCES}/policy.json, an absolute path outside the context; "
                     "here /buildah-tests/policy.json"}),
    "use-layers/Dockerfile.multistage-copy": (
        "bud with --layers, multistage, and COPY with --from", {
            "files": [("dir", "uuid", None, 0o755), ("file", "uuid/data", "0c7e1a3c-3d6f-4a4e-9d55-2c1b8f0e6a11\n", 0o644),
                      ("dir", "date", None, 0o755), ("file", "date/data", "Mon Jun  1 16:49:05 EDT 2026\n", 0o644)],
            "notes": "uuidgen and date output, fixed"}),
    "with-arg/Dockerfilefromarg": (
        "bud with arg in from statement", {
            "args": {"app_type": "x", "another_app_type": "m"},
            "notes": "the bats test's context is its cwd (nothing is copied from it); here the fixture dir"}),
    "verify-cleanup/Dockerfile": (
        "bud-verify-if-we-dont-clean-preexisting-path", {
            "secrets": {"secret-foo": ("context", "secret1.txt")},
            "must_fail": "the last `RUN cat /tmp/hey`: /tmp was only bind-mounted by an earlier RUN"}),
}

# Registries a fixture names so that pulling from them fails: these refs are never mapped onto a
# stand-in (there is no network here, so they fail in both builders, as upstream expects).
UNREACHABLE_REGISTRY_RE = re.compile(r"^[^/]*(\.invalid|\.example|\.test|non-existent[^/]*)/", re.I)

# Commands of the distro images upstream uses that a busybox may lack (checked against the applets
# of the busybox the stand-in is made of), and files of those images that the stand-in does not have.
DISTRO_TOOLS = {"adduser", "addgroup", "deluser", "delgroup", "useradd", "groupadd", "usermod", "groupmod",
                "bash", "setcap", "getcap", "ssh-add", "ssh", "git", "curl", "python", "python3", "perl", "file",
                "sudo", "make", "gcc", "cpp", "apk", "apt-get", "apt", "dnf", "yum", "microdnf", "rpm", "dpkg"}
DISTRO_PATHS = ("/etc/apk", "/usr/bin/env", "/home/podman")
PACKAGE_INSTALL_RE = re.compile(
    r"\b(apk\s+(?:add|update|upgrade)|apt-get\s+(?:install|update)|apt\s+(?:install|update)|"
    r"(?:dnf|yum|microdnf|zypper)\s+(?:-y\s+)?(?:install|update|upgrade)|pip3?\s+install|git\s+clone)\b")
SHELL_BUILTINS = {"cd", "set", "export", "exit", "for", "do", "done", "if", "then", "else", "elif", "fi", "while",
                  "until", "case", "esac", "function", "return", "local", "read", "eval", "exec", "shift", "trap",
                  "true", "false", "test", "echo", "printf", "unset", "type", "command", "wait", "ulimit", "umask"}

# Build args BuildKit and buildah define for FROM lines and for a stage's `ARG NAME` (this host).
BUILTIN_ARGS = {"TARGETPLATFORM": "linux/amd64", "TARGETOS": "linux", "TARGETARCH": "amd64", "TARGETVARIANT": "",
                "BUILDPLATFORM": "linux/amd64", "BUILDOS": "linux", "BUILDARCH": "amd64", "BUILDVARIANT": ""}

# =============================================================================================
# corpus discovery and context preparation

DOCKERFILE_NAME_RE = re.compile(r"^(Dockerfile|Containerfile)")
IGNORE_COMPANION_RE = re.compile(r"\.(dockerignore|containerignore)$")


def is_dockerfile_like(path):
    name = os.path.basename(path)
    if IGNORE_COMPANION_RE.search(name):
        return False
    if DOCKERFILE_NAME_RE.match(name):
        return True
    if not (name.startswith(("Docker", "Container")) or name.endswith(".in")):
        return False
    try:  # e.g. buildkit-mount-from/Dockermultistagefrom, preprocess/Decomposed.in
        with open(path, errors="replace") as f:
            text = f.read(65536)
    except OSError:
        return False
    return bool(re.search(r"^\s*(FROM\s|#\s*include\b)", text, re.I | re.M))


def discover(bud):
    """Every Dockerfile-like file, in a stable order: [{id, dir, file, index}]."""
    cases = []
    for d in sorted(os.listdir(bud)):
        top = os.path.join(bud, d)
        if not os.path.isdir(top):
            continue
        for dp, dns, fns in os.walk(top):
            dns.sort()
            for fn in sorted(fns):
                p = os.path.join(dp, fn)
                if os.path.isfile(p) and not os.path.islink(p) and is_dockerfile_like(p):
                    rel = os.path.relpath(p, top)
                    cases.append({"id": f"{d}/{rel}", "dir": d, "file": rel})
    for i, c in enumerate(cases):
        c["index"] = i
    return cases


def git_symlink_placeholder(path):
    """A checkout with core.symlinks=false writes a symlink as a small file holding its target.  Such a
    file here: no newline, names an existing sibling, and has the sibling's extension
    (symlink/tarball_latest.tar -> tarball.tar upstream).  Returns the target or None."""
    try:
        if os.path.islink(path) or os.path.getsize(path) > 255:
            return None
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if not data or b"\n" in data or b"\0" in data:
        return None
    target = data.decode("utf-8", "replace")
    sibling = os.path.join(os.path.dirname(path), target)
    if "/" in target or not os.path.isfile(sibling) or os.path.splitext(target)[1] != os.path.splitext(path)[1]:
        return None
    return target


def prepare_fixture(src, dst):
    """Copy a fixture dir as a git checkout (umask 022) would have it: dirs 0755, files 0644 (0755 when
    executable), git's symlink placeholders back to symlinks.  Returns the symlinks restored."""
    shutil.copytree(src, dst, symlinks=True)
    restored = []
    for dp, dns, fns in os.walk(dst):
        os.chmod(dp, 0o755)
        for fn in fns:
            p = os.path.join(dp, fn)
            if os.path.islink(p):
                continue
            target = git_symlink_placeholder(p)
            if target:
                os.unlink(p)
                os.symlink(target, p)
                restored.append(f"{os.path.relpath(p, dst)} -> {target}")
                continue
            mode = os.lstat(p).st_mode
            os.chmod(p, 0o755 if mode & 0o111 else 0o644)
    return restored


# =============================================================================================
# a small Dockerfile model: enough to classify the fixtures (instructions, heredocs, ARG/ENV scope)

HEREDOC_RE = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_.]*)\2")
EXPAND_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")
REF_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
                    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]*)?(?:@sha256:[0-9a-f]{64})?")


class Instr:
    def __init__(self, lineno, keyword, rest, heredocs, single_line):
        self.lineno, self.keyword, self.rest, self.heredocs, self.single_line = lineno, keyword, rest, heredocs, single_line

    def flags_and_args(self):
        """Leading `--flag[=value]` words, then the rest (a JSON array or words)."""
        words, flags = self.rest.split(), []
        while words and words[0].startswith("--"):
            flags.append(words.pop(0))
        return flags, " ".join(words)


def parse_instructions(text):
    """Logical instructions with their line numbers (continuations joined, comments dropped, heredoc
    bodies of RUN/COPY/ADD attached)."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        start, raw = i, lines[i]
        i += 1
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        parts = [raw]
        while parts[-1].rstrip().endswith("\\") and i < len(lines):
            parts[-1] = parts[-1].rstrip()[:-1]
            while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                i += 1  # comment and empty lines inside a continuation are dropped
            if i < len(lines):
                parts.append(lines[i])
                i += 1
        line = " ".join(p.strip() for p in parts)
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        heredocs = []
        if keyword in ("RUN", "COPY", "ADD"):
            for m in HEREDOC_RE.finditer(rest):
                body = []
                while i < len(lines):
                    ln = lines[i]
                    i += 1
                    if (ln.lstrip("\t") if m.group(1) else ln) == m.group(3):
                        break
                    body.append(ln)
                heredocs.append((m.group(3), "\n".join(body)))
        out.append(Instr(start + 1, keyword, rest.strip(), heredocs, len(parts) == 1))
    return out


def expand(word, env):
    """Shell-style expansion of $X, ${X}, ${X:-w}, ${X-w}, ${X:+w}, ${X+w}, ${X:?}, ${X?}.
    env maps a name to its value, or None for an ARG declared without one.  Returns (value, needs):
    needs holds the declared-but-valueless names the result depends on (build args to pass)."""
    needs = set()

    def repl(m):
        name = m.group(1) or m.group(4)
        op, alt = m.group(2), m.group(3) or ""
        val = env.get(name)
        declared_empty = name in env and val is None
        is_set, non_empty = val is not None, bool(val)
        if op == ":-":
            if non_empty:
                return val
            v, n = expand(alt, env)
            needs.update(n)
            return v
        if op == "-":
            return val if is_set else expand(alt, env)[0]
        if op == ":+":
            return expand(alt, env)[0] if non_empty else ""
        if op == "+":
            return expand(alt, env)[0] if is_set else ""
        if declared_empty:
            needs.add(name)
        return val or ""
    return EXPAND_RE.sub(repl, word), needs


def unquote(s):
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'" else s


def parse_kv_words(rest):
    """ARG/ENV words: `a b=1 c="x y"`; the legacy `ENV key value` form too."""
    try:
        words = shlex.split(rest, posix=True)
    except ValueError:
        words = rest.split()
    if words and "=" not in words[0] and len(words) >= 2:  # ENV key value
        return [(words[0], " ".join(words[1:]))]
    return [(w.partition("=")[0], w.partition("=")[2] if "=" in w else None) for w in words]


def mount_options(flag):
    """`--mount=type=secret,id=x,dst=/y` -> {"type": "secret", "id": "x", "dst": "/y"}"""
    opts = {}
    for part in flag[len("--mount="):].split(","):
        k, eq, v = part.partition("=")
        opts[k.strip().lower()] = v if eq else True
    return opts


def run_script(ins):
    """The shell text a RUN executes, or its exec-form words.  Heredoc bodies count when they are the
    script (`RUN <<EOF`), not when they are data fed to a command (`RUN cat <<EOF`, `5<<FILE`)."""
    _, cmd = ins.flags_and_args()
    if cmd.startswith("["):
        try:
            cmd = " ".join(json.loads(cmd))
        except ValueError:
            pass
    scripts = [body for _, body in ins.heredocs] if not HEREDOC_RE.sub("", cmd).strip() else []
    return "\n".join([cmd] + scripts)


COMMAND_RE = re.compile(r"(?:^|[;&|(`\n]|\$\(|\b(?:then|do|else|elif)\b)\s*(?:!\s+)?(?:[A-Za-z_]\w*=\S*\s+)*"
                        r"([A-Za-z_./][\w./+-]*)")


class Analysis:
    """Stages, their bases resolved with the header ARGs' defaults and the builtin args, and what a
    classification needs to know about them.  build_args (INPUTS' args) override the defaults of the
    ARGs they name, as `--build-arg` does; undeclared ones have no effect."""

    def __init__(self, text, build_args=None):
        self.instrs = parse_instructions(text)
        self.build_args = dict(build_args or {})
        self.header = dict(BUILTIN_ARGS)  # header ARG defaults (None: no default)
        self.stages = []  # dicts: lineno, image expr, resolved, needs, name, platform (expr, resolved, needs)
        for ins in self.instrs:
            if ins.keyword == "FROM":
                words = ins.rest.split()
                flags = [w for w in words if w.startswith("--")]
                rest = [w for w in words if not w.startswith("--")]
                image = rest[0] if rest else ""
                name = rest[2] if len(rest) >= 3 and rest[1].lower() == "as" else None
                resolved, needs = expand(image, self.header)
                st = {"lineno": ins.lineno, "single_line": ins.single_line, "image": image,
                      "resolved": unquote(resolved), "needs": needs, "name": name,
                      "name_resolved": expand(name, self.header)[0].lower() if name else None, "platform": None}
                for f in flags:
                    if f.startswith("--platform="):
                        v, n = expand(f[len("--platform="):], self.header)
                        st["platform"] = (f[len("--platform="):], v, n)
                self.stages.append(st)
            elif ins.keyword == "ARG" and not self.stages:
                for k, v in parse_kv_words(ins.rest):
                    if k in self.build_args:
                        self.header[k] = self.build_args[k]
                    else:
                        self.header[k] = expand(v, self.header)[0] if v is not None else self.header.get(k)
        # names a FROM or --from may refer to: AS names, as written and as expanded
        self.stage_names = set()
        for st in self.stages:
            if st["name"]:
                self.stage_names.add(st["name"].lower())
                self.stage_names.add(st["name_resolved"])

    def is_stage_ref(self, ref, before=None):
        """A stage name, or an index (buildah's extension; BuildKit resolves FROM by name only)."""
        if ref.isdigit():
            return before is None or int(ref) < before
        return ref.lower() in self.stage_names

    def stage_scopes(self):
        """Yields (stage index, instruction, env) for every instruction after the first FROM, env being
        the stage's ARG/ENV scope at that point (None: an ARG declared without a value)."""
        idx, env = -1, {}
        for ins in self.instrs:
            if ins.keyword == "FROM":
                idx += 1
                env = {}
                yield idx, ins, env
                continue
            if idx < 0:
                continue
            yield idx, ins, env
            if ins.keyword == "ARG":
                for k, v in parse_kv_words(ins.rest):
                    if k in self.build_args:
                        env[k] = self.build_args[k]
                    elif v is not None:
                        env[k] = unquote(expand(v, env)[0])
                    elif k in BUILTIN_ARGS:
                        env[k] = BUILTIN_ARGS[k]
                    else:  # a global ARG's default comes in; otherwise only a build arg would give a value
                        env[k] = self.header.get(k) if k in self.header else None
            elif ins.keyword == "ENV":
                for k, v in parse_kv_words(ins.rest):
                    if v is not None:
                        env[k] = unquote(expand(v, env)[0])


# =============================================================================================
# classification

class Verdict:
    BUILD, EXPECT_FAIL, CANNOT = "build", "expect-fail", "cannot"


def standin_has(standin_root, path):
    return os.path.lexists(os.path.join(standin_root, path.lstrip("/")))


def inputs_of(cid):
    """The INPUTS spec of a case ({} for none)."""
    return INPUTS.get(cid, (None, {}))[1]


def classification_args(spec):
    """The build args a classification resolves the Dockerfile with: INPUTS' args, "" for the ARGs
    left unset on purpose, a port for HTTP_SERVER_PORT when there is a server."""
    args = {k: v for k, v in spec.get("args", {}).items() if v is not None}
    args.update({k: "" for k in spec.get("unset", ())})
    if spec.get("http"):
        args["HTTP_SERVER_PORT"] = "8000"
    return args


def created_paths(spec):
    """Context paths INPUTS' files make, with their parent dirs."""
    out = set()
    for _, path, _, _ in spec.get("files", ()):
        p = os.path.normpath(path)
        while p and p != ".":
            out.add(p)
            p = os.path.dirname(p)
    return out


LOCAL_URL_RE = re.compile(r"(https?)://(0\.0\.0\.0|localhost|127\.0\.0\.1)(:\$\{?HTTP_SERVER_PORT\}?)?/")


def describe_inputs(spec):
    """One line: what INPUTS gives a case (for --list and the notes)."""
    parts = []
    if spec.get("args"):
        parts.append("--build-arg " + ", ".join(k if v is None else f"{k}={v}" for k, v in spec["args"].items()))
    if spec.get("secrets"):
        parts.append("--secret " + ", ".join(sorted(spec["secrets"])))
    if spec.get("files"):
        parts.append("creates " + ", ".join(p for _, p, _, _ in spec["files"]))
    if spec.get("http"):
        parts.append("HTTP server (HTTP_SERVER_PORT)")
    if spec.get("ssh"):
        parts.append("--ssh default (ssh-agent)")
    if spec.get("prebuild"):
        parts.append(f"pre-build of {spec['prebuild']} in the same store")
    return "with the bats test's inputs: " + "; ".join(parts)


def classify(run, case, text, ctx, standin_root, applets, slow):
    """(kind, category, reason, extra) for a case; kind is Verdict.*.  ctx is the build context dir
    (of the fixture as it is in the corpus), standin_root the stand-in base's rootfs.  What INPUTS
    gives the case counts as there: its build args, secrets, files, HTTP server, SSH agent."""
    cid, name = case["id"], os.path.basename(case["file"])
    spec = inputs_of(cid)
    made = created_paths(spec)
    if name.endswith(".in"):
        return (Verdict.CANNOT, "buildah-only feature",
                "cpp-preprocessed `.in` source (`#include`/`#if`): only buildah runs cpp over Dockerfiles", None)
    if cid in SLOW and not slow:
        _, cat, why = SLOW[cid]
        return Verdict.CANNOT, cat, why, None
    if cid in BATS_ONLY:
        _, cat, why = BATS_ONLY[cid]
        return Verdict.CANNOT, cat, why, None
    if cid in EXPECTED_FAILURES:
        return Verdict.EXPECT_FAIL, None, EXPECTED_FAILURES[cid][1], None
    if re.search(r"bad$", name):
        return Verdict.EXPECT_FAIL, None, f"`{name}`: a `*.bad` fixture must fail", None

    a = Analysis(text, classification_args(spec))
    prereq_names = set(PREREQS.get(cid, (None, {}))[1])
    bases = sorted({st["resolved"] for st in a.stages if st["resolved"] and not a.is_stage_ref(st["resolved"])
                    and st["resolved"].lower() != "scratch"})
    upstream = ", ".join(bases) or "the upstream base"

    # FROM lines that only a build arg makes valid
    for i, st in enumerate(a.stages):
        if st["platform"] and st["platform"][2] and not re.fullmatch(r"[a-z0-9]+/[a-z0-9_]+(/\w+)?", st["platform"][1]):
            args = ", ".join(sorted(st["platform"][2]))
            return (Verdict.CANNOT, "build arg the bats test passes",
                    f"line {st['lineno']}: `FROM --platform={st['platform'][0]}` needs --build-arg {args}", None)
        res = st["resolved"]
        if st["needs"] and not (res and REF_RE.fullmatch(res)) and not a.is_stage_ref(res, i):
            return (Verdict.CANNOT, "build arg the bats test passes",
                    f"line {st['lineno']}: `FROM {st['image']}` needs --build-arg {', '.join(sorted(st['needs']))}", None)

    # RUN: network, tools and files of the distro images, secrets and SSH agents
    named_user = None  # (lineno, name) of the stage's USER naming a user the stand-in lacks
    for idx, ins, env in a.stage_scopes():
        if ins.keyword == "FROM":
            named_user = None
        elif ins.keyword == "USER":
            user = expand(ins.rest.split(":")[0].strip(), env)[0]
            named_user = None if not user or user.isdigit() or user in run.STANDIN_USERS else (ins.lineno, user)
        if ins.keyword == "RUN" and named_user:
            return (Verdict.CANNOT, "stand-in lacks a tool or file",
                    f"line {named_user[0]}: `USER {named_user[1]}` (of {upstream}) and then RUN; the busybox stand-in's "
                    "passwd has no such user", None)
        if ins.keyword == "RUN":
            flags, _ = ins.flags_and_args()
            script = run_script(ins)
            for f in flags:
                if not f.startswith("--mount="):
                    continue
                mo = mount_options(f)
                if mo.get("type") == "ssh" and not spec.get("ssh"):
                    return (Verdict.CANNOT, "bats flag (--secret/--ssh)",
                            f"line {ins.lineno}: `--mount=type=ssh` needs the SSH agent the bats test forwards (--ssh)", None)
                if mo.get("type") == "secret":
                    sid = mo.get("id") or ""
                    target = mo.get("target") or mo.get("dst") or mo.get("destination") or f"/run/secrets/{sid}"
                    if isinstance(target, str) and os.path.basename(target) in script and sid not in spec.get("secrets", {}):
                        return (Verdict.CANNOT, "bats flag (--secret/--ssh)",
                                f"line {ins.lineno}: reads secret `{sid}`, which the bats test passes with --secret", None)
            m = PACKAGE_INSTALL_RE.search(script)
            if m:
                return (Verdict.CANNOT, "network (internet)",
                        f"line {ins.lineno}: `RUN {m.group(1)}` needs package repositories; there is no internet here", None)
            for cm in COMMAND_RE.finditer(script):
                word = os.path.basename(cm.group(1))
                if word in ("wget", "curl"):
                    if "HTTP_SERVER_PORT" in script and spec.get("http"):
                        continue
                    if "HTTP_SERVER_PORT" in script:
                        return (Verdict.CANNOT, "the bats test's HTTP server",
                                f"line {ins.lineno}: `RUN {word}` of the HTTP server the bats test starts (starthttpd), "
                                "on --build-arg HTTP_SERVER_PORT", None)
                    return (Verdict.CANNOT, "network (internet)",
                            f"line {ins.lineno}: `RUN {word}` needs the internet", None)
                if word in DISTRO_TOOLS and word not in applets:
                    return (Verdict.CANNOT, "stand-in lacks a tool or file",
                            f"line {ins.lineno}: `{word}` (of {upstream}); the busybox stand-in has no such command", None)
            for _, body in ins.heredocs:
                she = re.match(r"#!\s*(\S+)", body)
                if she and she.group(1).startswith("/") and not standin_has(standin_root, she.group(1)):
                    return (Verdict.CANNOT, "stand-in lacks a tool or file",
                            f"line {ins.lineno}: heredoc interpreter `{she.group(1)}` (of {upstream}); the busybox stand-in "
                            "has none", None)
            for p in DISTRO_PATHS:
                if re.search(re.escape(p) + r"(/|\b)", script) and not standin_has(standin_root, p):
                    return (Verdict.CANNOT, "stand-in lacks a tool or file",
                            f"line {ins.lineno}: uses {p} (of {upstream}); the busybox stand-in has none", None)
        elif ins.keyword in ("COPY", "ADD"):
            flags, argtext = ins.flags_and_args()
            try:
                words = json.loads(argtext) if argtext.startswith("[") else argtext.split()
            except ValueError:
                words = argtext.split()
            srcs = [w for w in words[:-1] if not w.startswith("<<")]
            from_ = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
            for s in srcs:
                if re.match(r"(https?|git)://", s):
                    if re.search(r"://(0\.0\.0\.0|localhost|127\.0\.0\.1)|HTTP_SERVER_PORT", s) and spec.get("http"):
                        continue
                    if re.search(r"://(0\.0\.0\.0|localhost|127\.0\.0\.1)|HTTP_SERVER_PORT", s):
                        return (Verdict.CANNOT, "the bats test's HTTP server",
                                f"line {ins.lineno}: `{ins.keyword} {s}` of the HTTP server the bats test starts", None)
                    host = re.match(r"\w+://([^/]+)", s).group(1)
                    return (Verdict.CANNOT, "network (internet)",
                            f"line {ins.lineno}: `{ins.keyword}` of a remote URL ({host}); there is no internet here", None)
            if from_ is not None:
                ref, needs = expand(unquote(from_), env)
                ref = unquote(ref)
                if needs:
                    return (Verdict.CANNOT, "build arg the bats test passes",
                            f"line {ins.lineno}: `--from={from_}` needs --build-arg {', '.join(sorted(needs))}", None)
                if not a.is_stage_ref(ref, idx) and ref not in prereq_names and not UNREACHABLE_REGISTRY_RE.match(ref):
                    for s in srcs:  # sources of an external image: the stand-in must have them
                        path, _ = expand(s, env)
                        if path.startswith("/") and not re.search(r"[*?\[]", path) and not standin_has(standin_root, path):
                            return (Verdict.CANNOT, "stand-in lacks a tool or file",
                                    f"line {ins.lineno}: `COPY --from={ref} {path}`: the busybox stand-in has no {path}", None)
                continue
            for s in srcs:
                path, needs = expand(s, env)
                path = unquote(path)
                if needs:
                    return (Verdict.CANNOT, "build arg the bats test passes",
                            f"line {ins.lineno}: `{ins.keyword} {s}` needs --build-arg {', '.join(sorted(needs))}", None)
                if re.match(r"(https?|git)://", path):  # the HTTP server's, let through above
                    continue
                rel = os.path.normpath(path.lstrip("/")) if path.strip("/") else "."
                if re.search(r"[*?\[]", rel) or rel.startswith(".."):
                    continue
                if not os.path.lexists(os.path.join(ctx, rel)) and rel not in made:
                    return (Verdict.CANNOT, "file the bats test creates",
                            f"line {ins.lineno}: `{ins.keyword} {s}`: not in the fixture (the bats test creates it)", None)

    for ins in a.instrs:  # SHELL naming an interpreter of the upstream image
        if ins.keyword == "SHELL":
            try:
                sh_argv = json.loads(ins.rest)
            except ValueError:
                continue
            if sh_argv and sh_argv[0].startswith("/") and not standin_has(standin_root, sh_argv[0]):
                return (Verdict.CANNOT, "stand-in lacks a tool or file",
                        f"line {ins.lineno}: `SHELL [\"{sh_argv[0]}\", ...]` (of {upstream}); the busybox stand-in has none",
                        None)

    # run.py's own rules (SHELL bash, printf %q, users of the base image, remote ADD, FROM splices);
    # an ADD of the HTTP server INPUTS starts is not remote
    reason = run.unsupported_reason({}, LOCAL_URL_RE.sub("", text) if spec.get("http") else text, [], KILN_TEMPLATE)
    if reason:
        return Verdict.CANNOT, "stand-in lacks a tool or file" if "stand-in" in reason else "run.py rule", reason, None
    if spec.get("must_fail"):
        return Verdict.EXPECT_FAIL, None, f"{spec['must_fail']}; {describe_inputs(spec)}", a
    return Verdict.BUILD, None, describe_inputs(spec) if spec else None, a


# =============================================================================================
# rewriting onto the stand-ins

def rewrite(run, text, a, mapper, prereq_refs, build_args=None):
    """Map external bases onto the stand-ins with run.rewrite_dockerfile.  Before that: prerequisite
    image names point at the registry, and FROM lines splicing variables into an external name are
    resolved (run.py cannot map those).  build_args (INPUTS' args) that name an image for a FROM or a
    `--from`/`from=` are mapped as well, unless they name a stage (run.py would map those too).
    Returns (text, substitutions, notes, problems, build args as passed)."""
    notes, lines = [], text.split("\n")
    for name, ref in prereq_refs.items():
        pat = re.escape(name)
        for i, line in enumerate(lines):
            if re.match(r"^\s*FROM\s", line, re.I):
                lines[i] = re.sub(rf"(?i)(^\s*FROM\s+(?:--\S+\s+)*){pat}(?=\s|$)", lambda m: m.group(1) + ref, line)
            lines[i] = re.sub(rf"(?i)(\bfrom=){pat}(?=[,\s]|$)", lambda m: m.group(1) + ref, lines[i])
        notes.append(f"`{name}` is the prerequisite image {ref}")
    vetted = set()  # FROM lines with variables that resolve to a stage: fine as they are
    protected = set()  # and the header ARG defaults they use, which run.py would map as image names
    for i, st in enumerate(a.stages):
        img = st["image"]
        if "$" not in img:
            continue
        if a.is_stage_ref(st["resolved"], i):
            vetted.add(st["lineno"])
            for m in EXPAND_RE.finditer(img):
                v = a.header.get(m.group(1) or m.group(4))
                if v:
                    protected.add(unquote(v))
            continue
        if run.VAR_RE.fullmatch(img):
            continue
        if st["single_line"] and st["resolved"] and REF_RE.fullmatch(st["resolved"]):
            ln = st["lineno"] - 1
            lines[ln] = re.sub(r"(\s)" + re.escape(img) + r"(?=\s|$)", lambda m: m.group(1) + st["resolved"], lines[ln], 1)
            notes.append(f"line {st['lineno']}: `FROM {img}` resolved to `{st['resolved']}` before mapping it")
    text, _, subs, problems = run.rewrite_dockerfile(
        "\n".join(lines), {}, lambda ref: ref if ref in protected else mapper(ref))
    problems = [p for p in problems if int(re.match(r"line (\d+)", p).group(1)) not in vetted]
    image_vars = set()  # ARGs that are a whole FROM image or --from/from= value (not spliced into one)
    for expr in [st["image"] for st in a.stages] + re.findall(r"\bfrom=([^\s,]+)", text):
        m = EXPAND_RE.fullmatch(unquote(expr))
        if m and not m.group(2):
            image_vars.add(m.group(1) or m.group(4))
    args = {}
    for k, v in (build_args or {}).items():
        if v is not None and k in image_vars and not a.is_stage_ref(v) and run.is_external_ref(v):
            mapped = mapper(v)
            subs.append({"line": 0, "where": f"--build-arg {k}", "from": v, "to": mapped})
            v = mapped
        args[k] = v
    return text, [s for s in subs if s["from"] != s["to"]], notes, problems, args


# =============================================================================================
# building and judging

KILN_ERROR_RE = re.compile(r"^\s*(?:#\d+ ERROR: .*|error: .*|Error: .*|[x\u00d7] .*)$", re.M)  # x: a diagnostic


def kiln_error(run, log):
    """The line of kiln's plain progress that says what failed (run.last_error is tuned to buildah)."""
    errs = KILN_ERROR_RE.findall(log)
    return errs[-1].strip()[:300] if errs else run.last_error(log)


def tar_xz(members, mtime):
    """The bytes of an xz tar archive of {member: text} (files 0644, root-owned, mtime), the same for
    both builders' contexts."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz", format=tarfile.GNU_FORMAT) as tf:
        for name, text in members.items():
            data = text.encode()
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime, ti.uname, ti.gname = len(data), 0o644, mtime, "root", "root"
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # noqa: D401 -- the build logs say what was fetched
        pass


class HttpServer:
    """The bats test's starthttpd: a dir served over HTTP on 127.0.0.1, on a free port, by a thread of
    this process (stop() ends it)."""

    def __init__(self, root):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=root))
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class SshAgent:
    """An ssh-agent holding a fresh key, as ssh.bats makes one (`ssh-keygen -b 2048 -t rsa`, ssh-add).
    Both builders get its socket (`--ssh default=SOCKET`).  Started once per run, by us, stopped by stop()."""

    def __init__(self, d):
        os.makedirs(d, exist_ok=True)
        key, self.sock, self.proc = os.path.join(d, "sshkey"), os.path.join(d, "agent.sock"), None
        for tool in ("ssh-keygen", "ssh-agent", "ssh-add"):
            if not shutil.which(tool):
                raise RuntimeError(f"{tool} is not installed: no SSH agent for --ssh")
        r = subprocess.run(["ssh-keygen", "-b", "2048", "-t", "rsa", "-f", key, "-q", "-N", ""], capture_output=True)
        if r.returncode:
            raise RuntimeError(f"ssh-keygen: {r.stderr.decode(errors='replace')[-300:]}")
        self.proc = subprocess.Popen(["ssh-agent", "-D", "-a", self.sock], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(100):
            if os.path.exists(self.sock):
                break
            time.sleep(0.1)
        r = subprocess.run(["ssh-add", key], env=dict(os.environ, SSH_AUTH_SOCK=self.sock), capture_output=True)
        if r.returncode:
            self.stop()
            raise RuntimeError(f"ssh-add: {r.stderr.decode(errors='replace')[-300:]}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Supply:
    """A case's INPUTS made real for its builds: the words both builders get (build args, secrets, the
    SSH agent), the environment (env secrets), the files made in each side's fixture copy."""

    def __init__(self, spec, args, mtime, http_port=None, ssh_sock=None):
        self.spec, self.args, self.mtime, self.ssh_sock = spec, dict(args), mtime, ssh_sock
        if http_port:
            self.args["HTTP_SERVER_PORT"] = str(http_port)

    def materialize(self, root, fixture):
        """Make the files in fixture, the secret files under root; returns (words, environment)."""
        for kind, path, data, mode in self.spec.get("files", ()):
            p = os.path.join(fixture, path)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            if kind == "dir":
                os.makedirs(p, exist_ok=True)
            elif kind == "symlink":
                os.symlink(data, p)
            else:
                with open(p, "wb") as f:
                    f.write(tar_xz(data, self.mtime) if kind == "tar.xz" else data.encode())
            if mode is not None:
                os.chmod(p, mode)
        words, env = [], {}
        for k, v in sorted(self.args.items()):
            words += ["--build-arg", k if v is None else f"{k}={v}"]
        for sid, (kind, data) in sorted(self.spec.get("secrets", {}).items()):
            if kind == "env":
                env[sid] = data
                words += ["--secret", f"id={sid},env={sid}"]
                continue
            if kind == "text":
                src = os.path.join(root, "secrets", sid)
                os.makedirs(os.path.dirname(src), exist_ok=True)
                with open(src, "w") as f:
                    f.write(data)
            else:  # "context": the fixture's own file, as `src=$BUDFILES/<dir>/<file>`
                src = os.path.join(fixture, data)
            words += ["--secret", f"id={sid},src={src}"]
        if self.ssh_sock:
            words += ["--ssh", f"default={self.ssh_sock}"]
        return words, env


class BudRunner:
    def __init__(self, run, a, bud, index):
        self.run, self.a, self.bud = run, a, bud
        self.index = index  # bats test name -> dirs
        # run.Runner gives us render() and the store layout; nothing of its case handling is used
        self.base = run.Runner(argparse.Namespace(work=a.work, builder_cmd=KILN_TEMPLATE, timeout=a.timeout), bud)
        self.oracle_store, self.builder_store = self.base.oracle_store, self.base.builder_store
        self.registry = None
        self.bases = None
        self.applets = set()
        self.print_lock = threading.Lock()
        self.prereq_lock = threading.Lock()
        self.prereqs = {}  # (dir, file) -> (ref or None, error, lock)
        self.agent, self.agent_error, self.agent_lock = None, None, threading.Lock()

    def close(self):
        """Stop what the run started once for all cases (the SSH agent)."""
        if self.agent:
            self.agent.stop()

    def ssh_agent(self):
        """The run's SSH agent (started on first use); raises when it cannot be had."""
        with self.agent_lock:
            if not self.agent and not self.agent_error:
                try:
                    self.agent = SshAgent(os.path.join(self.a.work, "ssh"))
                except (RuntimeError, OSError) as e:
                    self.agent_error = str(e)
            if self.agent_error:
                raise RuntimeError(self.agent_error)
            return self.agent

    # -- preparation ------------------------------------------------------------------------
    def standin_root(self):
        return self.bases._common_rootfs()  # noqa: SLF001 -- the stand-in's tree, for path checks

    def classify(self, case):
        src_dir = os.path.join(self.bud, case["dir"])
        with open(os.path.join(src_dir, case["file"]), errors="replace") as f:
            text = f.read()
        ctx = os.path.join(src_dir, os.path.dirname(case["file"]))
        return text, classify(self.run, case, text, ctx, self.standin_root(), self.applets, self.a.slow)

    def mapper_for(self, a, keep):
        host = self.registry.host if self.registry else "127.0.0.1"

        def mapper(ref):
            if ref.startswith(host + "/") or ref in keep or a.is_stage_ref(ref) or UNREACHABLE_REGISTRY_RE.match(ref):
                return ref
            return self.bases.ref_for(ref)
        return mapper

    def prepare(self, case, root, text):
        """Fresh fixture copy under root/fixture, the rewritten Dockerfile in place of the original.
        Returns (dockerfile, context, restored symlinks)."""
        fixture = os.path.join(root, "fixture")
        restored = prepare_fixture(os.path.join(self.bud, case["dir"]), fixture)
        df = os.path.join(fixture, case["file"])
        with open(df, "w") as f:
            f.write(text)
        os.chmod(df, 0o644)
        os.utime(df, (self.run.TEST_DATE, self.run.TEST_DATE))
        return df, os.path.dirname(df), restored

    def build(self, side, case, cdir, text, template=None, tag=None, supply=None, store=None, name=None):
        """One build (side: oracle, builder or prereq-*) of text in a fresh copy of the fixture.  supply:
        the case's INPUTS (words, environment, files); store: instead of the side's shared store (a
        case's own, for a pre-build); name: of the build's dir and log (default: side)."""
        name = name or side
        root = os.path.join(cdir, name)
        os.makedirs(root)
        df, ctx, restored = self.prepare(case, root, text)
        args, extra_env = supply.materialize(root, os.path.join(root, "fixture")) if supply else ([], {})
        out = os.path.join(root, "oci")
        store = store or (self.builder_store if side == "builder" else self.oracle_store)
        tag = tag or f"localhost/bud-{name}:{case['index']}"
        template = template or (self.run.ORACLE_TEMPLATE if side == "oracle" else KILN_TEMPLATE)
        cmd = self.base.render(template, df, ctx, out, args, store, tag, [])
        env = dict(os.environ, KILN_ROOT=store, TMPDIR=os.path.join(store, "tmp"), **extra_env)
        os.makedirs(env["TMPDIR"], exist_ok=True)
        rc, log, secs = self.run.run_cmd(["bash", "-c", cmd], timeout=self.a.timeout, env=env, cwd=root)
        with open(os.path.join(cdir, f"{name}.log"), "w") as f:
            f.write(f"$ {cmd}\n{log}\n[rc={rc} {secs:.2f}s]\n")
        ok_layout = rc == 0 and os.path.exists(os.path.join(out, "index.json"))
        return {"rc": rc, "seconds": round(secs, 2), "log": log, "out": out, "layout": ok_layout, "restored": restored}

    def prereq(self, case, name, file):
        """Build (once per run) the image a bats test builds before this case, with buildah, and push
        it to the registry.  Returns (ref, None) or (None, error)."""
        key = (case["dir"], file)
        with self.prereq_lock:
            entry = self.prereqs.setdefault(key, {"ref": None, "error": None, "done": False, "lock": threading.Lock()})
        with entry["lock"]:
            if entry["done"]:
                return entry["ref"], entry["error"]
            entry["done"] = True
            pcase = {"id": f"{case['dir']}/{file}", "dir": case["dir"], "file": file,
                     "index": f"prereq-{self.run.slug(file).lower()}"}
            with open(os.path.join(self.bud, case["dir"], file), errors="replace") as f:
                text = f.read()
            a = Analysis(text)
            text, _, _, _, _ = rewrite(self.run, text, a, self.mapper_for(a, set()), {})
            ref = f"{self.registry.host}/bud-prereq/{self.run.slug(case['dir'] + '-' + name).lower()}:latest"
            # --format docker keeps what OCI configs cannot hold (ONBUILD), as the bats tests' images have
            template = (self.run.ORACLE_BUD.replace("--format oci", "--format docker") +
                        " && buildah --root {store}/root --runroot {store}/runroot push --tls-verify=false {tag} "
                        + shlex.quote(f"docker://{ref}"))
            cdir = os.path.join(self.a.work, "prereqs", self.run.slug(f"{case['dir']}-{file}"))
            shutil.rmtree(cdir, ignore_errors=True)
            os.makedirs(cdir)
            r = self.build("prereq", pcase, cdir, text, template=template, tag=f"localhost/bud-prereq-{pcase['index']}")
            if r["rc"] != 0:
                entry["error"] = f"prerequisite {name} (buildah, {file}) failed: {self.run.last_error(r['log'])}"
            else:
                entry["ref"] = ref
            return entry["ref"], entry["error"]

    def supply(self, case, spec, args, cdir, servers):
        """The Supply of a case's INPUTS, with its HTTP server started (appended to servers, which the
        caller stops) and the run's SSH agent."""
        port = sock = None
        if spec.get("http"):
            if spec["http"] == HTTP_FIXTURE:
                root = os.path.join(self.bud, case["dir"])
            else:
                root = os.path.join(cdir, "http")
                for path, content in spec["http"].items():
                    p = os.path.join(root, path)
                    os.makedirs(os.path.dirname(p), exist_ok=True)
                    with open(p, "w") as f:
                        f.write(content)
                    os.utime(p, (self.run.TEST_DATE, self.run.TEST_DATE))  # its Last-Modified
            server = HttpServer(root)
            servers.append(server)
            port = server.port
        if spec.get("ssh"):
            sock = self.ssh_agent().sock
        return Supply(spec, args, self.run.TEST_DATE, port, sock)

    def prebuild(self, case, file, cdir, stores, res):
        """Build `file` of the case's dir first, by each builder in the store it then builds the case in
        (what the bats test builds before, e.g. to fill a cache mount).  False when one failed (res says how)."""
        pcase = dict(case, file=file)
        with open(os.path.join(self.bud, case["dir"], file), errors="replace") as f:
            text = f.read()
        a = Analysis(text)
        text, _, _, _, _ = rewrite(self.run, text, a, self.mapper_for(a, set()), {})
        o = self.build("oracle", pcase, cdir, text, store=stores["oracle"], name="oracle-prebuild")
        b = self.build("builder", pcase, cdir, text, store=stores["builder"], name="builder-prebuild")
        res["prebuild"] = {"file": file, "oracle": {k: o[k] for k in ("rc", "seconds")},
                           "builder": {k: b[k] for k in ("rc", "seconds")}}
        if o["rc"] != 0:
            res.update(verdict="oracle-failed", reason=f"buildah pre-build of {file} failed: {self.run.last_error(o['log'])}")
            res["oracle_tail"] = self.run.tail(o["log"])
            return False
        if b["rc"] != 0:
            res.update(verdict="FAIL", reason=f"kiln pre-build of {file} failed: {kiln_error(self.run, b['log'])}")
            res["diffs"].append(res["reason"])
            res["builder_tail"] = self.run.tail(b["log"])
            return False
        return True

    # -- one case ---------------------------------------------------------------------------
    def run_case(self, case):
        return apply_deviation(self._run_case(case))

    def _run_case(self, case):
        res = {"id": case["id"], "dir": case["dir"], "file": case["file"], "index": case["index"], "verdict": None,
               "reason": "", "category": None, "diffs": [], "notes": [], "substitutions": [],
               "bats_tests": sorted(t for t, ds in self.index.items() if case["dir"] in ds)}
        t0 = time.monotonic()
        servers = []  # the case's HTTP server, stopped when it is done
        try:
            text, (kind, category, reason, a) = self.classify(case)
            if kind == Verdict.CANNOT:
                res.update(verdict="cannot-run-here", reason=reason, category=category)
                return res
            if a is None:
                a = Analysis(text)
            prereq_refs = {}
            for name, file in PREREQS.get(case["id"], (None, {}))[1].items():
                ref, err = self.prereq(case, name, file)
                if err:
                    res.update(verdict="oracle-failed", reason=err)
                    return res
                prereq_refs[name] = ref
            keep = set(prereq_refs.values())
            spec = inputs_of(case["id"])
            text, subs, notes, problems, args = rewrite(self.run, text, a, self.mapper_for(a, keep), prereq_refs,
                                                        spec.get("args"))
            res["substitutions"], res["notes"] = subs, notes
            if spec:
                res["inputs"] = describe_inputs(spec)
                if spec.get("notes"):
                    res["notes"].append(spec["notes"])
            if problems:  # a FROM run.py cannot map and this runner could not resolve
                res.update(verdict="cannot-run-here", category="run.py rule",
                           reason=self.run.unsupported_reason({}, text, problems, KILN_TEMPLATE) or "; ".join(problems))
                return res
            cdir = os.path.join(self.a.work, "cases", f"{case['index']:03d}-{self.run.slug(case['id'])}")
            shutil.rmtree(cdir, ignore_errors=True)
            os.makedirs(cdir)
            res["dir_work"] = cdir
            supply = self.supply(case, spec, args, cdir, servers) if spec else None
            stores = {"oracle": None, "builder": None}  # the shared ones
            if spec.get("prebuild"):  # a store of its own: no other case touches what the pre-build leaves
                stores = {side: os.path.join(self.a.work, "stores", f"case-{case['index']:03d}", side)
                          for side in ("oracle", "builder")}
                for d in stores.values():
                    os.makedirs(d)
                if not self.prebuild(case, spec["prebuild"], cdir, stores, res):
                    return res
            o = self.build("oracle", case, cdir, text, supply=supply, store=stores["oracle"])
            b = self.build("builder", case, cdir, text, supply=supply, store=stores["builder"])
            if o["restored"]:
                res["notes"].append("git symlink placeholders restored: " + ", ".join(o["restored"]))
            res["oracle"] = {k: o[k] for k in ("rc", "seconds")}
            res["builder"] = {k: b[k] for k in ("rc", "seconds")}
            if kind == Verdict.EXPECT_FAIL:
                return self.judge_failure(res, reason, o, b)
            return self.judge_build(res, o, b)
        except Exception as e:  # noqa: BLE001 -- a runner bug must not hide the other cases
            res.update(verdict="FAIL", reason=f"runner error: {type(e).__name__}: {e}")
            res["diffs"].append(res["reason"])
            return res
        finally:
            for server in servers:
                server.stop()
            res["seconds"] = round(time.monotonic() - t0, 2)

    def judge_failure(self, res, why, o, b):
        """A build that must fail: both builders must fail it."""
        run = self.run
        res["expect"] = f"failure: {why}"
        if o["rc"] == 0:
            res.update(verdict="oracle-failed", reason=f"buildah built it, but it must fail ({why})")
        elif o["rc"] is None:
            res.update(verdict="oracle-failed", reason=f"buildah timed out after {self.a.timeout}s")
        elif b["rc"] == 0:
            res.update(verdict="FAIL", reason=f"kiln built it, but it must fail ({why})")
            res["diffs"].append(res["reason"])
        elif b["rc"] is None:
            res.update(verdict="FAIL", reason=f"kiln timed out after {self.a.timeout}s")
            res["diffs"].append(res["reason"])
        else:
            res.update(verdict="pass", reason=f"both fail ({why}); kiln: {kiln_error(run, b['log'])}")
            if b["layout"]:
                res["notes"].append("kiln wrote an image although the build failed")
        if res["verdict"] != "pass":
            res["oracle_tail"], res["builder_tail"] = run.tail(o["log"]), run.tail(b["log"])
        return res

    def judge_build(self, res, o, b):
        run = self.run
        if o["rc"] != 0 or not o["layout"]:
            why = "timed out" if o["rc"] is None else f"rc={o['rc']}"
            res.update(verdict="oracle-failed", reason=f"buildah {why}: {run.last_error(o['log'])}")
            res["builder_result"] = "built" if b["rc"] == 0 else f"failed: {kiln_error(run, b['log'])}"
            res["oracle_tail"] = run.tail(o["log"])
            return res
        if b["rc"] != 0 or not b["layout"]:
            why = f"timed out after {self.a.timeout}s" if b["rc"] is None else (
                f"rc={b['rc']}" if b["rc"] else "no OCI layout written")
            res.update(verdict="FAIL", reason=f"kiln {why}: {kiln_error(run, b['log'])}")
            res["diffs"].append(res["reason"])
            res["builder_tail"] = run.tail(b["log"])
            return res
        o_cfg, o_tree, o_man = run.load_image(o["out"])
        b_cfg, b_tree, b_man = run.load_image(b["out"])
        res["layers"] = {"oracle": len(o_man["layers"]), "builder": len(b_man["layers"])}
        diffs = run.compare(o_cfg, o_tree, b_cfg, b_tree, [])
        # run.compare leaves out the config's author (MAINTAINER); both OCI configs carry it
        if (o_cfg.get("author") or "") != (b_cfg.get("author") or ""):
            diffs.append(f"config author: oracle={o_cfg.get('author')!r} builder={b_cfg.get('author')!r}")
        res["diffs"] = diffs
        res["verdict"] = "FAIL" if diffs else "pass"
        if diffs:
            res["reason"] = f"{len(diffs)} difference(s)"
        elif not self.a.keep:
            shutil.rmtree(o["out"], ignore_errors=True)
            shutil.rmtree(b["out"], ignore_errors=True)
        return res

    def emit(self, res):
        detail = "; ".join(res["diffs"][:3]) if res["diffs"] else res["reason"]
        if len(detail) > 400:
            detail = detail[:400] + "…"
        with self.print_lock:
            print(f"{res['id']:58}  {res['verdict']:15}  {detail}", flush=True)


# =============================================================================================

def load_index(path):
    tests = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    e = json.loads(line)
                    tests[e["test"]] = set(e.get("dirs") or [])
    return tests


def table_warnings(index, cases):
    """Table entries whose fixture or bats test is not in the corpus/index (the corpus moved on)."""
    ids = {c["id"] for c in cases}
    w = []
    tables = [("DEVIATIONS", {k: None for k in DEVIATIONS}),
              ("EXPECTED_FAILURES", {k: v[0] for k, v in EXPECTED_FAILURES.items()}),
              ("BATS_ONLY", {k: v[0] for k, v in BATS_ONLY.items()}), ("SLOW", {k: v[0] for k, v in SLOW.items()}),
              ("PREREQS", {k: v[0] for k, v in PREREQS.items()}), ("INPUTS", {k: v[0] for k, v in INPUTS.items()})]
    for tname, table in tables:
        for cid, test in table.items():
            if cid not in ids:
                w.append(f"{tname}: {cid} is not a Dockerfile of the corpus")
            if test and index and test not in index:
                w.append(f"{tname}: {cid}: bats test {test!r} is not in the index")
            # a test the index lists no dir for names its dir through a variable (`target=copy-archive`)
            elif test and index and index[test] and cid.split("/", 1)[0] not in index[test]:
                w.append(f"{tname}: {cid}: the index does not list dir {cid.split('/', 1)[0]} for {test!r}")
    return w


def setup_kiln(a):
    """Put the kiln under test first on PATH: --kiln, else this repo's release build, else PATH's."""
    kiln = a.kiln or os.path.join(REPO, "target", "release", "kiln")
    if not os.path.exists(kiln):
        if a.kiln:
            raise SystemExit(f"--kiln {a.kiln}: no such file")
        kiln = shutil.which("kiln")
        if not kiln:
            raise SystemExit("kiln not found: build it (target/release/kiln) or pass --kiln PATH")
    kiln = os.path.abspath(kiln)
    bindir = os.path.join(a.work, "bin")
    os.makedirs(bindir, exist_ok=True)
    os.symlink(kiln, os.path.join(bindir, "kiln"))
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    return kiln


def wipe_work(run, work):
    if os.path.isdir(work) and os.listdir(work) and not os.path.exists(os.path.join(work, WORK_MARKER)):
        raise SystemExit(f"--work {work} is not empty and was not made by this runner; refusing to wipe it")
    run.wipe(work)  # releases what a killed build left mounted, then removes
    os.makedirs(work)
    open(os.path.join(work, WORK_MARKER), "w").close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = conformance_root()
    ap.add_argument("--runner", default=os.path.join(root, "buildah-conformance", "run.py"),
                    help="buildah-conformance/run.py to import (default: $KILN_CONFORMANCE_DIR or ../shared/conformance)")
    ap.add_argument("--bud", default="", help="the buildah-bud fixtures (default: next to the runner's dir)")
    ap.add_argument("--index", default="", help="buildah-bud-bats-tests.jsonl (default: ../index next to --bud)")
    ap.add_argument("--kiln", default="", help="kiln binary (default: target/release/kiln of this repo, else PATH)")
    ap.add_argument("--work", default=DEFAULT_WORK, help="temporary data (wiped per run)")
    ap.add_argument("--report", default="", help="JSON report (default WORK/report.json)")
    ap.add_argument("--only", default="", help="comma-separated DIR or DIR/FILE")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=300, help="seconds per build")
    ap.add_argument("--keep", action="store_true", help="keep the OCI layouts of passing cases too")
    ap.add_argument("--slow", action="store_true", help="also build what takes minutes (long-sleep)")
    ap.add_argument("--list", action="store_true", help="classify only, build nothing")
    a = ap.parse_args()
    a.work = os.path.abspath(a.work)
    a.runner = os.path.abspath(a.runner)
    if not os.path.exists(a.runner):
        raise SystemExit(f"{a.runner} not found: set KILN_CONFORMANCE_DIR or pass --runner")
    croot = os.path.dirname(os.path.dirname(a.runner))
    a.bud = os.path.abspath(a.bud or os.path.join(croot, "buildah-bud"))
    a.index = os.path.abspath(a.index or os.path.join(os.path.dirname(a.bud), "index", "buildah-bud-bats-tests.jsonl"))
    run = load_runner(a.runner)

    cases = discover(a.bud)
    index = load_index(a.index)
    warnings = table_warnings(index, cases)
    if a.only:
        want = [w.strip().rstrip("/") for w in a.only.split(",") if w.strip()]
        unknown = [w for w in want if not any(c["id"] == w or c["dir"] == w for c in cases)]
        if unknown:
            raise SystemExit(f"--only: no such fixture dir or Dockerfile: {unknown}")
        cases = [c for c in cases if c["id"] in want or c["dir"] in want]

    wipe_work(run, a.work)
    report_path = os.path.abspath(a.report or os.path.join(a.work, "report.json"))
    kiln = setup_kiln(a)
    br = BudRunner(run, a, a.bud, index)
    br.applets = set(run.sh(["/bin/busybox", "--list"]).stdout.split())
    for w in warnings:
        print(f"# warning: {w}", file=sys.stderr)

    if a.list:
        br.bases = run.Bases(a.work, None)  # only its rootfs is used: nothing is pushed
        for c in cases:
            _, (kind, _, reason, _) = br.classify(c)
            label = {Verdict.BUILD: "build", Verdict.EXPECT_FAIL: "must-fail", Verdict.CANNOT: "cannot-run-here"}[kind]
            print(f"{c['id']:58}  {label:15}  {reason or ''}")
        return 0

    for d in (br.oracle_store, br.builder_store):
        os.makedirs(d)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    t0 = time.monotonic()
    results, interrupted = [], False
    reg = run.Registry(a.work)
    try:
        br.registry = reg
        br.bases = run.Bases(a.work, reg)
        br.standin_root()  # made once, before the worker threads would race to create it
        kiln_version = run.sh([kiln, "--version"]).stdout.strip()
        oracle_version = run.sh(["buildah", "--version"]).stdout.strip()
        print(f"# oracle: {oracle_version}; builder: {kiln} ({kiln_version}); registry {reg.host}; "
              f"{len(cases)} Dockerfiles of {a.bud}", flush=True)
        if a.jobs <= 1:
            for c in cases:
                r = br.run_case(c)
                br.emit(r)
                results.append(r)
        else:
            ex = concurrent.futures.ThreadPoolExecutor(a.jobs)
            try:
                futs = [ex.submit(br.run_case, c) for c in cases]
                for f in concurrent.futures.as_completed(futs):
                    r = f.result()
                    br.emit(r)
                    results.append(r)
            finally:
                ex.shutdown(wait=False, cancel_futures=True)
    except KeyboardInterrupt:
        print("# interrupted: stopping builds; the report covers the finished cases", file=sys.stderr)
        interrupted = True
        run.stop_all_children()
    finally:
        br.close()
        reg.stop()
        run.stop_all_children()
        run.release_mounts(os.path.join(a.work, "stores"))

    results.sort(key=lambda r: r["index"])
    verdicts = ("pass", "deviation", "FAIL", "cannot-run-here", "oracle-failed")
    counts = {v: sum(1 for r in results if r["verdict"] == v) for v in verdicts}
    categories = {}
    for r in results:
        if r["verdict"] == "cannot-run-here":
            categories[r["category"]] = categories.get(r["category"], 0) + 1
    summary = (f"buildah-bud: {counts['pass']} pass, {counts['deviation']} as BuildKit where buildah differs, "
               f"{counts['FAIL']} fail, {counts['cannot-run-here']} cannot run here, "
               f"{counts['oracle-failed']} oracle-failed of {len(results)}")
    print(summary)
    elapsed = time.monotonic() - t0
    print(f"# {elapsed:.0f}s; report: {report_path}")
    report = {
        "summary": summary, "counts": counts, "total": len(results), "seconds": round(elapsed, 1),
        "cannot_run_by_category": dict(sorted(categories.items(), key=lambda kv: -kv[1])),
        "oracle": oracle_version if not interrupted or results else "", "oracle_template": run.ORACLE_TEMPLATE,
        "builder": kiln, "builder_version": kiln_version, "builder_template": KILN_TEMPLATE,
        "runner": a.runner, "corpus": a.bud, "index": a.index, "work": a.work, "jobs": a.jobs,
        "interrupted": interrupted, "table_warnings": warnings,
        "not_compared": "mtimes, history, layer boundaries (as run.py); Healthcheck/OnBuild/Shell, which buildah's "
                        "--format oci output drops",
        "cases": [{k: v for k, v in r.items()} for r in results],
    }
    os.makedirs(os.path.dirname(report_path), exist_ok=True)
    with open(report_path, "w") as f:
        json.dump(report, f, indent=1)
    return 130 if interrupted else (1 if counts["FAIL"] else 0)


if __name__ == "__main__":
    sys.exit(main())
