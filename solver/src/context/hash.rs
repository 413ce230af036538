//! Build contexts: a local directory, its `.dockerignore`, and the content checksum of what a
//! COPY reads from it. File digests are kept in the store's context index keyed by the
//! file's path and `stat` (size, mtime, ctime, inode, mode), so an unchanged context is
//! revalidated from `stat` alone and only files whose metadata changed are read again.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};

use super::dockerignore::{PatternMatcher, read_ignore_file};
use crate::fsutil::root_path;
use crate::store::MetaDb;

/// Why a context could not be read or hashed.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The context directory is missing or unreadable.
    #[error("build context {path}: {source}")]
    Root {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A `.dockerignore` could not be read or has a bad pattern.
    #[error("{path}: {message}")]
    Ignore {
        /// The ignore file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file in the context could not be read.
    #[error("reading {path} in the build context: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The context index could not be used.
    #[error("context index: {0}")]
    Index(String),
}

/// More threads than this hash a cold context no faster.
const MAX_HASH_THREADS: usize = 8;

/// A local directory used as a build context.
#[derive(Debug, Clone)]
pub struct Context {
    root: PathBuf,
    matcher: Option<PatternMatcher>,
}

impl Context {
    /// Opens `root`; `dockerfile` is the Dockerfile's path, whose `<Dockerfile>.dockerignore`
    /// takes precedence over the context's `.dockerignore`.
    pub fn open(root: &Path, dockerfile: Option<&Path>) -> Result<Self, ContextError> {
        let root = fs::canonicalize(root).map_err(|source| ContextError::Root {
            path: root.to_path_buf(),
            source,
        })?;
        if !root.is_dir() {
            return Err(ContextError::Root {
                path: root,
                source: std::io::Error::other("not a directory"),
            });
        }
        let specific = dockerfile.map(|d| {
            let mut p = d.as_os_str().to_owned();
            p.push(".dockerignore");
            PathBuf::from(p)
        });
        let candidates = specific.into_iter().chain([root.join(".dockerignore")]);
        let mut matcher = None;
        for file in candidates {
            match fs::read_to_string(&file) {
                Ok(text) => {
                    let patterns = read_ignore_file(&text);
                    let m = PatternMatcher::new(&patterns).map_err(|e| ContextError::Ignore {
                        path: file.clone(),
                        message: e.to_string(),
                    })?;
                    matcher = Some(m);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(ContextError::Ignore {
                        path: file,
                        message: e.to_string(),
                    });
                }
            }
        }
        Ok(Context { root, matcher })
    }

    /// The context directory (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `.dockerignore` excludes `rel` (a slash path relative to the root).
    pub fn is_ignored(&self, rel: &str) -> bool {
        match &self.matcher {
            // A pattern that fails at match time excludes nothing, as Docker's walker
            // reports it once and carries on; the build reports it through `open`.
            Some(m) => m.matches(rel).unwrap_or(false),
            None => false,
        }
    }

    /// Whether `.dockerignore` re-includes paths with `!`, so an ignored directory may still
    /// hold visible entries.
    pub fn ignore_has_exceptions(&self) -> bool {
        self.matcher
            .as_ref()
            .is_some_and(PatternMatcher::exclusions)
    }

    /// A digest of everything `sources` (COPY source paths, possibly with wildcards) can
    /// read: every non-ignored entry under each source's literal prefix, with its path,
    /// type, permission bits, size, content digest or link target. Ownership and mtimes are
    /// not part of it (COPY resets ownership; BuildKit's checksum ignores mtimes too).
    pub fn checksum(&self, sources: &[String], index: &MetaDb) -> Result<Digest, ContextError> {
        self.checksum_counting(sources, index, false)
            .map(|(d, _)| d)
    }

    /// [`Context::checksum`] including each entry's uid and gid: for copies out of another
    /// stage or image, which keep ownership (only the build context is reset to 0:0).
    pub fn checksum_with_owners(
        &self,
        sources: &[String],
        index: &MetaDb,
    ) -> Result<Digest, ContextError> {
        self.checksum_counting(sources, index, true).map(|(d, _)| d)
    }

    /// [`Context::checksum`] (with owners when `owners`), also listing every entry it
    /// covers as (path, what was hashed of it), for `kiln build --explain-cache`.
    pub(crate) fn checksum_listed(
        &self,
        sources: &[String],
        index: &MetaDb,
        owners: bool,
    ) -> Result<(Digest, Vec<(String, String)>), ContextError> {
        let (entries, _) = self.entries(sources, index)?;
        let listing = entries
            .iter()
            .map(|e| {
                let mut what = format!("{} {:o} {}", e.kind, e.mode, e.size);
                if !e.detail.is_empty() {
                    what.push_str(&format!(" {}", e.detail));
                }
                if owners {
                    what.push_str(&format!(" {}:{}", e.uid, e.gid));
                }
                (e.rel.clone(), what)
            })
            .collect();
        Ok((digest_of(&entries, owners)?, listing))
    }

    /// [`Context::checksum`], also returning how many files had to be read.
    pub(crate) fn checksum_counting(
        &self,
        sources: &[String],
        index: &MetaDb,
        owners: bool,
    ) -> Result<(Digest, usize), ContextError> {
        let (entries, hashed) = self.entries(sources, index)?;
        Ok((digest_of(&entries, owners)?, hashed))
    }

    /// Every non-ignored entry the sources can read, sorted, with content digests filled
    /// in; also how many files had to be read.
    fn entries(
        &self,
        sources: &[String],
        index: &MetaDb,
    ) -> Result<(Vec<Entry>, usize), ContextError> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut prefixes: Vec<String> = sources.iter().map(|s| literal_prefix(s)).collect();
        prefixes.sort();
        prefixes.dedup();
        // A prefix inside another one is already covered.
        let covered = |p: &str, others: &[String]| {
            others
                .iter()
                .any(|o| o != p && (o.is_empty() || p.starts_with(&format!("{o}/"))))
        };
        let roots: Vec<&String> = prefixes.iter().filter(|p| !covered(p, &prefixes)).collect();
        for prefix in roots {
            self.collect(prefix, &mut entries)?;
        }
        entries.sort_by(|a, b| a.rel.cmp(&b.rel));
        entries.dedup_by(|a, b| a.rel == b.rel);
        let hashed = self.fill_digests(&mut entries, index)?;
        Ok((entries, hashed))
    }

    fn collect(&self, prefix: &str, out: &mut Vec<Entry>) -> Result<(), ContextError> {
        // The copy follows symlinks inside the root (an image's `/data -> /my/data` means
        // `<root>/my/data`, never the host's), so the walk starts where the prefix leads.
        // Missing or unresolvable sources are the copy's error to report, with the
        // instruction's location.
        let Ok(Some(resolved)) = root_path::resolve_path(&self.root, Path::new(prefix)) else {
            return Ok(());
        };
        let ignored = |rel: &str| self.is_ignored(rel);
        let filter = walk::Filter {
            ignored: &ignored,
            prune: self.matcher.as_ref().is_none_or(|m| !m.exclusions()),
        };
        walk::walk(&self.root, &resolved.to_string_lossy(), &filter, out)
    }

    /// Fills the content digest of regular files, from the index where `stat` still
    /// matches, by reading the file otherwise; new digests are written back in one
    /// transaction.
    fn fill_digests(&self, entries: &mut [Entry], index: &MetaDb) -> Result<usize, ContextError> {
        let files: Vec<usize> = (0..entries.len())
            .filter(|&i| entries[i].kind == "file")
            .collect();
        let keys: Vec<Vec<u8>> = files
            .iter()
            .map(|&i| index_key(&self.root, &entries[i].rel))
            .collect();
        let known = index
            .ctx_get_many(&keys)
            .map_err(|e| ContextError::Index(e.to_string()))?;
        let mut stale = Vec::new();
        for ((&i, key), cached) in files.iter().zip(keys).zip(known) {
            let stat = entries[i].stat.encode();
            if let Some(v) = cached
                && v.len() > stat.len()
                && v[..stat.len()] == stat[..]
            {
                entries[i].detail = String::from_utf8_lossy(&v[stat.len()..]).into_owned();
                continue;
            }
            stale.push((i, key, stat));
        }
        // Hashed on a few threads: a cold context is bound by SHA-256 and reads.
        let path = |i: usize| self.root.join(&entries[i].rel);
        let digests = crate::parallel::try_map(
            &stale,
            crate::parallel::threads(MAX_HASH_THREADS),
            |(i, _, _)| hash_file(&path(*i)),
            |(i, _, _)| ContextError::Read {
                path: path(*i),
                source: std::io::Error::other("not hashed: a hashing thread panicked"),
            },
        )?;
        let mut updates: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(stale.len());
        for ((i, key, mut value), digest) in stale.into_iter().zip(digests) {
            value.extend_from_slice(digest.as_bytes());
            updates.push((key, value));
            entries[i].detail = digest;
        }
        if !updates.is_empty() {
            index
                .ctx_put_many(&updates)
                .map_err(|e| ContextError::Index(e.to_string()))?;
        }
        Ok(updates.len())
    }
}

/// The checksum of sorted entries (owners included when `owners`).
fn digest_of(entries: &[Entry], owners: bool) -> Result<Digest, ContextError> {
    let mut h = Sha256::new();
    h.update(if owners {
        b"kiln.context.v1+owners\0".as_slice()
    } else {
        b"kiln.context.v1\0".as_slice()
    });
    for e in entries {
        for field in [e.rel.as_bytes(), e.kind.as_bytes(), e.detail.as_bytes()] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field);
        }
        h.update(e.mode.to_be_bytes());
        h.update(e.size.to_be_bytes());
        if owners {
            h.update(e.uid.to_be_bytes());
            h.update(e.gid.to_be_bytes());
        }
    }
    let hex = hex::encode(h.finalize());
    let digest = Digest::try_from(format!("sha256:{hex}"))
        .map_err(|e| ContextError::Index(e.to_string()))?;
    Ok(digest)
}

/// The part of a COPY source before its first wildcard component, cleaned and relative.
fn literal_prefix(source: &str) -> String {
    let mut parts = Vec::new();
    for part in source.split('/') {
        if part.contains(['*', '?', '[', '\\']) {
            break;
        }
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

struct Entry {
    rel: String,
    kind: &'static str,
    /// Content digest for files, link target for symlinks.
    detail: String,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    stat: StatKey,
}

/// The `stat` fields whose change means the content may have changed.
#[derive(Debug, Clone, Copy)]
struct StatKey {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    mode: u32,
}

impl StatKey {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(56);
        v.extend_from_slice(&self.size.to_be_bytes());
        v.extend_from_slice(&self.mtime_ns.to_be_bytes());
        v.extend_from_slice(&self.ctime_ns.to_be_bytes());
        v.extend_from_slice(&self.ino.to_be_bytes());
        v.extend_from_slice(&self.mode.to_be_bytes());
        v
    }
}

fn index_key(root: &Path, rel: &str) -> Vec<u8> {
    let mut k = root.as_os_str().as_encoded_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(rel.as_bytes());
    k
}

fn hash_file(path: &Path) -> Result<String, ContextError> {
    let read_err = |source| ContextError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut f = fs::File::open(path).map_err(read_err)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests;
mod walk;
