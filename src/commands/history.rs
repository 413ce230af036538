//! `kiln history IMAGE`: the image config's history, newest step first, like
//! `docker history`. SIZE is the size of the step's layer blob as stored (compressed when
//! the layer is), 0B for steps that made no layer; IMAGE is the image's id on the newest
//! row and `<missing>` below it, as Docker shows steps that are not images of their own.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use kiln_llb::ImageConfig;
use serde_json::Value;

use crate::cli::{HistoryArgs, TableFormat};
use crate::commands::du::existing_store;
use crate::commands::inspect::load_image;
use crate::commands::print_stdout;
use crate::units::human_size;

/// Docker's width for CREATED BY when truncating.
const CREATED_BY_WIDTH: usize = 45;

struct Row {
    id: String,
    created: Option<String>,
    created_by: String,
    size: u64,
    layer: Option<String>,
    comment: String,
    empty_layer: bool,
}

pub(crate) fn run(args: &HistoryArgs) -> Result<ExitCode> {
    let store = existing_store(&args.store)?;
    let platform = crate::commands::registry::platform_arg(args.platform.as_deref())?;
    let image = load_image(&store, &args.image, &platform)?;
    let config: ImageConfig = serde_json::from_slice(&image.config_bytes)
        .with_context(|| format!("image {}: config {}", args.image, image.config_digest))?;
    let layers: Vec<(String, u64)> = image
        .manifest
        .get("layers")
        .and_then(Value::as_array)
        .map(|ls| {
            ls.iter()
                .map(|l| {
                    (
                        l.get("digest")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        l.get("size").and_then(Value::as_u64).unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut rows = Vec::new();
    let mut next_layer = layers.iter();
    for h in &config.history {
        let layer = if h.empty_layer {
            None
        } else {
            next_layer.next()
        };
        rows.push(Row {
            id: "<missing>".to_owned(),
            created: h.created.clone(),
            created_by: h.created_by.clone(),
            size: layer.map_or(0, |l| l.1),
            layer: layer.map(|l| l.0.clone()),
            comment: h.comment.clone(),
            empty_layer: h.empty_layer,
        });
    }
    // An image without history (some registries strip it) still has layers to show.
    if config.history.is_empty() {
        for (digest, size) in &layers {
            rows.push(Row {
                id: "<missing>".to_owned(),
                created: None,
                created_by: String::new(),
                size: *size,
                layer: Some(digest.clone()),
                comment: String::new(),
                empty_layer: false,
            });
        }
    }
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top.id = image.id.to_string();
    }
    let out = match args.format {
        TableFormat::Json => {
            let json: Vec<Value> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id,
                        "created": r.created,
                        "created_by": r.created_by,
                        "size": r.size,
                        "layer": r.layer,
                        "comment": r.comment,
                        "empty_layer": r.empty_layer,
                    })
                })
                .collect();
            format!("{}\n", serde_json::to_string_pretty(&json)?)
        }
        TableFormat::Table => table(&rows, args.no_trunc, crate::time::now()),
    };
    print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn table(rows: &[Row], no_trunc: bool, now: i64) -> String {
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            let id = if r.id == "<missing>" || no_trunc {
                r.id.clone()
            } else {
                let hex = r.id.strip_prefix("sha256:").unwrap_or(&r.id);
                hex.chars().take(12).collect()
            };
            let created = r
                .created
                .as_deref()
                .and_then(kiln_llb::time::parse_rfc3339)
                .map_or_else(|| "N/A".to_owned(), |t| ago(now - t));
            let by = r.created_by.replace(['\t', '\n', '\r'], " ");
            let by = if no_trunc {
                by
            } else {
                ellipsis(&by, CREATED_BY_WIDTH)
            };
            [id, created, by, human_size(r.size), r.comment.clone()]
        })
        .collect();
    let header = ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"];
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cols: [&str; 5]| {
        let mut s = String::new();
        for (i, (cell, w)) in cols.iter().zip(widths).enumerate() {
            if i + 1 == cols.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}   "));
            }
        }
        format!("{}\n", s.trim_end())
    };
    let mut out = line(header);
    for row in &cells {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    out
}

/// Docker's `Ellipsis`: at most `width` characters, the last one `…` when cut.
fn ellipsis(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// Docker's `HumanDuration` + " ago".
fn ago(seconds: i64) -> String {
    let s = seconds.max(0);
    let (minutes, hours) = (s / 60, s / 3600);
    let text = if s < 1 {
        "Less than a second".to_owned()
    } else if s == 1 {
        "1 second".to_owned()
    } else if s < 60 {
        format!("{s} seconds")
    } else if minutes == 1 {
        "About a minute".to_owned()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".to_owned()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    };
    format!("{text} ago")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_ellipsis_read_like_dockers() {
        assert_eq!(ago(0), "Less than a second ago");
        assert_eq!(ago(30), "30 seconds ago");
        assert_eq!(ago(90), "About a minute ago");
        assert_eq!(ago(3 * 3600), "3 hours ago");
        assert_eq!(ago(5 * 86_400), "5 days ago");
        assert_eq!(ago(60 * 86_400), "2 months ago");
        assert_eq!(ago(3 * 365 * 86_400), "3 years ago");
        assert_eq!(ellipsis("short", 45), "short");
        let cut = ellipsis(&"x".repeat(50), 45);
        assert_eq!(cut.chars().count(), 45);
        assert!(cut.ends_with('…'));
    }
}
