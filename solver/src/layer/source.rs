//! What one file of a diff tree becomes in a layer: its header(s), and whether content follows.
//!
//! The overlay conventions are decided here: a 0:0 character device is a deletion (and may be
//! hardlinked, since overlayfs shares one whiteout inode), a directory marked opaque gets a
//! `.wh..wh..opq` child. Whiteout entries carry fixed metadata (0:0, mode 0, mtime 0), as
//! containerd writes them, so that they never depend on when or by whom the deletion happened.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::FileType;

use super::LayerError;
use super::header::{EntryHeader, Kind};
use super::xattr;

/// Prefix of a whiteout's name.
pub(crate) const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Name of the opaque-directory marker.
pub(crate) const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// A file of the diff tree, ready to be written.
pub(crate) struct Described {
    pub(crate) header: EntryHeader,
    /// The `.wh..wh..opq` entry that follows an opaque directory.
    pub(crate) opaque_marker: Option<EntryHeader>,
    /// Whether `header.size` bytes of the file's content follow.
    pub(crate) has_content: bool,
}

/// First path seen for each (device, inode) with more than one link.
pub(crate) type Hardlinks = HashMap<(u64, u64), Vec<u8>>;

/// Describes `path` (whose path in the layer is `rel`), or `None` for what a tar cannot hold
/// (sockets, which Docker and BuildKit skip too).
pub(crate) fn describe(
    path: &Path,
    rel: &[u8],
    meta: &Metadata,
    hardlinks: &mut Hardlinks,
    source_date_epoch: Option<i64>,
) -> Result<Option<Described>, LayerError> {
    let read_error = |source| LayerError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file_type = meta.file_type();
    let special = if file_type.is_dir() || file_type.is_file() || file_type.is_symlink() {
        None
    } else {
        Some(special(meta.mode(), meta.rdev()))
    };
    match special {
        Some(Special::Omitted) => return Ok(None),
        Some(Special::Whiteout) => {
            return Ok(Some(Described {
                header: whiteout_header(rel),
                opaque_marker: None,
                has_content: false,
            }));
        }
        _ => {}
    }
    let mut header = entry_header(
        rel,
        meta.mode(),
        (meta.uid(), meta.gid()),
        meta.mtime(),
        source_date_epoch,
    );

    if !file_type.is_dir() && meta.nlink() > 1 {
        let key = (meta.dev(), meta.ino());
        if let Some(first) = hardlinks.get(&key) {
            header.kind = Kind::Hardlink;
            header.link = Some(first.clone());
            return Ok(Some(Described {
                header,
                opaque_marker: None,
                has_content: false,
            }));
        }
        hardlinks.insert(key, rel.to_vec());
    }

    header.xattrs = xattr::read_all(path).map_err(read_error)?;
    let mut opaque_marker = None;
    let mut has_content = false;
    if file_type.is_dir() {
        header.kind = Kind::Directory;
        header.path.push(b'/');
        if xattr::is_opaque(path).map_err(read_error)? {
            let mut marker_path = header.path.clone();
            marker_path.extend_from_slice(OPAQUE_MARKER);
            opaque_marker = Some(marker(marker_path));
        }
    } else if file_type.is_file() {
        header.size = meta.len();
        has_content = true;
    } else if file_type.is_symlink() {
        header.kind = Kind::Symlink;
        let target = std::fs::read_link(path).map_err(read_error)?;
        header.link = Some(target.as_os_str().as_bytes().to_vec());
    } else if let Some(Special::Node { kind, device }) = special {
        header.kind = kind;
        header.device = device;
    }
    Ok(Some(Described {
        header,
        opaque_marker,
        has_content,
    }))
}

/// How a device, FIFO or socket goes into a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    /// Not at all: a tar cannot hold a socket (Docker and BuildKit skip them too).
    Omitted,
    /// As a whiteout: a 0:0 character device is overlayfs' deletion.
    Whiteout,
    /// As itself.
    Node {
        kind: Kind,
        /// Major and minor numbers of a device.
        device: Option<(u32, u32)>,
    },
}

/// How the special file with this `st_mode` and `st_rdev` goes into a layer.
pub(crate) fn special(mode: u32, rdev: u64) -> Special {
    let device = || Some((rustix::fs::major(rdev), rustix::fs::minor(rdev)));
    match FileType::from_raw_mode(mode) {
        FileType::Socket => Special::Omitted,
        FileType::CharacterDevice if rdev == 0 => Special::Whiteout,
        FileType::CharacterDevice => Special::Node {
            kind: Kind::Char,
            device: device(),
        },
        FileType::BlockDevice => Special::Node {
            kind: Kind::Block,
            device: device(),
        },
        _ => Special::Node {
            kind: Kind::Fifo,
            device: None,
        },
    }
}

/// The header every entry starts from: its path, permission bits, owner and mtime (clamped to
/// the epoch when one is given), as a regular file with nothing after it.
pub(crate) fn entry_header(
    rel: &[u8],
    mode: u32,
    (uid, gid): (u32, u32),
    mtime: i64,
    source_date_epoch: Option<i64>,
) -> EntryHeader {
    EntryHeader {
        path: rel.to_vec(),
        kind: Kind::Regular,
        mode: mode & 0o7777,
        uid: uid.into(),
        gid: gid.into(),
        size: 0,
        mtime: source_date_epoch.map_or(mtime, |epoch| mtime.min(epoch)),
        link: None,
        device: None,
        xattrs: Vec::new(),
    }
}

/// The whiteout that deletes `rel` (a 0:0 character device in a diff).
pub(crate) fn whiteout_header(rel: &[u8]) -> EntryHeader {
    marker(whiteout_path(rel))
}

/// `dir/name` → `dir/.wh.name`.
fn whiteout_path(rel: &[u8]) -> Vec<u8> {
    let split = rel.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    let mut out = rel[..split].to_vec();
    out.extend_from_slice(WHITEOUT_PREFIX);
    out.extend_from_slice(&rel[split..]);
    out
}

/// An empty regular file with fixed metadata: a whiteout or an opaque marker.
fn marker(path: Vec<u8>) -> EntryHeader {
    EntryHeader {
        path,
        kind: Kind::Regular,
        mode: 0,
        uid: 0,
        gid: 0,
        size: 0,
        mtime: 0,
        link: None,
        device: None,
        xattrs: Vec::new(),
    }
}
