//! The build cache, below the scheduler (`solve`): every key recipe (`key`), the one record
//! type (`record`), the local index in the store's metadata (`index`), and the remote cache's
//! import and export (`remote`: `--cache-from`/`--cache-to`), and the compressed forms of
//! layers made at the edge (`compressed`).

pub mod compressed;
pub mod index;
pub mod key;
mod record;
pub mod remote;

pub use record::{CacheEntry, LayerRecord};
