//! ADD's local archives: recognising one by content and extracting it into the destination.
//!
//! A stand-in until `crate::layer` offers `extract_layer` (without whiteouts, same owner)
//! and `decompress_reader`; [`extract`] is the one function to swap. It follows BuildKit's
//! `applyRootArchive`: names are cleaned and may not leave the directory, symlinks already
//! extracted are followed inside it, implied parents are 0755 root:root, an entry replaces
//! what is in its way (directories merge), owners come from the archive unless `--chown`
//! overrides them, directory times are set last, and devices and FIFOs are refused.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::error::CopyError;
use super::meta::{self, Attrs, Times};
use super::source::{MAX_LINKS, is_absent};

/// Whether `path` is a regular file holding a tar archive, plain or compressed with gzip,
/// bzip2, xz or zstd (BuildKit's `isArchivePath`: decompress, then read one header).
pub(super) fn is_archive(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let Ok(reader) = decompress(file) else {
        return false;
    };
    let mut archive = tar::Archive::new(reader);
    let Ok(mut entries) = archive.entries() else {
        return false;
    };
    matches!(entries.next(), Some(Ok(_)))
}

/// Extracts the archive at `archive` into the existing host directory `dest`; `chown`
/// overrides the owners stored in it. Returns the number of entries written.
pub(super) fn extract(
    archive: &Path,
    dest: &Path,
    chown: Option<(u32, u32)>,
) -> Result<u64, CopyError> {
    let file = File::open(archive).map_err(CopyError::io("open", archive))?;
    let reader = decompress(file).map_err(CopyError::io("read", archive))?;
    let mut tar = tar::Archive::new(reader);
    let mut dirs: Vec<(PathBuf, Times)> = Vec::new();
    let mut count = 0;
    for entry in tar.entries().map_err(CopyError::io("read", archive))? {
        let mut entry = entry.map_err(CopyError::io("read", archive))?;
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            continue;
        }
        let raw_name = entry.path().map_err(CopyError::io("read", archive))?;
        let shown = raw_name.to_string_lossy().into_owned();
        let outside = || CopyError::ArchiveEntryOutside {
            archive: archive.to_owned(),
            entry: shown.clone(),
        };
        let Some(name) = clean(&raw_name).ok_or_else(outside)? else {
            continue;
        };
        let header = Header::read(&mut entry, chown).map_err(CopyError::io("read", archive))?;
        let target = resolve_in(dest, &name, kind == EntryType::Directory)
            .map_err(|e| e.into_error(archive, &shown))?;
        make_parents(dest, &target)?;
        let host = dest.join(&target);
        clear_way(&host, kind == EntryType::Directory)?;
        match kind {
            EntryType::Directory => {
                match DirBuilder::new().mode(0o700).create(&host) {
                    Err(err) if err.kind() != io::ErrorKind::AlreadyExists => {
                        return Err(CopyError::io("mkdir", &host)(err));
                    }
                    _ => {}
                }
                meta::set_owner_mode(&host, &header.attrs, false)?;
                dirs.push((host, header.attrs.times));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let mut out = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&host)
                    .map_err(CopyError::io("create", &host))?;
                io::copy(&mut entry, &mut out).map_err(CopyError::io("extract to", &host))?;
                drop(out);
                meta::apply(&host, &header.attrs, false)?;
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(CopyError::io("read", archive))?
                    .unwrap_or_default();
                std::os::unix::fs::symlink(&link, &host)
                    .map_err(CopyError::io("symlink", &host))?;
                meta::apply(&host, &header.attrs, true)?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(CopyError::io("read", archive))?
                    .unwrap_or_default();
                let link = clean(&link).ok_or_else(outside)?.ok_or_else(outside)?;
                let link =
                    resolve_in(dest, &link, false).map_err(|e| e.into_error(archive, &shown))?;
                let from = dest.join(link);
                fs::hard_link(&from, &host).map_err(CopyError::io("link", &host))?;
                let is_symlink = fs::symlink_metadata(&host)
                    .map_err(CopyError::io("lstat", &host))?
                    .file_type()
                    .is_symlink();
                meta::apply(&host, &header.attrs, is_symlink)?;
            }
            other => {
                return Err(CopyError::ArchiveEntryUnsupported {
                    archive: archive.to_owned(),
                    entry: shown,
                    kind: other.as_byte(),
                });
            }
        }
        count += 1;
    }
    // Innermost last-written first, after every entry is in place.
    for (dir, times) in dirs.iter().rev() {
        meta::set_times(dir, *times)?;
    }
    Ok(count)
}

/// The owner, mode and times an entry gets: PAX records win over the ustar fields.
struct Header {
    attrs: Attrs,
}

impl Header {
    fn read<R: Read>(entry: &mut tar::Entry<'_, R>, chown: Option<(u32, u32)>) -> io::Result<Self> {
        let header = entry.header();
        let mode = header.mode()? & 0o7777;
        let mut uid = header.uid()?;
        let mut gid = header.gid()?;
        let mut mtime = i64::try_from(header.mtime()?).unwrap_or(0);
        let mut atime = None;
        if let Some(pax) = entry.pax_extensions()? {
            for ext in pax.flatten() {
                let (Ok(key), Ok(value)) = (ext.key(), ext.value()) else {
                    continue;
                };
                let seconds = || value.split('.').next().and_then(|s| s.parse::<i64>().ok());
                match key {
                    "uid" => uid = value.parse().unwrap_or(uid),
                    "gid" => gid = value.parse().unwrap_or(gid),
                    "mtime" => mtime = seconds().unwrap_or(mtime),
                    "atime" => atime = seconds(),
                    _ => {}
                }
            }
        }
        let (uid, gid) = chown.unwrap_or((
            u32::try_from(uid).unwrap_or(u32::MAX),
            u32::try_from(gid).unwrap_or(u32::MAX),
        ));
        // BuildKit uses the later of atime and mtime, and the epoch for times it cannot set.
        let mtime = mtime.max(0);
        let atime = atime.unwrap_or(mtime).max(mtime);
        Ok(Self {
            attrs: Attrs {
                uid,
                gid,
                mode,
                times: Times::seconds(atime, mtime),
            },
        })
    }
}

/// Wraps `file` in the decompressor its first bytes call for (Docker's `DecompressStream`).
fn decompress(mut file: File) -> io::Result<Box<dyn Read>> {
    let mut magic = [0u8; 6];
    let mut filled = 0;
    while filled < magic.len() {
        let n = file.read(magic.get_mut(filled..).unwrap_or_default())?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    let head = magic.get(..filled).unwrap_or_default().to_vec();
    let stream = io::Cursor::new(head.clone()).chain(file);
    let reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b, 0x08]) {
        Box::new(flate2::read::MultiGzDecoder::new(stream))
    } else if head.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(stream))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Box::new(xz2::read::XzDecoder::new_multi_decoder(stream))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) || is_zstd_skippable(&head) {
        Box::new(zstd::stream::read::Decoder::new(stream)?)
    } else {
        Box::new(stream)
    };
    Ok(reader)
}

/// A zstd skippable frame: 0x184D2A5? little-endian.
fn is_zstd_skippable(head: &[u8]) -> bool {
    matches!(head, [first, 0x2a, 0x4d, 0x18, ..] if first & 0xf0 == 0x50)
}

/// An entry name cleaned of leading `/`, `.` and `..` pairs: `Ok(None)` for the
/// extraction root itself, `None` when it leaves the root.
fn clean(name: &Path) -> Option<Option<PathBuf>> {
    let mut parts: Vec<OsString> = Vec::new();
    for part in name.components() {
        match part {
            Component::Normal(p) => parts.push(p.to_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some((!parts.is_empty()).then(|| parts.iter().collect()))
}

/// Why resolving inside the extraction directory failed.
enum ResolveError {
    /// A link leads out of the directory, or links loop.
    Outside,
    Io(CopyError),
}

impl ResolveError {
    fn into_error(self, archive: &Path, entry: &str) -> CopyError {
        match self {
            Self::Outside => CopyError::ArchiveEntryOutside {
                archive: archive.to_owned(),
                entry: entry.to_owned(),
            },
            Self::Io(err) => err,
        }
    }
}

/// BuildKit's `resolveRootPath`: follows symlinks already extracted, an absolute target
/// starting again at `dest`, a relative one that would leave it refused.
fn resolve_in(dest: &Path, name: &Path, follow_leaf: bool) -> Result<PathBuf, ResolveError> {
    let mut pending: VecDeque<OsString> = name.iter().map(OsString::from).collect();
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        let candidate = resolved.join(&part);
        if pending.is_empty() && !follow_leaf {
            return Ok(candidate);
        }
        let host = dest.join(&candidate);
        let meta = match fs::symlink_metadata(&host) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                resolved.push(part);
                resolved.extend(pending);
                return Ok(resolved);
            }
            Err(err) => return Err(ResolveError::Io(CopyError::io("lstat", host)(err))),
        };
        if !meta.file_type().is_symlink() {
            resolved = candidate;
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(ResolveError::Outside);
        }
        let target = fs::read_link(&host)
            .map_err(|e| ResolveError::Io(CopyError::io("readlink", &host)(e)))?;
        let joined = if target.is_absolute() {
            target
        } else {
            resolved.join(target)
        };
        let Some(next) = clean(&joined) else {
            return Err(ResolveError::Outside);
        };
        let mut spliced: VecDeque<OsString> = next
            .iter()
            .flat_map(|p| p.iter())
            .map(OsString::from)
            .collect();
        spliced.extend(pending.drain(..));
        pending = spliced;
        resolved = PathBuf::new();
    }
    Ok(resolved)
}

/// Creates the missing parents of `rel` inside `dest`: 0755, root-owned, as BuildKit does
/// for directories an archive implies but does not list.
fn make_parents(dest: &Path, rel: &Path) -> Result<(), CopyError> {
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    let mut current = dest.to_path_buf();
    for part in parent.iter() {
        current.push(part);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(_) => {
                return Err(CopyError::NotADirectory {
                    path: current.to_string_lossy().into_owned(),
                });
            }
            Err(err) if is_absent(&err) => {}
            Err(err) => return Err(CopyError::io("lstat", &current)(err)),
        }
        DirBuilder::new()
            .mode(0o755)
            .create(&current)
            .map_err(CopyError::io("mkdir", &current))?;
        let attrs = Attrs {
            uid: 0,
            gid: 0,
            mode: 0o755,
            times: Times::now(),
        };
        meta::set_owner_mode(&current, &attrs, false)?;
    }
    Ok(())
}

/// Removes what is at `host` unless both it and the new entry are directories.
fn clear_way(host: &Path, new_is_dir: bool) -> Result<(), CopyError> {
    match fs::symlink_metadata(host) {
        Ok(meta) if meta.is_dir() && new_is_dir => Ok(()),
        Ok(meta) if meta.is_dir() => {
            fs::remove_dir_all(host).map_err(CopyError::io("remove", host))
        }
        Ok(_) => fs::remove_file(host).map_err(CopyError::io("remove", host)),
        Err(err) if is_absent(&err) => Ok(()),
        Err(err) => Err(CopyError::io("lstat", host)(err)),
    }
}
