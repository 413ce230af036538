//! `kiln du`: the store's disk usage by kind, adding up to what `du -sb ROOT` says.
//!
//! Sizes are apparent sizes (`st_size`, what `du -sb` and `ls -l` show), not allocated
//! blocks: they do not depend on the filesystem's block size, and a blob's size is exactly
//! its descriptor's size. Hard links are counted once (merged rootfs snapshots share their
//! files with the layer snapshots). RECLAIMABLE is what `kiln prune --all --cache-mounts`
//! would free.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::units::human_size;
use kiln_solver::gc::{Category, Usage};
use kiln_solver::store::Store;

use crate::cli::{DuArgs, StoreArgs, TableFormat};
use crate::commands::{open_store, print_stdout};

pub(crate) fn run(args: &DuArgs) -> Result<ExitCode> {
    let store = existing_store(&args.store)?;
    let usage = kiln_solver::gc::usage(&store)?;
    for w in &usage.warnings {
        warn(w);
    }
    let out = match args.format {
        TableFormat::Table => table(&usage),
        TableFormat::Json => format!("{}\n", serde_json::to_string_pretty(&json(&store, &usage))?),
    };
    print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn table(usage: &Usage) -> String {
    let mut out = format!(
        "{:<14}{:>8}{:>12}{:>14}\n",
        "TYPE", "COUNT", "SIZE", "RECLAIMABLE"
    );
    for row in &usage.rows {
        out.push_str(&format!(
            "{:<14}{:>8}{:>12}{:>14}\n",
            row.category.label(),
            row.count,
            human_size(row.size),
            human_size(row.reclaimable)
        ));
    }
    out.push_str(&format!(
        "{:<14}{:>8}{:>12}{:>14}\n",
        "Total",
        "",
        human_size(usage.total),
        human_size(usage.reclaimable)
    ));
    out.push_str(&format!(
        "\nBuild cache: {} entries. Apparent sizes (du -sb); RECLAIMABLE: what `kiln prune --all --cache-mounts` frees.\n",
        usage.cache_entries
    ));
    out
}

fn json(store: &Store, usage: &Usage) -> serde_json::Value {
    let rows: Vec<_> = usage
        .rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "type": r.category.name(),
                "label": r.category.label(),
                "count": r.count,
                "size": r.size,
                "reclaimable": r.reclaimable,
            })
        })
        .collect();
    let images = usage
        .rows
        .iter()
        .find(|r| r.category == Category::Images)
        .map_or(0, |r| r.count);
    serde_json::json!({
        "root": store.root().display().to_string(),
        "size_method": "apparent bytes, hard links once (du -sb)",
        "types": rows,
        "images": images,
        "cache_entries": usage.cache_entries,
        "total": usage.total,
        "reclaimable": usage.reclaimable,
    })
}

/// The store at `--root` (or the default root), which must exist already: inspecting a
/// store should not create one.
pub(crate) fn existing_store(args: &StoreArgs) -> Result<Store> {
    let root: PathBuf = match &args.root {
        Some(r) => r.clone(),
        None => kiln_solver::store::default_root()?,
    };
    if !root.join("meta.redb").is_file() {
        bail!(
            "no kiln store at {} (nothing was built or pulled there; --root or KILN_ROOT picks another)",
            root.display()
        );
    }
    open_store(args)
}

/// A warning on standard error.
pub(crate) fn warn(message: &str) {
    crate::stderr::line(&format!("warning: {message}"));
}
