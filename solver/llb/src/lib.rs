//! kiln-llb: the op graph that is the only contract between kiln's frontend and its solver.
//!
//! It owns the op types (Source, Exec, File/Copy, Merge…), their edges, a source map that is
//! never part of any digest, and the canonical encoding cache keys are computed from. It must not
//! know about Dockerfile syntax, the filesystem, the network or the store.
//!
//! The ops themselves land with `kiln build` (issue 3); this crate exists now so the workspace
//! boundaries in DESIGN.md are visible from the first commit.
