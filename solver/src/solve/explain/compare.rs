//! Comparing two records of a Dockerfile and target: why each step of the new build missed.

use std::collections::{BTreeMap, BTreeSet};

use super::{BuildRecord, StepRecord};

/// A step's place: `[stage N/M] text` gives the stage and N; other names (internal steps,
/// `COPY --from=image` sources) are their own place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The stage name, for `[stage N/M]` names.
    pub stage: Option<String>,
    /// N, for `[stage N/M]` names.
    pub position: Option<usize>,
    /// The instruction text after the bracket, else the whole name.
    pub text: String,
}

impl Place {
    /// Parses a progress name.
    pub fn of(name: &str) -> Place {
        let parsed = name.strip_prefix('[').and_then(|rest| {
            let (inside, text) = rest.split_once("] ")?;
            let (stage, pos) = inside.rsplit_once(' ')?;
            let (n, _) = pos.split_once('/')?;
            Some(Place {
                stage: Some(stage.to_owned()),
                position: Some(n.parse().ok()?),
                text: text.to_owned(),
            })
        });
        parsed.unwrap_or_else(|| Place {
            stage: None,
            position: None,
            text: name.to_owned(),
        })
    }

    fn label(&self) -> String {
        match (&self.stage, self.position) {
            (Some(s), Some(n)) => format!("{s} {n}"),
            _ => self.text.clone(),
        }
    }
}

/// Why a step missed (or, for a base image, why it resolved differently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The last build had no step at this place.
    NewStep,
    /// The instruction's text changed.
    Instruction {
        /// Before.
        old: String,
        /// Now.
        new: String,
    },
    /// An option not shown in the text changed (`--chmod`, WORKDIR, USER, a mount…).
    Option {
        /// Which (`workdir`, `action 1`, `mount 2`…).
        field: String,
        /// Before (`None`: absent).
        old: Option<String>,
        /// Now.
        new: Option<String>,
    },
    /// A build arg in a RUN's environment changed.
    BuildArg {
        /// Its name.
        name: String,
        /// Before (`None`: unset).
        old: Option<String>,
        /// Now.
        new: Option<String>,
    },
    /// An ENV variable in a RUN's environment changed.
    Env {
        /// Its name.
        name: String,
        /// Before (`None`: unset).
        old: Option<String>,
        /// Now.
        new: Option<String>,
    },
    /// A base image reference resolved to another manifest.
    BaseImage {
        /// The reference.
        reference: String,
        /// The digest last time.
        old: String,
        /// The digest now.
        new: String,
    },
    /// Files read from a source changed.
    Files {
        /// The source's progress name.
        from: String,
        /// The local context's name, when the source is one.
        local: Option<String>,
        /// Paths there now and not before.
        added: Vec<String>,
        /// Paths there before and not now.
        removed: Vec<String>,
        /// Paths whose type, mode, size, content or link target changed.
        modified: Vec<String>,
    },
    /// What a step read from a source changed; the last build did not list it.
    Content {
        /// The source's progress name.
        from: String,
    },
    /// The step it builds on changed.
    Parent {
        /// That step's place.
        parent: Place,
    },
    /// Same key as last time, and `--no-cache`.
    NoCache,
    /// Same key as last time, but its cache entry is gone (pruned).
    EntryGone,
    /// The key changed in a way the record does not show.
    Unknown {
        /// The key last time.
        old: String,
        /// The key now.
        new: String,
    },
}

/// One step of the current build, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    /// The step's progress name.
    pub name: String,
    /// The step ran (missed the cache).
    pub ran: bool,
    /// Why it ran, or for a source what changed; empty for a hit.
    pub causes: Vec<Cause>,
}

type EnvChange = (String, Option<String>, Option<String>);

/// Every step of `cur` that is not internal, with why it missed compared with `prev`.
pub fn explain(prev: &BuildRecord, cur: &BuildRecord) -> Vec<Explained> {
    let mut before: BTreeMap<String, &StepRecord> = BTreeMap::new();
    for s in &prev.steps {
        before.entry(Place::of(&s.name).label()).or_insert(s);
    }
    let args: BTreeSet<&String> = prev.build_args.iter().chain(&cur.build_args).collect();
    // Env changes already reported at a step or one it builds on, by name: a later RUN
    // inheriting the same change says its parent changed instead.
    let mut reported: BTreeMap<&str, BTreeSet<EnvChange>> = BTreeMap::new();
    let mut out = Vec::new();
    for step in &cur.steps {
        let place = Place::of(&step.name);
        let old = before.get(&place.label()).copied();
        let mut inherited = step
            .parent
            .as_ref()
            .and_then(|p| reported.get(p.name.as_str()))
            .cloned()
            .unwrap_or_default();
        let mut causes = Vec::new();
        match old {
            None if step.ran => causes.push(Cause::NewStep),
            None => {}
            Some(old) if old.key == step.key && step.ran => {
                let filtered = place
                    .stage
                    .as_ref()
                    .is_some_and(|s| cur.no_cache_stages.contains(s));
                causes.push(if cur.no_cache || filtered {
                    Cause::NoCache
                } else {
                    Cause::EntryGone
                });
            }
            Some(old) if old.key == step.key => {}
            Some(old) => {
                let env = env_changes(old, step);
                if step.ran || step.source {
                    causes = changes(old, step, &env, &inherited, &args);
                }
                inherited.extend(env);
            }
        }
        reported.insert(step.name.as_str(), inherited);
        if place.text.starts_with("[internal]") || (step.source && causes.is_empty() && !step.ran) {
            continue;
        }
        out.push(Explained {
            name: step.name.clone(),
            ran: step.ran,
            causes,
        });
    }
    out
}

fn env_changes(old: &StepRecord, new: &StepRecord) -> BTreeSet<EnvChange> {
    let names: BTreeSet<&String> = old.env.keys().chain(new.env.keys()).collect();
    names
        .into_iter()
        .filter_map(|n| {
            let (a, b) = (old.env.get(n), new.env.get(n));
            (a != b).then(|| (n.clone(), a.cloned(), b.cloned()))
        })
        .collect()
}

/// The causes of a changed key, most specific first.
fn changes(
    old: &StepRecord,
    new: &StepRecord,
    env: &BTreeSet<EnvChange>,
    inherited: &BTreeSet<EnvChange>,
    args: &BTreeSet<&String>,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    let (old_text, new_text) = (Place::of(&old.name).text, Place::of(&new.name).text);
    if old_text != new_text {
        causes.push(Cause::Instruction {
            old: old_text,
            new: new_text,
        });
    } else {
        let fields: BTreeSet<&String> = old.params.keys().chain(new.params.keys()).collect();
        for f in fields {
            let (a, b) = (old.params.get(f), new.params.get(f));
            if a != b {
                causes.push(Cause::Option {
                    field: f.clone(),
                    old: a.cloned(),
                    new: b.cloned(),
                });
            }
        }
    }
    if let (Some(a), Some(b)) = (&old.image, &new.image)
        && a.digest != b.digest
    {
        causes.push(Cause::BaseImage {
            reference: b.reference.clone(),
            old: a.digest.clone(),
            new: b.digest.clone(),
        });
    }
    for (name, a, b) in env.difference(inherited) {
        let (name, old, new) = (name.clone(), a.clone(), b.clone());
        causes.push(if args.contains(&name) {
            Cause::BuildArg { name, old, new }
        } else {
            Cause::Env { name, old, new }
        });
    }
    for (i, read) in new.reads.iter().enumerate() {
        match old.reads.get(i) {
            Some(before) if before.digest == read.digest => {}
            Some(before) => {
                let (mut added, mut removed, mut modified) = (Vec::new(), Vec::new(), Vec::new());
                for (path, what) in &read.files {
                    match before.files.get(path) {
                        None => added.push(path.clone()),
                        Some(w) if w != what => modified.push(path.clone()),
                        Some(_) => {}
                    }
                }
                for path in before.files.keys() {
                    if !read.files.contains_key(path) {
                        removed.push(path.clone());
                    }
                }
                causes.push(Cause::Files {
                    from: read.from.clone(),
                    local: read.local.clone(),
                    added,
                    removed,
                    modified,
                });
            }
            None => causes.push(Cause::Content {
                from: read.from.clone(),
            }),
        }
    }
    if let (Some(a), Some(b)) = (&old.parent, &new.parent)
        && a.key != b.key
    {
        causes.push(Cause::Parent {
            parent: Place::of(&b.name),
        });
    }
    if causes.is_empty() {
        causes.push(Cause::Unknown {
            old: old.key.clone(),
            new: new.key.clone(),
        });
    }
    causes
}
