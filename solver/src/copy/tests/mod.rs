//! End-to-end tests of the copy engine: each builds a small source tree (and, where it
//! matters, a destination filesystem) in scratch directories, runs a COPY or ADD, and checks
//! the diff directory written.

mod add;
mod attrs;
mod dest;
mod inline;
mod planned;
mod sources;

use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;

use super::test_support::Scratch;
use super::{CopyError, CopySpec, CopyStats, DiskUpper, PlannedLayer, SourceTree, Upper, copy};
use crate::layer::{Compression, LayerOptions, write_layer};

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
    copy_both(
        spec,
        &context(ctx.path()),
        rootfs.map(Scratch::path),
        out.path(),
    )
}

thread_local! {
    /// The planned twin of each diff directory a test writes (tests may write one twice);
    /// `None` once an archive was extracted into the directory, which only a disk upper does.
    static PLANS: RefCell<HashMap<PathBuf, Option<PlannedLayer>>> = RefCell::new(HashMap::new());
}

/// Runs `write` against the diff directory `out` (which the test then reads) and against
/// `out`'s planned twin, and checks that both ways agree: both fail, or both succeed and
/// the layer tar of the directory is byte for byte the planned layer's. Times within the
/// last minute are clamped, as directories made "now" may fall on either side of a second.
fn both<T: std::fmt::Debug + PartialEq>(
    out: &Path,
    write: impl Fn(&mut dyn Upper) -> Result<T, CopyError>,
) -> Result<T, CopyError> {
    let on_disk = write(&mut DiskUpper::new(out));
    PLANS.with(|plans| {
        let mut plans = plans.borrow_mut();
        let Some(plan) = plans
            .entry(out.to_owned())
            .or_insert_with(|| Some(PlannedLayer::new()))
        else {
            return;
        };
        let planned = write(plan);
        match (&on_disk, &planned) {
            (Ok(disk), Ok(plan_result)) => assert_eq!(disk, plan_result, "what the copy reports"),
            (Err(disk), Err(plan_err)) => assert_eq!(
                std::mem::discriminant(disk),
                std::mem::discriminant(plan_err),
                "{disk} / {plan_err}"
            ),
            _ => panic!("on disk: {on_disk:?}; planned: {planned:?}"),
        }
        if on_disk.is_ok() {
            let epoch = kiln_llb::time::now() - 60;
            let opts = LayerOptions {
                compression: Compression::None,
                source_date_epoch: Some(epoch),
            };
            let mut disk_tar = Vec::new();
            write_layer(out, &mut disk_tar, &opts).unwrap();
            let mut plan_tar = Vec::new();
            plan.write_layer(&mut plan_tar, &opts).unwrap();
            assert!(
                disk_tar == plan_tar,
                "the planned layer differs from the diff directory's:\n{}\n---\n{}",
                tar_listing(&disk_tar),
                tar_listing(&plan_tar)
            );
        }
    });
    on_disk
}

/// A COPY run both ways (see [`both`]); an ADD that extracts archives only on disk.
fn copy_both(
    spec: &CopySpec,
    tree: &SourceTree<'_>,
    rootfs: Option<&Path>,
    out: &Path,
) -> Result<CopyStats, CopyError> {
    if spec.unpack_archives {
        // The twin no longer matches the directory: it is not compared again.
        PLANS.with(|plans| plans.borrow_mut().insert(out.to_owned(), None));
        return copy(spec, tree, rootfs, &mut DiskUpper::new(out));
    }
    both(out, |upper| copy(spec, tree, rootfs, upper))
}

/// Every entry of a tar as `path type mode uid:gid mtime size link xattrs`, for a readable diff.
fn tar_listing(tar: &[u8]) -> String {
    let mut archive = tar::Archive::new(tar);
    let mut lines = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let h = entry.header().clone();
        let xattrs: Vec<String> = match entry.pax_extensions().unwrap() {
            Some(pax) => pax
                .map(|p| p.unwrap().key().unwrap_or("?").to_owned())
                .collect(),
            None => Vec::new(),
        };
        lines.push(format!(
            "{} {:?} {:o} {}:{} {} {} {:?} {xattrs:?}",
            String::from_utf8_lossy(&entry.path_bytes()),
            h.entry_type(),
            h.mode().unwrap(),
            h.uid().unwrap(),
            h.gid().unwrap(),
            h.mtime().unwrap(),
            h.size().unwrap(),
            h.link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned()),
        ));
    }
    lines.join("\n")
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
