//! The last phase of `kiln build`: the solved layers become an image (committed to the
//! store), which is exported, pushed and tagged, its cache exported, and its id written out.
//! All or nothing: after a SIGINT/SIGTERM nothing more is committed, exported, pushed or
//! tagged, and the tag comes last, so an interrupted build never leaves a name behind.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use kiln_solver::registry::Registry;
use kiln_solver::secrets::Redactor;
use kiln_solver::solve::commit_image;
use kiln_solver::store::Store;

use crate::cli::BuildArgs;
use crate::commands::build_cache::export_cache;
use crate::commands::build_state::{Front, Solved};
use crate::commands::cache_spec::CacheSpec;
use crate::commands::{outputs, print_stdout, progress};

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
    let platform = kiln_llb::Platform::new(&config.os, &config.architecture, &config.variant);
    if cancelled() {
        return Ok(interrupted());
    }
    let image = commit_image(store, config, layers, front.epoch).map_err(anyhow::Error::msg)?;
    for spec in &args.outputs {
        if cancelled() {
            return Ok(interrupted());
        }
        outputs::export(
            store,
            solver_snapshots(store)?,
            spec,
            &image,
            layers,
            &args.tags,
        )?;
    }
    for spec in cache_to {
        if cancelled() {
            return Ok(interrupted());
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
    if args.push {
        if args.tags.is_empty() {
            bail!("--push needs a name to push to: add -t REGISTRY/REPOSITORY[:TAG]");
        }
        for tag in &args.tags {
            if cancelled() {
                return Ok(interrupted());
            }
            let started = Instant::now();
            let pushed = kiln_solver::registry::block_on(registry.push(
                store,
                &image.manifest_digest,
                tag,
            ))??;
            if !args.quiet {
                progress::note(&format!(
                    "pushed {} {} in {:.2}s",
                    pushed.reference,
                    pushed.digest,
                    started.elapsed().as_secs_f64()
                ));
            }
        }
    }
    if cancelled() {
        return Ok(interrupted());
    }
    let mut names = Vec::new();
    for tag in &args.tags {
        let full = store
            .images()
            .tag_image(tag, &image.manifest_digest, &platform, false)
            .with_context(|| format!("tagging {tag}"))?;
        names.push(kiln_solver::store::familiar_name(&full));
    }
    let id = image.manifest_digest.to_string();
    if let Some(path) = &args.iidfile {
        kiln_solver::export::write_atomic(path, id.as_bytes())?;
    }
    if let Some(path) = &args.metadata_file {
        let mut meta = serde_json::json!({
            "containerimage.digest": id,
            "containerimage.config.digest": image.config_digest.to_string(),
            "image.name": names.join(","),
        });
        redactor.redact_json(&mut meta);
        kiln_solver::export::write_atomic(path, serde_json::to_string_pretty(&meta)?.as_bytes())?;
    }
    if args.quiet {
        print_stdout(&format!("{id}\n"))?;
    } else {
        progress::summary(view, &names, &image, &solved.stats, started.elapsed());
    }
    Ok(ExitCode::SUCCESS)
}

fn solver_snapshots(store: &Store) -> Result<kiln_solver::snapshot::Snapshots> {
    kiln_solver::snapshot::Snapshots::open(store.root())
        .map_err(|e| anyhow::anyhow!("snapshots: {e}"))
}
