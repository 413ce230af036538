//! Shared helpers for the conformance suites.

use std::path::{Path, PathBuf};

/// The result of one suite: how many cases passed and a line per failure.
#[derive(Debug, Default)]
pub struct Suite {
    pub passed: usize,
    pub failures: Vec<String>,
}

impl Suite {
    /// Records one case: `Ok` passes, `Err(msg)` fails with `what: msg`.
    pub fn check(&mut self, what: impl std::fmt::Display, result: Result<(), String>) {
        match result {
            Ok(()) => self.passed += 1,
            Err(msg) => self.failures.push(format!("{what}: {msg}")),
        }
    }

    /// Adds another suite's counts to this one.
    #[allow(dead_code)]
    pub fn merge(&mut self, other: Suite) {
        self.passed += other.passed;
        self.failures.extend(other.failures);
    }
}

/// `KILN_CONFORMANCE_DIR`, else `../shared/conformance` beside the workspace.
pub fn conformance_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KILN_CONFORMANCE_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance")
}

/// Reads a file, naming it in the error.
pub fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads a JSON-lines file into values, one per non-empty line.
#[allow(dead_code)]
pub fn read_jsonl(path: &Path) -> Result<Vec<serde_json::Value>, String> {
    read(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// The sorted subdirectories of `dir`.
#[allow(dead_code)]
pub fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    Ok(out)
}
