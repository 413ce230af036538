//! The readable form of an op's own parameters, by field, as an explain record keeps them:
//! input ops by name, never by index (indices shift between builds), secrets by id only.

use std::collections::BTreeMap;

use kiln_llb::{ExecMount, FileAction, NetworkMode, Op, OpId, Source};
use sha2::{Digest as _, Sha256};

fn platform(p: &kiln_llb::Platform) -> String {
    if p.variant.is_empty() {
        format!("{}/{}", p.os, p.architecture)
    } else {
        format!("{}/{}/{}", p.os, p.architecture, p.variant)
    }
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// An op's own parameters, readable, by field (input ops by name, never by index, which
/// shifts between builds).
pub(super) fn params(op: &Op, name: &dyn Fn(OpId) -> String) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        p.insert(k.to_owned(), v);
    };
    match op {
        Op::Source(Source::Scratch) => put("source", "scratch".into()),
        Op::Source(Source::Image {
            reference,
            platform: pl,
        }) => {
            put("image", reference.clone());
            put("platform", platform(pl));
        }
        Op::Source(Source::OciLayout {
            path,
            selector,
            platform: pl,
        }) => {
            put("oci-layout", path.clone());
            put("selector", selector.clone().unwrap_or_default());
            put("platform", platform(pl));
        }
        Op::Source(Source::Local { name }) => put("local", name.clone()),
        Op::Source(Source::Http {
            url,
            checksum,
            filename,
        }) => {
            put("url", url.clone());
            put("checksum", checksum.clone().unwrap_or_default());
            put("filename", filename.clone());
        }
        Op::Exec(x) => {
            put(
                "command",
                serde_json::to_string(&x.args).unwrap_or_default(),
            );
            put("workdir", x.cwd.clone());
            put("user", x.user.clone());
            put(
                "network",
                match x.network {
                    NetworkMode::Host => "host",
                    NetworkMode::None => "none",
                }
                .into(),
            );
            for (i, m) in x.mounts.iter().enumerate() {
                put(&format!("mount {}", i + 1), mount(m, name));
            }
        }
        Op::File(f) => {
            for (i, a) in f.actions.iter().enumerate() {
                put(&format!("action {}", i + 1), action(a, name));
            }
        }
    }
    p
}

fn opt_field(out: &mut String, key: &str, v: Option<&str>) {
    if let Some(v) = v {
        out.push_str(&format!(",{key}={v}"));
    }
}

fn mount(m: &ExecMount, name: &dyn Fn(OpId) -> String) -> String {
    match m {
        ExecMount::Bind {
            source,
            selector,
            target,
            readonly,
        } => format!(
            "type=bind,from={},source={selector},target={target},{}",
            name(*source),
            if *readonly { "ro" } else { "rw" }
        ),
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
            let mut s = format!("type=cache,id={id},target={target},sharing={sharing:?}");
            opt_field(&mut s, "mode", mode.map(|m| format!("{m:o}")).as_deref());
            opt_field(&mut s, "uid", uid.map(|u| u.to_string()).as_deref());
            opt_field(&mut s, "gid", gid.map(|g| g.to_string()).as_deref());
            s.push_str(if *readonly { ",ro" } else { ",rw" });
            if let Some((from, path)) = seed {
                s.push_str(&format!(",from={},source={path}", name(*from)));
            }
            s
        }
        ExecMount::Tmpfs { target, size } => {
            let mut s = format!("type=tmpfs,target={target}");
            opt_field(&mut s, "size", size.map(|n| n.to_string()).as_deref());
            s
        }
        // Ids and targets only: a secret's value is never in the op.
        ExecMount::Secret {
            id,
            target,
            env,
            required,
            mode,
            uid,
            gid,
        } => {
            let mut s = format!("type=secret,id={id}");
            opt_field(&mut s, "target", target.as_deref());
            opt_field(&mut s, "env", env.as_deref());
            s.push_str(&format!(
                ",required={required},mode={mode:o},uid={uid},gid={gid}"
            ));
            s
        }
        ExecMount::Ssh {
            id,
            target,
            required,
            mode,
            uid,
            gid,
        } => format!(
            "type=ssh,id={id},target={target},required={required},mode={mode:o},uid={uid},gid={gid}"
        ),
        ExecMount::Inline { target, data, mode } => format!(
            "inline file {target} ({} bytes, {}),mode={mode:o}",
            data.len(),
            sha256(data)
        ),
    }
}

fn action(a: &FileAction, name: &dyn Fn(OpId) -> String) -> String {
    match a {
        FileAction::Copy { source, params: c } => {
            let mut s = format!(
                "copy {} from {} to {}",
                serde_json::to_string(&c.sources).unwrap_or_default(),
                name(*source),
                c.dest
            );
            opt_field(&mut s, "chown", c.chown.as_deref());
            opt_field(&mut s, "chmod", c.chmod.as_deref());
            if c.parents {
                s.push_str(",parents");
            }
            if !c.excludes.is_empty() {
                let ex = serde_json::to_string(&c.excludes).unwrap_or_default();
                s.push_str(&format!(",exclude={ex}"));
            }
            if c.unpack_archives {
                s.push_str(",unpack");
            }
            if c.link {
                s.push_str(",link");
            }
            s
        }
        FileAction::Mkfile {
            dest,
            name: file,
            data,
            chown,
            chmod,
        } => {
            let mut s = format!(
                "write {file} to {dest} ({} bytes, {})",
                data.len(),
                sha256(data)
            );
            opt_field(&mut s, "chown", chown.as_deref());
            opt_field(&mut s, "chmod", chmod.as_deref());
            s
        }
        FileAction::Mkdir { path, chown } => {
            let mut s = format!("mkdir {path}");
            opt_field(&mut s, "chown", chown.as_deref());
            s
        }
    }
}
