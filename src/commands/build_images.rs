//! Base images for the frontend: from kiln's own store, for the platform each stage asks;
//! one the store lacks for that platform (or every one, with `--pull`) is pulled from its
//! registry first, once per build.

use std::time::Instant;

use kiln_frontend::lower::BaseImages;
use kiln_llb::{ImageConfig, Source};
use kiln_solver::registry::Registry;
use kiln_solver::store::Store;

use crate::commands::progress;

/// Base images come from kiln's own store, for the platform each stage asks; one the store
/// lacks for that platform (or every one, with `--pull`) is pulled from its registry first,
/// once per build.
pub(super) struct StoreImages<'a> {
    pub(super) store: &'a Store,
    pub(super) registry: &'a Registry,
    pub(super) always_pull: bool,
    pub(super) quiet: bool,
    pub(super) pulled: std::cell::RefCell<std::collections::BTreeSet<(String, kiln_llb::Platform)>>,
}

impl BaseImages for StoreImages<'_> {
    fn config(&self, source: &Source) -> Result<ImageConfig, String> {
        if let Source::Image {
            reference,
            platform,
        } = source
        {
            self.pull_if_needed(reference, platform)?;
        }
        let resolved =
            kiln_solver::image::resolve(self.store, source).map_err(|e| e.to_string())?;
        if let Some(warning) = &resolved.warning {
            progress::note(&format!("warning: {warning}"));
        }
        Ok(resolved.config)
    }
}

impl StoreImages<'_> {
    /// Pulls `reference` for `platform` unless the store has it (or this build pulled it).
    pub(super) fn pull_if_needed(
        &self,
        reference: &str,
        platform: &kiln_llb::Platform,
    ) -> Result<(), String> {
        let key = (reference.to_owned(), platform.clone());
        if self.pulled.borrow().contains(&key) {
            return Ok(());
        }
        let started = Instant::now();
        let pulled = kiln_solver::registry::block_on(self.registry.ensure_image(
            self.store,
            reference,
            platform,
            self.always_pull,
        ))
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        if let Some(pulled) = pulled
            && !self.quiet
        {
            progress::note(&format!(
                "pulled {} {} for {platform} ({} blobs downloaded) in {:.2}s",
                kiln_solver::store::familiar_name(&pulled.reference),
                pulled.manifest_digest,
                pulled.downloaded,
                started.elapsed().as_secs_f64()
            ));
        }
        self.pulled.borrow_mut().insert(key);
        Ok(())
    }
}
