//! Images as the world writes them: manifests and indexes read tolerantly ([`manifest`]), the
//! store consulted by name and platform ([`local`]), and a manifest turned into what a build
//! starts from — its config (normalized, its platform checked) and its layers ([`source`]).
//!
//! This module reads the content store and the tag table; it never touches the network
//! (pulling on demand is [`crate::registry::ensure_image`]'s job, which builds on it).

mod error;
pub mod layout;
pub mod local;
pub mod manifest;
pub mod source;

pub use error::ResolveError;
pub use local::{Lookup, lookup};
pub use source::{ImageLayer, ResolvedImage, from_manifest, resolve};
