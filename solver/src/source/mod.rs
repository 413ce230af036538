//! Sources: where a build's inputs come from before any step runs on them — a URL's content
//! ([`http`]), a base image from the store or its registry ([`image`]), a named local
//! directory ([`local`]). Each answers with what the scheduler keys and builds on; none knows
//! of the scheduler (the solver's `ops::source` step adapts them).

pub mod http;
pub mod image;
pub mod local;
