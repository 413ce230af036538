//! Conformance suite: buildkit-shell, BuildKit's own word-expansion tables read in place.
//!
//! Every line of every file is a case, checked as `buildkit-shell/README.md` says: a missing
//! file or a line that does not parse is a failure, never a skip.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use kiln_frontend::shell::{Env, EnvList, Lexer};
use serde_json::Value;

use crate::common::{Suite, read, read_jsonl};

/// The environment of `envVarTest`.
const ENV_VAR_TEST_ENV: [&str; 4] = ["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="];

/// Checks every case of one file into the suite; `Err` when the file cannot be read at all.
type FileCheck = fn(&Path, &mut Suite) -> Result<(), String>;

pub fn all(root: &Path) -> Result<Suite, String> {
    let dir = root.join("buildkit-shell");
    let mut suite = Suite::default();
    let files: [(&str, FileCheck); 5] = [
        ("envVarTest", env_var_test),
        ("wordsTest", words_test),
        ("process_with_matches.jsonl", process_with_matches),
        ("process_word_extra.jsonl", process_word_extra),
        ("get_env.jsonl", get_env),
    ];
    for (name, run) in files {
        let before = suite.passed + suite.failures.len();
        if let Err(e) = run(&dir.join(name), &mut suite) {
            suite.check(name, Err(e));
        } else if suite.passed + suite.failures.len() == before {
            suite.check(name, Err("no cases found".into()));
        }
    }
    Ok(suite)
}

/// Windows semantics for `W` lines: BuildKit's env lookup there ignores case.
struct CaseInsensitive(Vec<String>);

impl Env for CaseInsensitive {
    fn get(&self, name: &str) -> Option<String> {
        let wanted = name.to_uppercase();
        self.0.iter().rev().find_map(|entry| {
            let (key, value) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
            (key.to_uppercase() == wanted).then(|| value.to_owned())
        })
    }
}

/// A map built from `KEY=value` entries, last one winning (BuildKit's `BuildEnvs`).
fn env_map(entries: &[String]) -> HashMap<String, String> {
    entries
        .iter()
        .map(|e| {
            let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn compare<T: PartialEq + std::fmt::Debug>(what: &str, got: &T, want: &T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

/// `PLATFORM|INPUT|EXPECTED` lines through `process_word`.
fn env_var_test(path: &Path, suite: &mut Suite) -> Result<(), String> {
    let text = read(path)?;
    let entries: Vec<String> = ENV_VAR_TEST_ENV.iter().map(|e| (*e).to_owned()).collect();
    let list = EnvList(entries.clone());
    let map = env_map(&entries);
    let windows = CaseInsensitive(entries);
    let lex = Lexer::new('\\');
    for (i, raw) in text.lines().enumerate() {
        if raw.starts_with('#') || raw.trim().is_empty() {
            continue;
        }
        let what = format!("envVarTest:{}: {raw:?}", i + 1);
        let fields: Vec<&str> = raw.trim().split('|').map(str::trim).collect();
        let [platform, input, expected] = fields[..] else {
            suite.check(what, Err(format!("{} fields, want 3", fields.len())));
            continue;
        };
        // `A` lines hold on both platforms, so they run under both lookups.
        let envs: Vec<(&str, &dyn Env)> = match platform {
            "U" => vec![("list", &list), ("map", &map)],
            "W" => vec![("windows", &windows)],
            "A" => vec![("list", &list), ("map", &map), ("windows", &windows)],
            other => {
                suite.check(what, Err(format!("platform {other:?}, want A, U or W")));
                continue;
            }
        };
        let result = envs.into_iter().try_for_each(|(env_name, env)| {
            match (lex.process_word(input, env), expected) {
                (Err(_), "error") => Ok(()),
                (Ok(got), "error") => Err(format!("{env_name}: got {got:?}, want an error")),
                (Err(e), _) => Err(format!("{env_name}: error {e}, want {expected:?}")),
                (Ok(got), _) => compare(env_name, &got.as_str(), &expected),
            }
        });
        suite.check(what, result);
    }
    Ok(())
}

/// `ENV k=v` lines build the environment; `INPUT | W1,W2` lines go through `process_words`.
fn words_test(path: &Path, suite: &mut Suite) -> Result<(), String> {
    let text = read(path)?;
    let lex = Lexer::new('\\');
    let mut entries: Vec<String> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            entries.push(rest.trim_start_matches(' ').to_owned());
            continue;
        }
        let what = format!("wordsTest:{}: {line:?}", i + 1);
        let parts: Vec<&str> = line.split('|').collect();
        let [input, expected] = parts[..] else {
            suite.check(what, Err(format!("{} '|'-fields, want 2", parts.len())));
            continue;
        };
        let input = input.trim();
        let expected: Vec<String> = expected
            .trim_start_matches(' ')
            .split(',')
            .map(str::to_owned)
            .collect();
        let list = EnvList(entries.clone());
        let map = env_map(&entries);
        let envs: [(&str, &dyn Env); 2] = [("list", &list), ("map", &map)];
        let result = envs.into_iter().try_for_each(|(env_name, env)| {
            let got = lex
                .process_words(input, env)
                .unwrap_or_else(|_| vec!["error".to_owned()]);
            compare(env_name, &got, &expected)
        });
        suite.check(what, result);
    }
    Ok(())
}

/// Checks that a JSON object has only the keys this suite knows, so that a new field with new
/// meaning cannot be silently ignored.
fn only_keys(case: &Value, known: &[&str]) -> Result<(), String> {
    let obj = case.as_object().ok_or("not a JSON object")?;
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(format!("unknown key {k:?}")),
        None => Ok(()),
    }
}

fn string_field(case: &Value, key: &str) -> Result<String, String> {
    case.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("missing string {key:?}"))
}

fn string_list(case: &Value, key: &str) -> Result<Vec<String>, String> {
    case.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("missing array {key:?}"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("non-string in {key:?}"))
        })
        .collect()
}

fn string_map(case: &Value, key: &str) -> Result<BTreeMap<String, String>, String> {
    case.get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| format!("missing object {key:?}"))?
        .iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|v| (k.clone(), v.to_owned()))
                .ok_or_else(|| format!("non-string value for {k:?} in {key:?}"))
        })
        .collect()
}

/// Runs `check` on every line of a JSON-lines file, one case per line.
fn each_line(
    path: &Path,
    suite: &mut Suite,
    check: impl Fn(&Value) -> Result<(), String>,
) -> Result<(), String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for (i, case) in read_jsonl(path)?.iter().enumerate() {
        let input = case.get("input").and_then(Value::as_str).unwrap_or("");
        suite.check(format!("{name}:{}: {input:?}", i + 1), check(case));
    }
    Ok(())
}

/// `process_word_with_matches`: the result and the matched / unmatched name sets. Like
/// BuildKit's own test, an expected error is checked for the error alone (our API returns no
/// partial result on failure).
fn process_with_matches(path: &Path, suite: &mut Suite) -> Result<(), String> {
    let lex = Lexer::new('\\');
    each_line(path, suite, |case| {
        only_keys(
            case,
            &["input", "envs", "error", "expected", "matches", "unmatched"],
        )?;
        let input = string_field(case, "input")?;
        let envs = string_map(case, "envs")?;
        let want_error = case
            .get("error")
            .and_then(Value::as_bool)
            .ok_or("missing bool \"error\"")?;
        let matches: BTreeSet<String> = string_list(case, "matches")?.into_iter().collect();
        let unmatched: BTreeSet<String> = string_list(case, "unmatched")?.into_iter().collect();
        match lex.process_word_with_matches(&input, &envs) {
            Err(_) if want_error => Ok(()),
            Ok(got) if want_error => Err(format!("got {:?}, want an error", got.result)),
            Err(e) => Err(format!("error {e}")),
            Ok(got) => {
                let expected = string_field(case, "expected")?;
                compare("result", &got.result, &expected)?;
                compare("matches", &got.matched, &matches)?;
                compare("unmatched", &got.unmatched, &unmatched)
            }
        }
    })
}

/// `process_word` with `expected` output or an `error_contains` substring.
fn process_word_extra(path: &Path, suite: &mut Suite) -> Result<(), String> {
    let lex = Lexer::new('\\');
    each_line(path, suite, |case| {
        only_keys(case, &["input", "envs", "expected", "error_contains"])?;
        let input = string_field(case, "input")?;
        let envs = string_map(case, "envs")?;
        let got = lex.process_word(&input, &envs);
        match (
            case.get("expected").map(|_| string_field(case, "expected")),
            case.get("error_contains")
                .map(|_| string_field(case, "error_contains")),
        ) {
            (Some(expected), None) => match got {
                Ok(got) => compare("result", &got, &expected?),
                Err(e) => Err(format!("error {e}")),
            },
            (None, Some(needle)) => {
                let needle = needle?;
                match got {
                    Ok(got) => Err(format!("got {got:?}, want an error with {needle:?}")),
                    Err(e) if e.to_string().contains(&needle) => Ok(()),
                    Err(e) => Err(format!("error {e:?} lacks {needle:?}")),
                }
            }
            _ => Err("want exactly one of \"expected\" and \"error_contains\"".into()),
        }
    })
}

/// `EnvList` lookups: `foo` without `=` is empty, the last definition wins.
fn get_env(path: &Path, suite: &mut Suite) -> Result<(), String> {
    each_line(path, suite, |case| {
        only_keys(case, &["envs", "lookup", "value", "note"])?;
        let list = EnvList(string_list(case, "envs")?);
        let lookup = string_field(case, "lookup")?;
        let value = string_field(case, "value")?;
        let got = list.get(&lookup).unwrap_or_default();
        compare(&format!("lookup {lookup:?}"), &got, &value)?;
        // The same through expansion, as the lexer would see it.
        let expanded = Lexer::new('\\')
            .process_word(&format!("${{{lookup}}}"), &list)
            .map_err(|e| e.to_string())?;
        compare("expansion", &expanded, &value)
    })
}
