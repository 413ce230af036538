//! Flattening overlay-form layers into one directory, as overlayfs would show them: layers
//! applied bottom-up, whiteouts deleting, opaque directories hiding what lies below.

use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use super::entry::{
    CopyResult, Links, apply_metadata, copy_dir, copy_node, fail, is_opaque, is_whiteout,
    remove_any, set_times,
};

/// Merges `lowers` (top-most first, as overlay's lowerdir) into the existing empty `dest`.
pub(super) fn merge(lowers: &[PathBuf], dest: &Path) -> CopyResult<()> {
    let mut dir_times = Vec::new();
    for layer in lowers.iter().rev() {
        apply_layer(layer, dest, &mut dir_times)?;
    }
    // Last: creating entries in a directory moves its mtime. Bottom-up order, so the
    // top-most layer's times win; a directory a higher layer removed again is skipped.
    for (path, meta) in &dir_times {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            set_times(path, meta)?;
        }
    }
    Ok(())
}

fn apply_layer(
    layer: &Path,
    dest: &Path,
    dir_times: &mut Vec<(PathBuf, std::fs::Metadata)>,
) -> CopyResult<()> {
    let mut links = Links::default();
    // Parents come before children, so by the time `a/b` is handled `dest/a` is a real
    // directory (a symlink there was replaced when this layer's `a` was): nothing below
    // `dest` is reached through a link.
    for entry in WalkDir::new(layer).follow_links(false) {
        let entry = entry.map_err(|e| format!("reading layer {}: {e}", layer.display()))?;
        let src = entry.path();
        let rel = src
            .strip_prefix(layer)
            .map_err(|_| format!("walking {}", src.display()))?;
        let dst = dest.join(rel);
        let meta = entry
            .metadata()
            .map_err(|e| format!("reading {}: {e}", src.display()))?;
        if entry.depth() == 0 {
            apply_metadata(src, &meta, dest)?;
            dir_times.push((dest.to_path_buf(), meta));
            continue;
        }
        if is_whiteout(&meta) {
            remove_any(&dst)?;
            continue;
        }
        if meta.is_dir() {
            match std::fs::symlink_metadata(&dst) {
                Ok(existing) if existing.is_dir() => {
                    if is_opaque(src) {
                        clear_dir(&dst)?;
                    }
                    apply_metadata(src, &meta, &dst)?;
                }
                Ok(_) => {
                    remove_any(&dst)?;
                    copy_dir(src, &meta, &dst)?;
                }
                Err(_) => copy_dir(src, &meta, &dst)?,
            }
            dir_times.push((dst, meta));
        } else {
            remove_any(&dst)?;
            copy_node(src, &meta, &dst, &mut links)?;
        }
    }
    Ok(())
}

fn clear_dir(dir: &Path) -> CopyResult<()> {
    for entry in std::fs::read_dir(dir).map_err(fail("reading", dir))? {
        let entry = entry.map_err(fail("reading", dir))?;
        remove_any(&entry.path())?;
    }
    Ok(())
}
