//! Base image configs for the frontend, from the build's image source (which pulls what the
//! store lacks, once per build); pulls and platform warnings are noted as they happen.

use kiln_frontend::lower::{BaseImageError, BaseImages};
use kiln_llb::{ImageConfig, Source};
use kiln_solver::source::image::ImageSource;

use crate::commands::progress;

/// The frontend's view of the build's [`ImageSource`].
pub(super) struct FrontendImages<'a>(pub(super) &'a ImageSource);

impl BaseImages for FrontendImages<'_> {
    fn config(&self, source: &Source) -> Result<ImageConfig, BaseImageError> {
        let (resolved, pulled) = self.0.resolve(source)?;
        if let Some(pulled) = pulled {
            progress::note(&pulled.to_string());
        }
        if let Some(warning) = &resolved.warning {
            progress::note(&format!("warning: {warning}"));
        }
        Ok(resolved.config)
    }
}
