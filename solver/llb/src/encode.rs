//! Canonical encoding for cache keys: a schema tag, then length-prefixed, named fields in a
//! fixed order; maps sorted. Never `Debug`, std `Hash`, map iteration order, mtimes, stage
//! names or source positions. Changing what is encoded bumps [`SCHEMA`].

use sha2::{Digest as _, Sha256};

use crate::op::{CopyParams, ExecMount, ExecOp, FileAction, Op, Platform, Source};

/// The version tag every key starts with.
pub const SCHEMA: &str = "kiln.cachekey.v1";

/// The encoded name of a cache mount's sharing mode. Spelled out rather than taken from
/// `Debug`, so renaming a variant can never change a key; the spellings are the ones
/// `kiln.cachekey.v1` has always used.
fn sharing_name(sharing: crate::CacheSharing) -> &'static str {
    match sharing {
        crate::CacheSharing::Shared => "Shared",
        crate::CacheSharing::Private => "Private",
        crate::CacheSharing::Locked => "Locked",
    }
}

/// A cache key: `sha256:<hex>` of a canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CacheKey(pub String);

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Builds a canonical byte string and hashes it.
#[derive(Debug, Clone)]
pub struct Encoder {
    hasher: Sha256,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// Starts a key with the schema tag.
    pub fn new() -> Self {
        let mut e = Encoder {
            hasher: Sha256::new(),
        };
        e.bytes("schema", SCHEMA.as_bytes());
        e
    }

    /// A named, length-prefixed field.
    pub fn bytes(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.hasher.update((name.len() as u64).to_be_bytes());
        self.hasher.update(name.as_bytes());
        self.hasher.update((value.len() as u64).to_be_bytes());
        self.hasher.update(value);
        self
    }

    /// A string field.
    pub fn str(&mut self, name: &str, value: &str) -> &mut Self {
        self.bytes(name, value.as_bytes())
    }

    /// An optional string: absent and empty differ.
    pub fn opt(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.bytes(name, &[1]).str(name, v),
            None => self.bytes(name, &[0]),
        }
    }

    /// A boolean.
    pub fn flag(&mut self, name: &str, value: bool) -> &mut Self {
        self.bytes(name, &[u8::from(value)])
    }

    /// A list of strings, count first.
    pub fn list(&mut self, name: &str, values: &[String]) -> &mut Self {
        self.bytes(name, &(values.len() as u64).to_be_bytes());
        for v in values {
            self.str(name, v);
        }
        self
    }

    /// The key.
    pub fn finish(self) -> CacheKey {
        CacheKey(format!("sha256:{}", hex::encode(self.hasher.finalize())))
    }
}

fn platform(e: &mut Encoder, p: &Platform) {
    e.str("os", &p.os)
        .str("arch", &p.architecture)
        .str("variant", &p.variant);
}

fn copy_params(e: &mut Encoder, c: &CopyParams) {
    e.list("sources", &c.sources)
        .str("dest", &c.dest)
        .opt("chown", c.chown.as_deref())
        .opt("chmod", c.chmod.as_deref())
        .flag("parents", c.parents)
        .list("excludes", &c.excludes)
        .flag("unpack", c.unpack_archives)
        .flag("link", c.link);
}

/// Encodes an op's own parameters (not its inputs' keys: the solver adds those, and the
/// content digests of what the op reads).
pub fn encode_op(e: &mut Encoder, op: &Op) {
    match op {
        Op::Source(s) => match s {
            Source::Scratch => {
                e.str("op", "scratch");
            }
            Source::Image {
                reference,
                platform: p,
            } => {
                e.str("op", "image").str("ref", reference);
                platform(e, p);
            }
            Source::OciLayout {
                path,
                selector,
                platform: p,
            } => {
                e.str("op", "oci-layout")
                    .str("path", path)
                    .opt("selector", selector.as_deref());
                platform(e, p);
            }
            Source::Local { name } => {
                e.str("op", "local").str("name", name);
            }
            Source::Http {
                url,
                checksum,
                filename,
            } => {
                e.str("op", "http")
                    .str("url", url)
                    .opt("checksum", checksum.as_deref())
                    .str("filename", filename);
            }
        },
        Op::Exec(x) => encode_exec(e, x),
        Op::File(f) => {
            e.str("op", "file")
                .bytes("actions", &(f.actions.len() as u64).to_be_bytes());
            for a in &f.actions {
                match a {
                    FileAction::Copy { params, .. } => {
                        e.str("action", "copy");
                        copy_params(e, params);
                    }
                    FileAction::Mkfile {
                        dest,
                        name,
                        data,
                        chown,
                        chmod,
                    } => {
                        e.str("action", "mkfile")
                            .str("dest", dest)
                            .str("name", name)
                            .bytes("data", data)
                            .opt("chown", chown.as_deref())
                            .opt("chmod", chmod.as_deref());
                    }
                    FileAction::Mkdir { path, chown } => {
                        e.str("action", "mkdir")
                            .str("path", path)
                            .opt("chown", chown.as_deref());
                    }
                }
            }
        }
    }
}

/// RUN: the command, env, cwd, user, network and mounts. Secret and cache-mount contents are
/// deliberately not part of the key (only their ids and targets); bind sources add their
/// content in the solver.
fn encode_exec(e: &mut Encoder, x: &ExecOp) {
    e.str("op", "exec")
        .list("args", &x.args)
        .list("env", &x.env)
        .str("cwd", &x.cwd)
        .str("user", &x.user)
        .str(
            "network",
            match x.network {
                crate::op::NetworkMode::Host => "host",
                crate::op::NetworkMode::None => "none",
            },
        )
        .bytes("mounts", &(x.mounts.len() as u64).to_be_bytes());
    // Only when set, so the keys of steps without one stay as they were.
    if let Some(hostname) = &x.hostname {
        e.str("hostname", hostname);
    }
    for m in &x.mounts {
        match m {
            ExecMount::Bind {
                selector,
                target,
                readonly,
                ..
            } => {
                e.str("mount", "bind")
                    .str("selector", selector)
                    .str("target", target)
                    .flag("readonly", *readonly);
            }
            ExecMount::Cache {
                id,
                target,
                sharing,
                mode,
                uid,
                gid,
                readonly,
                seed,
            } => {
                e.str("mount", "cache")
                    .str("id", id)
                    .str("target", target)
                    .str("sharing", sharing_name(*sharing))
                    .opt("mode", mode.map(|m| format!("{m:o}")).as_deref())
                    .opt("uid", uid.map(|u| u.to_string()).as_deref())
                    .opt("gid", gid.map(|g| g.to_string()).as_deref())
                    .flag("readonly", *readonly)
                    .opt("seed", seed.as_ref().map(|(_, p)| p.as_str()));
            }
            ExecMount::Tmpfs { target, size } => {
                e.str("mount", "tmpfs")
                    .str("target", target)
                    .opt("size", size.map(|s| s.to_string()).as_deref());
            }
            ExecMount::Secret {
                id,
                target,
                env,
                required,
                mode,
                uid,
                gid,
            } => {
                e.str("mount", "secret")
                    .str("id", id)
                    .opt("target", target.as_deref())
                    .opt("env", env.as_deref())
                    .flag("required", *required)
                    .str("mode", &format!("{mode:o}"))
                    .str("uid", &uid.to_string())
                    .str("gid", &gid.to_string());
            }
            ExecMount::Ssh {
                id,
                target,
                required,
                mode,
                uid,
                gid,
            } => {
                e.str("mount", "ssh")
                    .str("id", id)
                    .str("target", target)
                    .flag("required", *required)
                    .str("mode", &format!("{mode:o}"))
                    .str("uid", &uid.to_string())
                    .str("gid", &gid.to_string());
            }
            ExecMount::Inline { target, data, mode } => {
                e.str("mount", "inline")
                    .str("target", target)
                    .bytes("data", data)
                    .str("mode", &format!("{mode:o}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cache_sharing_keeps_its_v1_spelling() {
        use crate::CacheSharing::{Locked, Private, Shared};
        let names: Vec<&str> = [Shared, Private, Locked].map(super::sharing_name).to_vec();
        assert_eq!(names, ["Shared", "Private", "Locked"]);
    }

    use super::*;

    /// Pinned keys (recomputed independently: sha256 over u64-BE-length-prefixed name and
    /// value pairs). If one changes, the encoding changed and SCHEMA must be bumped.
    #[test]
    fn known_keys_are_stable() {
        let mut e = Encoder::new();
        encode_op(&mut e, &Op::Source(Source::Scratch));
        assert_eq!(
            e.finish().0,
            "sha256:61fed1b3f5db40be14dc4841fffb2d912b84569a98914c814044e880263e46c0"
        );
    }

    #[test]
    fn http_sources_differ_by_url_checksum_and_filename() {
        let key = |url: &str, checksum: Option<&str>, filename: &str| {
            let mut e = Encoder::new();
            encode_op(
                &mut e,
                &Op::Source(Source::Http {
                    url: url.to_owned(),
                    checksum: checksum.map(str::to_owned),
                    filename: filename.to_owned(),
                }),
            );
            e.finish()
        };
        let a = key("https://h/a", None, "a");
        assert_eq!(a, key("https://h/a", None, "a"));
        assert_ne!(a, key("https://h/b", None, "a"));
        assert_ne!(a, key("https://h/a", Some("sha256:00"), "a"));
        assert_ne!(a, key("https://h/a", None, "b"));
    }

    #[test]
    fn absent_and_empty_differ() {
        let mut a = Encoder::new();
        a.opt("x", None);
        let mut b = Encoder::new();
        b.opt("x", Some(""));
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn field_boundaries_matter() {
        let mut a = Encoder::new();
        a.str("a", "bc").str("d", "");
        let mut b = Encoder::new();
        b.str("a", "b").str("cd", "");
        assert_ne!(a.finish(), b.finish());
    }
}
