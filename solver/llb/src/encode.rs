//! Canonical encoding for cache keys: a schema tag, then length-prefixed, named fields in a
//! fixed order; maps sorted. Never `Debug`, std `Hash`, map iteration order, mtimes, stage
//! names or source positions. Changing what is encoded bumps [`SCHEMA`].

use sha2::{Digest as _, Sha256};

use crate::op::{CopyParams, ExecMount, ExecOp, FileAction, Op, Platform, Source};

/// The version tag every key starts with. Bumped when what an op's key stands for changes,
/// not only its bytes: v2 because file ops now give different layers for the same
/// parameters (an octal --chmod on the parents a copy makes, ADD archives and COPY --from
/// sources through an image's symlinks, ADD's destination ignoring --chmod) and exec keys no
/// longer hold proxy variables; a v1 entry must not answer for them.
pub const SCHEMA: &str = "kiln.cachekey.v2";

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
            "sha256:e86f6b7e538949e5ba0d87b5d89792de7c85d6843b0e5c8b3e5611aa23403580"
        );
    }

    /// One representative op of every kind and variant, each key pinned under its name: a
    /// change to any op's bytes fails here naming that op (then bump SCHEMA).
    #[test]
    fn every_op_kind_has_a_pinned_key() {
        let amd64 = Platform::parse("linux/amd64").unwrap();
        let copy = |unpack: bool| CopyParams {
            sources: vec!["src/".into(), "*.toml".into()],
            dest: "/app/".into(),
            chown: Some("1000:1000".into()),
            chmod: Some("0644".into()),
            parents: false,
            excludes: vec!["target".into()],
            unpack_archives: unpack,
            link: false,
        };
        let exec = |mounts: Vec<ExecMount>, hostname: Option<&str>| {
            Op::Exec(ExecOp {
                base: crate::OpId(0),
                args: vec!["/bin/sh".into(), "-c".into(), "make".into()],
                env: vec!["PATH=/bin".into()],
                cwd: "/src".into(),
                user: "1000".into(),
                network: crate::op::NetworkMode::None,
                mounts,
                hostname: hostname.map(str::to_owned),
                proxy_env: vec!["HTTP_PROXY=http://p:3128".into()],
                platform: None,
            })
        };
        let file = |action: FileAction| {
            Op::File(crate::op::FileOp {
                base: crate::OpId(0),
                actions: vec![action],
            })
        };
        let cases: Vec<(&str, Op)> = vec![
            ("source scratch", Op::Source(Source::Scratch)),
            (
                "source image",
                Op::Source(Source::Image {
                    reference: "busybox:1.36".into(),
                    platform: amd64.clone(),
                }),
            ),
            (
                "source oci-layout",
                Op::Source(Source::OciLayout {
                    path: "/layouts/app".into(),
                    selector: Some("v1".into()),
                    platform: amd64.clone(),
                }),
            ),
            (
                "source local",
                Op::Source(Source::Local {
                    name: "context".into(),
                }),
            ),
            (
                "source http",
                Op::Source(Source::Http {
                    url: "https://example.com/a.tar".into(),
                    checksum: Some(format!("sha256:{}", "0".repeat(64))),
                    filename: "a.tar".into(),
                }),
            ),
            (
                "file copy",
                file(FileAction::Copy {
                    source: crate::OpId(1),
                    params: copy(false),
                }),
            ),
            (
                "file add",
                file(FileAction::Copy {
                    source: crate::OpId(1),
                    params: copy(true),
                }),
            ),
            (
                "file mkfile",
                file(FileAction::Mkfile {
                    dest: "/etc/".into(),
                    name: "conf".into(),
                    data: b"k=v\n".to_vec(),
                    chown: None,
                    chmod: Some("600".into()),
                }),
            ),
            (
                "file mkdir",
                file(FileAction::Mkdir {
                    path: "/work".into(),
                    chown: Some("app".into()),
                }),
            ),
            ("exec plain", exec(Vec::new(), None)),
            ("exec hostname", exec(Vec::new(), Some("foo"))),
            (
                "exec bind",
                exec(
                    vec![ExecMount::Bind {
                        source: crate::OpId(1),
                        selector: "/src".into(),
                        target: "/m".into(),
                        readonly: true,
                    }],
                    None,
                ),
            ),
            (
                "exec cache",
                exec(
                    vec![ExecMount::Cache {
                        id: "go".into(),
                        target: "/root/.cache".into(),
                        sharing: crate::CacheSharing::Locked,
                        mode: Some(0o700),
                        uid: Some(1000),
                        gid: None,
                        readonly: false,
                        seed: Some((crate::OpId(1), "/seed".into())),
                    }],
                    None,
                ),
            ),
            (
                "exec tmpfs",
                exec(
                    vec![ExecMount::Tmpfs {
                        target: "/tmp".into(),
                        size: Some(1 << 20),
                    }],
                    None,
                ),
            ),
            (
                "exec secret",
                exec(
                    vec![ExecMount::Secret {
                        id: "tok".into(),
                        target: Some("/run/secrets/tok".into()),
                        env: Some("TOKEN".into()),
                        required: true,
                        mode: 0o400,
                        uid: 0,
                        gid: 0,
                    }],
                    None,
                ),
            ),
            (
                "exec ssh",
                exec(
                    vec![ExecMount::Ssh {
                        id: "default".into(),
                        target: "/run/buildkit/ssh_agent.0".into(),
                        required: false,
                        mode: 0o600,
                        uid: 0,
                        gid: 0,
                    }],
                    None,
                ),
            ),
            (
                "exec inline",
                exec(
                    vec![ExecMount::Inline {
                        target: "/dev/pipes/EOF".into(),
                        data: b"#!/bin/sh\necho hi\n".to_vec(),
                        mode: 0o755,
                    }],
                    None,
                ),
            ),
        ];
        let got: Vec<String> = cases
            .iter()
            .map(|(name, op)| {
                let mut e = Encoder::new();
                encode_op(&mut e, op);
                format!("{name}: {}", e.finish().0)
            })
            .collect();
        let want: Vec<&str> = PINNED.to_vec();
        assert_eq!(
            got, want,
            "an op's key bytes changed: bump SCHEMA and re-pin"
        );
        // Proxies are not part of a key: a changed proxy reuses the step, as in BuildKit.
        let key = |op: &Op| {
            let mut e = Encoder::new();
            encode_op(&mut e, op);
            e.finish().0
        };
        let mut no_proxy = cases[9].1.clone();
        if let Op::Exec(x) = &mut no_proxy {
            x.proxy_env.clear();
        }
        assert_eq!(key(&no_proxy), key(&cases[9].1));
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

    /// The keys `every_op_kind_has_a_pinned_key` expects.
    const PINNED: &[&str] = &[
        "source scratch: sha256:e86f6b7e538949e5ba0d87b5d89792de7c85d6843b0e5c8b3e5611aa23403580",
        "source image: sha256:58a6e26eff0367a3ddd4b463fdd9ef050d6e979401312e6198a088a0777d9930",
        "source oci-layout: sha256:8086e9958029f4a4402cc07220a086dc49d984c44ea496cb405986d9c3ecbb16",
        "source local: sha256:94ae10790175f1eee90bd9dabfc549b119ee3dea700ed9952532aa6723ee3527",
        "source http: sha256:41c6526a4759660e333625b649931bd4d0f80ead10f4bf7cb7fa7bf0529f744c",
        "file copy: sha256:7a5f0ed155d45c4e1a7dee6d1cfa0659f7e941b6fd5af2c3a0c7b40207d1bf88",
        "file add: sha256:d6402c448b108a3e9a76b55c601d007e8004c060ce86f45c2349d5a78c0ca1cb",
        "file mkfile: sha256:6ae00e6cdb7755546cc2e050ae579792e8755f56de46bba4c60f816479303948",
        "file mkdir: sha256:54f5dcd561c5b35697950d5531f20f8ab9a6f5ec3cd88e48c4b66f61e2e7cbb8",
        "exec plain: sha256:60abaaaab5a65ab6f9dcd3d36eb2700333fa0feb6dbdc2203585ccfe78d963e8",
        "exec hostname: sha256:1d003005615b45560450cec8e8d02dd18884a833c1b5ff0d129a18fd004f4e7e",
        "exec bind: sha256:f6397b50e0a39b155dab64b9d4cfb42c1d84ce7c117af13ce6a36b9f638d5d40",
        "exec cache: sha256:26bffe034bdc5b1f149d658ca1935bfd9be9ca6864e4528d1243fc7deeeeda8f",
        "exec tmpfs: sha256:96d5765cf9dc90ea8510e708918b04b55d46ff3a5ded04873812d2b4e1f9c627",
        "exec secret: sha256:9bcf1ec989d659fc1f171d249712b2bfa67dc87dca2e86ef0c56082faa03e5c1",
        "exec ssh: sha256:ef6bbdb252afe7786c60a742eac314b749ab4a5d3493718ee4017d9cbdcd1f18",
        "exec inline: sha256:325502707f48440b04c1d8c93db7bbd41b9f78ce6e21da4ee4376d8a9d21c912",
    ];
}
