//! kiln-llb: the op graph that is the only contract between kiln's frontend and its solver.
//!
//! It owns the op types (sources, file operations, exec), their edges, a source map
//! that is never part of any digest, the image config the frontend computes, and the canonical
//! encoding cache keys are computed from. It must not know about Dockerfile syntax, the
//! filesystem, the network or the store.

pub mod encode;
pub mod image;
pub mod op;
pub mod platform;
pub mod time;

pub use encode::{CacheKey, Encoder, SCHEMA};
pub use image::{Healthcheck, History, ImageConfig};
pub use op::{
    CacheSharing, CopyParams, Definition, ExecMount, ExecOp, FileAction, FileOp, NetworkMode, Op,
    OpId, Platform, Source, SourceLocation,
};
