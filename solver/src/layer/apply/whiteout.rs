//! `.wh.` entries: applied to what lower layers left in the destination, or converted to the
//! form overlayfs reads from a lowerdir.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use super::create;
use super::{Applier, WhiteoutMode};
use crate::fsutil::root_path::Missing;
use crate::layer::LayerError;
use crate::layer::xattr;

/// Prefix of every whiteout name (the one spelling, shared with the layer writer).
pub(super) const PREFIX: &[u8] = crate::layer::source::WHITEOUT_PREFIX;
/// The opaque-directory marker.
const OPAQUE: &[u8] = crate::layer::source::OPAQUE_MARKER;
/// aufs' own bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`), which Docker skips too.
const META_PREFIX: &[u8] = b".wh..wh.";

impl Applier<'_> {
    /// Handles entry `name` = `parents/last`, where `last` starts with `.wh.`.
    pub(super) fn whiteout(
        &mut self,
        parents: &[&[u8]],
        last: &[u8],
        name: &str,
    ) -> Result<(), LayerError> {
        let opaque = last == OPAQUE;
        if !opaque && last.starts_with(META_PREFIX) {
            return Ok(());
        }
        let target = &last[PREFIX.len()..];
        if !opaque && (target.is_empty() || target == b"." || target == b"..") {
            return Err(LayerError::UnsafePath {
                entry: name.to_owned(),
                reason: "whiteout of no file",
            });
        }
        let missing = match self.opts.whiteouts {
            // Nothing to delete under a directory that does not exist.
            WhiteoutMode::Apply => Missing::Stop,
            WhiteoutMode::Overlay | WhiteoutMode::Keep => Missing::Create,
        };
        let Some(parent) = self.resolve(parents, missing, name)? else {
            return Ok(());
        };
        let fail = |path: &std::path::Path, source| LayerError::Extract {
            entry: name.to_owned(),
            path: path.to_path_buf(),
            source,
        };
        match (self.opts.whiteouts, opaque) {
            (WhiteoutMode::Apply, true) => {
                let children = std::fs::read_dir(&parent.abs).map_err(|e| fail(&parent.abs, e))?;
                for child in children {
                    let child = child.map_err(|e| fail(&parent.abs, e))?;
                    if self.created.contains(&parent.rel.join(child.file_name())) {
                        continue;
                    }
                    create::remove_any(&child.path()).map_err(|e| fail(&child.path(), e))?;
                }
            }
            (WhiteoutMode::Apply, false) => {
                let path = parent.abs.join(OsStr::from_bytes(target));
                create::remove_any(&path).map_err(|e| fail(&path, e))?;
            }
            (WhiteoutMode::Overlay, true) => {
                xattr::set_opaque(&parent.abs).map_err(|e| fail(&parent.abs, e))?;
            }
            (WhiteoutMode::Overlay, false) => {
                let path = parent.abs.join(OsStr::from_bytes(target));
                create::overlay_whiteout(&path).map_err(|e| fail(&path, e))?;
            }
            (WhiteoutMode::Keep, _) => {}
        }
        Ok(())
    }
}
