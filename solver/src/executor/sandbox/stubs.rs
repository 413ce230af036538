//! Mount stubs: the empty files and directories the child creates as mount targets when a
//! layer hides the skeleton's (see `skeleton`; e.g. a whiteout over /etc/hosts) are removed
//! from the step's result afterwards when still empty, so they do not end up in the layer
//! (BuildKit's MountStubsCleaner does the same). The directory they sat in gets its times
//! back. A stub reached through a symlink in the image (/run → /var/run) is looked for at
//! its literal path only, so it stays, as an empty entry.

use std::fs::{File, FileTimes};
use std::path::{Path, PathBuf};

use super::plan::Op;
use super::status::Record;

/// One created chain: `prefixes[first..]` did not exist before the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stub {
    /// Relative paths of every prefix of the target (`etc`, `etc/hosts`).
    pub prefixes: Vec<PathBuf>,
    /// Index of the first prefix the child created.
    pub first: usize,
}

/// The stubs the child reported, in creation order.
pub(super) fn collect(ops: &[Op], records: &[Record]) -> Vec<Stub> {
    records
        .iter()
        .filter_map(|r| match *r {
            Record::Stub { op, first } => match ops.get(op as usize) {
                Some(Op::Ensure(e)) => Some(Stub {
                    prefixes: e
                        .prefixes
                        .iter()
                        .map(|p| PathBuf::from(p.to_string_lossy().trim_start_matches('/')))
                        .collect(),
                    first: first as usize,
                }),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Removes the stubs found under `base` (the upperdir, or the copied root), newest first.
pub(super) fn remove(base: &Path, stubs: &[Stub]) {
    for stub in stubs.iter().rev() {
        for i in (stub.first..stub.prefixes.len()).rev() {
            let path = base.join(&stub.prefixes[i]);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let empty = if meta.is_dir() {
                std::fs::read_dir(&path)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false)
            } else {
                meta.is_file() && meta.len() == 0
            };
            if !empty {
                // The step put something there: it and its parents belong to the layer.
                break;
            }
            let parent = path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| base.to_path_buf());
            let times = std::fs::metadata(&parent).ok();
            let removed = if meta.is_dir() {
                std::fs::remove_dir(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if removed.is_err() {
                break;
            }
            if let Some(times) = times {
                restore_times(&parent, &times);
            }
        }
    }
}

fn restore_times(dir: &Path, meta: &std::fs::Metadata) {
    let (Ok(accessed), Ok(modified)) = (meta.accessed(), meta.modified()) else {
        return;
    };
    if let Ok(file) = File::open(dir) {
        let _ = file.set_times(
            FileTimes::new()
                .set_accessed(accessed)
                .set_modified(modified),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_stubs_go_and_used_ones_stay() {
        let base = std::env::temp_dir().join(format!("kiln-stubs-test-{}", std::process::id()));
        std::fs::create_dir_all(base.join("etc")).unwrap();
        std::fs::write(base.join("etc/hosts"), "").unwrap();
        std::fs::create_dir_all(base.join("run/secrets")).unwrap();
        std::fs::write(base.join("run/secrets/kept"), "x").unwrap();
        let stubs = vec![
            Stub {
                prefixes: vec!["etc".into(), "etc/hosts".into()],
                first: 1,
            },
            Stub {
                prefixes: vec!["run".into(), "run/secrets".into()],
                first: 0,
            },
        ];
        remove(&base, &stubs);
        assert!(base.join("etc").is_dir());
        assert!(!base.join("etc/hosts").exists());
        assert!(base.join("run/secrets/kept").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
