//! Where the store lives when `--root` is not given.
//!
//! `KILN_ROOT` wins; otherwise root uses `/var/lib/kiln` (like `/var/lib/docker`) and everyone
//! else `$XDG_DATA_HOME/kiln`, falling back to `~/.local/share/kiln` as the XDG spec says.

use std::ffi::OsString;
use std::path::PathBuf;

use super::StoreError;

/// The system-wide store used by root.
const SYSTEM_ROOT: &str = "/var/lib/kiln";

/// The default store root for this process, from the environment and the effective uid.
pub fn default_root() -> Result<PathBuf, StoreError> {
    // A rootless kiln is root in the user namespace it re-executed itself in, but its store
    // is the user's.
    let rootless =
        std::env::var_os(crate::fsutil::userns::REEXEC_ENV).is_some_and(|mode| mode == "user");
    choose_root(
        std::env::var_os("KILN_ROOT"),
        rustix::process::geteuid().is_root() && !rootless,
        std::env::var_os("XDG_DATA_HOME"),
        std::env::var_os("HOME"),
    )
}

/// The decision itself, apart from the environment, so it can be tested.
fn choose_root(
    kiln_root: Option<OsString>,
    is_root: bool,
    xdg_data_home: Option<OsString>,
    home: Option<OsString>,
) -> Result<PathBuf, StoreError> {
    // Empty variables count as unset, as shells leave them that way.
    let set = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(root) = set(kiln_root) {
        return Ok(root);
    }
    if is_root {
        return Ok(PathBuf::from(SYSTEM_ROOT));
    }
    // The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    if let Some(data) = set(xdg_data_home).filter(|p| p.is_absolute()) {
        return Ok(data.join("kiln"));
    }
    match set(home) {
        Some(home) => Ok(home.join(".local/share/kiln")),
        None => Err(StoreError::NoDefaultRoot),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn precedence() {
        let pick = |k, r, x, h| choose_root(k, r, x, h).ok();
        assert_eq!(
            pick(os("/k"), true, os("/x"), os("/h")),
            Some(PathBuf::from("/k"))
        );
        assert_eq!(
            pick(None, true, os("/x"), os("/h")),
            Some(PathBuf::from("/var/lib/kiln"))
        );
        assert_eq!(
            pick(os(""), false, os("/x"), os("/h")),
            Some(PathBuf::from("/x/kiln"))
        );
        assert_eq!(
            pick(None, false, os("rel"), os("/h")),
            Some(PathBuf::from("/h/.local/share/kiln"))
        );
        assert_eq!(
            pick(None, false, None, os("/h")),
            Some(PathBuf::from("/h/.local/share/kiln"))
        );
        assert!(matches!(
            choose_root(None, false, None, None),
            Err(StoreError::NoDefaultRoot)
        ));
    }
}
