//! Base images as a source: resolved from kiln's store for the platform each use asks; one
//! the store lacks for that platform (or every one, with `--pull`) is pulled from its registry
//! first — once per build, whoever asks first (the frontend for a `FROM`'s config, the solver
//! for a `COPY --from=<image>`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kiln_llb::{Platform, Source};

use crate::image::{ResolveError, ResolvedImage};
use crate::registry::{PulledImage, Registry, RegistryError};
use crate::store::Store;

/// Why an image source could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum ImageSourceError {
    /// Pulling it failed.
    #[error("pulling {reference}: {source}")]
    Pull {
        /// The reference as written.
        reference: String,
        /// Why.
        #[source]
        source: RegistryError,
    },
    /// It is not usable from the store.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
}

/// A pull this build made, for the note that reports it.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// What was pulled.
    pub image: PulledImage,
    /// The platform asked for.
    pub platform: Platform,
    /// How long it took.
    pub took: Duration,
}

impl std::fmt::Display for Pulled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pulled {} {} for {} ({} blobs downloaded) in {:.2}s",
            crate::store::familiar_name(&self.image.reference),
            self.image.manifest_digest,
            self.platform,
            self.image.downloaded,
            self.took.as_secs_f64()
        )
    }
}

/// Whether one (reference, platform) is made sure of; locked while it is being pulled.
type Ensured = Arc<Mutex<bool>>;

/// The image source of one build.
#[derive(Debug)]
pub struct ImageSource {
    store: Store,
    registry: Registry,
    always_pull: bool,
    /// Per (reference, platform): whether this build has made sure of it. One lock each, so
    /// two stages asking for one base pull it once while other bases pull beside it.
    ensured: Mutex<BTreeMap<(String, Platform), Ensured>>,
}

impl ImageSource {
    /// Images from `store`, pulled through `registry` when missing (always, with
    /// `always_pull`).
    pub fn new(store: &Store, registry: &Registry, always_pull: bool) -> Self {
        ImageSource {
            store: store.clone(),
            registry: registry.clone(),
            always_pull,
            ensured: Mutex::default(),
        }
    }

    /// Makes sure the store holds `reference` for `platform`, pulling it unless this build
    /// did so already; what was pulled, when anything was.
    pub fn ensure(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> Result<Option<Pulled>, ImageSourceError> {
        let entry = self
            .ensured
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((reference.to_owned(), platform.clone()))
            .or_default()
            .clone();
        let mut done = entry.lock().unwrap_or_else(PoisonError::into_inner);
        if *done {
            return Ok(None);
        }
        let pull_error = |source| ImageSourceError::Pull {
            reference: reference.to_owned(),
            source,
        };
        let started = Instant::now();
        let pulled = crate::registry::block_on(self.registry.ensure_image(
            &self.store,
            reference,
            platform,
            self.always_pull,
        ))
        .map_err(pull_error)?
        .map_err(pull_error)?;
        *done = true;
        Ok(pulled.map(|image| Pulled {
            image,
            platform: platform.clone(),
            took: started.elapsed(),
        }))
    }

    /// Resolves `source` from the store, made sure of first when it names a registry image.
    pub fn resolve(
        &self,
        source: &Source,
    ) -> Result<(ResolvedImage, Option<Pulled>), ImageSourceError> {
        let pulled = match source {
            Source::Image {
                reference,
                platform,
            } => self.ensure(reference, platform)?,
            _ => None,
        };
        Ok((crate::image::resolve(&self.store, source)?, pulled))
    }
}
