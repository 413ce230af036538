//! Names for temp files that no other thread or process will pick.
//!
//! Every durable write in kiln goes to a temp name first and is renamed into place, so the
//! final name only ever holds complete content.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// `<prefix>-<pid>-<counter>-<nanos>.tmp`: the pid separates processes sharing a directory,
/// the counter separates threads, the clock separates a pid reused after a crash.
pub(crate) fn unique_name(prefix: &str) -> String {
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}-{}-{count}-{nanos}.tmp", std::process::id())
}
