//! `kiln images`, `kiln tag` and `kiln rmi`: the local image store's names.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use oci_spec::image::Digest;

use crate::cli::{RmiArgs, StoreArgs, TagArgs};
use crate::commands::{open_store, print_stdout};

pub(crate) fn list(args: &StoreArgs) -> Result<ExitCode> {
    let store = open_store(args)?;
    let mut out = format!(
        "{:<40} {:<20} {:<12} {}\n",
        "REPOSITORY", "TAG", "IMAGE ID", "PLATFORMS"
    );
    for rec in store.images().list()? {
        let familiar = kiln_solver::store::familiar_name(&rec.reference);
        let (repo, tag) = familiar
            .rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .unwrap_or((familiar.as_str(), "<none>"));
        let id = rec.digest.to_string();
        let short = id.strip_prefix("sha256:").unwrap_or(&id);
        out.push_str(&format!(
            "{repo:<40} {tag:<20} {:<12} {}\n",
            &short[..short.len().min(12)],
            platforms_of(&rec)
        ));
    }
    print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// The platforms a name keeps an image for (a multi-platform build's, or each platform it was
/// built or pulled for); empty when the name never said.
fn platforms_of(rec: &kiln_solver::store::ImageRecord) -> String {
    rec.platforms
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn tag(args: &TagArgs) -> Result<ExitCode> {
    let store = open_store(&args.store)?;
    let digest = match store.images().resolve(&args.source)? {
        Some(d) => d,
        None => Digest::try_from(args.source.as_str())
            .ok()
            .filter(|d| store.content().contains(d))
            .with_context(|| format!("no image named {} in the store", args.source))?,
    };
    store
        .images()
        .tag(&args.target, &digest)
        .with_context(|| format!("tagging {}", args.target))?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn rmi(args: &RmiArgs) -> Result<ExitCode> {
    let store = open_store(&args.store)?;
    for name in &args.names {
        store
            .images()
            .untag(name)
            .with_context(|| format!("removing {name}"))?;
        print_stdout(&format!("Untagged: {name}\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}
