//! The overlay mount's option string, kept under the kernel's one-page limit.
//!
//! `mount(2)` hands overlay its options in a single page, so a long chain of layers with long
//! absolute paths does not fit. Three forms are tried, shortest-effort first:
//! 1. absolute paths;
//! 2. paths relative to the deepest directory all layers share, after the child `chdir`s
//!    there (the parent's working directory is untouched: only the child moves);
//! 3. each lower bind-mounted (in the child's private mount namespace) at `l/<n>` inside the
//!    run's temp dir and named relatively from there: about 5 bytes a layer, so overlay's own
//!    500-layer limit is reached first.
//!
//! Options always turn off overlay features that would make the upperdir something other
//! than a plain diff (`redirect_dir`, `metacopy`) or tie it to one lower set (`index`), and
//! ask for `volatile` (no syncfs of the whole upper filesystem at unmount), which the child
//! drops when the kernel is older than 5.10.

use std::path::{Component, Path, PathBuf};

/// The kernel copies at most a page of mount options, NUL included.
const OPTION_LIMIT: usize = 4095;

/// How the child mounts the overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OverlayPlan {
    /// Where the child `chdir`s before mounting, when paths are relative.
    pub chdir: Option<PathBuf>,
    /// Lower directories the child bind-mounts (source, mount point) before mounting.
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// The option string.
    pub data: String,
    /// The option string without `volatile`, for kernels that reject it.
    pub data_fallback: Option<String>,
}

/// Plans the overlay mount. `lowers` are top-most first (the caller always passes at least
/// the mount-point skeleton). `scratch_dir` is the run's temp dir, home of the bind form's
/// `l/<n>` mount points (which the caller creates).
pub(super) fn plan(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    scratch_dir: &Path,
) -> Result<OverlayPlan, PlanError> {
    if lowers.is_empty() {
        return Err(PlanError::NoLowers);
    }
    let absolute = options(lowers, upper, work);
    if fits(&absolute) {
        return Ok(finish(None, Vec::new(), &absolute));
    }

    let mut all: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
    all.push(upper);
    all.push(work);
    if let Some(base) = common_ancestor(&all) {
        let rel = |p: &Path| {
            p.strip_prefix(&base)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| p.to_path_buf())
        };
        let rel_lowers: Vec<PathBuf> = lowers.iter().map(|p| rel(p)).collect();
        let relative = options(&rel_lowers, &rel(upper), &rel(work));
        if fits(&relative) {
            return Ok(finish(Some(base), Vec::new(), &relative));
        }
    }

    let binds: Vec<(PathBuf, PathBuf)> = lowers
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), scratch_dir.join("l").join(i.to_string())))
        .collect();
    let short: Vec<PathBuf> = (0..lowers.len())
        .map(|i| Path::new("l").join(i.to_string()))
        .collect();
    let bound = options(&short, upper, work);
    if fits(&bound) {
        return Ok(finish(Some(scratch_dir.to_path_buf()), binds, &bound));
    }
    Err(PlanError::TooLong {
        layers: lowers.len(),
        upper: upper.to_path_buf(),
    })
}

/// Why no overlay mount can be planned.
#[derive(Debug, thiserror::Error)]
pub(super) enum PlanError {
    /// Nothing to put under the upper directory.
    #[error("overlay needs at least one lower directory")]
    NoLowers,
    /// The options exceed the page `mount(2)` takes, in every form tried.
    #[error(
        "overlay options for {layers} layers do not fit in a page even with bind-mounted lowers \
         (upperdir {})",
        upper.display()
    )]
    TooLong {
        /// How many lower directories.
        layers: usize,
        /// The upper directory.
        upper: PathBuf,
    },
}

fn finish(chdir: Option<PathBuf>, binds: Vec<(PathBuf, PathBuf)>, base: &str) -> OverlayPlan {
    OverlayPlan {
        chdir,
        binds,
        data: format!("{base},volatile"),
        data_fallback: Some(base.to_owned()),
    }
}

fn fits(base: &str) -> bool {
    base.len() + ",volatile".len() <= OPTION_LIMIT
}

fn options(lowers: &[PathBuf], upper: &Path, work: &Path) -> String {
    let lower: Vec<String> = lowers.iter().map(|p| escape(p, true)).collect();
    let diff_options = crate::fsutil::userns::overlay_diff_options();
    format!(
        "lowerdir={},upperdir={},workdir={},{diff_options}",
        lower.join(":"),
        escape(upper, false),
        escape(work, false)
    )
}

/// Overlay splits options at `,` and lowerdir at `:`; both (and `\`) are backslash-escaped.
fn escape(path: &Path, in_lowerdir: bool) -> String {
    let text = path.to_string_lossy();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\\' || c == ',' || (in_lowerdir && c == ':') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The deepest directory containing all `paths` (absolute), unless that is `/`.
fn common_ancestor(paths: &[&Path]) -> Option<PathBuf> {
    let first = paths.first()?;
    let mut common: Vec<Component<'_>> = first.components().collect();
    for p in &paths[1..] {
        let n = common
            .iter()
            .zip(p.components())
            .take_while(|(a, b)| *a == b)
            .count();
        common.truncate(n);
    }
    // Keep at least one component below the root per path: a layer cannot be "." here.
    let min_len = paths.iter().map(|p| p.components().count()).min()?;
    common.truncate(min_len.saturating_sub(1));
    let base: PathBuf = common.iter().collect();
    if base.as_os_str().is_empty() || base == Path::new("/") {
        None
    } else {
        Some(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_chains_use_absolute_paths() {
        let p = plan(
            &[PathBuf::from("/s/a"), PathBuf::from("/s/b")],
            Path::new("/s/u"),
            Path::new("/s/w"),
            Path::new("/t"),
        )
        .unwrap();
        assert_eq!(p.chdir, None);
        assert!(
            p.data
                .starts_with("lowerdir=/s/a:/s/b,upperdir=/s/u,workdir=/s/w,index=off")
        );
        assert!(p.data.ends_with(",volatile"));
    }

    #[test]
    fn no_lower_is_an_error() {
        assert!(plan(&[], Path::new("/s/u"), Path::new("/s/w"), Path::new("/t")).is_err());
    }

    #[test]
    fn long_chains_go_relative_then_bound() {
        let base = format!("/var/lib/kiln/{}", "x".repeat(40));
        let lowers: Vec<PathBuf> = (0..50)
            .map(|i| PathBuf::from(format!("{base}/snapshots/{i:064}/fs")))
            .collect();
        let upper = PathBuf::from(format!("{base}/snapshots/up/fs"));
        let work = PathBuf::from(format!("{base}/snapshots/up/work"));
        let p = plan(&lowers, &upper, &work, Path::new("/t")).unwrap();
        assert_eq!(p.chdir, Some(PathBuf::from(format!("{base}/snapshots"))));
        assert!(p.binds.is_empty());
        assert!(p.data.len() <= OPTION_LIMIT);

        let lowers: Vec<PathBuf> = (0..400)
            .map(|i| PathBuf::from(format!("{base}/snapshots/{i:064}/fs")))
            .collect();
        let p = plan(&lowers, &upper, &work, Path::new("/t")).unwrap();
        assert_eq!(p.chdir, Some(PathBuf::from("/t")));
        assert_eq!(p.binds.len(), 400);
        assert_eq!(p.binds[3].1, PathBuf::from("/t/l/3"));
        assert!(p.data.starts_with("lowerdir=l/0:l/1:"));
        assert!(p.data.len() <= OPTION_LIMIT);
    }

    #[test]
    fn separators_are_escaped() {
        let p = plan(
            &[PathBuf::from("/a:b,c")],
            Path::new("/u,1"),
            Path::new("/w"),
            Path::new("/t"),
        )
        .unwrap();
        assert!(p.data.starts_with(r"lowerdir=/a\:b\,c,upperdir=/u\,1,"));
    }
}
