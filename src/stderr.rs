//! Everything kiln prints for people goes to standard error through here: written whole, and
//! never a reason to stop. A closed or broken stderr (`kiln build 2>&1 | head -1`) makes
//! progress fall silent; it must not panic (`eprintln!` does) nor decide the build's outcome.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write failed: later ones are skipped.
static BROKEN: AtomicBool = AtomicBool::new(false);

/// Writes `text` to standard error as it is.
pub(crate) fn write(text: &str) {
    if BROKEN.load(Ordering::Relaxed) {
        return;
    }
    let mut err = std::io::stderr().lock();
    if err
        .write_all(text.as_bytes())
        .and_then(|()| err.flush())
        .is_err()
    {
        BROKEN.store(true, Ordering::Relaxed);
    }
}

/// Writes `text` and a newline to standard error.
pub(crate) fn line(text: &str) {
    write(&format!("{text}\n"));
}
