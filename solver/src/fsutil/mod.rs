//! Filesystem primitives the rest of the solver shares: resolving paths inside a root the way
//! containerd does.

pub(crate) mod root_path;
pub(crate) mod tempdir;
