//! Layer tests: round trips, determinism, whiteouts, hostile tars and format sniffing.

mod archive;
mod determinism;
mod malicious;
mod pargz;
mod roundtrip;
mod whiteouts;

use std::path::Path;

use super::header::{END_OF_ARCHIVE, EntryHeader, Kind, padding, write_header};
use super::{Compression, LayerInfo, LayerOptions, write_layer};

/// Writes `root` as a layer into memory (fine for tests; real callers stream to a file).
pub(super) fn layer_bytes(
    root: &Path,
    compression: Compression,
    epoch: Option<i64>,
) -> (Vec<u8>, LayerInfo) {
    let mut out = Vec::new();
    let opts = LayerOptions {
        compression,
        source_date_epoch: epoch,
    };
    let info = write_layer(root, &mut out, &opts).unwrap();
    (out, info)
}

/// A hand-made tar entry for hostile archives.
pub(super) fn raw_entry(
    path: &str,
    kind: Kind,
    link: Option<&str>,
    content: &[u8],
) -> (EntryHeader, Vec<u8>) {
    (
        EntryHeader {
            path: path.as_bytes().to_vec(),
            kind,
            mode: if kind == Kind::Directory {
                0o755
            } else {
                0o644
            },
            uid: 0,
            gid: 0,
            size: content.len() as u64,
            mtime: 0,
            link: link.map(|l| l.as_bytes().to_vec()),
            device: None,
            xattrs: Vec::new(),
        },
        content.to_vec(),
    )
}

/// A plain tar of hand-made entries.
pub(super) fn raw_tar(entries: &[(EntryHeader, Vec<u8>)]) -> Vec<u8> {
    let mut tar = Vec::new();
    for (header, content) in entries {
        write_header(&mut tar, header).unwrap();
        tar.extend_from_slice(content);
        tar.extend_from_slice(padding(content.len() as u64));
    }
    tar.extend_from_slice(&END_OF_ARCHIVE);
    tar
}
