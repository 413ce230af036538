//! The import rules of ARCHITECTURE.md, checked on the source: no module of a crate imports a
//! module that imports it back (directly or around a loop), and the crate walls hold — the
//! frontend and kiln-llb never name the solver, kiln-llb never names the frontend; and the
//! solver's lower layers (fsutil, layer, cache, store) never import its higher ones.
//!
//! A module's imports are the `crate::a::b` paths it names outside its `#[cfg(test)]` part,
//! mapped to the longest module they name; parent and child modules may name each other.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`a::b`, empty for the crate root) → its production source.
fn modules(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for path in rust_files(root) {
        let path = path.as_path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        if parts.len() == 1 && (parts[0] == "main" || parts[0] == "lib") {
            parts.clear();
        }
        if parts
            .iter()
            .any(|p| p == "tests" || p == "test_support" || p == "testutil")
        {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        let production = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or_default()
            .to_owned();
        out.insert(parts.join("::"), production);
    }
    out
}

/// Every file below `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Edges `module → module it imports`.
fn imports(mods: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let longest = |path: &str| {
        let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|candidate| mods.contains_key(candidate))
    };
    let related = |a: &str, b: &str| {
        a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
    };
    let mut edges = BTreeMap::new();
    for (name, text) in mods {
        let mut to = BTreeSet::new();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            let path: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            if let Some(target) = longest(path.trim_end_matches(':'))
                && !related(name, &target)
            {
                to.insert(target);
            }
        }
        edges.insert(name.clone(), to);
    }
    edges
}

/// Every cycle, as the sorted set of modules on it.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<Vec<String>> {
    fn visit(
        node: &str,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        edges: &BTreeMap<String, BTreeSet<String>>,
        found: &mut BTreeSet<Vec<String>>,
    ) {
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(at) = stack.iter().position(|s| s == next) {
                let mut cycle = stack[at..].to_vec();
                cycle.sort();
                found.insert(cycle);
            } else if !done.contains(next) {
                visit(next, stack, done, edges, found);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
    }
    let mut found = BTreeSet::new();
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if !done.contains(node) {
            visit(node, &mut Vec::new(), &mut done, edges, &mut found);
        }
    }
    found
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    for (krate, dir) in [
        ("kiln", "src"),
        ("kiln-frontend", "frontend/src"),
        ("kiln-llb", "solver/llb/src"),
        ("kiln-solver", "solver/src"),
    ] {
        let mods = modules(&here.join(dir));
        let edges = imports(&mods);
        let found = cycles(&edges);
        println!(
            "{krate}: {} modules, {} import cycles",
            mods.len(),
            found.len()
        );
        for cycle in found {
            problems.push(format!("{krate}: {}", cycle.join(" <-> ")));
        }
    }
    assert!(
        problems.is_empty(),
        "import cycles:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_crate_walls_hold() {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    for (dir, forbidden) in [
        ("frontend/src", &["kiln_solver"][..]),
        ("solver/llb/src", &["kiln_solver", "kiln_frontend"][..]),
        ("solver/src", &["kiln_frontend"][..]),
    ] {
        for (module, text) in modules(&here.join(dir)) {
            for name in forbidden {
                if text.contains(&format!("{name}::")) {
                    problems.push(format!("{dir} {module} names {name}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn lower_solver_layers_never_import_higher_ones() {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mods = modules(&here.join("solver/src"));
    let edges = imports(&mods);
    let top = |m: &str| m.split("::").next().unwrap_or_default().to_owned();
    let lower = [
        "fsutil", "layer", "cache", "store", "source", "progress", "retry",
    ];
    let higher = ["solve", "gc", "output"];
    let mut problems = Vec::new();
    for (module, to) in &edges {
        if !lower.contains(&top(module).as_str()) {
            continue;
        }
        for target in to {
            if higher.contains(&top(target).as_str()) {
                problems.push(format!("{module} imports {target}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checker itself: a planted loop is found, a parent/child pair is not one.
#[test]
fn the_checker_finds_a_loop() {
    let mods: BTreeMap<String, String> = [
        ("a", "use crate::b::x;"),
        ("b", "fn f() { crate::c::g() }"),
        ("c", "use crate::a;"),
        ("d", "use crate::d::inner;"),
        ("d::inner", "use crate::d;"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let found = cycles(&imports(&mods));
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        [vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]]
    );
}
