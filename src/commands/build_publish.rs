//! The last phase of `kiln build`: the solved layers become an image (committed to the
//! store), which is exported, pushed and tagged, its cache exported, and its id written out.
//! All or nothing: after a SIGINT/SIGTERM nothing more is committed, exported, pushed or
//! tagged, and the tag comes last, so an interrupted build never leaves a name behind.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use kiln_solver::output::Built;
use kiln_solver::registry::Registry;
use kiln_solver::secrets::Redactor;
use kiln_solver::solve::{CommittedImage, commit_image};
use kiln_solver::store::Store;

use crate::cli::BuildArgs;
use crate::commands::build_cache::export_cache;
use crate::commands::build_state::{Front, Solved};
use crate::commands::cache_spec::CacheSpec;
use crate::commands::outputs::{Outputs, Published};
use crate::commands::{print_stdout, progress};

fn cancelled() -> bool {
    kiln_solver::cancel::is_cancelled()
}

/// The exit of a build stopped by SIGINT/SIGTERM (what the shell reports for Ctrl-C).
fn interrupted() -> ExitCode {
    ExitCode::from(130)
}

/// Commits, exports, pushes and tags the image; writes `--iidfile` and `--metadata-file`;
/// prints the summary (or the id, with `-q`).
#[allow(clippy::too_many_arguments)] // the build's context, each piece needed here
pub(super) fn publish(
    args: &BuildArgs,
    store: &Store,
    registry: &Registry,
    front: &Front,
    solved: &Solved,
    cache_to: &[CacheSpec],
    outputs: &Outputs,
    redactor: &Redactor,
    view: progress::View,
    started: Instant,
) -> Result<ExitCode> {
    let layers = solved.result.layers();
    // A cache hit from an imported cache may have left a layer's blob remote; the image
    // needs them all before it is tagged.
    solved
        .remote_cache
        .ensure_local(store.content(), layers)
        .map_err(|e| anyhow::anyhow!("fetching layers from the imported cache: {e}"))?;
    let mut config = front.lowered.config.clone();
    for label in &args.labels {
        // docker build: `--label KEY` alone sets an empty value.
        let (k, v) = label.split_once('=').unwrap_or((label.as_str(), ""));
        config.config.labels.insert(k.to_owned(), v.to_owned());
    }
    if cancelled() {
        return Ok(interrupted());
    }
    let image = commit_image(store, config, layers, front.epoch)?;
    let built = Built {
        store,
        registry,
        manifest: &image.manifest_digest,
        layers,
        names: &args.tags,
    };
    let export_caches = || {
        for spec in cache_to {
            if cancelled() {
                return Ok(false);
            }
            export_cache(
                spec,
                store,
                registry,
                &solved.remote_cache,
                &solved.records,
                layers,
                args.quiet,
            )?;
        }
        Ok(true)
    };
    let Some(published) = outputs.run(&built, args.quiet, export_caches)? else {
        return Ok(interrupted());
    };
    let id = published.descriptor.digest().to_string();
    if let Some(path) = &args.iidfile {
        kiln_solver::export::write_atomic(path, id.as_bytes())?;
    }
    if let Some(path) = &args.metadata_file {
        let mut meta = metadata(&published, &image);
        redactor.redact_json(&mut meta);
        kiln_solver::export::write_atomic(path, serde_json::to_string_pretty(&meta)?.as_bytes())?;
    }
    let names = &published.names;
    if args.quiet {
        print_stdout(&format!("{id}\n"))?;
    } else {
        // The id shown is the one --iidfile names (an output may have rewritten the image).
        let shown = CommittedImage {
            manifest_digest: published.descriptor.digest().clone(),
            manifest_size: published.descriptor.size(),
            ..image
        };
        progress::summary(view, names, &shown, &solved.stats, started.elapsed());
    }
    Ok(ExitCode::SUCCESS)
}

/// `--metadata-file`, with buildx's keys.
fn metadata(published: &Published, image: &CommittedImage) -> serde_json::Value {
    let descriptor = &published.descriptor;
    // The config digest is the committed image's unless an output rewrote it in another
    // form, whose manifest names it; the form never changes the config itself.
    serde_json::json!({
        "containerimage.digest": descriptor.digest().to_string(),
        "containerimage.config.digest": image.config_digest.to_string(),
        "containerimage.descriptor": descriptor,
        "image.name": published.names.join(","),
        "buildx.build.ref": format!("kiln/local/{}", build_ref()),
    })
}

/// A unique id for this build (buildx names builds `builder/node/ref`).
fn build_ref() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}{:08x}", std::process::id())
}
