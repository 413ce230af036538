//! Everything kiln prints for people goes to standard error through here: written whole, and
//! never a reason to stop. A closed or broken stderr (`kiln build 2>&1 | head -1`) makes
//! progress fall silent; it must not panic (`eprintln!` does) nor decide the build's outcome.

use std::io::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use kiln_solver::secrets::Redactor;

/// Set once a write failed: later ones are skipped.
static BROKEN: AtomicBool = AtomicBool::new(false);
/// The build's secrets: masked in everything written here, whatever path the text took.
static REDACTOR: OnceLock<Redactor> = OnceLock::new();

/// Masks `redactor`'s secrets in everything written from now on.
pub(crate) fn set_redactor(redactor: Redactor) {
    let _ = REDACTOR.set(redactor);
}

/// Writes `text` to standard error, secrets masked.
pub(crate) fn write(text: &str) {
    if BROKEN.load(Ordering::Relaxed) {
        return;
    }
    let text = match REDACTOR.get() {
        Some(r) => r.redact(text),
        None => std::borrow::Cow::Borrowed(text),
    };
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
