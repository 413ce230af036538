//! Ops and the graph they form. Every op's output is a filesystem state: a source, or a base
//! state with file actions applied (one layer). Inputs always point at earlier ops, so the
//! vector order is a valid execution order.

use serde::{Deserialize, Serialize};

/// Index of an op in its [`Definition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId(pub usize);

pub use crate::platform::Platform;

/// Where a filesystem state comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// An empty filesystem.
    Scratch,
    /// An image by reference: kiln's local store, pulled from its registry when missing.
    Image {
        /// The reference as the user wrote it (already expanded).
        reference: String,
        /// The platform wanted.
        platform: Platform,
    },
    /// An image in an OCI layout directory (`oci-layout://PATH[:tag|@digest]`).
    OciLayout {
        /// The layout directory.
        path: String,
        /// `tag` or `sha256:…`, or none for the only image.
        selector: Option<String>,
        /// The platform wanted.
        platform: Platform,
    },
    /// A local directory: the build context or a named `--build-context`.
    Local {
        /// `context`, or the `--build-context` name.
        name: String,
    },
    /// One file downloaded from an `http://` or `https://` URL (ADD): a directory holding
    /// just `filename`, mode 0600, its mtime from the response's `Last-Modified` (else the
    /// epoch).
    Http {
        /// The URL, as written (already expanded).
        url: String,
        /// `--checksum`: the digest the content must have (`sha256:…`, `sha384:…` or
        /// `sha512:…`).
        checksum: Option<String>,
        /// The file's name: the last segment of the URL's path, or `__unnamed__`.
        filename: String,
    },
}

/// One file action applied on top of a base state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileAction {
    /// Copy from another state (COPY/ADD).
    Copy {
        /// The state files are copied from.
        source: OpId,
        /// What to copy and how.
        params: CopyParams,
    },
    /// Write a file with inline content (a COPY heredoc source), placed at `dest` by the
    /// same rules as a copied file named `name`.
    Mkfile {
        /// Absolute destination; a trailing `/` means a directory.
        dest: String,
        /// The file's name (the heredoc delimiter) when `dest` is a directory.
        name: String,
        /// The content (already expanded when the heredoc asked for it).
        data: Vec<u8>,
        /// `--chown`.
        chown: Option<String>,
        /// `--chmod`.
        chmod: Option<String>,
    },
    /// Create a directory and its parents (WORKDIR).
    Mkdir {
        /// Absolute path.
        path: String,
        /// The owner spec (`uid:gid` or names), resolved in the base state.
        chown: Option<String>,
    },
}

/// The parameters of a COPY or ADD, all words expanded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyParams {
    /// Source paths or patterns, relative to the source state's root.
    pub sources: Vec<String>,
    /// Absolute destination; a trailing `/` means a directory.
    pub dest: String,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
    /// ADD: extract local tar archives.
    pub unpack_archives: bool,
    /// `--link`.
    pub link: bool,
}

/// A file op: actions applied, in order, to `base`; the result is one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOp {
    /// The state the actions apply to.
    pub base: OpId,
    /// The actions.
    pub actions: Vec<FileAction>,
}

impl FileOp {
    /// True for a `COPY --link` (or `ADD --link`) without `--chmod`: BuildKit copies it onto
    /// scratch and merges the result onto the base, so the step's layer depends on what it
    /// copies, never on its base — a changed base reuses the layer without running the step.
    /// An owner given by name still needs the base's `/etc/passwd`, so such a copy is based
    /// (BuildKit would fail to find the user on scratch).
    pub fn is_linked(&self) -> bool {
        let numeric = |chown: &Option<String>| {
            chown.as_deref().is_none_or(|c| {
                c.split(':')
                    .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
            })
        };
        let mut linked_copy = false;
        for action in &self.actions {
            match action {
                FileAction::Copy { params, .. } => {
                    if !params.link || params.chmod.is_some() || !numeric(&params.chown) {
                        return false;
                    }
                    linked_copy = true;
                }
                FileAction::Mkfile { chown, chmod, .. } => {
                    if chmod.is_some() || !numeric(chown) {
                        return false;
                    }
                }
                FileAction::Mkdir { .. } => return false,
            }
        }
        linked_copy
    }
}

/// How a RUN step reaches the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// The host's network (the default, as BuildKit's OCI worker without CNI).
    #[default]
    Host,
    /// Only loopback.
    None,
}

/// How concurrent steps share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheSharing {
    /// Everyone uses the same directory at once.
    #[default]
    Shared,
    /// A step that finds it in use gets a fresh directory.
    Private,
    /// Steps take turns.
    Locked,
}

/// A mount of a RUN step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecMount {
    /// A path of another state (the context, a stage, an image) bind-mounted; with
    /// `readonly: false` writes are allowed but discarded.
    Bind {
        /// The state the files come from.
        source: OpId,
        /// The path inside that state.
        selector: String,
        /// Absolute target.
        target: String,
        /// Read-only.
        readonly: bool,
    },
    /// A persistent cache directory, kept in the store across builds. Which directory is
    /// BuildKit's choice: the id, and the state it starts from — the seed's, and a directory
    /// made for `uid`/`gid`/`mode` when any is given — so `uid=10` and no uid are two caches.
    Cache {
        /// Its identity (defaults to the target as written, cleaned).
        id: String,
        /// Absolute target.
        target: String,
        /// Concurrent use.
        sharing: CacheSharing,
        /// Mode of the directory when created (0755 when not given).
        mode: Option<u32>,
        /// Owner when created (0 when not given).
        uid: Option<u32>,
        /// Group when created (0 when not given).
        gid: Option<u32>,
        /// Read-only.
        readonly: bool,
        /// A state and path whose content seeds a new cache.
        seed: Option<(OpId, String)>,
    },
    /// A tmpfs.
    Tmpfs {
        /// Absolute target.
        target: String,
        /// Size limit in bytes.
        size: Option<u64>,
    },
    /// A build secret, as a file (never part of a layer, a key or the log).
    Secret {
        /// The secret's id (`--secret id=…`).
        id: String,
        /// Absolute target file; `None` when only exposed as an env variable.
        target: Option<String>,
        /// Exposed as this environment variable too.
        env: Option<String>,
        /// Fail when the secret was not provided.
        required: bool,
        /// File mode.
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
    },
    /// The SSH agent socket (`--ssh`).
    Ssh {
        /// The agent id (`default`).
        id: String,
        /// Absolute target socket path.
        target: String,
        /// Fail when no agent was provided.
        required: bool,
        /// Socket mode.
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
    },
    /// A file with inline content, read-only (a RUN heredoc with a shebang).
    Inline {
        /// Absolute target file.
        target: String,
        /// Its content.
        data: Vec<u8>,
        /// Its mode.
        mode: u32,
    },
}

/// A RUN step: a process in a container over `base`; its changes are one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOp {
    /// The root filesystem state.
    pub base: OpId,
    /// argv.
    pub args: Vec<String>,
    /// `KEY=value`, in order.
    pub env: Vec<String>,
    /// Absolute working directory.
    pub cwd: String,
    /// `user[:group]` by name or id; empty for root.
    pub user: String,
    /// Network mode.
    pub network: NetworkMode,
    /// Extra mounts.
    pub mounts: Vec<ExecMount>,
    /// The container's hostname when not the default (`BUILDKIT_SANDBOX_HOSTNAME`); part of
    /// the key, as BuildKit's `Meta.Hostname` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Proxy variables (`KEY=value`), appended after `env`: never part of the key, so a
    /// changed proxy reuses the cache (BuildKit strips `Meta.ProxyEnv` from the cache map).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proxy_env: Vec<String>,
    /// The platform the stage is built for: which emulator, if any, the host needs to run
    /// it. Never part of the key: what runs is the rootfs's binaries, whose own ELF headers
    /// pick the emulator, and the rootfs is already in the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// An op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// A source state.
    Source(Source),
    /// File actions over a base state.
    File(FileOp),
    /// A process run over a base state.
    Exec(ExecOp),
}

impl Op {
    /// The ops this one reads, in a fixed order.
    pub fn inputs(&self) -> Vec<OpId> {
        match self {
            Op::Source(_) => Vec::new(),
            Op::File(f) => {
                let mut v = vec![f.base];
                for a in &f.actions {
                    if let FileAction::Copy { source, .. } = a {
                        v.push(*source);
                    }
                }
                v
            }
            Op::Exec(e) => {
                let mut v = vec![e.base];
                for m in &e.mounts {
                    match m {
                        ExecMount::Bind { source, .. } => v.push(*source),
                        ExecMount::Cache {
                            seed: Some((source, _)),
                            ..
                        } => v.push(*source),
                        _ => {}
                    }
                }
                v
            }
        }
    }
}

/// Where an op came from, for progress and errors. Never part of a digest.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SourceLocation {
    /// A short description for progress output (`[builder 2/5] COPY . /src`).
    pub name: String,
    /// The file the instruction is in.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// Byte range in the file.
    pub span: (usize, usize),
    /// The `AS` name of the stage the op was lowered for (empty for an unnamed stage), so
    /// that `--no-cache-filter` can pick a stage's steps.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stage: String,
}

/// The op graph of one build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    /// The ops, inputs before users.
    pub ops: Vec<Op>,
    /// One location per op (same index).
    pub locations: Vec<SourceLocation>,
}

impl Definition {
    /// Appends an op, returning its id; identical ops are shared (the graph deduplicates).
    pub fn push(&mut self, op: Op, location: SourceLocation) -> OpId {
        if let Some(i) = self.ops.iter().position(|o| *o == op) {
            return OpId(i);
        }
        self.ops.push(op);
        self.locations.push(location);
        OpId(self.ops.len() - 1)
    }

    /// The op with this id.
    pub fn get(&self, id: OpId) -> Option<&Op> {
        self.ops.get(id.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(link: bool, chown: Option<&str>, chmod: Option<&str>) -> FileAction {
        FileAction::Copy {
            source: OpId(1),
            params: CopyParams {
                sources: vec!["f".into()],
                dest: "/f".into(),
                chown: chown.map(str::to_owned),
                chmod: chmod.map(str::to_owned),
                parents: false,
                excludes: Vec::new(),
                unpack_archives: false,
                link,
            },
        }
    }

    fn op(actions: Vec<FileAction>) -> FileOp {
        FileOp {
            base: OpId(0),
            actions,
        }
    }

    #[test]
    fn linked_copies_follow_buildkits_rule() {
        assert!(op(vec![copy(true, None, None)]).is_linked());
        assert!(op(vec![copy(true, Some("1000:1000"), None)]).is_linked());
        assert!(!op(vec![copy(false, None, None)]).is_linked());
        // BuildKit keeps a --chmod copy on its base.
        assert!(!op(vec![copy(true, None, Some("644"))]).is_linked());
        // Names need the base's /etc/passwd.
        assert!(!op(vec![copy(true, Some("app"), None)]).is_linked());
        assert!(!op(vec![copy(true, None, None), copy(false, None, None)]).is_linked());
        let mkdir = FileAction::Mkdir {
            path: "/w".into(),
            chown: None,
        };
        assert!(!op(vec![mkdir]).is_linked());
    }
}
