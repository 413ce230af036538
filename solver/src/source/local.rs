//! Named local directories as a source: the build context (`context`) and each
//! `--build-context NAME=DIR`, opened by the caller (their `.dockerignore` read) and keyed by
//! name alone — a step that reads one adds the content it reads to its own key.

use std::collections::BTreeMap;

use kiln_llb::CacheKey;

use crate::context::Context;

/// A local directory the build was not given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no build context named {name:?}")]
pub struct UnknownContext {
    /// The name asked for.
    pub name: String,
}

/// The directory named `name` among `contexts`, with its key.
pub(crate) fn named(
    contexts: &BTreeMap<String, Context>,
    name: &str,
) -> Result<(CacheKey, Context), UnknownContext> {
    let context = contexts.get(name).ok_or_else(|| UnknownContext {
        name: name.to_owned(),
    })?;
    Ok((crate::cache::key::local(name), context.clone()))
}
