//! `kiln inspect IMAGE…`: what the store holds for an image, as JSON, in the shape of
//! `docker image inspect` (an array, one object per image) but only with what kiln really
//! has: `Id` (the digest the name points at, which kiln prints as the image id), `RepoTags`,
//! the `Manifest` and the `Config` exactly as stored — plus `Index` when the name points at a
//! multi-platform index (then `Manifest` is this platform's).

use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use oci_spec::image::Digest;
use serde_json::Value;

use crate::cli::InspectArgs;
use crate::commands::du::existing_store;
use crate::commands::print_stdout;

/// An image read from the store.
pub(crate) struct LoadedImage {
    /// The digest the name resolved to (a manifest, or an index).
    pub(crate) id: Digest,
    /// The index, when `id` is one.
    pub(crate) index: Option<Value>,
    /// The manifest's digest.
    pub(crate) manifest_digest: Digest,
    /// The manifest.
    pub(crate) manifest: Value,
    /// The config's digest.
    pub(crate) config_digest: Digest,
    /// The config, as stored.
    pub(crate) config_bytes: Vec<u8>,
    /// Every name pointing at `id`, familiar form, sorted.
    pub(crate) tags: Vec<String>,
}

pub(crate) fn run(args: &InspectArgs) -> Result<ExitCode> {
    let store = existing_store(&args.store)?;
    let platform = crate::commands::registry::platform_arg(args.platform.as_deref())?;
    let mut out = Vec::new();
    for name in &args.images {
        let image = load_image(&store, name, &platform)?;
        let config: Value = serde_json::from_slice(&image.config_bytes)
            .with_context(|| format!("config {}", image.config_digest))?;
        let mut obj = serde_json::json!({
            "Id": image.id.to_string(),
            "RepoTags": image.tags,
            "Manifest": image.manifest,
            "Config": config,
        });
        if let (Some(index), Some(map)) = (image.index, obj.as_object_mut()) {
            map.insert("Index".into(), index);
            map.insert(
                "ManifestDigest".into(),
                Value::String(image.manifest_digest.to_string()),
            );
        }
        out.push(obj);
    }
    print_stdout(&format!("{}\n", serde_json::to_string_pretty(&out)?))?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves `name` (a name, a full digest, or a unique prefix of a tagged image's id as
/// `kiln images` prints it) and reads the manifest and config of its `platform` image: the
/// one the name keeps for that platform, else the index's entry for it, else the one image
/// the name means.
pub(crate) fn load_image(
    store: &kiln_solver::store::Store,
    name: &str,
    platform: &kiln_llb::Platform,
) -> Result<LoadedImage> {
    let id = resolve(store, name)?;
    let kept = store
        .images()
        .lookup(name)
        .ok()
        .flatten()
        .and_then(|r| r.platforms.get(&platform.to_string()).cloned())
        .filter(|d| store.content().contains(d));
    let bytes = store
        .content()
        .read_blob(&id)
        .with_context(|| format!("image {name}: reading {id}"))?;
    let top: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("image {name}: {id} is not JSON"))?;
    let (index, manifest_digest, manifest) = if top.get("manifests").is_some() {
        let digest = match kept {
            Some(d) => d,
            None => {
                pick_platform(&top, platform).with_context(|| format!("image {name} ({id})"))?
            }
        };
        let manifest = read_manifest(store, name, &digest)?;
        (Some(top), digest, manifest)
    } else if let Some(digest) = kept.filter(|d| *d != id) {
        // A name built for several platforms one at a time keeps each one's manifest.
        let manifest = read_manifest(store, name, &digest)?;
        (None, digest, manifest)
    } else {
        (None, id.clone(), top)
    };
    let config_digest = manifest
        .pointer("/config/digest")
        .and_then(Value::as_str)
        .and_then(|d| Digest::try_from(d).ok())
        .with_context(|| {
            format!("image {name}: manifest {manifest_digest} has no config digest")
        })?;
    let config_bytes = store
        .content()
        .read_blob(&config_digest)
        .with_context(|| format!("image {name}: reading config {config_digest}"))?;
    let mut tags: Vec<String> = store
        .images()
        .list()?
        .into_iter()
        .filter(|r| r.digest == id)
        .map(|r| kiln_solver::store::familiar_name(&r.reference))
        .collect();
    tags.sort();
    Ok(LoadedImage {
        id,
        index,
        manifest_digest,
        manifest,
        config_digest,
        config_bytes,
        tags,
    })
}

/// The manifest `digest` of image `name`, as JSON.
fn read_manifest(store: &kiln_solver::store::Store, name: &str, digest: &Digest) -> Result<Value> {
    let bytes = store
        .content()
        .read_blob(digest)
        .with_context(|| format!("image {name}: reading manifest {digest}"))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("image {name}: manifest {digest} is not JSON"))
}

fn resolve(store: &kiln_solver::store::Store, name: &str) -> Result<Digest> {
    let by_name = store.images().resolve(name);
    if let Ok(Some(d)) = by_name {
        return Ok(d);
    }
    // A short id, as `kiln images` prints it.
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    if hex.len() >= 4
        && hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    {
        let mut found: Vec<Digest> = store
            .images()
            .list()?
            .into_iter()
            .map(|r| r.digest)
            .filter(|d| d.digest().starts_with(hex))
            .collect();
        found.sort_by_key(ToString::to_string);
        found.dedup();
        match found.len() {
            1 => return Ok(found.remove(0)),
            0 => {}
            n => bail!("image id prefix {name} is ambiguous: {n} images match"),
        }
    }
    by_name.with_context(|| format!("image {name}"))?;
    bail!("no such image: {name} (kiln images lists the store's images)")
}

/// `platform`'s manifest in an index, picked as builds pick a base's
/// (`kiln_solver::image::manifest::Index::select`).
fn pick_platform(index: &Value, platform: &kiln_llb::Platform) -> Result<Digest> {
    let index: kiln_solver::image::manifest::Index =
        serde_json::from_value(index.clone()).context("reading the index")?;
    let chosen = index
        .select(platform)
        .map_err(|have| anyhow::anyhow!("the index has no {platform} manifest (it has {have})"))?;
    Digest::try_from(chosen.digest.as_str())
        .with_context(|| format!("the index lists an invalid digest {:?}", chosen.digest))
}
