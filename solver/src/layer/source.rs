//! What one file of a diff tree becomes in a layer: its header(s), and whether content follows.
//!
//! The overlay conventions are decided here: a 0:0 character device is a deletion (and may be
//! hardlinked, since overlayfs shares one whiteout inode), a directory marked opaque gets a
//! `.wh..wh..opq` child. Whiteout entries carry fixed metadata (0:0, mode 0, mtime 0), as
//! containerd writes them, so that they never depend on when or by whom the deletion happened.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

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
    if file_type.is_socket() {
        return Ok(None);
    }
    if file_type.is_char_device() && meta.rdev() == 0 {
        return Ok(Some(Described {
            header: whiteout_header(rel),
            opaque_marker: None,
            has_content: false,
        }));
    }

    let mtime = match source_date_epoch {
        Some(epoch) => meta.mtime().min(epoch),
        None => meta.mtime(),
    };
    let mut header = EntryHeader {
        path: rel.to_vec(),
        kind: Kind::Regular,
        mode: meta.mode() & 0o7777,
        uid: meta.uid().into(),
        gid: meta.gid().into(),
        size: 0,
        mtime,
        link: None,
        device: None,
        xattrs: Vec::new(),
    };

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
    } else if file_type.is_char_device() || file_type.is_block_device() {
        header.kind = if file_type.is_char_device() {
            Kind::Char
        } else {
            Kind::Block
        };
        header.device = Some((
            rustix::fs::major(meta.rdev()),
            rustix::fs::minor(meta.rdev()),
        ));
    } else if file_type.is_fifo() {
        header.kind = Kind::Fifo;
    }
    Ok(Some(Described {
        header,
        opaque_marker,
        has_content,
    }))
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
