//! The build cache's own types, below the scheduler (`solve`) and the remote cache import and
//! export (`remote_cache`), which both use them without importing each other's.

pub mod key;
mod record;

pub use record::{CacheEntry, LayerRecord};
