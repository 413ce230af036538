#!/usr/bin/env python3
"""Harness over BuildKit's integration-test Dockerfiles.

The corpus is shared/conformance/buildkit-integration/<testdir>/<testFunc>.<n>.Dockerfile[.tmpl]
(index.jsonl lists its files); what BuildKit's Go tests expect of each file was extracted into
testdata/buildkit-integration/<testdir>.jsonl, one JSON line per Dockerfile.  For every file:

  1. PARSE  the Dockerfile (Go templates filled with the line's `fill`, or harmless stand-ins) is
            fed to `kiln parse --format json -`.  It must parse, unless its test expects a
            parser-level error (decided from error_contains / note: unknown instruction, unknown
            flag, bad --mount keys, ...), in which case it must be rejected.
  2. BUILD  every runnable line is built with `kiln build` from a temporary context holding the
            line's files, .dockerignore and Dockerfile; external images are mapped to busybox-static
            stand-ins that the buildah conformance runner (run.py, imported as a module) pushes to
            a throw-away docker-registry on 127.0.0.1 (run.py's Registry, Bases, rewrite_dockerfile).
            `{http}` is served by a throw-away HTTP server, `{echo_port}` by a TCP server writing
            "foo", `{registry}` is that local registry; images that another line of the same test
            produces (`{build:<file>}`, `pushed as {registry}/...`, `tagged <ref>`, an OCI layout
            named in the note) are built first and handed over (push / store tag / oci-layout://).
  3. JUDGE  expect success: kiln succeeds, every `checks` entry holds on the local export and every
            `config_checks` entry on the image config (from a second `-o type=oci` output of the
            same build).  expect failure: kiln fails and, with fail_line, its error excerpt points
            at that Dockerfile line (`,-[Dockerfile:LINE:COL]`).  error_contains is only reported
            (kiln's wording is its own).

Verdicts: ok, MISMATCH (with detail), cannot-run (with a one-line reason).  One line per
Dockerfile is printed, then the summary line; --report writes everything as JSON.  Exit status 1
on an unexpected parse result or a MISMATCH.

Conventions of the extracted data that are handled here (different extractors wrote them):
  - values given as {"data_base64": ...} (context files, http_files, secrets) or as plain text;
    checks with content or content_base64, contains, absent, mode, symlink, dir;
  - `fill: []` means "not a format string: use the text verbatim"; %s/%d/%v/%q/%[n]s are Go verbs,
    other %-sequences (stat -c %u ...) are left alone;
  - notes starting with "FRAGMENT:" say which other file the built Dockerfile is glued to;
  - a few facts exist only in notes (a `label:` FrontendAttr, an outline request, an SSH agent,
    the producer of a base image); the helpers that read them are grouped under NOTE HINTS.
Anything the harness cannot reproduce is a cannot-run with its reason, never a crash.

Usage:
  buildkit_integration.py [--kiln PATH] [--runner run.py] [--only SUBSTR] [--work DIR] [--report PATH]
"""
import argparse
import base64
import fnmatch
import hashlib
import http.server
import importlib.util
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
CONF_DIR = os.environ.get("KILN_CONFORMANCE_DIR") or os.path.normpath(os.path.join(REPO, "..", "shared", "conformance"))
DEFAULT_CORPUS = os.path.join(CONF_DIR, "buildkit-integration")
DEFAULT_RUNNER = os.path.join(CONF_DIR, "buildah-conformance", "run.py")
DEFAULT_DATA = os.path.join(REPO, "testdata", "buildkit-integration")
DEFAULT_WORK = "/tmp/bki-run"
HOST_PLATFORM = "linux/amd64"

KNOWN_FIELDS = {"file", "test", "runnable", "why_not", "context", "dockerignore", "build_args", "target",
                "platform", "no_cache", "secrets", "named_contexts", "fill", "http_files", "filename",
                "network", "expect", "error_contains", "fail_line", "checks", "config_checks", "note"}

# Placeholders for the PARSE phase (no server runs then): any syntactically plausible value will do.
PARSE_STANDINS = {"http": "http://127.0.0.1:8080", "registry": "127.0.0.1:5000", "echo_port": "12345"}


# =============================================================================================
# small utilities

def b64_or_text(v):
    """A value of the data: plain text, or {"data_base64": ...} / {"data": ...} objects -> bytes."""
    if v is None:
        return b""
    if isinstance(v, bytes):
        return v
    if isinstance(v, dict):
        if "data_base64" in v:
            return base64.b64decode(v["data_base64"])
        if "content_base64" in v:
            return base64.b64decode(v["content_base64"])
        if "data" in v:
            return b64_or_text(v["data"])
        raise ValueError(f"unknown data object {sorted(v)}")
    return str(v).encode()


def octal(v, default):
    if v is None:
        return default
    if isinstance(v, int):
        return v
    return int(str(v), 8)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def short(s, n=300):
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[:n] + "…"


def load_module(path):
    spec = importlib.util.spec_from_file_location("conformance_run", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# =============================================================================================
# corpus and expectation lines

class Line:
    """One Dockerfile of the corpus with its (normalised) expectation line."""

    def __init__(self, file, raw, problem=None):
        self.file = file                      # <testdir>/<testFunc>.<n>.Dockerfile[.tmpl]
        self.raw = raw or {}                  # the JSON object as extracted ({} when missing)
        self.problem = problem                # why the line itself is unusable (malformed, missing)
        self.dir, self.base = file.split("/", 1)
        self.test = self.raw.get("test") or self.base.split(".", 1)[0]

    def get(self, k, default=None):
        v = self.raw.get(k)
        return default if v is None else v

    @property
    def note(self):
        return str(self.raw.get("note") or "")

    @property
    def platforms(self):
        p = self.raw.get("platform")
        if not p:
            return []
        items = p if isinstance(p, list) else str(p).split(",")
        return [x.strip() for x in items if x.strip()]


def load_lines(corpus, data):
    """Every corpus file (index.jsonl, else a directory walk), each with its expectation line."""
    files = []
    index = os.path.join(corpus, "index.jsonl")
    if os.path.exists(index):
        with open(index) as f:
            for l in f:
                l = l.strip()
                if l:
                    try:
                        files.append(json.loads(l)["file"])
                    except Exception:  # noqa: BLE001
                        pass
    else:
        for d in sorted(os.listdir(corpus)):
            if os.path.isdir(os.path.join(corpus, d)):
                files += [f"{d}/{n}" for n in sorted(os.listdir(os.path.join(corpus, d)))]
    by_file, extra = {}, []
    for name in sorted(os.listdir(data)):
        if not name.endswith(".jsonl"):
            continue
        with open(os.path.join(data, name)) as f:
            for no, l in enumerate(f, 1):
                if not l.strip():
                    continue
                try:
                    d = json.loads(l)
                    if not isinstance(d, dict) or not isinstance(d.get("file"), str):
                        raise ValueError("not an object with a 'file'")
                except Exception as e:  # noqa: BLE001 -- a bad line must not stop the run
                    extra.append(Line(f"{name[:-6]}/<line {no}>", {}, f"malformed expectation line: {e}"))
                    continue
                by_file[d["file"]] = d
    lines = []
    for fname in files:
        raw = by_file.pop(fname, None)
        lines.append(Line(fname, raw, None if raw else "no expectation line in testdata"))
    for fname, raw in sorted(by_file.items()):  # lines naming a file the index lacks
        lines.append(Line(fname, raw, None if os.path.exists(os.path.join(corpus, fname))
                          else "expectation line names a file that is not in the corpus"))
    return lines + extra


# =============================================================================================
# Dockerfile text: Go templates, placeholders, fragments

GO_VERB_RE = re.compile(r"%(?:\[(\d+)\])?([-+# 0]*\d*(?:\.\d+)?)([a-zA-Z%])")


def go_format(fmt, args):
    """fmt.Sprintf for the verbs the corpus uses: %s %d %v %q and %[n]s; %% -> %.  Unknown verbs
    (stat -c %u, date +%s in files that are not format strings never get here) stay as written."""
    out, pos, argi = [], 0, 0
    for m in GO_VERB_RE.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        idx, verb = m.group(1), m.group(3)
        if verb == "%" and not idx:
            out.append("%")
            continue
        if verb not in "sdvq":
            out.append(m.group(0))
            continue
        i = int(idx) - 1 if idx else argi
        argi = i + 1
        if i >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        v = str(args[i])
        out.append(json.dumps(v) if verb == "q" else v)
    out.append(fmt[pos:])
    return "".join(out)


# {http} {registry} {echo_port} {build:<file>} and other {name:arg} forms ({commit:v0.0.2}); never
# a Dockerfile's own ${var} / ${var:-default}
PLACEHOLDER_RE = re.compile(r"(?<!\$)\{(http|registry|echo_port|build:[^{}\s]+|[a-z]+:[\w.-]+)\}")


def template_args(line, text):
    """The values for a template's verbs: the line's fill, or stand-ins when it has none."""
    fill = line.raw.get("fill")
    if fill is not None:
        return [str(x) for x in fill] if isinstance(fill, list) else [str(fill)]
    if not line.file.endswith(".tmpl"):
        return None
    # no fill: a base image after FROM / --from=, a word elsewhere
    args = []
    for m in GO_VERB_RE.finditer(text):
        if m.group(3) in "sdvq":
            before = text[max(0, m.start() - 12):m.start()]
            args.append("scratch" if re.search(r"(FROM\s+|--from=)$", before, re.I) else "placeholder")
    return args


FRAGMENT_AFTER_RE = re.compile(r"FRAGMENT: the built Dockerfile is (\S+?\.Dockerfile(?:\.tmpl)?) followed directly by this")
FRAGMENT_BEFORE_RE = re.compile(r"FRAGMENT: the built Dockerfile is this text followed by (\S+?\.Dockerfile(?:\.tmpl)?)")


class TextError(Exception):
    """The Dockerfile text of a line cannot be produced (a cannot-run reason)."""


def dockerfile_text(line, corpus, by_file, seen=()):
    """The line's Dockerfile as BuildKit's test builds it, placeholders still unfilled."""
    with open(os.path.join(corpus, line.file), encoding="utf-8", errors="surrogateescape") as f:
        text = f.read()
    args = template_args(line, text)
    if args:
        text = go_format(text, args)
    note = line.note
    if note.startswith("FRAGMENT"):
        m_after, m_before = FRAGMENT_AFTER_RE.search(note), FRAGMENT_BEFORE_RE.search(note)
        m = m_after or m_before
        if not m:
            raise TextError("FRAGMENT note the harness cannot compose: " + short(note, 120))
        other = by_file.get(f"{line.dir}/{m.group(1)}")
        if other is None or other.file in seen:
            raise TextError(f"FRAGMENT names {m.group(1)}, which is not in the corpus")
        other_text = dockerfile_text(other, corpus, by_file, seen + (line.file,))
        text = other_text + text if m_after else text + other_text
    return text


def fill_placeholders(text, values):
    """Replace {http} {registry} {echo_port} {build:F} ... from `values` (name -> str)."""
    def repl(m):
        key = m.group(1)
        return values[key] if key in values else m.group(0)
    return PLACEHOLDER_RE.sub(repl, text)


def placeholders(s):
    return set(PLACEHOLDER_RE.findall(s))


# =============================================================================================
# PARSE phase

# Errors that BuildKit raises while parsing (parser + instructions packages), i.e. before any
# conversion to LLB: such a file is meant to be rejected by `kiln parse` too.
PARSE_ERROR_RE = re.compile(
    r"unknown instruction|dockerfile parse error|unknown flag|unexpected key '|unsupported mount type|"
    r"requires (?:at least|exactly) \w+ argument|can ?not be blank|`env` without arguments|"
    r"Unknown flag --|doesn't support variable expansion|variable expansion is not supported for --from", re.I)


def expects_parse_error(line):
    if line.get("expect") != "failure":
        return False
    return bool(PARSE_ERROR_RE.search(str(line.get("error_contains") or "")) or
                PARSE_ERROR_RE.search(line.note))


def is_extraction_fragment(line):
    """Files that are not whole Dockerfiles: the extractor stopped at a Go string concatenation."""
    return bool(re.search(r"extraction (fragment|artifact)|extracted Dockerfile file is truncated",
                          str(line.get("why_not") or "") + " " + line.note))


def flat_diagnostic(err):
    """kiln's rendered diagnostic as one line: miette wraps long messages, continuing them on
    lines that start with `|`."""
    return " ".join(w for w in err.split() if w != "|")


def parse_one(kiln, text, fmt="json"):
    """`kiln parse`: `buildkit` is the parser alone (its dump); `json` also types every instruction
    and resolves the stage graph with no build args, so it evaluates ARG defaults and FROM lines."""
    p = subprocess.run([kiln, "parse", "--format", fmt, "-"], input=text.encode("utf-8", "surrogateescape"),
                       capture_output=True, timeout=60)
    return p.returncode, p.stderr.decode("utf-8", "replace")


# =============================================================================================
# NOTE HINTS: facts that only the free-text note carries

def hint_labels(line):
    """FrontendAttrs label:K=V (docker build --label)."""
    return re.findall(r"FrontendAttrs label:([\w.-]+)=([^\s,;()]+)", line.note)


def hint_outline(line):
    """Outline requests are not builds: `kiln build --call outline,format=json`."""
    return line.note.startswith("Outline request")


def hint_ssh_agent(line):
    return "--ssh default" in line.note


def hint_denied_entitlement(line):
    """'when denied it must fail with "entitlement X is not allowed"': the test accepts either."""
    m = re.search(r'must fail with "entitlement ([\w.]+) is not allowed"', line.note)
    return m.group(1) if m else None


def hint_unsupported_option(line):
    """Exporter/frontend options the notes name that kiln has no flag for."""
    if "platform-split=true" in line.note:
        return "local export with platform-split=true (kiln has no such exporter option)"
    return None


def hint_lowercase_dockerfile(line):
    return 'written as lowercase "dockerfile"' in line.note


def hint_separate_dockerfile(line):
    return bool(re.search(r"Dockerfile comes from (?:its own|a separate)|Dockerfile given separately|"
                          r"Dockerfile comes from a separate local dir", line.note))


def hint_store_producer(line):
    """'FROM is the image built from testX.1 ... tag it REF' / '... built from testX.1, tagged REF'."""
    m = re.search(r"image built from (test\w+\.\d+)", line.note)
    t = re.search(r"\btag(?:ged| it) ((?:[\w.-]+/)*[\w.-]+:[\w.-]*\w)", line.note)
    return (m.group(1), t.group(1)) if m and t else None


def hint_layout_producer(line):
    """'oci-layout:ocione@sha256:<digest>' named contexts: the note names the line that wrote it."""
    for m in re.finditer(r"\b(" + re.escape(line.test) + r"\.\d+)\b", line.note):
        if not line.base.startswith(m.group(1) + "."):
            return m.group(1)
    return None


def registry_producers(lines):
    """(test, ref below {registry}/) -> producer line, from 'pushed as/to {registry}/REF' notes."""
    out = {}
    for l in lines:
        for m in re.finditer(r"[Pp]ushed (?:as|to) \{registry\}/([\w./-]+(?::[\w.-]+)?)", l.note):
            out.setdefault((l.test, m.group(1).rstrip(".")), l)
    return out


# =============================================================================================
# platforms

def norm_platform(p):
    parts = p.split("/")
    if len(parts) == 2 and parts[1] == "arm":
        parts.append("v7")  # BuildKit normalises linux/arm to linux/arm/v7
    if len(parts) == 3 and parts[1] == "arm64" and parts[2] == "v8":
        parts = parts[:2]
    return "/".join(parts)


def platform_dir(p):
    return norm_platform(p).replace("/", "_")


FROM_LINE_RE = re.compile(r"^\s*FROM\s+(.*)$", re.I)


def foreign_platform_problem(text, platform, external):
    """Why building `text` for a non-host platform needs what is not here (None if it does not):
    a RUN in a stage built for that platform needs an emulator; an external base for it would need
    a stand-in of that architecture (the stand-ins are amd64 only)."""
    native_stages, stage_native, problems = set(), None, []
    for raw in text.split("\n"):
        m = FROM_LINE_RE.match(raw)
        if m:
            words = m.group(1).split()
            flags = [w for w in words if w.startswith("--")]
            rest = [w for w in words if not w.startswith("--")]
            base = rest[0] if rest else ""
            plat = next((f.split("=", 1)[1] for f in flags if f.startswith("--platform=")), "")
            stage_native = ("BUILDPLATFORM" in plat or norm_platform(plat) == HOST_PLATFORM
                            or base.lower() in native_stages)
            if len(rest) >= 3 and rest[1].lower() == "as" and stage_native:
                native_stages.add(rest[2].lower())
            if not stage_native and base.lower() != "scratch" and external(base):
                problems.append(f"base {base} for {platform} (the stand-ins are linux/amd64 only)")
            continue
        if stage_native is False and re.match(r"^\s*RUN\b", raw, re.I):
            problems.append(f"a RUN for {platform} needs an emulator (none here)")
    return problems[0] if problems else None


# =============================================================================================
# throw-away servers (each started for one line and stopped after it)

class HttpFiles:
    """Serves {path: bytes} on 127.0.0.1 with an ETag, like BuildKit's httpserver helper."""

    def __init__(self, files):
        self.files = files
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def _send(self, body):
                path = self.path.split("?", 1)[0]
                data = outer.files.get(path)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest()[:16] + '"')
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                self._send(True)

            def do_HEAD(self):  # noqa: N802
                self._send(False)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


class EchoServer:
    """TCP server on 127.0.0.1 that writes "foo" and closes each connection (BuildKit's echoserver)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                c.sendall(b"foo")
            except OSError:
                pass
            c.close()

    def stop(self):
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class SshAgent:
    """An ssh-agent of our own (no keys needed: the tests look at the forwarded socket only)."""

    def __init__(self, sock_path):
        self.sock = sock_path
        self.proc = subprocess.Popen(["ssh-agent", "-D", "-a", sock_path], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(50):
            if os.path.exists(sock_path):
                return
            time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# =============================================================================================
# build contexts

def make_tree(root, entries):
    """Create the files/dirs/symlinks/sockets of a `context` list under root."""
    os.makedirs(root, exist_ok=True)
    for e in entries or []:
        rel = str(e["path"]).lstrip("/")
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p) or root, exist_ok=True)
        if e.get("symlink") is not None:
            if os.path.lexists(p):
                os.remove(p)
            os.symlink(e["symlink"], p)
        elif e.get("dir"):
            os.makedirs(p, exist_ok=True)
            os.chmod(p, octal(e.get("mode"), 0o755))
        elif e.get("socket"):
            s = socket.socket(socket.AF_UNIX)
            s.bind(p)
            s.close()
            os.chmod(p, octal(e.get("mode"), 0o600))
        else:
            data = b64_or_text(e) if ("data_base64" in e or isinstance(e.get("data"), dict)) \
                else str(e.get("data", "")).encode()
            with open(p, "wb") as f:
                f.write(data)
            os.chmod(p, octal(e.get("mode"), 0o644))


def context_names(entries):
    return {str(e.get("path", "")).lstrip("/"): e for e in entries or []}


# =============================================================================================
# judging

LOC_RE = re.compile(r",-\[([^\]\n]*?):(\d+):(\d+)\]")


def error_lines(log, dockerfile_name):
    """The Dockerfile lines kiln's error excerpts point at (`,-[path/Dockerfile:LINE:COL]`)."""
    return sorted({int(m.group(2)) for m in LOC_RE.finditer(log)
                   if os.path.basename(m.group(1)) == dockerfile_name})


def dewrap(log):
    """Join kiln's wrapped error lines ('  | continued') so a message can be searched whole."""
    return " ".join(re.sub(r"^\s*\|\s?", "", l).strip() for l in log.splitlines())


def resolve_in(root, rel):
    """rel under root, following symlinks as the exported tree would (clamped to root)."""
    parts, cur, hops = [p for p in rel.split("/") if p not in ("", ".")], root, 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            cur = os.path.dirname(cur) if cur != root else root
            continue
        nxt = os.path.join(cur, name)
        if os.path.islink(nxt) and hops < 40:
            hops += 1
            target = os.readlink(nxt)
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            cur = root if target.startswith("/") else cur
            continue
        cur = nxt
    return cur


def judge_checks(out, checks):
    bad, unchecked = [], []
    for c in checks or []:
        rel = str(c.get("path", ""))
        p = os.path.join(out, rel.lstrip("/"))
        kinds = set(c) - {"path"}
        try:
            if c.get("absent"):
                if os.path.lexists(p):
                    bad.append(f"{rel}: present, expected absent")
                continue
            if "symlink" in c:
                if not os.path.islink(p):
                    bad.append(f"{rel}: not a symlink (expected -> {c['symlink']})")
                elif os.readlink(p) != c["symlink"]:
                    bad.append(f"{rel}: symlink -> {os.readlink(p)}, expected -> {c['symlink']}")
                continue
            real = resolve_in(out, rel)
            if c.get("dir"):
                if not os.path.isdir(real):
                    bad.append(f"{rel}: not a directory")
                continue
            if not os.path.lexists(real):
                bad.append(f"{rel}: missing")
                continue
            if "mode" in c:
                want = octal(c["mode"], 0)
                got = os.stat(real).st_mode & 0o7777
                if got != want:
                    bad.append(f"{rel}: mode {got:04o}, expected {want:04o}")
            if "content" in c or "content_base64" in c:
                want = base64.b64decode(c["content_base64"]) if "content_base64" in c else str(c["content"]).encode()
                got = open(real, "rb").read() if os.path.isfile(real) else None
                if got != want:
                    bad.append(f"{rel}: content {short(repr(got), 120)}, expected {short(repr(want), 120)}")
            if "contains" in c:
                got = open(real, "rb").read() if os.path.isfile(real) else b""
                if str(c["contains"]).encode() not in got:
                    bad.append(f"{rel}: does not contain {c['contains']!r} (has {short(repr(got), 120)})")
            for k in kinds - {"absent", "symlink", "dir", "mode", "content", "content_base64", "contains"}:
                unchecked.append(f"{rel}: check kind {k!r} unknown to the harness")
        except OSError as e:
            bad.append(f"{rel}: {e}")
    return bad, unchecked


def image_config(layout):
    """The config of the (host-platform) image of an OCI layout."""
    def blob(d):
        a, h = d.split(":", 1)
        return json.load(open(os.path.join(layout, "blobs", a, h)))
    idx = json.load(open(os.path.join(layout, "index.json")))
    man = blob(idx["manifests"][0]["digest"])
    while "manifests" in man:
        cands = [m for m in man["manifests"]
                 if m.get("platform", {}).get("architecture") in ("amd64", None)] or man["manifests"]
        man = blob(cands[0]["digest"])
    return blob(man["config"]["digest"])


def judge_config(cfg, want):
    c = cfg.get("config") or {}
    bad = []
    for k, v in (want or {}).items():
        got = c.get(k)
        if k == "ExposedPorts":
            got_l = sorted((got or {}).keys())
            if got_l != sorted(v or []):
                bad.append(f"config {k}: {got_l}, expected {sorted(v or [])}")
        elif k in ("Labels",) and isinstance(v, dict):   # the tests look the wanted keys up
            miss = {kk: vv for kk, vv in v.items() if (got or {}).get(kk) != vv}
            if miss:
                bad.append(f"config {k}: {got}, expected to include {miss}")
        elif k == "Env" and isinstance(v, list):         # the tests look the wanted entries up
            miss = [e for e in v if e not in (got or [])]
            if miss:
                bad.append(f"config Env: {got}, expected to include {miss}")
        elif v is None:
            if got not in (None,):
                bad.append(f"config {k}: {got!r}, expected null")
        elif got != v:
            bad.append(f"config {k}: {got!r}, expected {v!r}")
    return bad


# =============================================================================================
# the harness

class CannotRun(Exception):
    """A line this machine/harness cannot reproduce; the message is the one-line reason."""


class Harness:
    def __init__(self, a, lines, run_mod):
        self.a = a
        self.lines = lines
        self.by_file = {l.file: l for l in lines}
        self.run = run_mod
        self.kiln = a.kiln
        self.work = a.work
        self.store = os.path.join(a.work, "store")
        self.reg = None
        self.bases = None
        self.producers = registry_producers(lines)
        self.dep_cache = {}       # (file, kind, arg) -> result of a prerequisite build
        self.applets = set(subprocess.run(["/bin/busybox", "--list"], capture_output=True,
                                          text=True).stdout.split())   # what the stand-ins can run
        self.n = 0

    # -- image mapping ---------------------------------------------------------------------
    MISSING_RE = re.compile(r"(^|/)(nosuch|dontexist|doesnotexist|nonexist|notexist|invalid)", re.I)

    def map_ref(self, ref, keep=()):
        """An external image reference -> the local stand-in (run.py's Bases), except refs that a
        named context, the local registry or a producer's store tag already provides, and refs
        meant not to exist, which go to a repository of the local registry that nothing pushes."""
        r = ref.strip().strip("\"'")
        fam = familiar(r)
        if r.startswith(self.reg.host + "/") or r in keep or fam in keep:
            return r
        if self.MISSING_RE.search(r.split("@")[0].split(":")[0]):
            return f"{self.reg.host}/missing/{re.sub(r'[^a-z0-9._-]', '-', fam.lower())}:latest"
        return self.bases.ref_for(r)

    def rewrite(self, text, build_args, keep):
        """run.py's rewrite_dockerfile (FROM, COPY --from, RUN --mount from=, --build-arg values
        used in FROM) plus what it leaves alone: ONBUILD COPY/ADD --from / RUN --mount from=
        naming an image, and FROMs that splice variables into an image name (those keep their
        text; the expanded name gets a named context pointing at the stand-in)."""
        # rewrite_dockerfile would map every ARG that a FROM uses, also one that is only a part
        # of an image name (busybox:${tag}): such FROMs are hidden from it (as `scratch`) and put back.
        lines, hidden = text.split("\n"), {}
        for i, raw in enumerate(lines):
            m = FROM_LINE_RE.match(raw)
            words = m.group(1).split() if m else []
            img = next((w for w in words if not w.startswith("--")), "")
            if "$" in img and not self.run.VAR_RE.fullmatch(img):
                hidden[i] = raw
                lines[i] = raw.replace(img, "scratch", 1)
        try:
            text, args, subs, _ = self.run.rewrite_dockerfile("\n".join(lines), build_args,
                                                              lambda r: self.map_ref(r, keep))
        except RuntimeError as e:   # Bases could not make a stand-in for an odd name
            raise CannotRun(f"no stand-in for an image reference: {short(e, 160)}")
        lines = text.split("\n")
        for i, raw in hidden.items():
            lines[i] = raw
        text = "\n".join(lines)
        contexts = {}

        def looks_like_image(v):
            return ("/" in v or ":" in v or "@" in v or v.lower() in KNOWN_IMAGES) and "$" not in v \
                and not v.isdigit()
        out = []
        for raw in text.split("\n"):
            if re.match(r"^\s*ONBUILD\s+(COPY|ADD)\s", raw, re.I):
                raw = re.sub(r"--from=(\S+)", lambda m: "--from=" + (self.map_ref(m.group(1), keep)
                             if looks_like_image(m.group(1)) else m.group(1)), raw)
            elif re.match(r"^\s*ONBUILD\s+RUN\s", raw, re.I):
                raw = re.sub(r"(--mount=\S*?\bfrom=)([^,\s]+)", lambda m: m.group(1) + (
                    self.map_ref(m.group(2), keep) if looks_like_image(m.group(2)) else m.group(2)), raw)
            out.append(raw)
        text = "\n".join(out)
        stages = {n.lower() for n in stage_names(text)}
        for ref in spliced_from_refs(text, args) if hidden else []:
            if ref.lower() in stages or ref.lower() == "scratch" or familiar(ref) in keep \
                    or not re.fullmatch(r"[a-z0-9][\w./:@-]*", ref):
                continue   # a stage, or a name that is invalid anyway (the build is meant to fail)
            try:
                # BuildKit keys named contexts by the normalised name (busybox:latest -> busybox);
                # kiln (so far) matches the name as written, so both keys are given: the harness
                # only wants the stand-in here, whichever way the builder looks it up.
                target = "docker-image://" + self.map_ref(ref, keep)
                contexts[familiar(ref)] = target
                if ref != familiar(ref):
                    contexts[ref] = target
            except RuntimeError as e:
                raise CannotRun(f"no stand-in for image {ref}: {short(e, 160)}")
        return text, args, subs, contexts

    # -- per-line preparation ------------------------------------------------------------------
    def classify(self, line):
        """Raise CannotRun for what cannot be reproduced here (before anything is built)."""
        if line.problem:
            raise CannotRun(line.problem)
        if not line.get("runnable", False):
            raise CannotRun("not runnable (extraction): " + short(line.get("why_not") or "no reason given", 200))
        if line.get("expect") not in ("success", "failure"):
            raise CannotRun(f"no usable expectation (expect={line.get('expect')!r})")
        unknown = set(line.raw) - KNOWN_FIELDS
        if unknown:
            raise CannotRun(f"fields unknown to the harness: {sorted(unknown)}")
        if line.get("network") not in (None, "", "host", "none", "default"):
            raise CannotRun(f"network mode {line.get('network')!r} has no kiln equivalent")
        why = (hint_unsupported_option(line) or open_issue_feature(line, self.a.corpus)
               or builder_feature_kiln_lacks(line, self.a.corpus))
        if why:
            raise CannotRun(why)
        for name, nc in (line.get("named_contexts") or {}).items():
            kind = nc.get("kind")
            img = str(nc.get("image") or "")
            if kind == "dir":
                continue
            if kind == "image" or (kind == "other" and "{build:" in img):
                continue
            what = nc.get("url") or img or kind
            raise CannotRun(f"named context {name} is {kind} ({short(what, 80)}): kiln's --build-context "
                            "takes only directories, images and OCI layouts")

    def line_text(self, line):
        try:
            text = dockerfile_text(line, self.a.corpus, self.by_file)
        except TextError as e:
            raise CannotRun(str(e))
        missing = standin_lacks(text, self.applets)
        if missing:
            raise CannotRun(f"RUN uses {', '.join(missing)}, which the busybox-static stand-in lacks")
        return text

    # -- prerequisite builds -------------------------------------------------------------------
    def prerequisite(self, file, kind, arg=None):
        """Build another line first: kind 'oci' (-> layout dir and manifest digest), 'push' (push
        to REF in the local registry) or 'tag' (name REF in kiln's store).  Memoised."""
        key = (file, kind, arg)
        if key in self.dep_cache:
            return self.dep_cache[key]
        dep = self.by_file.get(file)
        if dep is None:
            raise CannotRun(f"prerequisite {file} is not in the corpus")
        res = {"ok": False}
        self.dep_cache[key] = res
        try:
            self.classify(dep)
        except CannotRun as e:
            raise CannotRun(f"prerequisite {dep.base} cannot run: {e}")
        d = os.path.join(self.work, "deps", f"{len(self.dep_cache):03d}-" + re.sub(r"[^\w.-]", "_", dep.base))
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        layout = os.path.join(d, "oci")
        extra = ["-o", f"type=oci,tar=false,dest={layout}"]
        if kind == "push":
            extra += ["-t", arg, "--push"]
        elif kind == "tag":
            extra += ["-t", arg]
        r = self.build_line(dep, d, extra_outputs=extra, local_out=False)
        if r["rc"] != 0:
            raise CannotRun(f"prerequisite {dep.base} did not build ({short(last_error(r['log']), 160)})")
        idx = json.load(open(os.path.join(layout, "index.json")))
        res.update(ok=True, layout=layout, digest=idx["manifests"][0]["digest"])
        return res

    def resolve_images(self, line, text):
        """Placeholders and named contexts that need other lines' images.  Returns
        (placeholder values, named-context args, refs to keep unmapped, notes)."""
        values, contexts, keep, notes = {}, {}, set(), []
        for ph in placeholders(text) | {p for v in (line.get("named_contexts") or {}).values()
                                        for p in placeholders(str(v.get("image") or ""))}:
            if ph.startswith("build:"):
                dep = self.prerequisite(ph[len("build:"):], "oci")
                values[ph] = dep["layout"]
            elif ph == "registry":
                values["registry"] = self.reg.host
        # {registry}/REF pushed by another line of the same test
        for m in re.finditer(r"\{registry\}/([\w./-]+(?::[\w.-]+)?)", text):
            ref = m.group(1)
            prod = self.producers.get((line.test, ref))
            if prod is None or prod.file == line.file:
                raise CannotRun(f"{{registry}}/{ref} is produced by no line of {line.test}")
            self.prerequisite(prod.file, "push", f"{self.reg.host}/{ref}")
            keep.add(f"{self.reg.host}/{ref}")
            notes.append(f"{{registry}}/{ref} pushed by {prod.base}")
        # base image tagged in the store by another line
        sp = hint_store_producer(line)
        if sp:
            prod_file = f"{line.dir}/{sp[0]}.Dockerfile"
            if prod_file not in self.by_file:
                prod_file += ".tmpl"
            self.prerequisite(prod_file, "tag", sp[1])
            keep |= {sp[1], familiar(sp[1])}
            notes.append(f"{sp[1]} built from {sp[0]} into kiln's store")
        # named contexts
        for name, nc in (line.get("named_contexts") or {}).items():
            keep.add(name)
            if nc.get("kind") == "dir":
                continue
            img = fill_placeholders(str(nc.get("image") or ""), values)
            if "<digest>" in img or img.startswith("oci-layout:") and not img.startswith("oci-layout://"):
                prod = hint_layout_producer(line)
                if not prod:
                    raise CannotRun(f"named context {name} = {img}: the note names no producing line")
                f = f"{line.dir}/{prod}.Dockerfile"
                dep = self.prerequisite(f if f in self.by_file else f + ".tmpl", "oci")
                contexts[name] = f"oci-layout://{dep['layout']}@{dep['digest']}"
            elif img.startswith("oci-layout://"):
                contexts[name] = img
            elif img.startswith(self.work) and os.path.isdir(img):   # {build:F} alone: its layout
                contexts[name] = f"oci-layout://{img}"
            else:
                ref = img[len("docker-image://"):] if img.startswith("docker-image://") else img
                contexts[name] = "docker-image://" + (ref if ref == "scratch" else self.map_ref(ref))
        return values, contexts, keep, notes

    # -- one kiln build of a line ---------------------------------------------------------------
    def build_line(self, line, cdir, extra_outputs=(), local_out=True, platform=None, out=None):
        """Prepare the context of `line` under cdir and run kiln once.  Returns a dict with rc,
        log, cmd, dockerfile name and (when asked) the output dirs."""
        text = self.line_text(line)
        values, contexts, keep, notes = self.resolve_images(line, text)
        servers = []
        try:
            if "{http}" in text or any("{http}" in str(v) for v in (line.get("named_contexts") or {}).values()):
                files = {k: b64_or_text(v) for k, v in (line.get("http_files") or {}).items()}
                srv = HttpFiles(files)
                servers.append(srv)
                values["http"] = srv.url
            if "{echo_port}" in text:
                echo = EchoServer()
                servers.append(echo)
                values["echo_port"] = str(echo.port)
            text = fill_placeholders(text, values)
            left = placeholders(text)
            if left:
                raise CannotRun(f"placeholders the harness cannot fill: {sorted(left)}")
            build_args = {str(k): str(v) for k, v in (line.get("build_args") or {}).items()}
            text, build_args, subs, spliced = self.rewrite(text, build_args, keep)
            for k, v in spliced.items():
                contexts.setdefault(k, v)

            ctx = os.path.join(cdir, "context")
            shutil.rmtree(ctx, ignore_errors=True)
            entries = line.get("context") or []
            make_tree(ctx, entries)
            names = context_names(entries)
            if line.get("dockerignore") is not None and ".dockerignore" not in names:
                with open(os.path.join(ctx, ".dockerignore"), "w") as f:
                    f.write(str(line.get("dockerignore")))
            df_name = "dockerfile" if hint_lowercase_dockerfile(line) else str(line.get("filename") or "Dockerfile")
            df_dir = os.path.join(cdir, "dockerfile") if hint_separate_dockerfile(line) else ctx
            os.makedirs(df_dir, exist_ok=True)
            df = os.path.join(df_dir, df_name)
            if not (df_dir == ctx and names.get(df_name, {}).get("symlink") is not None):
                with open(df, "w", encoding="utf-8", errors="surrogateescape") as f:
                    f.write(text)
            for name, nc in (line.get("named_contexts") or {}).items():
                if nc.get("kind") == "dir":
                    nd = os.path.join(cdir, "named", name)
                    make_tree(nd, nc.get("context") or [])
                    contexts[name] = nd

            cmd = [self.kiln, "build", "--progress", "plain"]
            for k, v in build_args.items():
                cmd += ["--build-arg", f"{k}={v}"]
            if line.get("target"):
                cmd += ["--target", str(line.get("target"))]
            if platform:
                cmd += ["--platform", platform]
            if line.get("no_cache"):
                cmd += ["--no-cache"]
            if line.get("network") in ("host", "none"):
                cmd += ["--network", line.get("network")]
            for k, v in hint_labels(line):
                cmd += ["--label", f"{k}={v}"]
            env = dict(os.environ, KILN_ROOT=self.store)
            for i, (sid, val) in enumerate(sorted((line.get("secrets") or {}).items())):
                sp = os.path.join(cdir, f"secret-{i}")
                with open(sp, "wb") as f:
                    f.write(b64_or_text(val))
                cmd += ["--secret", f"id={sid},src={sp}"]
            if hint_ssh_agent(line):
                agent = SshAgent(os.path.join(cdir, "agent.sock"))
                servers.append(agent)
                env["SSH_AUTH_SOCK"] = agent.sock
                cmd += ["--ssh", "default"]
            for k, v in sorted(contexts.items()):
                cmd += ["--build-context", f"{k}={v}"]
            if hint_outline(line):
                cmd += ["--call", "outline,format=json"]
            elif local_out:
                cmd += ["-o", f"type=local,dest={out}"]
            cmd += list(extra_outputs)
            if df_name == "dockerfile" and df_dir == ctx and hint_lowercase_dockerfile(line):
                cmd += [ctx]          # no -f: kiln must find the lowercase name itself
            else:
                cmd += ["-f", df, ctx]
            t0 = time.monotonic()
            try:
                p = subprocess.run(cmd, capture_output=True, timeout=self.a.timeout, env=env, cwd=cdir,
                                   stdin=subprocess.DEVNULL)
                rc, log = p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")
            except subprocess.TimeoutExpired as e:
                rc, log = None, ((e.stdout or b"") + (e.stderr or b"")).decode("utf-8", "replace") + "\n[timeout]"
            with open(os.path.join(cdir, "build.log"), "a") as f:
                f.write(f"$ {shlex.join(cmd)}\n{log}\n[rc={rc} {time.monotonic() - t0:.1f}s]\n\n")
            return {"rc": rc, "log": log, "cmd": shlex.join(cmd), "df_name": df_name, "notes": notes,
                    "subs": subs, "text": text}
        finally:
            for s in servers:
                s.stop()

    # -- one line: build(s) and verdict ----------------------------------------------------------
    def run_line(self, line):
        res = {"verdict": None, "detail": "", "notes": []}
        try:
            self.classify(line)
            text = self.line_text(line)
            plats = line.platforms
            if len(set(norm_platform(p) for p in plats)) < len(plats):
                plats = list(dict.fromkeys(plats))   # the same platform twice builds once
            for p in plats:
                if norm_platform(p) != HOST_PLATFORM:
                    why = foreign_platform_problem(text, p, lambda b: self.run.is_external_ref(b) and b.lower()
                                                   not in {s.lower() for s in stage_names(text)})
                    if why:
                        raise CannotRun(f"platform {p}: {why}" if len(plats) == 1 else
                                        f"second platform {p}: {why}")
            self.n += 1
            cdir = os.path.join(self.work, "cases", f"{self.n:03d}-" + re.sub(r"[^\w.-]", "_", line.base))
            os.makedirs(cdir)
            res["dir"] = cdir
            out = os.path.join(cdir, "out")
            want_cfg = bool(line.get("config_checks"))
            runs = []
            targets = plats or [None]
            for p in targets:
                sub_out = out if len(targets) == 1 else os.path.join(out, platform_dir(p))
                extra = []
                cfg_layout = None
                if want_cfg and (p is None or norm_platform(p) == HOST_PLATFORM or p == targets[0]):
                    cfg_layout = os.path.join(cdir, "oci-" + (platform_dir(p) if p else "image"))
                    extra = ["-o", f"type=oci,tar=false,dest={cfg_layout}"]
                r = self.build_line(line, cdir, extra_outputs=extra, platform=p, out=sub_out)
                r["platform"], r["cfg_layout"] = p, cfg_layout
                runs.append(r)
                if r["rc"] != 0:
                    break
            res["commands"] = [r["cmd"] for r in runs]
            res["notes"] += runs[0]["notes"]
            failed = next((r for r in runs if r["rc"] != 0), None)
            expect = line.get("expect")
            if expect == "failure":
                if failed is None:
                    return dict(res, verdict="MISMATCH", detail="kiln succeeded; the test expects the build to fail")
                if failed["rc"] is None:
                    return dict(res, verdict="MISMATCH", detail=f"kiln timed out after {self.a.timeout}s")
                detail = [f"failed as expected: {short(last_error(failed['log']), 160)}"]
                ec = line.get("error_contains")
                if ec and " ".join(str(ec).split()) not in " ".join(dewrap(failed["log"]).split()):
                    res["notes"].append(f"error text differs from BuildKit's {short(ec, 160)!r}")
                fl = line.get("fail_line")
                if fl:
                    got = error_lines(failed["log"], failed["df_name"])
                    if int(fl) not in got:
                        res["tail"] = failed["log"][-2500:]
                        return dict(res, verdict="MISMATCH", detail=(
                            f"kiln's error points at line(s) {got or 'none'} of the Dockerfile, the test expects "
                            f"line {fl}: {short(last_error(failed['log']), 200)}"))
                    detail.append(f"at line {fl}")
                return dict(res, verdict="ok", detail="; ".join(detail))
            ent = hint_denied_entitlement(line)
            if failed is not None and ent and f"{ent} is not allowed" in dewrap(failed["log"]):
                return dict(res, verdict="ok", detail=f"kiln denied the {ent} entitlement, which the test accepts "
                            f"as the other outcome: {short(last_error(failed['log']), 120)}")
            if failed is not None:
                res["tail"] = failed["log"][-2500:]
                why = "timed out" if failed["rc"] is None else "failed"
                return dict(res, verdict="MISMATCH", detail=f"kiln {why}"
                            + (f" for {failed['platform']}" if failed["platform"] else "")
                            + f": {short(last_error(failed['log']), 300)}")
            bad, unchecked = ([], []) if hint_outline(line) else judge_checks(out, line.get("checks"))
            res["notes"] += unchecked
            if want_cfg:
                lay = next((r["cfg_layout"] for r in runs if r["cfg_layout"]), None)
                try:
                    bad += judge_config(image_config(lay), line.get("config_checks"))
                except Exception as e:  # noqa: BLE001
                    bad.append(f"cannot read the image config: {e}")
            if bad:
                return dict(res, verdict="MISMATCH", detail="; ".join(bad))
            n = len(line.get("checks") or []) + len(line.get("config_checks") or {})
            what = "outline computed" if hint_outline(line) else f"built, {n} check(s) hold"
            return dict(res, verdict="ok", detail=what + (f" ({len(runs)} platforms)" if len(runs) > 1 else ""))
        except CannotRun as e:
            return dict(res, verdict="cannot-run", detail=str(e))
        except Exception as e:  # noqa: BLE001 -- a harness bug on one line must not hide the others
            import traceback
            return dict(res, verdict="MISMATCH", detail=f"harness error: {type(e).__name__}: {e}",
                        trace=traceback.format_exc())


# commands of docker.io/busybox (or of the real distro images) that the corpus's RUNs use and that a
# busybox-static build may lack; only these are looked for
STANDIN_COMMANDS = ("adduser", "addgroup", "deluser", "delgroup", "apk", "apt-get", "useradd", "groupadd")


def standin_lacks(text, applets):
    runs = "\n".join(l for l in text.split("\n") if not FROM_LINE_RE.match(l))
    return [c for c in STANDIN_COMMANDS if c not in applets and re.search(r"(^|[\s;&|(`])" + re.escape(c) + r"\b", runs)]


KNOWN_IMAGES = {"busybox", "alpine", "debian", "ubuntu", "golang", "nginx", "scratch", "nanoserver", "centos",
                "fedora", "python", "node"}


def familiar(ref):
    """docker.io/library/busybox:latest -> busybox (how BuildKit keys named contexts)."""
    r = ref
    for p in ("docker.io/library/", "index.docker.io/library/", "docker.io/"):
        if r.startswith(p):
            r = r[len(p):]
            break
    if r.endswith(":latest"):
        r = r[:-len(":latest")]
    return r


def stage_names(text):
    names = []
    for raw in text.split("\n"):
        m = FROM_LINE_RE.match(raw)
        if m:
            w = [x for x in m.group(1).split() if not x.startswith("--")]
            if len(w) >= 3 and w[1].lower() == "as":
                names.append(w[2])
    return names


def shell_expand(s, env):
    """Enough of BuildKit's shell-word expansion for image names in FROM."""
    def repl(m):
        name, op, word = m.group(1) or m.group(4), m.group(2), m.group(3)
        val = env.get(name)
        if op is None:
            return val or ""
        word = shell_expand(word or "", env)
        if op in (":-", "-"):
            return val if (val if op == ":-" else val is not None) else word
        if op in (":+", "+"):
            return word if (val if op == ":+" else val is not None) else ""
        v = val or ""
        if op in ("#", "##"):
            cands = [i for i in range(len(v) + 1) if fnmatch.fnmatchcase(v[:i], word)]
            if cands:
                return v[(max(cands) if op == "##" else min(cands)):]
            return v
        if op in ("%", "%%"):
            cands = [i for i in range(len(v) + 1) if fnmatch.fnmatchcase(v[i:], word)]
            if cands:
                return v[:(min(cands) if op == "%%" else max(cands))]
            return v
        return v
    return SHELL_VAR_RE.sub(repl, s)


SHELL_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|-|:\+|\+|##|#|%%|%)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def spliced_from_refs(text, build_args):
    """Image names of FROMs that splice variables, expanded with the global ARG defaults, the build
    args and the automatic platform args (what BuildKit would look up)."""
    env = {"TARGETPLATFORM": HOST_PLATFORM, "TARGETOS": "linux", "TARGETARCH": "amd64", "TARGETVARIANT": "",
           "BUILDPLATFORM": HOST_PLATFORM, "BUILDOS": "linux", "BUILDARCH": "amd64", "BUILDVARIANT": ""}
    declared, refs, seen_from = {}, [], False
    for raw in text.split("\n"):
        if FROM_LINE_RE.match(raw):
            seen_from = True
            w = [x for x in FROM_LINE_RE.match(raw).group(1).split() if not x.startswith("--")]
            if w and "$" in w[0]:
                scope = dict(env)
                scope.update(declared)
                refs.append(shell_expand(w[0], scope))
            continue
        m = re.match(r"^\s*ARG\s+(.*)$", raw, re.I)
        if m and not seen_from:
            for k, v in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)(?:=(\"[^\"]*\"|'[^']*'|\S*))?", m.group(1)):
                scope = dict(env)
                scope.update(declared)
                val = shell_expand(v.strip("\"'"), scope) if v else None
                declared[k] = build_args.get(k, val)
    return [r for r in refs if r]


def last_error(log):
    lines = [l.strip() for l in log.strip().splitlines() if l.strip()]
    for l in lines:
        if l.startswith("x ") or l.startswith("× ") or l.startswith("Error"):
            return l.lstrip("x× ")
    errs = [l for l in lines if re.search(r"\berror\b|ERROR|failed", l)]
    return (errs[-1] if errs else (lines[-1] if lines else ""))


# =============================================================================================
# features kiln has not built yet, each the subject of an open issue of its own

def open_issue_feature(line, corpus):
    """Lines whose verdict hinges on a feature an open kiln issue is about: reported as cannot-run
    with the issue, so they stay visible and come back when the feature lands."""
    if re.search(r"lint violation found", str(line.get("error_contains") or "")):
        return ("kiln feature of an open issue: build checks that fail the build (`# check=...;error=true`, "
                "BUILDKIT_DOCKERFILE_CHECK) are issue 20")
    try:
        with open(os.path.join(corpus, line.file), errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    return None


def builder_feature_kiln_lacks(line, corpus):
    """Lines that need a BuildKit feature kiln has chosen not to have (yet), with the reason."""
    try:
        with open(os.path.join(corpus, line.file), errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r"^\s*ARG\s+SOURCE_DATE_EPOCH=(\S+)", text, re.M)
    overridden = "SOURCE_DATE_EPOCH" in (line.get("build_args") or {})
    if m and not overridden and not re.fullmatch(r"[0-9%d]+", m.group(1)) and re.search(
            r"^\s*FROM\s+\S+\s+AS\s+" + re.escape(m.group(1)) + r"\s*$", text, re.M | re.I):
        return ("kiln has no epoch taken from a source stage's timestamps (SOURCE_DATE_EPOCH=<stage>): "
                "it refuses such a Dockerfile with a clear error; a number, or --build-arg, is taken")
    return None


# =============================================================================================
# cannot-run grouping (for the summary and the report)

def reason_group(reason):
    rules = [
        (r"open issue", "kiln features of open issues (20)"),
        (r"extraction (artifact|fragment)|FRAGMENT", "extraction artifacts/fragments"),
        (r"Windows|nanoserver", "Windows-only variant"),
        (r"syntax=", "remote frontend image (# syntax=)"),
        (r"^not runnable.*\bgit\b|git repositor|git source|git URL", "git sources/contexts (kiln has none)"),
        (r"gateway|client API|LLB|FrontendInputs|subrequests|source policy|SolveGateway", "BuildKit client/gateway API"),
        (r"SBOM|attestation|provenance", "attestations (SBOM/provenance)"),
        (r"emulator|binfmt|second platform|platform .*stand-ins", "other platforms (no emulator, amd64 stand-ins)"),
        (r"real (alpine|debian|busybox)|apk add|needs the real|/etc/group|user database|debian", "needs a real distro image"),
        (r"build option|kiln has no|cgroup|entitlement|CDI|exporter attribute", "needs a builder option kiln lacks"),
        (r"named context", "named context kinds kiln's --build-context lacks"),
        (r"prerequisite", "prerequisite line cannot run"),
        (r"stand-in lacks", "the busybox-static stand-in lacks a command"),
        (r"registry|push", "registry round-trips"),
    ]
    for pat, name in rules:
        if re.search(pat, reason, re.I):
            return name
    return "other"


# =============================================================================================

def adapt_standins(run_mod):
    """The stand-ins of run.py mimic docker.io/busybox's user database, except that busybox's
    /etc/group also has a group `nobody` (gid 65534, listed before nogroup), which BuildKit's tests
    use (testDockerfileAddChownExpand, testCopyChown).  Added here, for this harness's stand-ins only."""
    if "\nnobody:" not in run_mod.GROUP:
        run_mod.GROUP = run_mod.GROUP.replace("nogroup:x:65534:", "nobody:x:65534:\nnogroup:x:65534:")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default=shutil.which("kiln") or os.path.join(REPO, "target", "release", "kiln"))
    ap.add_argument("--runner", default=DEFAULT_RUNNER, help="buildah-conformance/run.py (Registry, Bases, rewrite)")
    ap.add_argument("--corpus", default=DEFAULT_CORPUS)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--work", default=DEFAULT_WORK, help="temporary data (wiped per run)")
    ap.add_argument("--report", default="", help="JSON report path (default WORK/report.json)")
    ap.add_argument("--only", default="", help="only files whose name contains this substring")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per kiln build")
    a = ap.parse_args()
    a.work = os.path.abspath(a.work)
    a.kiln = os.path.abspath(a.kiln)
    report_path = a.report or os.path.join(a.work, "report.json")

    run_mod = load_module(a.runner)
    adapt_standins(run_mod)
    lines = load_lines(a.corpus, a.data)
    selected = [l for l in lines if a.only in l.file]
    marker = os.path.join(a.work, ".bki-run")  # only a dir this harness made is ever wiped
    if os.path.isdir(a.work) and os.listdir(a.work) and not os.path.exists(marker):
        raise SystemExit(f"--work {a.work} is not empty and was not made by this harness; refusing to wipe it")
    if os.path.exists(a.work):
        run_mod.wipe(os.path.join(a.work, "store"))
        shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(os.path.join(a.work, "cases"))
    open(marker, "w").close()
    h = Harness(a, lines, run_mod)
    t0 = time.monotonic()
    results = []
    h.reg = run_mod.Registry(a.work)
    try:
        h.bases = run_mod.Bases(a.work, h.reg)
        print(f"# kiln: {a.kiln}; corpus {a.corpus}; data {a.data}; registry {h.reg.host}", flush=True)
        for line in selected:
            r = {"file": line.file, "test": line.test, "expect": line.get("expect")}
            # ---- PARSE
            if line.problem and not os.path.exists(os.path.join(a.corpus, line.file)):
                r["parse"] = {"status": "n/a", "detail": line.problem}
            else:
                try:
                    text = fill_placeholders(dockerfile_text(line, a.corpus, h.by_file), dict(
                        PARSE_STANDINS, **{p: "scratch" for p in placeholders(
                            open(os.path.join(a.corpus, line.file), errors="replace").read()) | {
                            p for p in placeholders(json.dumps(line.raw.get("fill") or []))}
                            if p not in PARSE_STANDINS}))
                except TextError:   # a fragment that cannot be composed: parse the file alone
                    with open(os.path.join(a.corpus, line.file), errors="surrogateescape") as f:
                        text = f.read()
                rc, err = parse_one(a.kiln, text)
                want_err = expects_parse_error(line)
                expected_text = str(line.get("error_contains") or "")
                if rc != 0 and not want_err and parse_one(a.kiln, text, "buildkit")[0] == 0 and (
                        line.get("build_args") or (line.get("expect") == "failure" and expected_text
                                                   and " ".join(expected_text.split()) in flat_diagnostic(err))):
                    # It parses; what failed is the evaluation `kiln parse --format json` adds (ARG
                    # defaults, FROM lines), which needs the test's build args, or is the very error
                    # the test expects of the build (BuildKit raises it converting, not parsing).
                    rc, want_err = 0, False
                    r["parse"] = {"status": "ok", "detail": "parses; evaluated only with the test's inputs: "
                                  + short(err.strip().splitlines()[0] if err.strip() else "", 160)}
                if "parse" in r:
                    pass
                elif rc == 0 and not want_err:
                    r["parse"] = {"status": "ok"}
                elif rc != 0 and want_err:
                    r["parse"] = {"status": "expected-error", "detail": short(err.strip().splitlines()[0] if err.strip() else "", 200)}
                elif rc != 0 and is_extraction_fragment(line):
                    r["parse"] = {"status": "fragment", "detail": "not a whole Dockerfile (extraction fragment): "
                                  + short(err.strip().splitlines()[0] if err.strip() else "", 160)}
                elif rc != 0:
                    r["parse"] = {"status": "UNEXPECTED", "detail": "kiln parse failed: " + short(err, 400)}
                else:
                    r["parse"] = {"status": "UNEXPECTED", "detail": "kiln parse accepted a file whose test expects a "
                                  "parse-level error: " + short(line.get("error_contains") or line.note, 200)}
            # ---- BUILD + JUDGE
            r.update(h.run_line(line))
            if r["verdict"] == "MISMATCH":
                # Built once more: a case that passes then is reported as flaky (with what the
                # first build said, at the end of the output), not failed; one that mismatches
                # twice fails the suite.
                first = {k: r[k] for k in ("detail", "tail", "dir", "commands") if k in r}
                again = h.run_line(line)
                if again["verdict"] == "ok":
                    r.update(again)
                    r["flaky"] = first
            if r["verdict"] == "cannot-run":
                r["group"] = reason_group(r["detail"])
            results.append(r)
            ps = r["parse"]["status"]
            print(f"{line.file[:78]:78} parse:{ps:14} {r['verdict']:10} {short(r['detail'], 260)}"
                  + (f" [{'; '.join(r['notes'])}]" if r.get("notes") and r["verdict"] != "cannot-run" else ""),
                  flush=True)
    except KeyboardInterrupt:
        print("# interrupted; the report covers the lines done", file=sys.stderr)
    finally:
        h.reg.stop()
    n_files = len([l for l in selected if os.path.exists(os.path.join(a.corpus, l.file))])
    cnt = lambda f: sum(1 for r in results if f(r))  # noqa: E731
    parsed = cnt(lambda r: r["parse"]["status"] == "ok")
    exp_err = cnt(lambda r: r["parse"]["status"] == "expected-error")
    frags = cnt(lambda r: r["parse"]["status"] == "fragment")
    unexpected = cnt(lambda r: r["parse"]["status"] == "UNEXPECTED")
    ok, mism, cant = (cnt(lambda r, v=v: r["verdict"] == v) for v in ("ok", "MISMATCH", "cannot-run"))
    summary = (f"buildkit-integration: parsed {parsed}/{n_files} ({exp_err} expected parse errors"
               + (f", {frags} extraction fragments" if frags else "") + "); "
               f"built {ok + mism}: {ok} ok, {mism} mismatch; {cant} cannot run here")
    groups = {}
    for r in results:
        if r["verdict"] == "cannot-run":
            groups[r["group"]] = groups.get(r["group"], 0) + 1
    print("# cannot run, by reason: " + ", ".join(f"{k}: {v}" for k, v in sorted(groups.items(), key=lambda x: -x[1])))
    if unexpected:
        print(f"# {unexpected} unexpected parse result(s)")
    # What went wrong comes last, beside the summary, where a CI log's tail shows it.
    for r in results:
        for label, what in (("FLAKY (mismatched once, then ok)", r.get("flaky")),
                            ("MISMATCH", r if r["verdict"] == "MISMATCH" else None)):
            if what:
                print(f"# {label}: {r['file']}: {short(what.get('detail', ''), 400)}")
                for cmd in what.get("commands") or []:
                    print(f"#   $ {short(cmd, 400)}")
                for tail_line in (what.get("tail") or "").strip().splitlines()[-12:]:
                    print(f"#   | {tail_line}")
    flaky = cnt(lambda r: "flaky" in r)
    if flaky:
        summary += f" ({flaky} flaky: mismatched once, then ok)"
    print(summary)
    print(f"# {time.monotonic() - t0:.0f}s; report: {report_path}")
    os.makedirs(os.path.dirname(os.path.abspath(report_path)), exist_ok=True)
    with open(report_path, "w") as f:
        json.dump({"summary": summary, "kiln": a.kiln, "corpus": a.corpus, "data": a.data,
                   "counts": {"files": n_files, "parsed": parsed, "expected_parse_errors": exp_err,
                              "unexpected_parse": unexpected, "fragments": frags, "ok": ok, "mismatch": mism, "cannot_run": cant},
                   "cannot_run_groups": groups, "lines": results}, f, indent=1)
    return 1 if (unexpected or mism) else 0


if __name__ == "__main__":
    sys.exit(main())
