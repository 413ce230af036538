//! `kiln parse`: print a Dockerfile's syntax tree (BuildKit's dump, or typed JSON).

use std::process::ExitCode;

use anyhow::Result;
use kiln_frontend::parser;

use crate::cli::{ParseArgs, ParseFormat};
use crate::commands::{print_stdout, report};
use crate::source::read_dockerfile;

pub(crate) fn run(args: &ParseArgs) -> Result<ExitCode> {
    let src = read_dockerfile(&args.file)?;
    let parsed = match parser::parse(&src.text) {
        Ok(p) => p,
        Err(diag) => {
            report(&diag, &src.name, &src.text);
            return Ok(ExitCode::FAILURE);
        }
    };
    for w in &parsed.warnings {
        report(w, &src.name, &src.text);
    }
    match args.format {
        ParseFormat::Buildkit => print_stdout(&parser::dump(&parsed.nodes))?,
        ParseFormat::Json => {
            let doc = match kiln_frontend::json_document(&parsed, &src.text) {
                Ok(doc) => doc,
                Err(diag) => {
                    report(&diag, &src.name, &src.text);
                    return Ok(ExitCode::FAILURE);
                }
            };
            print_stdout(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
