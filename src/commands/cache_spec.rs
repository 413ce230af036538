//! `--cache-from` / `--cache-to` specs (buildx syntax): `type=registry,ref=REF[,mode=…]`,
//! `type=local,src=DIR` / `type=local,dest=DIR[,mode=…]`; a bare `REF` means a registry.

use std::path::PathBuf;

use anyhow::{Result, bail};
use kiln_solver::cache::remote::ExportMode;

/// Where a cache lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CacheLocation {
    Registry(String),
    Local(PathBuf),
}

/// A parsed spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CacheSpec {
    pub(crate) location: CacheLocation,
    pub(crate) mode: ExportMode,
}

/// Parses one spec; `export` selects which directory key `type=local` takes.
pub(crate) fn parse(flag: &str, spec: &str, export: bool) -> Result<CacheSpec> {
    if !spec.contains('=') {
        return Ok(CacheSpec {
            location: CacheLocation::Registry(spec.to_owned()),
            mode: ExportMode::Min,
        });
    }
    let (mut kind, mut reference, mut dir, mut mode) = (None, None, None, ExportMode::Min);
    for field in spec.split(',') {
        let Some((k, v)) = field.split_once('=') else {
            bail!("{flag} {spec:?}: expected KEY=VALUE, got {field:?}");
        };
        match k {
            "type" => kind = Some(v.to_owned()),
            "ref" => reference = Some(v.to_owned()),
            "src" if !export => dir = Some(PathBuf::from(v)),
            "dest" if export => dir = Some(PathBuf::from(v)),
            "mode" if export => {
                mode = v
                    .parse()
                    .map_err(|e: kiln_solver::cache::remote::RemoteCacheError| {
                        anyhow::anyhow!("{flag} {spec:?}: {e}")
                    })?;
            }
            // Accepted for buildx compatibility; kiln's cache has no such knobs.
            "ignore-error" | "compression" | "compression-level" | "oci-mediatypes"
            | "image-manifest" | "force-compression" => {}
            other => bail!("{flag} {spec:?}: unknown field {other:?}"),
        }
    }
    let location = match (kind.as_deref(), reference, dir) {
        (Some("registry"), Some(r), _) => CacheLocation::Registry(r),
        (Some("registry"), None, _) => {
            bail!("{flag} {spec:?}: type=registry needs ref=REPOSITORY[:TAG]")
        }
        (Some("local"), _, Some(d)) => CacheLocation::Local(d),
        (Some("local"), _, None) => bail!(
            "{flag} {spec:?}: type=local needs {}=DIR",
            if export { "dest" } else { "src" }
        ),
        (Some(other), _, _) => {
            bail!("{flag} {spec:?}: unsupported cache type {other:?} (registry or local)")
        }
        (None, _, _) => bail!("{flag} {spec:?}: type= is required"),
    };
    Ok(CacheSpec { location, mode })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_buildx_specs() {
        let s = parse("--cache-to", "type=registry,ref=r/c:main,mode=max", true).unwrap();
        assert_eq!(s.location, CacheLocation::Registry("r/c:main".into()));
        assert_eq!(s.mode, ExportMode::Max);
        let s = parse("--cache-from", "type=local,src=/tmp/c", false).unwrap();
        assert_eq!(s.location, CacheLocation::Local("/tmp/c".into()));
        let s = parse("--cache-from", "r/c:main", false).unwrap();
        assert_eq!(s.location, CacheLocation::Registry("r/c:main".into()));
        assert!(parse("--cache-to", "type=local,src=/x", true).is_err());
        assert!(
            parse("--cache-to", "type=s3,ref=x", true)
                .unwrap_err()
                .to_string()
                .contains("s3")
        );
        assert!(parse("--cache-to", "type=registry,ref=x,mode=all", true).is_err());
    }
}
