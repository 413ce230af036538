//! What `kiln build`'s arguments say, resolved once: where the Dockerfile and the context
//! are, the options the frontend expands and lowers with, and the secrets, SSH agents and
//! named contexts the solver is given. Shared by the build and by `--call`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use kiln_frontend::scope::{BuildOptions, Platform};

use crate::cli::BuildArgs;

/// The Dockerfile path and the context directory (`None` when the context is `-`).
pub(crate) fn locate(args: &BuildArgs) -> Result<(PathBuf, Option<PathBuf>)> {
    if args.context == Path::new("-") {
        if args.file.as_deref().is_some_and(|f| f != Path::new("-")) {
            bail!("with a context of `-` the Dockerfile is read from standard input; drop -f");
        }
        return Ok((PathBuf::from("-"), None));
    }
    if !args.context.is_dir() {
        bail!(
            "build context {} is not a directory",
            args.context.display()
        );
    }
    let file = match &args.file {
        Some(f) => f.clone(),
        // BuildKit falls back to a lowercase `dockerfile` when there is no `Dockerfile`
        // (moby/moby#10858, testDockerfileLowercase).
        None => {
            let upper = args.context.join("Dockerfile");
            let lower = args.context.join("dockerfile");
            if !upper.exists() && lower.exists() {
                lower
            } else {
                upper
            }
        }
    };
    Ok((file, Some(args.context.clone())))
}

/// `--platform`'s list, in order, each once (`linux/amd64,linux/arm64`); empty when not given.
pub(crate) fn platforms(arg: Option<&str>) -> Result<Vec<Platform>> {
    let mut out: Vec<Platform> = Vec::new();
    for part in arg.into_iter().flat_map(|a| a.split(',')) {
        let part = part.trim();
        if part.is_empty() {
            anyhow::bail!(
                "--platform {:?}: an empty platform in the list",
                arg.unwrap_or_default()
            );
        }
        let platform =
            Platform::parse(part).map_err(|e| anyhow::anyhow!("--platform {part:?}: {e}"))?;
        if !out.contains(&platform) {
            out.push(platform);
        }
    }
    Ok(out)
}

/// The build args, (first) platform, `--target` and `--network` the frontend expands and
/// lowers with.
pub(crate) fn build_options(args: &BuildArgs) -> Result<BuildOptions> {
    let mut build = BuildOptions {
        target: args.target.clone(),
        network: match args.network {
            crate::cli::NetworkArg::Default => kiln_frontend::instructions::NetworkMode::Default,
            crate::cli::NetworkArg::None => kiln_frontend::instructions::NetworkMode::None,
            crate::cli::NetworkArg::Host => kiln_frontend::instructions::NetworkMode::Host,
        },
        ..BuildOptions::default()
    };
    if let Some(first) = platforms(args.platform.as_deref())?.into_iter().next() {
        build.target_platform = first;
        build.explicit_platform = true;
    }
    for a in &args.build_args {
        match a.split_once('=') {
            Some((k, v)) => {
                build.build_args.insert(k.to_owned(), v.to_owned());
            }
            None => {
                // `--build-arg KEY` takes the value from the environment, or is ignored.
                if let Ok(v) = std::env::var(a) {
                    build.build_args.insert(a.clone(), v);
                }
            }
        }
    }
    // buildx passes the environment's SOURCE_DATE_EPOCH on as a build arg, so a Dockerfile's
    // `ARG SOURCE_DATE_EPOCH` sees it either way.
    if !build.build_args.contains_key("SOURCE_DATE_EPOCH")
        && let Ok(v) = std::env::var("SOURCE_DATE_EPOCH")
    {
        build.build_args.insert("SOURCE_DATE_EPOCH".to_owned(), v);
    }
    Ok(build)
}

/// `--secret id=NAME,src=PATH` (also `source=`, `type=file`) or `id=NAME,env=VAR`.
pub(crate) fn secrets(specs: &[String]) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let mut id = None;
        let mut src = None;
        let mut env = None;
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("id", v)) => id = Some(v.to_owned()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                Some(("env", v)) => env = Some(v.to_owned()),
                Some(("type", "file" | "env")) => {}
                _ => bail!("--secret {spec:?}: unknown field {field:?}"),
            }
        }
        let id = id
            .or_else(|| env.clone())
            .with_context(|| format!("--secret {spec:?}: id= is required"))?;
        let value = match (src, env) {
            (Some(path), _) => std::fs::read(&path)
                .with_context(|| format!("--secret id={id}: reading {}", path.display()))?,
            (None, Some(var)) => std::env::var(&var)
                .with_context(|| {
                    format!("--secret id={id}: environment variable {var} is not set")
                })?
                .into_bytes(),
            (None, None) => bail!("--secret {spec:?}: give src=PATH or env=VAR"),
        };
        out.insert(id, value);
    }
    Ok(out)
}

/// `--ssh default` (the agent at $SSH_AUTH_SOCK) or `--ssh ID=SOCKET`.
pub(crate) fn ssh_agents(specs: &[String]) -> Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let (id, sock) = match spec.split_once('=') {
            Some((id, path)) => (id.to_owned(), PathBuf::from(path)),
            None => {
                let sock = std::env::var_os("SSH_AUTH_SOCK")
                    .with_context(|| format!("--ssh {spec}: SSH_AUTH_SOCK is not set"))?;
                (spec.clone(), PathBuf::from(sock))
            }
        };
        out.insert(id, sock);
    }
    Ok(out)
}

pub(crate) type NamedContexts = (BTreeMap<String, PathBuf>, Vec<(String, String)>);

/// `--build-context NAME=DIR` (a directory) or `NAME=oci-layout://…` (an image).
pub(crate) fn named_contexts(specs: &[String]) -> Result<NamedContexts> {
    let mut dirs = BTreeMap::new();
    let mut aliases = Vec::new();
    for spec in specs {
        let Some((name, value)) = spec.split_once('=') else {
            bail!("--build-context {spec:?}: expected NAME=VALUE");
        };
        if value.starts_with("oci-layout://") || value.starts_with("docker-image://") {
            let value = value.strip_prefix("docker-image://").unwrap_or(value);
            aliases.push((name.to_owned(), value.to_owned()));
        } else {
            let dir = PathBuf::from(value);
            if !dir.is_dir() {
                bail!("--build-context {name}={value}: not a directory");
            }
            dirs.insert(name.to_owned(), dir);
        }
    }
    Ok((dirs, aliases))
}

/// `--no-cache-filter` stage names, as the solver matches them (case-insensitively).
pub(crate) fn no_cache_stages(args: &BuildArgs) -> std::collections::BTreeSet<String> {
    args.no_cache_filter
        .iter()
        .map(|s| s.to_lowercase())
        .collect()
}
