//! Scratch directories for tests: unique under the system temp dir, removed on drop.

use std::path::{Path, PathBuf};

/// A directory that exists for the life of a test.
#[derive(Debug)]
pub(crate) struct TestDir {
    path: PathBuf,
}

impl TestDir {
    /// Creates `<tmp>/kiln-test-<name>-<unique>`.
    pub(crate) fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(crate::fsutil::owner::temp_name(&format!("test-{name}")));
        std::fs::create_dir_all(&path).unwrap();
        Self { path }
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
