//! COPY and ADD without a container: the file engine that writes what one instruction adds.
//!
//! It reads sources from a source root (the build context directory, or the filesystem of
//! another stage or image) and writes into an [`Upper`]: the layer being made, with paths as
//! in the image (`/app/x` is `app/x`) — a [`PlannedLayer`] streamed into the layer tar with no
//! staging copy, or a diff directory on disk ([`DiskUpper`]) that the layer module archives.
//! The stage's current filesystem, when given, is only read: to find existing directories
//! and symlinks at the destination and the names `--chown` uses.
//!
//! The semantics are BuildKit's (Dockerfile frontend `dispatchCopy`, the file op backend and
//! fsutil's copier), with one deliberate refusal where BuildKit guesses: a source that climbs
//! out of its root, or a context symlink that leads out of the context, is an error naming it.
//! Several files copied to one destination that is not a directory are copied there one after
//! the other and the last one stays, as BuildKit does (the classic builder refused). It knows nothing of
//! Dockerfiles: the caller expands variables, makes the destination absolute against WORKDIR
//! (keeping a trailing `/`, and turning `.` into `<workdir>/` as BuildKit does), and decides
//! whether the instruction is ADD.

mod chmod;
mod chown;
mod dest;
mod error;
mod glob;
mod meta;
mod path;
mod place;
mod plan;
mod planned;
mod source;
mod tree;
mod upper;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use std::ffi::OsStr;
use std::path::Path;

pub use chmod::{ChmodSpec, ModeOp, parse_chmod};
pub use chown::resolve_chown;
pub(crate) use chown::{exec_user, passwd_by_uid, supplementary_gids};
pub use dest::Kind;
pub use error::CopyError;
pub use meta::{Attrs, Times};
pub use planned::PlannedLayer;
pub use source::SourceTree;
pub use upper::{DiskUpper, NewEntry, Upper};

use crate::context::dockerignore::PatternMatcher;
use dest::DestView;
use meta::{NewDir, Policy};
use place::Dest;
use tree::Filters;

/// One COPY or ADD with file sources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopySpec {
    /// The sources as written after the flags, variables expanded; relative to the source
    /// root (`/` is the root itself) and possibly holding wildcards (`*`, `?`, `[...]`).
    pub sources: Vec<String>,
    /// The destination, absolute; a trailing `/` means a directory.
    pub dest: String,
    /// `--chown=user[:group]`, numbers or names; copied entries otherwise keep their owner
    /// (from a stage) or become 0:0 (from the context).
    pub chown: Option<String>,
    /// `--chmod`, octal or symbolic; applies to the files and directories copied.
    pub chmod: Option<String>,
    /// `--parents`, with the `/./` pivot.
    pub parents: bool,
    /// `--exclude` patterns, with `.dockerignore` semantics, relative to each source.
    pub excludes: Vec<String>,
    /// Follow a symlink named directly as a source (or matched by a wildcard). Dockerfile
    /// COPY and ADD always do, so set it for them; when false the link itself is copied.
    /// Symlinks inside copied directories are always copied as symlinks.
    pub follow_symlinks_in_sources: bool,
    /// ADD: a local tar archive (plain, gzip, bzip2, xz or zstd) is extracted into the
    /// destination instead of copied.
    pub unpack_archives: bool,
}

/// What a copy wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Regular files written with their content.
    pub files: u64,
    /// Directories created from source directories.
    pub dirs: u64,
    /// Symlinks written.
    pub symlinks: u64,
    /// Hard links made to a file already written.
    pub hardlinks: u64,
    /// Devices, FIFOs and sockets.
    pub special: u64,
    /// Bytes of regular file content.
    pub bytes: u64,
    /// Archives extracted.
    pub archives: u64,
    /// Entries written from archives.
    pub archive_entries: u64,
}

/// Copies `spec`'s sources from `src` into the layer `upper`, as seen over `dest_rootfs`.
///
/// Every source is found, and the destination checked, before anything is written; a
/// failure after that leaves `upper` half written, to be thrown away. An ADD that extracts
/// an archive needs an upper on disk ([`DiskUpper`]).
pub fn copy(
    spec: &CopySpec,
    src: &SourceTree<'_>,
    dest_rootfs: Option<&Path>,
    upper: &mut dyn Upper,
) -> Result<CopyStats, CopyError> {
    let chown = spec
        .chown
        .as_deref()
        .map(|c| resolve_chown(c, dest_rootfs))
        .transpose()?;
    let chmod = spec.chmod.as_deref().map(parse_chmod).transpose()?;
    let exclude = exclude_matcher(&spec.excludes)?;
    // Every source is found before anything is written.
    let mut plans = Vec::with_capacity(spec.sources.len());
    for written in &spec.sources {
        plans.push(plan::plan(
            src,
            written,
            spec.parents,
            spec.follow_symlinks_in_sources,
        )?);
    }
    let unpack: Vec<Vec<bool>> = plans
        .iter()
        .map(|plan| {
            plan.matches
                .iter()
                .map(|m| {
                    spec.unpack_archives
                        && m.found.meta.is_file()
                        && crate::layer::is_archive(&m.found.abs).unwrap_or(false)
                })
                .collect()
        })
        .collect();
    let dest = Dest::parse(&spec.dest);
    let mut view = DestView::new(upper, dest_rootfs);
    let policy = Policy {
        chown,
        chmod: chmod.as_ref(),
        is_context: src.is_context,
    };
    let mut stats = CopyStats::default();
    for (plan, unpack) in plans.iter().zip(&unpack) {
        let filters = Filters {
            include: plan.include.as_ref(),
            exclude: exclude.as_ref(),
        };
        for (found, unpack) in plan.matches.iter().zip(unpack) {
            if *unpack {
                place::unpack(&mut view, &dest, found, policy, &mut stats)?;
            } else {
                place::copy_match(&mut view, &dest, src, found, policy, filters, &mut stats)?;
            }
        }
    }
    view.finish()?;
    Ok(stats)
}

/// Writes a heredoc source (`COPY <<name dest`): a file called `name`, mode 0644 before
/// `--chmod`, owned by 0:0 unless `--chown`, dated now, placed at `dest` as any copied file
/// would be (inside it when it is a directory).
pub fn write_inline_file(
    dest: &str,
    name: &str,
    data: &[u8],
    chown: Option<&str>,
    chmod: Option<&str>,
    dest_rootfs: Option<&Path>,
    upper: &mut dyn Upper,
) -> Result<(), CopyError> {
    let owner = chown.map(|c| resolve_chown(c, dest_rootfs)).transpose()?;
    let chmod = chmod.map(parse_chmod).transpose()?;
    let dest = Dest::parse(dest);
    let mut view = DestView::new(upper, dest_rootfs);
    let new_dir = NewDir::new(owner, chmod.as_ref());
    place::prepare(&mut view, &dest, new_dir)?;
    let (resolved, kind) = view.resolve(&dest.rel)?;
    let (parent, state, file_name) =
        place::file_slot(&mut view, &resolved, kind, OsStr::new(name), new_dir)?;
    tree::prepare_target(&mut view, &parent, state, &file_name)?;
    let (uid, gid) = owner.unwrap_or((0, 0));
    let attrs = Attrs {
        uid,
        gid,
        mode: chmod.map_or(0o644, |c| c.apply(0o644, false)),
        times: Times::now(),
    };
    view.upper().add(
        &parent.join(&file_name),
        NewEntry::Bytes(data),
        &attrs,
        None,
    )?;
    view.finish()
}

/// WORKDIR's directory: `path` (absolute) and its missing parents, made as BuildKit's
/// `MkdirAll` makes them — 0755, owned by `chown` resolved in the image (else root), dated
/// now — with the image's symlinks followed. Directories the image already has are left as
/// they are, so a WORKDIR that exists adds nothing.
pub fn make_dir(
    path: &str,
    chown: Option<&str>,
    dest_rootfs: Option<&Path>,
    upper: &mut dyn Upper,
) -> Result<(), CopyError> {
    let owner = chown
        .map(|c| resolve_chown(c, dest_rootfs))
        .transpose()?
        .unwrap_or((0, 0));
    let rel = Path::new(path.trim_start_matches('/'));
    let mut view = DestView::new(upper, dest_rootfs);
    if view.resolve(rel)?.1 == Some(Kind::Dir) {
        return Ok(());
    }
    view.mkdir_all(rel, NewDir::new(Some(owner), None))?;
    view.finish()
}

fn exclude_matcher(patterns: &[String]) -> Result<Option<PatternMatcher>, CopyError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    PatternMatcher::new(patterns)
        .map(Some)
        .map_err(|source| CopyError::BadPattern {
            patterns: patterns.to_vec(),
            source,
        })
}
