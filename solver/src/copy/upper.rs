//! Where a copy writes: the layer being made, over the image below it.
//!
//! Two kinds of upper take the same calls. [`DiskUpper`] is a diff directory on disk, archived
//! afterwards: what an ADD archive is extracted into, and what the copy tests read back.
//! [`super::PlannedLayer`] keeps the entries in memory, each regular file as the path it is
//! read from, and streams them into the layer tar in one pass: a COPY of 100,000 context files
//! then writes one tar, not 100,000 staging files that are archived and deleted again.
//!
//! Paths are relative to the image root and already resolved (no symlink in a parent), as
//! [`super::dest::DestView`] hands them over.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, FileType, Mode};

use super::dest::Kind;
use super::error::CopyError;
use super::meta::{self, Attrs};

/// What a new non-directory entry is.
#[derive(Debug, Clone, Copy)]
pub enum NewEntry<'a> {
    /// A regular file with the content of `src`, `size` bytes long when looked at.
    File {
        /// Where the content is read from.
        src: &'a Path,
        /// Its size when it was looked at.
        size: u64,
    },
    /// A regular file with these bytes (a heredoc).
    Bytes(&'a [u8]),
    /// A symlink to this target.
    Symlink(&'a Path),
    /// A device, FIFO or socket: the `st_mode` (type and permissions) and `st_rdev` it had.
    Special {
        /// File type and permission bits.
        mode: u32,
        /// Device number.
        rdev: u64,
    },
}

/// The layer a copy writes into. See the module documentation.
pub trait Upper: std::fmt::Debug {
    /// What the layer has at `rel`, if anything.
    fn kind(&self, rel: &Path) -> Result<Option<Kind>, CopyError>;

    /// The target of the symlink the layer has at `rel`.
    fn read_link(&self, rel: &Path) -> Result<PathBuf, CopyError>;

    /// Creates the directory `rel` (its parent exists in the layer): owned and moded as
    /// `owner_mode` says (uid, gid, mode), else 0755 and root's until
    /// [`Upper::dir_attrs_later`] gives its attributes.
    fn create_dir(
        &mut self,
        rel: &Path,
        owner_mode: Option<(u32, u32, u32)>,
    ) -> Result<(), CopyError>;

    /// Gives the directory `rel` these attributes once everything is written (a later call
    /// for the same directory wins).
    fn dir_attrs_later(&mut self, rel: &Path, attrs: Attrs);

    /// Gives the directory `rel` the extended attributes of `src` (what cannot be copied is
    /// skipped, as BuildKit only logs such failures).
    fn dir_xattrs_from(&mut self, rel: &Path, src: &Path);

    /// Adds a non-directory at `rel` (nothing is there), with `attrs`, and the extended
    /// attributes of `xattrs_from` when given.
    fn add(
        &mut self,
        rel: &Path,
        entry: NewEntry<'_>,
        attrs: &Attrs,
        xattrs_from: Option<&Path>,
    ) -> Result<(), CopyError>;

    /// Adds `rel` as a hard link to the regular file at `first`, written earlier.
    fn add_hardlink(&mut self, rel: &Path, first: &Path) -> Result<(), CopyError>;

    /// Removes the non-directory at `rel`, written earlier.
    fn remove(&mut self, rel: &Path) -> Result<(), CopyError>;

    /// Applies what was kept for the end (directory attributes); called once a copy is done.
    fn finish(&mut self) -> Result<(), CopyError>;

    /// The directory the layer is written in, for what can only be written to disk (an ADD
    /// archive's extraction); `None` for an upper that is not on disk.
    fn host_dir(&self) -> Option<&Path>;
}

/// A diff directory on disk.
#[derive(Debug)]
pub struct DiskUpper {
    root: PathBuf,
    /// Directory attributes to apply at the end, in order.
    dirs: Vec<(PathBuf, Attrs)>,
}

impl DiskUpper {
    /// The diff directory `root` (which exists).
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            dirs: Vec::new(),
        }
    }

    fn host(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }
}

impl Upper for DiskUpper {
    fn kind(&self, rel: &Path) -> Result<Option<Kind>, CopyError> {
        let path = self.host(rel);
        match fs::symlink_metadata(&path) {
            Ok(meta) => Ok(Some(Kind::of(&meta))),
            Err(err) if super::source::is_absent(&err) => Ok(None),
            Err(err) => Err(CopyError::io("lstat", path)(err)),
        }
    }

    fn read_link(&self, rel: &Path) -> Result<PathBuf, CopyError> {
        let path = self.host(rel);
        fs::read_link(&path).map_err(CopyError::io("readlink", &path))
    }

    fn create_dir(
        &mut self,
        rel: &Path,
        owner_mode: Option<(u32, u32, u32)>,
    ) -> Result<(), CopyError> {
        let path = self.host(rel);
        DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .map_err(CopyError::io("mkdir", &path))?;
        match owner_mode {
            Some((uid, gid, mode)) => {
                let attrs = Attrs {
                    uid,
                    gid,
                    mode,
                    times: meta::Times::now(),
                };
                meta::set_owner_mode(&path, &attrs, false)
            }
            None => Ok(()),
        }
    }

    fn dir_attrs_later(&mut self, rel: &Path, attrs: Attrs) {
        self.dirs.push((self.host(rel), attrs));
    }

    fn dir_xattrs_from(&mut self, rel: &Path, src: &Path) {
        meta::copy_xattrs(src, &self.host(rel));
    }

    fn add(
        &mut self,
        rel: &Path,
        entry: NewEntry<'_>,
        attrs: &Attrs,
        xattrs_from: Option<&Path>,
    ) -> Result<(), CopyError> {
        let host = self.host(rel);
        let symlink = matches!(entry, NewEntry::Symlink(_));
        match entry {
            NewEntry::File { src, .. } => copy_file(src, &host)?,
            NewEntry::Bytes(data) => {
                let mut file = create_new(&host)?;
                file.write_all(data)
                    .map_err(CopyError::io("write", &host))?;
            }
            NewEntry::Symlink(target) => std::os::unix::fs::symlink(target, &host)
                .map_err(CopyError::io("symlink", &host))?,
            NewEntry::Special { mode, rdev } => rustix::fs::mknodat(
                CWD,
                &host,
                FileType::from_raw_mode(mode),
                Mode::from_raw_mode(mode & 0o7777),
                rdev,
            )
            .map_err(|errno| CopyError::io("mknod", &host)(errno.into()))?,
        }
        meta::set_owner_mode(&host, attrs, symlink)?;
        if let Some(src) = xattrs_from {
            meta::copy_xattrs(src, &host);
        }
        meta::set_times(&host, attrs.times)
    }

    fn add_hardlink(&mut self, rel: &Path, first: &Path) -> Result<(), CopyError> {
        let host = self.host(rel);
        fs::hard_link(self.host(first), &host).map_err(CopyError::io("link", &host))
    }

    fn remove(&mut self, rel: &Path) -> Result<(), CopyError> {
        let host = self.host(rel);
        fs::remove_file(&host).map_err(CopyError::io("remove", &host))
    }

    fn finish(&mut self) -> Result<(), CopyError> {
        let dirs = std::mem::take(&mut self.dirs);
        for (path, attrs) in &dirs {
            meta::set_owner_mode(path, attrs, false)?;
        }
        // Times last: writing entries into a directory moves its mtime.
        for (path, attrs) in &dirs {
            meta::set_times(path, attrs.times)?;
        }
        Ok(())
    }

    fn host_dir(&self) -> Option<&Path> {
        Some(&self.root)
    }
}

fn create_new(path: &Path) -> Result<File, CopyError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(CopyError::io("create", path))
}

fn copy_file(src: &Path, dst: &Path) -> Result<(), CopyError> {
    let mut from = File::open(src).map_err(CopyError::io("open", src))?;
    let mut to = create_new(dst)?;
    io::copy(&mut from, &mut to).map_err(CopyError::io("copy to", dst))?;
    Ok(())
}

/// `st_mode` and `st_rdev` of a special file.
pub(super) fn special(meta: &fs::Metadata) -> NewEntry<'static> {
    NewEntry::Special {
        mode: meta.mode(),
        rdev: meta.rdev(),
    }
}
