//! The build context: walking it, filtering it through `.dockerignore`, hashing what is left.
//!
//! Only the `.dockerignore` matcher exists so far. It knows nothing of Dockerfiles: the
//! frontend hands over patterns (from the ignore file or `COPY --exclude`) as plain strings.

pub mod dockerignore;
