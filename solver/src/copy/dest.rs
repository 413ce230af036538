//! The destination as COPY sees it: the diff directory being written (the upper) over the
//! stage's current filesystem (the lower), read-only.
//!
//! BuildKit copies into the mounted stage, so a destination that already exists there (a
//! directory to copy into, a symlink to follow, a file in the way) changes what happens.
//! kiln writes only the diff, so it looks things up in the upper first and then the lower,
//! and resolves destination symlinks inside the image the way `fs.RootPath` does. A
//! directory that exists only in the lower but has to hold new entries is recreated in the
//! upper with the lower's owner, mode and times, so the layer does not change it.
//!
//! Directory attributes are applied last ([`DestView::finish`]): writing entries into a
//! directory moves its mtime, and a read-only mode would get in the way.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use super::error::CopyError;
use super::meta::{Attrs, NewDir, Times};
use super::path::rooted;
use super::source::{MAX_LINKS, is_absent};
use super::upper::Upper;

/// What is at a destination path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A symlink.
    Symlink,
    /// Anything else.
    Other,
}

impl Kind {
    /// The kind of an entry with this metadata.
    pub(super) fn of(meta: &Metadata) -> Self {
        let kind = meta.file_type();
        if kind.is_dir() {
            Self::Dir
        } else if kind.is_symlink() {
            Self::Symlink
        } else {
            Self::Other
        }
    }
}

/// An existing destination entry.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) kind: Kind,
    /// Found in the upper (written by this copy), rather than in the lower.
    pub(super) in_upper: bool,
    /// A real directory sits at the same path in the lower.
    pub(super) lower_dir: bool,
    /// The lower's entry, when this is it.
    lower: Option<Metadata>,
}

/// What is known about a destination directory's children without looking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DirState {
    /// The upper holds no entries in it yet.
    pub(super) upper_empty: bool,
    /// The lower has it as a real directory, so its children may exist there.
    pub(super) lower_dir: bool,
}

impl DirState {
    /// Whether nothing can exist below it, so lookups may be skipped.
    pub(super) fn is_fresh(self) -> bool {
        self.upper_empty && !self.lower_dir
    }

    /// The state of a child directory that is `entry` now (`None`: it will be created).
    pub(super) fn child(entry: Option<&Entry>) -> Self {
        match entry {
            None => Self {
                upper_empty: true,
                lower_dir: false,
            },
            Some(entry) if entry.kind == Kind::Dir => Self {
                upper_empty: !entry.in_upper,
                lower_dir: entry.lower_dir,
            },
            // Never looked into: creating the directory fails first.
            Some(_) => Self {
                upper_empty: true,
                lower_dir: false,
            },
        }
    }
}

/// The upper over the lower.
#[derive(Debug)]
pub(super) struct DestView<'a> {
    upper: &'a mut dyn Upper,
    lower: Option<&'a Path>,
}

impl<'a> DestView<'a> {
    pub(super) fn new(upper: &'a mut dyn Upper, lower: Option<&'a Path>) -> Self {
        Self { upper, lower }
    }

    /// Whether the destination has an image below the layer being written.
    pub(super) fn has_lower(&self) -> bool {
        self.lower.is_some()
    }

    /// The layer being written.
    pub(super) fn upper(&mut self) -> &mut dyn Upper {
        self.upper
    }

    /// The layer being written, to look at.
    pub(super) fn upper_ref(&self) -> &dyn Upper {
        self.upper
    }

    fn root_state(&self) -> DirState {
        DirState {
            upper_empty: false,
            lower_dir: self.lower.is_some(),
        }
    }

    /// Looks up `name` in the directory `parent` (a resolved path whose state is `state`).
    pub(super) fn child(
        &self,
        parent: &Path,
        state: DirState,
        name: &OsStr,
    ) -> Result<Option<Entry>, CopyError> {
        let rel = parent.join(name);
        let lower_meta = match self.lower {
            Some(lower) if state.lower_dir => lstat(&lower.join(&rel))?,
            _ => None,
        };
        let lower_dir = lower_meta.as_ref().is_some_and(Metadata::is_dir);
        if !state.upper_empty
            && let Some(kind) = self.upper.kind(&rel)?
        {
            return Ok(Some(Entry {
                kind,
                in_upper: true,
                lower_dir,
                lower: None,
            }));
        }
        Ok(lower_meta.map(|meta| Entry {
            kind: Kind::of(&meta),
            in_upper: false,
            lower_dir,
            lower: Some(meta),
        }))
    }

    /// Resolves `rel` with every symlink followed, the last one too. Returns the resolved
    /// path and what is there, if anything (the root is a directory).
    pub(super) fn resolve(&mut self, rel: &Path) -> Result<(PathBuf, Option<Kind>), CopyError> {
        let (path, kind, _) = self.walk(rel, None)?;
        Ok((path, kind))
    }

    /// `MkdirAll` inside the image: follows symlinks, creates what is missing (as `new`
    /// says), and recreates lower-only directories in the upper. Returns the resolved
    /// directory and its state.
    pub(super) fn mkdir_all(
        &mut self,
        rel: &Path,
        new: NewDir,
    ) -> Result<(PathBuf, DirState), CopyError> {
        let (path, _, state) = self.walk(rel, Some(new))?;
        Ok((path, state))
    }

    fn walk(
        &mut self,
        rel: &Path,
        create: Option<NewDir>,
    ) -> Result<(PathBuf, Option<Kind>, DirState), CopyError> {
        let mut pending: VecDeque<OsString> =
            rel.components().map(|c| c.as_os_str().to_owned()).collect();
        let mut current = PathBuf::new();
        let mut state = self.root_state();
        let mut kind = Some(Kind::Dir);
        let mut links = 0;
        while let Some(name) = pending.pop_front() {
            let found = self.child(&current, state, &name)?;
            let candidate = current.join(&name);
            match found {
                Some(link) if link.kind == Kind::Symlink => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(CopyError::TooManySymlinks { path: rooted(rel) });
                    }
                    let target = match (link.in_upper, self.lower) {
                        (false, Some(lower)) => {
                            let host = lower.join(&candidate);
                            fs::read_link(&host).map_err(CopyError::io("readlink", &host))?
                        }
                        _ => self.upper.read_link(&candidate)?,
                    };
                    // Start again from the root with the link spliced in, `..` stopping at
                    // `/`, as `fs.RootPath` does.
                    let base = if target.is_absolute() {
                        Vec::new()
                    } else {
                        current
                            .components()
                            .map(|c| c.as_os_str().to_owned())
                            .collect()
                    };
                    pending = splice(base, &target, pending);
                    current = PathBuf::new();
                    state = self.root_state();
                    kind = Some(Kind::Dir);
                }
                Some(found) if found.kind == Kind::Dir => {
                    if create.is_some()
                        && let Some(lower) = &found.lower
                    {
                        self.recreate(&candidate, lower)?;
                    }
                    state = DirState::child(Some(&found));
                    current = candidate;
                    kind = Some(Kind::Dir);
                }
                Some(other) => {
                    if create.is_some() || !pending.is_empty() {
                        return Err(CopyError::NotADirectory {
                            path: rooted(&candidate),
                        });
                    }
                    current = candidate;
                    kind = Some(other.kind);
                }
                None => match create {
                    Some(new) => {
                        self.create_dir(&candidate, new)?;
                        state = DirState::child(None);
                        current = candidate;
                        kind = Some(Kind::Dir);
                    }
                    None => {
                        current = candidate;
                        current.extend(pending.drain(..));
                        return Ok((current, None, DirState::child(None)));
                    }
                },
            }
        }
        Ok((current, kind, state))
    }

    /// A new directory, as BuildKit's `MkdirAll` makes it: `new`'s owner and mode, the time
    /// now.
    fn create_dir(&mut self, rel: &Path, new: NewDir) -> Result<(), CopyError> {
        self.upper
            .create_dir(rel, Some((new.uid, new.gid, new.mode)))
    }

    /// A lower directory brought into the upper unchanged.
    fn recreate(&mut self, rel: &Path, lower: &Metadata) -> Result<(), CopyError> {
        self.upper.create_dir(rel, None)?;
        let attrs = Attrs {
            uid: lower.uid(),
            gid: lower.gid(),
            mode: lower.mode() & 0o7777,
            times: Times::of(lower),
        };
        self.upper.dir_attrs_later(rel, attrs);
        Ok(())
    }

    /// Records the final attributes of a directory written in the upper.
    pub(super) fn finish_dir_later(&mut self, rel: &Path, attrs: Attrs) {
        self.upper.dir_attrs_later(rel, attrs);
    }

    /// Applies directory attributes; call once everything is written.
    pub(super) fn finish(self) -> Result<(), CopyError> {
        self.upper.finish()
    }
}

/// `base` joined with a symlink target and what was left to resolve, cleaned lexically with
/// `..` stopping at the root.
fn splice(base: Vec<OsString>, target: &Path, rest: VecDeque<OsString>) -> VecDeque<OsString> {
    let mut out: VecDeque<OsString> = base.into();
    for part in target.components() {
        match part {
            Component::Normal(name) => out.push_back(name.to_owned()),
            Component::ParentDir => {
                out.pop_back();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out.extend(rest);
    out
}

fn lstat(path: &Path) -> Result<Option<Metadata>, CopyError> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(err) if is_absent(&err) => Ok(None),
        Err(err) => Err(CopyError::io("lstat", path)(err)),
    }
}
