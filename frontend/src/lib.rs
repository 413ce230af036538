//! kiln-frontend: turns Dockerfile text into typed, expanded instructions and a stage graph.
//!
//! It owns parser directives, escapes, continuations and heredocs (→ an AST with spans), typed
//! instructions with their flags, shell-word expansion with ARG/ENV scoping, the stage graph
//! with `--target` selection, and diagnostics that point at file:line:col. It must not touch
//! the filesystem, the network or the image store: everything it needs arrives as arguments
//! (base image configs through the `BaseImages` callback), and its only internal dependency
//! is `kiln-llb`, the ops it lowers to.

pub mod diagnostics;
pub mod instructions;
mod json_doc;
pub mod lower;
pub mod outline;
pub mod parser;
pub mod scope;
pub mod shell;
pub mod span;
pub mod stages;

pub use json_doc::{JsonDocument, Located, json_document};
