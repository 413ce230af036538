//! The last phase of `kiln build`: the solved layers become an image (committed to the
//! store), which is exported, pushed and tagged, its cache exported, and its id written out.
//! All or nothing: after a SIGINT/SIGTERM nothing more is committed, exported, pushed or
//! tagged, and the tag comes last, so an interrupted build never leaves a name behind.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use kiln_solver::output::{Built, PlatformImage};
use kiln_solver::solve::{CommittedImage, commit_image};

use crate::commands::build_cache::export_cache;
use crate::commands::build_config::BuildConfig;
use crate::commands::build_state::{Front, PlatformBuild, Solved};
use crate::commands::outputs::Published;
use crate::commands::{print_stdout, progress};

fn cancelled() -> bool {
    kiln_solver::cancel::is_cancelled()
}

/// The exit of a build stopped by SIGINT/SIGTERM (what the shell reports for Ctrl-C).
fn interrupted() -> ExitCode {
    ExitCode::from(130)
}

/// Commits each platform's image, then exports, pushes and tags the image (a multi-platform
/// build's index); writes `--iidfile` and `--metadata-file`; prints the summary (or the id,
/// with `-q`).
pub(super) fn publish(
    config: &BuildConfig,
    built: &[PlatformBuild],
    started: Instant,
) -> Result<ExitCode> {
    let (store, registry) = (&config.store, &config.registry);
    let mut images = Vec::with_capacity(built.len());
    let mut committed = Vec::with_capacity(built.len());
    for one in built {
        let (image, layers) = commit(config, &one.front, &one.solved)?;
        if cancelled() {
            return Ok(interrupted());
        }
        images.push(PlatformImage {
            manifest: image.manifest_digest.clone(),
            layers,
            platform: one.platform.clone(),
        });
        committed.push(image);
    }
    let out = Built {
        store,
        registry,
        images: &images,
        names: &config.tags,
    };
    // Every platform's records go to the cache (BuildKit's cache holds each platform's), a
    // step the platforms shared once.
    let mut seen = std::collections::HashSet::new();
    let records: Vec<_> = built
        .iter()
        .flat_map(|b| &b.solved.records)
        .filter(|r| seen.insert(r.key.clone()))
        .cloned()
        .collect();
    let final_layers: Vec<_> = images.iter().flat_map(|i| i.layers.clone()).collect();
    let remote_cache = &built[0].solved.remote_cache;
    let export_caches = || {
        for spec in &config.cache_to {
            if cancelled() {
                return Ok(false);
            }
            export_cache(
                spec,
                store,
                registry,
                remote_cache,
                &records,
                &final_layers,
                config.quiet,
            )?;
        }
        Ok(true)
    };
    let Some(published) = config.outputs.run(&out, config.quiet, export_caches)? else {
        return Ok(interrupted());
    };
    let id = published.descriptor.digest().to_string();
    if let Some(path) = &config.iidfile {
        kiln_solver::export::write_atomic(path, id.as_bytes())?;
    }
    let image = &committed[0];
    if let Some(path) = &config.metadata_file {
        let mut meta = metadata(&published, image, built.len() > 1);
        config.redactor.redact_json(&mut meta);
        kiln_solver::export::write_atomic(path, serde_json::to_string_pretty(&meta)?.as_bytes())?;
    }
    let names = &published.names;
    if config.quiet {
        print_stdout(&format!("{id}\n"))?;
    } else {
        // The id shown is the one --iidfile names (an output may have rewritten the image).
        let shown = CommittedImage {
            manifest_digest: published.descriptor.digest().clone(),
            manifest_size: published.descriptor.size(),
            ..image.clone()
        };
        let mut stats = progress::Stats::default();
        for b in built {
            stats.run += b.solved.stats.run;
            stats.cached += b.solved.stats.cached;
        }
        progress::summary(config.view, names, &shown, &stats, started.elapsed());
    }
    Ok(ExitCode::SUCCESS)
}

/// Commits one platform's image to the store: its layers fetched from an imported cache when
/// still remote, as the plain tars the store keeps, under the frontend's config and the
/// build's labels.
fn commit(
    config: &BuildConfig,
    front: &Front,
    solved: &Solved,
) -> Result<(CommittedImage, Vec<kiln_solver::solve::LayerRecord>)> {
    let store = &config.store;
    // A cache hit from an imported cache may have left a layer's blob remote; the image
    // needs them all before it is tagged, and as the plain tars the store keeps (so it is
    // the image the store that exported the cache committed).
    solved
        .remote_cache
        .ensure_local(store.content(), solved.result.layers())
        .map_err(|e| anyhow::anyhow!("fetching layers from the imported cache: {e}"))?;
    let layers = kiln_solver::cache::compressed::plain_own_layers(store, solved.result.layers())
        .map_err(|e| anyhow::anyhow!("layers from the imported cache: {e}"))?;
    let mut image_config = front.lowered.config.clone();
    for (k, v) in &config.labels {
        image_config.config.labels.insert(k.clone(), v.clone());
    }
    let image = commit_image(store, image_config, &layers, front.epoch)?;
    Ok((image, layers))
}

/// `--metadata-file`, with buildx's keys.
fn metadata(published: &Published, image: &CommittedImage, multi: bool) -> serde_json::Value {
    let descriptor = &published.descriptor;
    if multi {
        // buildx leaves the config digest out for an index: there is one per platform.
        return serde_json::json!({
            "containerimage.digest": descriptor.digest().to_string(),
            "containerimage.descriptor": descriptor,
            "image.name": published.names.join(","),
            "buildx.build.ref": format!("kiln/local/{}", build_ref()),
        });
    }
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
