//! `--cache-from` and `--cache-to`: importing the caches a build may use, exporting the
//! records it made.

use std::time::Instant;

use anyhow::Result;
use kiln_solver::cache::remote::{CacheConfig, CacheRecord, RemoteCaches, select_records};
use kiln_solver::registry::Registry;
use kiln_solver::store::Store;

use crate::commands::build_config::BuildConfig;
use crate::commands::cache_spec::{CacheLocation, CacheSpec};
use crate::commands::progress;

/// Imports every `--cache-from`; like BuildKit, one that cannot be read is a warning.
pub(super) fn import_caches(config: &BuildConfig) -> Result<RemoteCaches> {
    let (store, registry) = (&config.store, &config.registry);
    let mut caches = RemoteCaches::default();
    for (spec, parsed) in &config.cache_from {
        let imported = match &parsed.location {
            CacheLocation::Registry(r) => kiln_solver::registry::block_on(
                kiln_solver::cache::remote::import_registry(registry, store, r),
            )
            .map_err(anyhow::Error::from)
            .and_then(|r| r.map_err(anyhow::Error::from)),
            CacheLocation::Local(dir) => {
                kiln_solver::cache::remote::import_local(dir).map_err(anyhow::Error::from)
            }
        };
        match imported {
            Ok(cache) => {
                if !config.quiet {
                    progress::note(&format!("importing cache {spec}: {} records", cache.len()));
                }
                caches.push(cache);
            }
            Err(e) => progress::note(&format!("warning: --cache-from {spec}: {e}")),
        }
    }
    Ok(caches)
}

/// Writes the build's cache records to one `--cache-to` destination.
pub(super) fn export_cache(
    spec: &CacheSpec,
    store: &Store,
    registry: &Registry,
    remote_cache: &RemoteCaches,
    records: &[CacheRecord],
    final_layers: &[kiln_solver::solve::LayerRecord],
    quiet: bool,
) -> Result<()> {
    let started = Instant::now();
    let records = select_records(records, spec.mode, final_layers);
    let layers: Vec<_> = records.iter().map(|r| r.layer.clone()).collect();
    remote_cache
        .ensure_local(store.content(), &layers)
        .map_err(|e| anyhow::anyhow!("exporting the cache: {e}"))?;
    let count = records.len();
    let config = CacheConfig::at_the_edge(store, records)
        .map_err(|e| anyhow::anyhow!("exporting the cache: {e}"))?;
    let (what, digest) = match &spec.location {
        CacheLocation::Registry(r) => (
            r.clone(),
            kiln_solver::registry::block_on(kiln_solver::cache::remote::export_registry(
                registry, store, r, &config,
            ))??,
        ),
        CacheLocation::Local(dir) => (
            dir.display().to_string(),
            kiln_solver::cache::remote::export_local(store, dir, &config)
                .map_err(|e| anyhow::anyhow!("--cache-to {}: {e}", dir.display()))?,
        ),
    };
    if !quiet {
        progress::note(&format!(
            "exported cache to {what}: {count} records, {digest} in {:.2}s",
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(())
}
