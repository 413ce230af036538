//! Every cache key the solver computes, in one place: the op's canonical encoding
//! (`kiln_llb::encode`) plus what the solver learns while running (a base's manifest, the
//! content a step reads).
//!
//! | result | key made of |
//! |---|---|
//! | scratch | the op's encoding |
//! | image or OCI-layout source | the op's encoding (reference, platform) and the manifest digest it resolved to |
//! | local directory (`context`, a named context) | `local:NAME`: its content enters the keys of the steps that read it |
//! | HTTP download | `http-content`: the file name, the content's digest and its mtime (never the URL: the same bytes from another URL are the same input) |
//! | file op (COPY, ADD, WORKDIR) and exec op (RUN) | the op's encoding, the base's key, and per copy source or bind mount what it reads ([`Read`]) |
//! | a step's definition key | `definition`, the op's encoding, the base's key and each source's key; looked up first, so a hit needs no source's content |
//! | a linked copy (`COPY --link`) | as a file op, with scratch's key for the base: its layer is rebased onto whatever base it lands on |
//!
//! Never part of a key: stage names, source positions, mtimes of context files, secrets and
//! cache-mount contents, proxy variables. A change to any recipe's bytes fails a pinned test
//! here (or in `kiln_llb::encode` for the ops) and must bump the schema tag.

use kiln_llb::{CacheKey, Encoder, Op, encode::encode_op};
use oci_spec::image::Digest;

/// What a step read from one of its inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The input as the key names it: its key, or `layers` when its content is what counts.
    pub source: String,
    /// The checksum of the paths read (absent for an empty filesystem).
    pub content: Option<Digest>,
}

impl Read {
    /// Paths read from a local directory: its key and the checksum of what was read.
    pub fn local(key: &CacheKey, content: Digest) -> Self {
        Read {
            source: key.0.clone(),
            content: Some(content),
        }
    }

    /// Anything read from an empty filesystem: only its key.
    pub fn empty(key: &CacheKey) -> Self {
        Read {
            source: key.0.clone(),
            content: None,
        }
    }

    /// Paths read from layers: by content alone, so an unchanged file of a rebuilt stage
    /// keeps its readers cached (BuildKit's content-based keys do the same).
    pub fn layers(content: Digest) -> Self {
        Read {
            source: "layers".to_owned(),
            content: Some(content),
        }
    }
}

/// A source with no inputs: scratch, or an image with the manifest it resolved to.
pub fn source(op: &Op, manifest: Option<&Digest>) -> CacheKey {
    let mut e = Encoder::new();
    encode_op(&mut e, op);
    if let Some(manifest) = manifest {
        e.str("manifest", manifest.as_ref());
    }
    e.finish()
}

/// A local directory: its name (its readers add its content).
pub fn local(name: &str) -> CacheKey {
    CacheKey(format!("local:{name}"))
}

/// A downloaded file, by what was downloaded.
pub fn http_content(filename: &str, digest: &str, mtime: i64) -> CacheKey {
    let mut e = Encoder::new();
    e.str("op", "http-content")
        .str("filename", filename)
        .str("digest", digest)
        .str("mtime", &mtime.to_string());
    e.finish()
}

/// The base a linked copy is keyed on ([`kiln_llb::FileOp::is_linked`]): scratch's key, so
/// the step's key holds nothing of its real base.
pub fn linked_base() -> CacheKey {
    source(&Op::Source(kiln_llb::Source::Scratch), None)
}

/// A file or exec op: the op, its base, and what it read from each source, in order.
pub fn step(op: &Op, base: &CacheKey, reads: &[Read]) -> CacheKey {
    let mut e = Encoder::new();
    encode_op(&mut e, op);
    e.str("base", &base.0);
    for read in reads {
        e.str("source", &read.source);
        if let Some(content) = &read.content {
            e.str("content", content.as_ref());
        }
    }
    e.finish()
}

/// A step's definition key: the op, its base and its sources' keys, no content.
pub fn definition(op: &Op, base: &CacheKey, sources: &[&CacheKey]) -> CacheKey {
    let mut e = Encoder::new();
    e.str("kind", "definition");
    encode_op(&mut e, op);
    e.str("base", &base.0);
    for source in sources {
        e.str("source", &source.0);
    }
    e.finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use kiln_llb::{CopyParams, FileAction, FileOp, OpId, Platform, Source};

    use super::*;

    /// One key per recipe, pinned under its name: a change to any recipe's bytes fails here.
    #[test]
    fn every_recipe_has_a_pinned_key() {
        let digest =
            |c: char| Digest::try_from(format!("sha256:{}", c.to_string().repeat(64))).unwrap();
        let image = Op::Source(Source::Image {
            reference: "busybox".into(),
            platform: Platform::parse("linux/amd64").unwrap(),
        });
        let copy = Op::File(FileOp {
            base: OpId(0),
            actions: vec![FileAction::Copy {
                source: OpId(1),
                params: CopyParams {
                    sources: vec!["a".into()],
                    dest: "/".into(),
                    chown: None,
                    chmod: None,
                    parents: false,
                    excludes: Vec::new(),
                    unpack_archives: false,
                    link: false,
                },
            }],
        });
        let run = Op::Exec(kiln_llb::ExecOp {
            base: OpId(0),
            args: vec!["/bin/sh".into(), "-c".into(), "make".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/src".into(),
            user: "1000".into(),
            network: kiln_llb::NetworkMode::None,
            mounts: Vec::new(),
            hostname: None,
            proxy_env: Vec::new(),
            platform: None,
        });
        let base = source(&image, Some(&digest('a')));
        let got = [
            ("scratch", source(&Op::Source(Source::Scratch), None)),
            ("image", base.clone()),
            ("local", local("context")),
            (
                "http",
                http_content("a.tar", digest('b').as_ref(), 1_700_000_000),
            ),
            (
                "step reading context, empty and layers",
                step(
                    &copy,
                    &base,
                    &[
                        Read::local(&local("context"), digest('c')),
                        Read::empty(&source(&Op::Source(Source::Scratch), None)),
                        Read::layers(digest('d')),
                    ],
                ),
            ),
            ("definition", definition(&copy, &base, &[&base])),
            ("exec step", step(&run, &base, &[])),
            (
                "linked copy",
                step(&copy, &linked_base(), &[Read::layers(digest('d'))]),
            ),
        ]
        .map(|(name, key)| format!("{name}: {}", key.0));
        assert_eq!(
            got,
            [
                "scratch: sha256:e86f6b7e538949e5ba0d87b5d89792de7c85d6843b0e5c8b3e5611aa23403580",
                "image: sha256:dec05e6139c9b3f135bc44b3c015e0f2c4e0c1114e75d48aa8349b9ae3b1ac91",
                "local: local:context",
                "http: sha256:1be3affb30a20057918aaaf2d1ff5a5b1d545f2389a9da1dddf2a7215302c8c5",
                "step reading context, empty and layers: sha256:7f5fad570f61cf0d9898b5ad1009b5e3af20da7b44fe57e452c2688a4ac8b221",
                "definition: sha256:c6b8b188f04e1b95c65dd7de99bee38fb980343292d85a434e9a7aa827f25e8e",
                "exec step: sha256:34c3cd5905a6af8f41b55a124458e2fc952c29d02ba06b3200e98a5ca1bbf41d",
                "linked copy: sha256:74fee5bc8d9d7d7a7d8893c778d8b1bcf7c9e027a52412aa3ef2a1ecde46196c",
            ]
        );
    }
}
