//! `http-cache/` under the store root: finished downloads in `files/<id>/` (the id covers
//! content digest, name and mtime, so a directory there is always complete), and a record per
//! URL and file name in `urls/<hash>.json` with the `ETag` of the last download.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::error::{HttpError, io_failure};
use crate::context::Context;

/// What one download left behind, per URL and file name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Record {
    pub(super) url: String,
    pub(super) filename: String,
    /// `sha256:…` of the content.
    pub(super) digest: String,
    pub(super) etag: Option<String>,
    pub(super) last_modified: Option<String>,
    /// Seconds since the epoch given to the file.
    pub(super) mtime: i64,
}

/// The download cache of one store.
pub(super) struct HttpCache {
    root: PathBuf,
}

/// Sha256 of length-prefixed fields: a file name that cannot collide across field borders.
fn fields_hash(fields: &[&str]) -> String {
    let mut h = Sha256::new();
    for field in fields {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    hex::encode(h.finalize())
}

impl HttpCache {
    pub(super) fn new(store_root: &Path) -> Self {
        HttpCache {
            root: store_root.join("http-cache"),
        }
    }

    /// Where the record of `url` downloaded as `filename` is kept.
    pub(super) fn record_path(&self, url: &str, filename: &str) -> PathBuf {
        self.root
            .join("urls")
            .join(format!("{}.json", fields_hash(&[url, filename])))
    }

    /// The directory a download with this content, name and mtime lives in.
    fn dir(&self, rec: &Record) -> PathBuf {
        let mtime = rec.mtime.to_string();
        self.root
            .join("files")
            .join(fields_hash(&[&rec.digest, &rec.filename, &mtime]))
    }

    /// The stored file of `rec`.
    pub(super) fn file(&self, rec: &Record, filename: &str) -> PathBuf {
        self.dir(rec).join(filename)
    }

    /// The record for a URL whose file is still stored; anything unreadable counts as none.
    pub(super) fn usable_record(&self, path: &Path, filename: &str) -> Option<Record> {
        let rec: Record = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
        (rec.filename == filename && self.file(&rec, filename).is_file()).then_some(rec)
    }

    /// Moves a finished download directory into place and records it. Another build that
    /// stored the same content first wins; ours is dropped with the temp dir. `shown` is the
    /// URL as errors name it.
    pub(super) fn store(
        &self,
        tmp_dir: &Path,
        rec: &Record,
        record_path: &Path,
        shown: &str,
    ) -> Result<(), HttpError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e| io_failure(shown, &path, e)
        };
        let files = self.root.join("files");
        fs::create_dir_all(&files).map_err(io(&files))?;
        let dest = self.dir(rec);
        if let Err(e) = fs::rename(tmp_dir, &dest)
            && !dest.is_dir()
        {
            return Err(io(&dest)(e));
        }
        let urls = self.root.join("urls");
        fs::create_dir_all(&urls).map_err(io(&urls))?;
        let bytes = serde_json::to_vec(rec).map_err(|e| io(record_path)(e.into()))?;
        let tmp = urls.join(crate::fsutil::owner::temp_name("record"));
        fs::write(&tmp, bytes).map_err(io(&tmp))?;
        fs::rename(&tmp, record_path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io(record_path)(e)
        })
    }

    /// The stored directory of `rec`, as a context to copy from.
    pub(super) fn context(&self, rec: &Record, shown: &str) -> Result<Context, HttpError> {
        let dir = self.dir(rec);
        // A `.dockerignore` must not filter the one file: the download may be one itself.
        let context = if rec.filename == ".dockerignore" {
            let none = self.root.join("files").join("no");
            let ignore = self.root.join("files").join("no.dockerignore");
            if !ignore.is_file() {
                fs::write(&ignore, b"").map_err(|e| io_failure(shown, &ignore, e))?;
            }
            Context::open(&dir, Some(&none))
        } else {
            Context::open(&dir, None)
        };
        context.map_err(|source| HttpError::Context {
            url: shown.to_owned(),
            source,
        })
    }
}
