//! `kiln build --call outline|targets[,format=json]`: BuildKit's frontend subrequests, which
//! describe a build instead of running it. Nothing is built and the store is not opened;
//! the report goes to standard output in the layout buildx prints (or as JSON).

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use kiln_frontend::outline::{Outline, TargetList, outline, targets};
use kiln_frontend::parser;

use crate::call_spec::{CallSpec, Method};
use crate::cli::BuildArgs;
use crate::commands::build_input::{build_options, locate};
use crate::commands::{print_stdout, report};
use crate::source::read_dockerfile;

/// Prints what `spec` asks about the Dockerfile `args` names; builds nothing.
pub(crate) fn run(args: &BuildArgs, spec: CallSpec) -> Result<ExitCode> {
    let (dockerfile, _) = locate(args)?;
    let src = read_dockerfile(&dockerfile)?;
    let parsed = match parser::parse(&src.text) {
        Ok(p) => p,
        Err(d) => {
            report(&d, &src.name, &src.text);
            return Ok(ExitCode::FAILURE);
        }
    };
    let text = match spec.method {
        Method::Outline => {
            let opts = build_options(args)?;
            match outline(&parsed, &src.text, &opts) {
                Ok(o) if spec.json => format!("{}\n", serde_json::to_string_pretty(&o)?),
                Ok(o) => outline_text(&o),
                Err(d) => {
                    report(&d, &src.name, &src.text);
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        Method::Targets => match targets(&parsed, &src.text) {
            Ok(t) if spec.json => format!("{}\n", serde_json::to_string_pretty(&t)?),
            Ok(t) => targets_text(&t),
            Err(d) => {
                report(&d, &src.name, &src.text);
                return Ok(ExitCode::FAILURE);
            }
        },
        Method::Build => anyhow::bail!("internal: --call build reached the call renderer"),
    };
    print_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// BuildKit's `PrintOutline`: a `TARGET:`/`DESCRIPTION:` header when the target has a name,
/// then one table per kind, each followed by a blank line.
fn outline_text(o: &Outline) -> String {
    let mut out = String::new();
    if o.name.is_some() || !o.description.is_empty() {
        let mut rows = vec![vec![
            "TARGET:".to_owned(),
            o.name.clone().unwrap_or_else(|| "(default)".to_owned()),
        ]];
        if !o.description.is_empty() {
            rows.push(vec!["DESCRIPTION:".to_owned(), o.description.clone()]);
        }
        out.push_str(&table(&rows, 1));
        out.push('\n');
    }
    if !o.args.is_empty() {
        let mut rows = vec![vec![
            "BUILD ARG".to_owned(),
            "VALUE".to_owned(),
            "DESCRIPTION".to_owned(),
        ]];
        rows.extend(o.args.iter().map(|a| {
            vec![
                a.name.clone(),
                a.value.clone().unwrap_or_default(),
                a.description.clone(),
            ]
        }));
        out.push_str(&table(&rows, 3));
        out.push('\n');
    }
    for (title, mounts) in [("SECRET", &o.secrets), ("SSH", &o.ssh)] {
        if mounts.is_empty() {
            continue;
        }
        let mut rows = vec![vec![title.to_owned(), "REQUIRED".to_owned()]];
        rows.extend(mounts.iter().map(|m| {
            vec![
                m.id.clone(),
                if m.required { "true" } else { "" }.to_owned(),
            ]
        }));
        out.push_str(&table(&rows, 3));
        out.push('\n');
    }
    out
}

/// buildx's targets table, with the base each stage starts from; an unnamed stage shows its
/// index (what `COPY --from` takes), the default target is marked.
fn targets_text(t: &TargetList) -> String {
    let mut rows = vec![vec![
        "TARGET".to_owned(),
        "BASE".to_owned(),
        "DESCRIPTION".to_owned(),
    ]];
    for s in &t.targets {
        let mut name = s.name.clone().unwrap_or_else(|| s.index.to_string());
        if s.default {
            name.push_str(" (default)");
        }
        let base = match &s.platform {
            Some(p) => format!("{} ({p})", s.base),
            None => s.base.clone(),
        };
        rows.push(vec![name, base, s.description.clone()]);
    }
    table(&rows, 3)
}

/// Aligned columns as Go's `tabwriter` lays them out (every column but the last padded to
/// its widest cell plus `padding` spaces), without trailing blanks.
fn table(rows: &[Vec<String>], padding: usize) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 < row.len() {
                let _ = write!(line, "{cell:<w$}", w = widths[c] + padding);
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_all_but_the_last_column() {
        let rows = vec![
            vec!["A".to_owned(), "VALUE".to_owned(), "D".to_owned()],
            vec!["LONGER".to_owned(), String::new(), String::new()],
        ];
        assert_eq!(table(&rows, 3), "A        VALUE   D\nLONGER\n");
    }
}
