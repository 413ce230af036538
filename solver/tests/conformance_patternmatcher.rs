#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]
//! Conformance of the `.dockerignore` matcher against moby/patternmatcher's own cases.
//!
//! Reads `patternmatcher/` of the shared conformance corpus in place (`KILN_CONFORMANCE_DIR`,
//! else `../shared/conformance` beside the repository; its README describes each file) and
//! checks every row of every case file. A file in that directory that this test does not know
//! fails it, so no case is ever skipped silently.

use std::fmt::Write as _;
use std::path::PathBuf;

use kiln_solver::context::dockerignore::{
    MatchInfo, MatchStrategy, PatternError, PatternMatcher, clean_path, read_ignore_file, translate,
};
use serde_json::Value;

fn corpus_dir() -> PathBuf {
    let root = std::env::var_os("KILN_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/conformance"
            ))
        });
    root.join("patternmatcher")
}

/// Pass/fail tally of one case file, with a line per failure.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    failures: String,
}

impl Tally {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            let _ = writeln!(self.failures, "  FAIL {}", what());
        }
    }
}

/// What an API call gave: a boolean or an error.
type Outcome = Result<bool, PatternError>;

/// `expected` is `true`, `false` or `error`.
fn agrees(outcome: &Outcome, expected: &str) -> bool {
    match outcome {
        Ok(got) => expected == got.to_string(),
        Err(_) => expected == "error",
    }
}

fn show(outcome: &Outcome) -> String {
    match outcome {
        Ok(got) => got.to_string(),
        Err(err) => format!("error ({err})"),
    }
}

/// Go's `filepath.Dir` on a slash path.
fn go_dir(path: &str) -> String {
    match path.rfind('/') {
        Some(slash) => clean_path(&path[..=slash]),
        None => ".".to_owned(),
    }
}

/// `MatchesOrParentMatches`, as upstream's test runs it: the direct call, then
/// `MatchesUsingParentResults` walking down the parents, then the same with nothing known.
/// All three must agree, or the outcome is reported as a disagreement.
fn or_parent_matches(patterns: &[&str], path: &str) -> Result<Outcome, String> {
    let matcher = match PatternMatcher::new(patterns) {
        Ok(matcher) => matcher,
        Err(err) => return Ok(Err(err)),
    };
    let direct = matcher.matches(path);
    let parent = go_dir(path);
    let mut info = MatchInfo::default();
    if parent != "." {
        let dirs: Vec<&str> = parent.split('/').collect();
        for depth in 1..=dirs.len() {
            info = matcher
                .matches_using_parent_results(&dirs[..depth].join("/"), info)
                .map(|(_, info)| info)
                .unwrap_or_default();
        }
    }
    let walked = matcher
        .matches_using_parent_results(path, info)
        .map(|(hit, _)| hit);
    let fresh = matcher
        .matches_using_parent_results(path, MatchInfo::default())
        .map(|(hit, _)| hit);
    let same = |a: &Outcome, b: &Outcome| a.as_ref().ok() == b.as_ref().ok();
    if same(&direct, &walked) && same(&direct, &fresh) {
        Ok(direct)
    } else {
        Err(format!(
            "direct {}, walked {}, fresh {}",
            show(&direct),
            show(&walked),
            show(&fresh)
        ))
    }
}

/// The deprecated package function `Matches(path, patterns)`: the path is cleaned, `.` never
/// matches, and a pattern is tried on only one parent: the prefix with as many components as
/// the pattern has. Built from the public single-pattern API, since kiln itself never uses it.
fn legacy_matches(patterns: &[&str], path: &str) -> Outcome {
    let matcher = PatternMatcher::new(patterns)?;
    let file = clean_path(path);
    if file == "." {
        return Ok(false);
    }
    let parent = go_dir(&file);
    let parent_dirs: Vec<&str> = parent.split('/').collect();
    let mut matched = false;
    for pattern in matcher.patterns() {
        if pattern.is_exclusion() != matched {
            continue;
        }
        let mut hit = pattern.matches(&file)?;
        let depth = pattern.as_str().split('/').count();
        if !hit && parent != "." && depth <= parent_dirs.len() {
            hit = pattern
                .matches(&parent_dirs[..depth].join("/"))
                .unwrap_or(false);
        }
        if hit {
            matched = !pattern.is_exclusion();
        }
    }
    Ok(matched)
}

/// One call of `api` (`MatchesOrParentMatches` or `Matches`) against `expected`.
fn check_call(
    tally: &mut Tally,
    row: &str,
    api: &str,
    patterns: &[&str],
    path: &str,
    expected: &str,
) {
    let outcome = match api {
        "MatchesOrParentMatches" => or_parent_matches(patterns, path),
        "Matches" => Ok(legacy_matches(patterns, path)),
        other => Err(format!("unknown api {other:?}")),
    };
    match outcome {
        Ok(outcome) => tally.check(agrees(&outcome, expected), || {
            format!(
                "{row}: {api}({patterns:?}, {path:?}) gave {}, want {expected}",
                show(&outcome)
            )
        }),
        Err(why) => tally.check(false, || {
            format!("{row}: {api}({patterns:?}, {path:?}): {why}")
        }),
    }
}

fn read(name: &str) -> String {
    let path = corpus_dir().join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

fn cases_tsv() -> Tally {
    let mut tally = Tally::default();
    let text = read("cases.tsv");
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, line)| line);
    assert_eq!(
        header,
        Some("pattern\tpath\texpected\tapi\tplatform\tsource"),
        "cases.tsv header"
    );
    for (index, line) in lines {
        let row = format!("cases.tsv:{}", index + 1);
        let fields: Vec<&str> = line.split('\t').collect();
        let [pattern, path, expected, api, platform, _source] = fields[..] else {
            tally.check(false, || format!("{row}: {} fields, want 6", fields.len()));
            continue;
        };
        // kiln runs on Linux, where `\` is an escape: the `unix` rows apply like the others.
        if !matches!(platform, "all" | "unix") {
            tally.check(false, || format!("{row}: unknown platform {platform:?}"));
            continue;
        }
        check_call(&mut tally, &row, api, &[pattern], path, expected);
    }
    tally
}

fn multi_cases_jsonl() -> Tally {
    let mut tally = Tally::default();
    for (index, line) in read("multi_cases.jsonl")
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let row = format!("multi_cases.jsonl:{}", index + 1);
        let case: Value = serde_json::from_str(line).unwrap_or_else(|err| panic!("{row}: {err}"));
        let patterns: Vec<&str> = case["patterns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        let path = case["path"].as_str().unwrap();
        let expected = case["expected"].as_bool().unwrap().to_string();
        let api = case["api"].as_str().unwrap();
        check_call(&mut tally, &row, api, &patterns, path, &expected);
    }
    tally
}

fn new_cases_jsonl() -> Tally {
    let mut tally = Tally::default();
    for (index, line) in read("new_cases.jsonl")
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let row = format!("new_cases.jsonl:{}", index + 1);
        let case: Value = serde_json::from_str(line).unwrap_or_else(|err| panic!("{row}: {err}"));
        let fields = case.as_object().unwrap();
        let patterns: Vec<&str> = case["patterns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        let built = PatternMatcher::new(&patterns);
        let mut ok = true;
        let mut notes = Vec::new();
        for (key, want) in fields {
            let good = match key.as_str() {
                "patterns" | "note" => continue,
                "n_patterns" => built
                    .as_ref()
                    .is_ok_and(|m| Some(m.patterns().len() as u64) == want.as_u64()),
                "exclusions" => built
                    .as_ref()
                    .is_ok_and(|m| Some(m.exclusions()) == want.as_bool()),
                "error" => built
                    .as_ref()
                    .err()
                    .is_some_and(|err| Some(err.to_string().as_str()) == want.as_str()),
                "new_ok" => built.is_ok() == want.as_bool().unwrap(),
                // Checked with `match_error`: the path to match.
                "match_path" => continue,
                "match_error" => {
                    let path = case["match_path"].as_str().unwrap();
                    built.as_ref().is_ok_and(|m| {
                        // "on every call": twice each way.
                        (0..2).all(|_| {
                            m.matches(path).is_err()
                                && m.matches_using_parent_results(path, MatchInfo::default())
                                    .is_err()
                        })
                    })
                }
                _ => {
                    notes.push(format!("unknown key {key:?}"));
                    false
                }
            };
            if !good {
                notes.push(format!("{key} (want {want})"));
            }
            ok &= good;
        }
        let got = match &built {
            Ok(m) => format!(
                "{} patterns, exclusions {}",
                m.patterns().len(),
                m.exclusions()
            ),
            Err(err) => format!("error {err}"),
        };
        tally.check(ok, || {
            format!(
                "{row}: New({patterns:?}) gave {got}; wrong: {}",
                notes.join(", ")
            )
        });
    }
    tally
}

fn compile_tsv() -> Tally {
    let mut tally = Tally::default();
    let text = read("compile.tsv");
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, line)| line);
    assert_eq!(
        header,
        Some("pattern\tmatch_type\tregexp_slash\tregexp_backslash"),
        "compile.tsv header"
    );
    for (index, line) in lines {
        let row = format!("compile.tsv:{}", index + 1);
        let fields: Vec<&str> = line.split('\t').collect();
        let [pattern, match_type, slash, backslash] = fields[..] else {
            tally.check(false, || format!("{row}: {} fields, want 4", fields.len()));
            continue;
        };
        let want = match match_type {
            "exactMatch" => Some(MatchStrategy::Exact),
            "prefixMatch" => Some(MatchStrategy::Prefix),
            "suffixMatch" => Some(MatchStrategy::Suffix),
            "regexpMatch" => Some(MatchStrategy::Regex),
            _ => None,
        };
        let as_option = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let unix = translate(pattern, '/');
        let windows = translate(pattern, '\\');
        let live =
            PatternMatcher::new(&[pattern]).map(|m| m.patterns().first().map(|p| p.strategy()));
        let ok = want.is_some()
            && Some(unix.strategy) == want
            && Some(windows.strategy) == want
            && live == Ok(want)
            && unix.go_regexp == as_option(slash)
            && windows.go_regexp == as_option(backslash);
        tally.check(ok, || {
            format!(
                "{row}: {pattern:?} gave {:?} {:?} / {:?} (matcher {live:?}), want {match_type} {slash:?} / {backslash:?}",
                unix.strategy, unix.go_regexp, windows.go_regexp
            )
        });
    }
    tally
}

fn ignorefile_readall_json() -> Tally {
    let mut tally = Tally::default();
    let case: Value = serde_json::from_str(&read("ignorefile_readall.json")).unwrap();
    let input = case["input"].as_str().unwrap();
    let want: Vec<&str> = case["expected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let got = read_ignore_file(input);
    tally.check(got == want, || {
        format!("ignorefile_readall.json: read {got:?}, want {want:?}")
    });
    tally
}

/// Checks every row of one case file.
type CaseFile = fn() -> Tally;

#[test]
fn patternmatcher_corpus() {
    let dir = corpus_dir();
    let files: [(&str, CaseFile); 5] = [
        ("cases.tsv", cases_tsv),
        ("multi_cases.jsonl", multi_cases_jsonl),
        ("new_cases.jsonl", new_cases_jsonl),
        ("compile.tsv", compile_tsv),
        ("ignorefile_readall.json", ignorefile_readall_json),
    ];
    let listing = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()));
    let mut unknown = Vec::new();
    for entry in listing {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name != "README.md" && !files.iter().any(|(known, _)| *known == name) {
            unknown.push(name);
        }
    }
    let mut failed = 0;
    let mut report = String::new();
    for (name, run) in files {
        let tally = run();
        println!(
            "patternmatcher/{name}: {} passed, {} failed",
            tally.passed, tally.failed
        );
        print!("{}", tally.failures);
        let _ = write!(report, "{}", tally.failures);
        if tally.passed + tally.failed == 0 {
            let _ = writeln!(report, "  {name}: no cases read");
            failed += 1;
        }
        failed += tally.failed;
    }
    assert!(
        unknown.is_empty(),
        "case files this test does not check: {unknown:?}"
    );
    assert_eq!(failed, 0, "patternmatcher conformance failures:\n{report}");
}
