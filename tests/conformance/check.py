#!/usr/bin/env python3
"""Judges a run of buildah's conformance runner (run.py) against kiln's expectations.

    check.py RUN_PY REPORT_JSON EXPECTED_JSON DEVIATIONS_MD

- A FAIL is accepted only for a case listed in DEVIATIONS.md (buildah 1.28 and BuildKit
  disagree there, and kiln does what BuildKit does); a listed case may also pass (its
  difference may depend on the corpus checkout, e.g. read-only modes).
- Every case in expected.json is checked against kiln's own image, whatever the runner's
  verdict: the deviations are pinned to BuildKit's result, and the cases buildah cannot build
  (oracle-failed) are checked against the tree BuildKit produces.

Entries use run.py's own format (`fmt_entry`), read with run.py's own image reader, so the
two never disagree about what a path is. `{ctx:PATH}` stands for the mode of PATH in the
case's build context (the corpus's modes depend on how it was checked out).
Prints a line per judged case and exits 1 on any failure.
"""
import importlib.util
import json
import os
import re
import sys


def load_runner(path):
    spec = importlib.util.spec_from_file_location("conformance_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def deviations(path):
    """Case ids in the first column of DEVIATIONS.md's tables: | `id` | ..."""
    ids = set()
    with open(path) as f:
        for line in f:
            m = re.match(r"^\|\s*`([^`]+)`\s*\|", line)
            if m:
                ids.add(m.group(1))
    return ids


def expected_entry(desc, context):
    def mode(m):
        return "%04o" % (os.lstat(os.path.join(context, m.group(1))).st_mode & 0o7777)
    return re.sub(r"\{ctx:([^}]+)\}", mode, desc)


def check_case(run, case, want):
    """Problems with kiln's result for `case` (a report entry) against `want`."""
    builder = case.get("builder") or {}
    rc = builder.get("rc")
    log_path = os.path.join(case["dir"], "builder.log")
    log = open(log_path, errors="replace").read() if os.path.exists(log_path) else ""
    if want["build"] == "fails":
        if rc == 0:
            return ["the build succeeded; BuildKit fails it"]
        if want["error"] not in log:
            return [f"the build failed, but not with {want['error']!r}: {run.last_error(log)}"]
        return []
    if rc != 0:
        return [f"the build failed (rc={rc}): {run.last_error(log)}"]
    layout = os.path.join(case["dir"], "builder", "oci")
    if not os.path.isdir(layout):
        return [f"no image at {layout} (run the runner with --keep)"]
    _, tree, _ = run.load_image(layout)
    context = os.path.join(case["dir"], "builder", "context")
    problems = []
    for path, desc in sorted(want["paths"].items()):
        if desc == "absent":
            if path in tree:
                problems.append(f"{path}: present ({run.fmt_entry(tree[path])}), BuildKit has none")
            continue
        expected = expected_entry(desc, context)
        if path not in tree:
            problems.append(f"{path}: missing, BuildKit has {expected}")
        elif run.fmt_entry(tree[path]) != expected:
            problems.append(f"{path}: {run.fmt_entry(tree[path])}, BuildKit has {expected}")
    for prefix in want.get("only_under", []):
        extra = [p for p in tree if p.startswith(prefix) and p not in want["paths"]]
        problems.extend(f"{p}: only in kiln ({run.fmt_entry(tree[p])})" for p in sorted(extra))
    return problems


def main():
    run_py, report_path, expected_path, deviations_path = sys.argv[1:5]
    run = load_runner(run_py)
    report = json.load(open(report_path))
    expected = json.load(open(expected_path))
    listed = deviations(deviations_path)
    by_id = {c["id"]: c for c in report["cases"]}
    failures = []
    for cid in sorted(set(expected) | listed):
        if cid not in by_id:
            failures.append(f"{cid}: listed by kiln but not in the runner's report")
    for cid in sorted(set(expected) - listed):
        if expected[cid].get("kind") == "deviation":
            failures.append(f"{cid}: a deviation in expected.json missing from DEVIATIONS.md")
    counts = {"pinned": 0, "deviation": 0, "no-oracle": 0}
    for case in report["cases"]:
        cid = case["id"]
        verdict = case["verdict"]
        if verdict == "FAIL" and cid not in listed:
            failures.append(f"{cid}: FAIL, not a listed deviation: {'; '.join(case['diffs'])[:400]}")
        if cid in listed and cid not in expected:
            failures.append(f"{cid}: listed in DEVIATIONS.md without BuildKit's result in expected.json")
        if cid not in expected:
            continue
        want = expected[cid]
        problems = check_case(run, case, want)
        kind = want.get("kind", "no-oracle")
        counts[kind] = counts.get(kind, 0) + 1
        counts["pinned"] += 1
        mark = "ok  " if not problems else "FAIL"
        print(f"{mark} {kind:<10} {cid} (runner: {verdict})")
        failures.extend(f"{cid}: {p}" for p in problems)
    print(f"conformance pins: {counts['pinned']} checked against BuildKit's result "
          f"({counts['deviation']} deviations, {counts['no-oracle']} without an oracle); "
          f"{len(failures)} problem(s)")
    for f in failures:
        print(f"  {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
