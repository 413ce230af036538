//! kiln-solver: runs an op graph from `kiln-llb` and produces layers, configs and images.
//!
//! It owns the scheduler, cache keys and the cache index, the content store, snapshots and
//! layer diffs, executors, build contexts and `.dockerignore`, image sources, the registry
//! client and the exporters. It must never see Dockerfile syntax: everything it knows arrives
//! through `kiln-llb`.

pub mod cache;
pub mod cancel;
pub mod context;
pub mod copy;
pub mod executor;
pub mod export;
pub(crate) mod fsutil;
pub mod gc;
pub mod image;
pub mod layer;
pub mod output;
pub(crate) mod parallel;
pub mod progress;
pub mod reclaim;
pub mod registry;
pub(crate) mod retry;
pub mod secrets;
pub mod snapshot;
pub mod solve;
pub mod source;
pub mod store;
pub(crate) mod tls;
