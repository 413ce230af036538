//! The build context: walking it, filtering it through `.dockerignore`, hashing what is left.
//!
//! It knows nothing of Dockerfiles: patterns (from the ignore file or `COPY --exclude`) and
//! COPY source paths arrive as plain strings.

pub mod dockerignore;
pub mod hash;

pub use hash::{Context, ContextError};
