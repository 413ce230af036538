//! `kiln pull` and `kiln push`, and the registry client every command shares.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use kiln_llb::Platform;
use kiln_solver::registry::{Registry, RegistryOptions, block_on};

use crate::cli::{PullArgs, PushArgs, RegistryArgs};
use crate::commands::{open_store, print_stdout};

/// Where the daemon-style configuration lives unless `$KILN_CONFIG` says otherwise.
const DEFAULT_CONFIG: &str = "/etc/kiln/config.json";

/// The registry client for these flags plus `insecure-registries` from kiln's config file.
pub(crate) fn registry_for(args: &RegistryArgs) -> Result<Registry> {
    let mut insecure = args.insecure_registries.clone();
    let path = std::env::var_os("KILN_CONFIG")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| DEFAULT_CONFIG.into());
    match std::fs::read(&path) {
        Ok(bytes) => {
            let value: serde_json::Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", path.display()))?;
            if let Some(list) = value.get("insecure-registries").and_then(|v| v.as_array()) {
                for host in list {
                    let host = host.as_str().with_context(|| {
                        format!("{}: insecure-registries holds a non-string", path.display())
                    })?;
                    insecure.push(host.to_owned());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    Ok(Registry::new(RegistryOptions { insecure }))
}

/// `--platform os/arch[/variant]` as the solver's platform type, else the host's.
pub(crate) fn platform_arg(platform: Option<&str>) -> Result<Platform> {
    match platform {
        None => Ok(Platform::host()),
        Some(p) => Platform::parse(p).map_err(|e| anyhow::anyhow!("--platform: {e}")),
    }
}

pub(crate) fn pull(args: &PullArgs) -> Result<ExitCode> {
    let store = open_store(&args.store)?;
    // Blobs land before the tag; prune must not see them as unreachable in between.
    let _store_lock = kiln_solver::store::StoreLock::shared(store.root())?;
    let registry = registry_for(&args.registry)?;
    let platforms = match crate::commands::build_input::platforms(args.platform.as_deref())? {
        list if list.is_empty() => vec![platform_arg(None)?],
        list => list,
    };
    // One pull per platform: the name then keeps each platform's manifest.
    for platform in &platforms {
        let pulled = block_on(registry.pull(&store, &args.reference, platform))??;
        print_stdout(&format!("{}\n", pulled.manifest_digest))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn push(args: &PushArgs) -> Result<ExitCode> {
    let store = open_store(&args.store)?;
    let _store_lock = kiln_solver::store::StoreLock::shared(store.root())?;
    let registry = registry_for(&args.registry)?;
    let digest = store.images().resolve(&args.source)?.with_context(|| {
        format!(
            "image {} is not in the store (kiln images lists what is)",
            args.source
        )
    })?;
    let dest = args.destination.as_deref().unwrap_or(&args.source);
    // Layers kiln keeps as plain tars leave compressed (gzip), made once and remembered.
    let edge = kiln_solver::export::ImageForm::default().at_the_edge();
    let digest = kiln_solver::export::rewrite_image(&store, &digest, &edge, &Default::default())?;
    let pushed = block_on(registry.push(&store, &digest, dest))??;
    if let Some(path) = &args.metadata_file {
        let meta = serde_json::json!({
            "containerimage.digest": pushed.digest.to_string(),
            "image.name": pushed.reference,
        });
        kiln_solver::export::write_atomic(path, serde_json::to_string_pretty(&meta)?.as_bytes())?;
    }
    print_stdout(&format!("{}\n", pushed.digest))?;
    Ok(ExitCode::SUCCESS)
}
