//! End-to-end tests of the copy engine: each builds a small source tree (and, where it
//! matters, a destination filesystem) in scratch directories, runs a COPY or ADD, and checks
//! the diff directory written.

mod add;
mod attrs;
mod dest;
mod inline;
mod sources;

use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::test_support::Scratch;
use super::{CopyError, CopySpec, CopyStats, SourceTree, copy};

/// A COPY of `sources` to `dest`, following directly named symlinks as Dockerfile COPY does.
fn spec(sources: &[&str], dest: &str) -> CopySpec {
    CopySpec {
        sources: sources.iter().map(|s| (*s).to_owned()).collect(),
        dest: dest.to_owned(),
        follow_symlinks_in_sources: true,
        ..CopySpec::default()
    }
}

fn context(root: &Path) -> SourceTree<'_> {
    SourceTree {
        root,
        ignore: None,
        ignore_has_exceptions: false,
        is_context: true,
    }
}

/// Runs `spec` from the context `ctx` into `out`, over `rootfs` if given.
fn run(
    spec: &CopySpec,
    ctx: &Scratch,
    rootfs: Option<&Scratch>,
    out: &Scratch,
) -> Result<CopyStats, CopyError> {
    copy(
        spec,
        &context(ctx.path()),
        rootfs.map(Scratch::path),
        out.path(),
    )
}

/// Every entry below `root` as `path kind mode uid:gid`, symlinks with their target, sorted.
fn listing(root: &Scratch) -> Vec<String> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(root.path()).min_depth(1) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(root.path()).unwrap();
        let meta = entry.path().symlink_metadata().unwrap();
        let kind = if meta.is_dir() {
            "dir".to_owned()
        } else if meta.file_type().is_symlink() {
            format!("link->{}", fs::read_link(entry.path()).unwrap().display())
        } else {
            "file".to_owned()
        };
        let mode = if meta.file_type().is_symlink() {
            String::new()
        } else {
            format!(" {:o}", meta.mode() & 0o7777)
        };
        out.push(format!(
            "{} {kind}{mode} {}:{}",
            rel.display(),
            meta.uid(),
            meta.gid()
        ));
    }
    out.sort();
    out
}

fn lstat(root: &Scratch, rel: &str) -> Metadata {
    root.join(rel).symlink_metadata().unwrap()
}

fn read(root: &Scratch, rel: &str) -> String {
    fs::read_to_string(root.join(rel)).unwrap()
}

/// Sets an entry's owner and mtime, which the tests run as root to be able to do.
fn own(root: &Scratch, rel: &str, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(root.join(rel), Some(uid), Some(gid)).unwrap();
}

fn set_mtime(root: &Scratch, rel: &str, seconds: i64) {
    let times = super::meta::Times::seconds(seconds, seconds);
    super::meta::set_times(&root.join(rel), times).unwrap();
}
