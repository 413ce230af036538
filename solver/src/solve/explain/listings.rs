//! The per-path listings of a record's reads, kept beside the record
//! (`<record>.listings/<algorithm>-<hex of the read's checksum>.json`) rather than inside it.
//! A listing is a function of its read's checksum (the checksum is taken over it), so a
//! rebuild whose reads did not change writes no listing and serialises none; inside the
//! record, a 100,000-file context's listing was ≈ 11 MB of JSON serialised and compared with
//! the last record on every build, a fully cached one included.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use super::{BuildRecord, RecordError, io_at, redacted_json};

/// The directory of `record`'s listings.
fn dir_of(record: &Path) -> PathBuf {
    record.with_extension("listings")
}

/// The file of the listing of a read with checksum `digest` (`sha256:…`).
fn file_name(digest: &str) -> String {
    format!("{}.json", digest.replace(':', "-"))
}

/// Writes each read's listing that is not there yet, then removes the listings no read of
/// `record` names (those of reads an earlier build made), so the directory holds one
/// build's listings. A concurrent build of the same Dockerfile may remove one this build
/// wrote: its explanation then names no paths for that read, nothing worse.
pub(super) fn save(
    record_path: &Path,
    record: &BuildRecord,
    redactor: &crate::secrets::Redactor,
) -> Result<(), RecordError> {
    let dir = dir_of(record_path);
    let mut named = HashSet::new();
    for read in record.steps.iter().flat_map(|s| &s.reads) {
        let name = file_name(&read.digest);
        let path = dir.join(&name);
        if !named.insert(name) || path.exists() {
            continue;
        }
        std::fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        let bytes = redacted_json(&read.files, redactor, &path)?;
        crate::export::write_atomic(&path, &bytes)?;
    }
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Dot files are other writers' temp files.
            if !name.starts_with('.') && !named.contains(&name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

/// Fills each read of `record` (loaded from `record_path`) with its listing; a read whose
/// listing is missing or unreadable keeps none (its explanation names no paths).
pub(super) fn load(record_path: &Path, record: &mut BuildRecord) {
    let dir = dir_of(record_path);
    for read in record.steps.iter_mut().flat_map(|s| &mut s.reads) {
        let path = dir.join(file_name(&read.digest));
        if let Some(files) = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<BTreeMap<String, String>>(&bytes).ok())
        {
            read.files = files;
        }
    }
}
