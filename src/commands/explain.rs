//! `kiln build --explain-cache`: after every successful build the components of each step's
//! cache key are recorded in the store (`ROOT/explain/<sha256 of Dockerfile path and
//! target>.json`); with the flag, the steps that missed are explained against the previous
//! record of the same Dockerfile and target. The explanation goes to standard error, like
//! the rest of the build's progress, so standard output keeps only data (`-q`'s image id).

use std::collections::BTreeSet;
use std::path::Path;

use kiln_solver::solve::explain::{
    self, BuildRecord, Cause, Explained, Place, RECORD_VERSION, StepRecord,
};

use crate::commands::build_config::BuildConfig;
use crate::commands::build_state::Front;
use crate::commands::progress;

/// At most this many paths are named per kind of change; the rest are counted.
const MAX_PATHS: usize = 20;

/// Records this build's steps and, with `--explain-cache`, prints why steps missed compared
/// with the previous record. Recording is best effort: a failure is a warning, never a
/// failed build.
pub(super) fn after_build(
    config: &BuildConfig,
    front: &Front,
    platform: Option<&kiln_llb::Platform>,
    steps: Vec<StepRecord>,
) {
    let (store, lowered) = (&config.store, &front.lowered);
    let identity = identity(config);
    let target = config.build.target.clone().unwrap_or_default();
    // A multi-platform build keeps one record per platform, each compared with its own.
    let key = match platform {
        Some(p) => format!("{target}@{p}"),
        None => target.clone(),
    };
    let mut build_args: BTreeSet<String> = lowered
        .graph
        .global_args
        .iter()
        .flat_map(|a| a.args.iter().map(|p| p.key.clone()))
        .chain(
            lowered
                .graph
                .stages
                .iter()
                .flat_map(|s| s.args.iter().map(|(k, _)| k.clone())),
        )
        .collect();
    build_args.extend(config.build_arg_keys.iter().cloned());
    let record = BuildRecord {
        version: RECORD_VERSION,
        dockerfile: identity.clone(),
        target: target.clone(),
        build_args,
        no_cache: config.no_cache,
        no_cache_stages: config.no_cache_stages.clone(),
        steps,
    };
    let path = explain::record_path(store.root(), &identity, &key);
    if config.explain_cache {
        let mut what = match target.as_str() {
            "" => format!("{identity} (default target)"),
            t => format!("{identity} (target {t})"),
        };
        if let Some(p) = platform {
            what.push_str(&format!(" for {p}"));
        }
        match explain::load(&path) {
            Ok(Some(prev)) => {
                progress::note(&render(&what, &explain::explain(&prev, &record)));
            }
            Ok(None) => progress::note(&format!(
                "explain-cache: no earlier build of {what} in this store to compare with"
            )),
            Err(e) => progress::note(&format!(
                "explain-cache: the earlier build's record cannot be read: {e}"
            )),
        }
    }
    if let Err(e) = explain::save(&path, &record, &config.redactor) {
        progress::note(&format!(
            "warning: recording the build for --explain-cache: {e}"
        ));
    }
}

/// What the record is of: the Dockerfile's absolute path, or for one read from standard
/// input, `-` and the context directory.
fn identity(config: &BuildConfig) -> String {
    let dockerfile = config.dockerfile.as_path();
    let abs = |p: &Path| {
        std::fs::canonicalize(p)
            .or_else(|_| std::path::absolute(p))
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    if dockerfile == Path::new("-") {
        format!("- in {}", abs(&config.context_arg))
    } else {
        abs(dockerfile)
    }
}

/// The explanation, one block per step that missed (or base image that changed).
pub(crate) fn render(what: &str, steps: &[Explained]) -> String {
    let mut out = format!("explain-cache: compared with the last build of {what}");
    let (mut ran, mut cached) = (0, 0);
    for step in steps {
        if step.ran {
            ran += 1;
        } else if step.causes.is_empty() {
            cached += 1;
            continue;
        }
        let verdict = if step.ran { "missed" } else { "changed" };
        out.push_str(&format!("\n{} {verdict}", step.name));
        let here = Place::of(&step.name);
        for cause in &step.causes {
            for line in cause_lines(cause, &here) {
                out.push_str(&format!("\n  - {line}"));
            }
        }
    }
    out.push_str(&format!(
        "\nexplain-cache: {ran} {} missed, {cached} cached",
        if ran == 1 { "step" } else { "steps" }
    ));
    out
}

fn value(v: Option<&String>) -> String {
    v.map_or_else(|| "(unset)".to_owned(), |v| format!("{v:?}"))
}

fn paths(root: &str, list: &[String]) -> String {
    let mut s = list
        .iter()
        .take(MAX_PATHS)
        .map(|p| format!("{root}{p}"))
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > MAX_PATHS {
        s.push_str(&format!(" and {} more", list.len() - MAX_PATHS));
    }
    s
}

/// How a step names another: `step 3 (COPY . /src)` in its own stage, `step 2 of stage
/// builder (RUN make)` in another.
fn step_ref(p: &Place, here: &Place) -> String {
    match (&p.stage, p.position) {
        (Some(_), Some(n)) if p.stage == here.stage => format!("step {n} ({})", p.text),
        (Some(s), Some(n)) => format!("step {n} of stage {s} ({})", p.text),
        _ => format!("step {}", p.text),
    }
}

fn cause_lines(cause: &Cause, here: &Place) -> Vec<String> {
    match cause {
        Cause::NewStep => vec!["new step: the last build had none at this place".to_owned()],
        Cause::Instruction { old, new } => vec![format!("instruction changed: {old} → {new}")],
        Cause::Option { field, old, new } => {
            vec![format!(
                "{field} changed: {} → {}",
                old.as_deref().unwrap_or("(none)"),
                new.as_deref().unwrap_or("(none)")
            )]
        }
        Cause::BuildArg { name, old, new } => vec![format!(
            "build arg {name} changed: {} → {}",
            value(old.as_ref()),
            value(new.as_ref())
        )],
        Cause::Env { name, old, new } => vec![format!(
            "env {name} changed: {} → {}",
            value(old.as_ref()),
            value(new.as_ref())
        )],
        Cause::BaseImage {
            reference,
            old,
            new,
        } => vec![format!("base image {reference} changed: {old} → {new}")],
        Cause::Files {
            from,
            local,
            added,
            removed,
            modified,
        } => {
            let whose = match local.as_deref() {
                Some("context") => "context files".to_owned(),
                Some(name) => format!("files of build context {name}"),
                None => format!("files read from {}", step_ref(&Place::of(from), here)),
            };
            // Paths in a stage or image are shown absolute, as in its Dockerfile.
            let root = if local.is_some() { "" } else { "/" };
            let mut lines = Vec::new();
            for (kind, list) in [
                ("added", added),
                ("removed", removed),
                ("modified", modified),
            ] {
                if !list.is_empty() {
                    lines.push(format!("{whose} {kind}: {}", paths(root, list)));
                }
            }
            if lines.is_empty() {
                lines.push(format!("{whose} changed"));
            }
            lines
        }
        Cause::Content { from } => vec![format!(
            "what it reads from {} changed (not listed by the last build)",
            step_ref(&Place::of(from), here)
        )],
        Cause::Parent { parent } => vec![format!("because {} changed", step_ref(parent, here))],
        Cause::NoCache => {
            vec!["the cache was not used (--no-cache or --no-cache-filter)".to_owned()]
        }
        Cause::EntryGone => vec![
            "same cache key as the last build, but its cache entry is gone (pruned?)".to_owned(),
        ],
        Cause::Unknown { old, new } => vec![format!(
            "its cache key changed ({old} → {new}) for a reason the record does not show"
        )],
    }
}
