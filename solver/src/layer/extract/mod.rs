//! `extract_layer`: kiln's own extraction loop (not `tar::Archive::unpack`), because it must
//! resolve every parent under the destination, apply or convert whiteouts, create device
//! nodes, and keep ownership and xattrs exactly.
//!
//! Directory modes and times are applied last, deepest first: creating children would bump a
//! directory's mtime, and a read-only directory could not receive them.

mod create;
mod fields;
mod path;
mod whiteout;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use oci_spec::image::Digest;
use rustix::fs::{FileType, Timespec};

use super::decompress::decompress_reader;
use super::hash::{HashReader, sha256_digest};
use super::meta;
use super::{ExtractOptions, LayerError};
use fields::Fields;
use path::{Missing, Resolved, components, resolve_dir};

const IO_BUFFER: usize = 256 * 1024;
/// Offset of the type flag in a tar header.
const TYPEFLAG: usize = 156;

/// What extraction does with `.wh.` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhiteoutMode {
    /// Delete from the destination what lower layers put there.
    Apply,
    /// Extract them as ordinary files (`ADD` of a local archive).
    Keep,
    /// Store them as overlayfs does (0:0 character device, opaque xattr), so the destination
    /// can serve as an overlay lowerdir.
    Overlay,
}

/// Extracts the layer tar read from `reader` (gzip, bzip2, xz, zstd or plain, told by its
/// magic bytes) into `dest`, which is created if missing.
///
/// Absolute and `..` paths are refused, and no write ever goes through a symlink leading out
/// of `dest`; on error, `dest` may hold part of the layer.
pub fn extract_layer<R: Read>(
    reader: R,
    dest: &Path,
    opts: &ExtractOptions,
) -> Result<(), LayerError> {
    let mode = if opts.whiteouts {
        WhiteoutMode::Apply
    } else {
        WhiteoutMode::Keep
    };
    extract_layer_verified(reader, dest, opts.same_owner, mode).map(|_| ())
}

/// [`extract_layer`] with a choice of whiteout handling, returning the sha256 of the
/// uncompressed stream (the layer's diff_id) for the caller to verify.
pub(crate) fn extract_layer_verified<R: Read>(
    reader: R,
    dest: &Path,
    same_owner: bool,
    mode: WhiteoutMode,
) -> Result<Digest, LayerError> {
    let input = |source| LayerError::Input { source };
    create_dest(dest).map_err(|source| LayerError::Extract {
        entry: String::new(),
        path: dest.to_path_buf(),
        source,
    })?;
    let decompressed = decompress_reader(BufReader::with_capacity(IO_BUFFER, reader))?;
    let mut hashing = HashReader::new(decompressed);
    let mut extractor = Extractor {
        dest: dest.to_path_buf(),
        same_owner,
        mode,
        created: HashSet::new(),
        dirs: Vec::new(),
        buf: vec![0u8; IO_BUFFER],
    };
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for entry in archive.entries().map_err(input)? {
            extractor.entry(&mut entry.map_err(input)?)?;
        }
    }
    extractor.finish_dirs()?;
    sha256_digest(hashing.drain_and_finish().map_err(input)?)
}

/// Creates `dest` (and its parents) if missing, 0755 whatever the umask: it becomes the root
/// of a filesystem when the tar has no `./` entry.
fn create_dest(dest: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(dest).is_ok() {
        return Ok(());
    }
    std::fs::create_dir_all(dest)?;
    meta::set_mode(dest, 0o755)
}

/// A directory whose mode and times wait for the end.
struct DeferredDir {
    entry: String,
    path: PathBuf,
    mode: u32,
    mtime: Timespec,
}

struct Extractor {
    dest: PathBuf,
    same_owner: bool,
    mode: WhiteoutMode,
    /// Paths (relative to `dest`) this layer created, which an opaque marker must spare.
    created: HashSet<PathBuf>,
    dirs: Vec<DeferredDir>,
    buf: Vec<u8>,
}

impl Extractor {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        let fields = Fields::read(entry, &name)?;
        let parts = components(&raw, &name)?;
        let Some((last, parents)) = parts.split_last() else {
            return self.root_entry(kind, &fields, name);
        };

        if self.mode != WhiteoutMode::Keep && last.starts_with(whiteout::PREFIX) {
            return self.whiteout(parents, last, &name);
        }

        let parent = self
            .resolve(parents, Missing::Create, &name)?
            .ok_or_else(|| LayerError::UnsafePath {
                entry: name.clone(),
                reason: "parent directory vanished",
            })?;
        let last = OsStr::from_bytes(last);
        let path = parent.abs.join(last);
        let rel = parent.rel.join(last);
        let fail = |source| LayerError::Extract {
            entry: name.clone(),
            path: path.clone(),
            source,
        };

        // Pre-POSIX tars mark directories as type NUL (old regular) with a trailing `/`.
        let old_regular = entry.header().as_bytes()[TYPEFLAG] == 0;
        let is_dir = kind.is_dir() || (old_regular && raw.ends_with(b"/"));
        if is_dir {
            create::directory(&path, &fields, self.same_owner).map_err(fail)?;
            self.dirs.push(DeferredDir {
                entry: name.clone(),
                path: path.clone(),
                mode: fields.mode,
                mtime: fields.mtime,
            });
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            create::regular(&path, entry, &fields, self.same_owner, &mut self.buf).map_err(fail)?;
        } else if kind.is_symlink() {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| LayerError::UnsafePath {
                    entry: name.clone(),
                    reason: "symlink without a target",
                })?;
            create::symlink(&path, &target, &fields, self.same_owner).map_err(fail)?;
        } else if kind.is_hard_link() {
            let target = self.hardlink_target(entry, &name)?;
            create::hardlink(&path, &target).map_err(fail)?;
        } else if kind.is_character_special() {
            create::node(&path, FileType::CharacterDevice, &fields, self.same_owner)
                .map_err(fail)?;
        } else if kind.is_block_special() {
            create::node(&path, FileType::BlockDevice, &fields, self.same_owner).map_err(fail)?;
        } else if kind.is_fifo() {
            create::node(&path, FileType::Fifo, &fields, self.same_owner).map_err(fail)?;
        } else {
            return Err(LayerError::Unsupported {
                entry: name,
                kind: format!("{kind:?}"),
            });
        }
        if self.mode == WhiteoutMode::Apply {
            self.created.insert(rel);
        }
        Ok(())
    }

    /// `./` itself: its metadata goes to `dest`, as tar does.
    fn root_entry(
        &mut self,
        kind: tar::EntryType,
        fields: &Fields,
        name: String,
    ) -> Result<(), LayerError> {
        if !kind.is_dir() {
            return Err(LayerError::UnsafePath {
                entry: name,
                reason: "a non-directory entry names the destination itself",
            });
        }
        create::directory(&self.dest, fields, self.same_owner).map_err(|source| {
            LayerError::Extract {
                entry: name.clone(),
                path: self.dest.clone(),
                source,
            }
        })?;
        self.dirs.push(DeferredDir {
            entry: name,
            path: self.dest.clone(),
            mode: fields.mode,
            mtime: fields.mtime,
        });
        Ok(())
    }

    /// Resolves a directory under `dest`, remembering the directories it had to create.
    fn resolve(
        &mut self,
        dirs: &[&[u8]],
        missing: Missing,
        name: &str,
    ) -> Result<Option<Resolved>, LayerError> {
        let resolved = resolve_dir(&self.dest, dirs, missing, name)?;
        if let Some(resolved) = &resolved {
            if self.mode == WhiteoutMode::Apply {
                self.created.extend(resolved.created.iter().cloned());
            }
        }
        Ok(resolved)
    }

    /// Where a hardlink entry points: a path inside `dest` that already exists.
    fn hardlink_target<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        name: &str,
    ) -> Result<PathBuf, LayerError> {
        let bad = |target: &[u8], reason| LayerError::BadHardlink {
            entry: name.to_owned(),
            target: String::from_utf8_lossy(target).into_owned(),
            reason,
        };
        let raw = entry
            .link_name_bytes()
            .ok_or_else(|| bad(b"", "no target"))?;
        let parts =
            components(&raw, name).map_err(|_| bad(&raw, "absolute or climbs out with `..`"))?;
        let Some((last, parents)) = parts.split_last() else {
            return Err(bad(&raw, "names the destination itself"));
        };
        let parent = self
            .resolve(parents, Missing::Absent, name)?
            .ok_or_else(|| bad(&raw, "target does not exist"))?;
        let target = parent.abs.join(OsStr::from_bytes(last));
        if std::fs::symlink_metadata(&target).is_err() {
            return Err(bad(&raw, "target does not exist"));
        }
        Ok(target)
    }

    /// Applies the deferred directory modes and times, deepest (latest) first; a directory
    /// listed twice gets its last entry's metadata, one removed since is skipped.
    fn finish_dirs(&mut self) -> Result<(), LayerError> {
        let mut done = HashSet::new();
        for dir in self.dirs.iter().rev() {
            if !done.insert(dir.path.clone()) {
                continue;
            }
            if !std::fs::symlink_metadata(&dir.path).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            let fail = |source| LayerError::Extract {
                entry: dir.entry.clone(),
                path: dir.path.clone(),
                source,
            };
            meta::set_mode(&dir.path, dir.mode).map_err(fail)?;
            meta::set_times(&dir.path, dir.mtime, dir.mtime).map_err(fail)?;
        }
        Ok(())
    }
}
