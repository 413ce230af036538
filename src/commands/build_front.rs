//! `kiln build`'s first phase: the Dockerfile parsed and lowered to ops; the base images
//! whose configs lowering needs are pulled into the store on the way (the image source, which
//! the solve shares, pulls the ones only read by `COPY --from` when it reaches them).

use std::process::ExitCode;

use kiln_frontend::diagnostics::Diagnostic;
use kiln_frontend::lower::{LowerOptions, lower};
use kiln_frontend::parser;
use kiln_frontend::scope::BuildOptions;
use kiln_frontend::stages::StageGraph;
use std::sync::Arc;

use kiln_solver::source::image::ImageSource;

use crate::commands::build_config::BuildConfig;
use crate::commands::build_images::FrontendImages;
use crate::commands::build_state::{Front, Phase};
use crate::commands::report;
use crate::source::read_dockerfile;
use crate::time;

/// Parses and lowers the Dockerfile with `build`'s args and platform, pulling the base images
/// it needs.
pub(super) fn frontend(config: &BuildConfig, build: &BuildOptions) -> Phase<Front> {
    let src = read_dockerfile(&config.dockerfile)?;
    let parsed = match parser::parse(&src.text) {
        Ok(p) => p,
        Err(d) => {
            report(&d, &src.name, &src.text);
            return Ok(Err(ExitCode::FAILURE));
        }
    };
    let dir_names: Vec<String> = config.named_dirs.keys().cloned().collect();
    let lower_opts = LowerOptions {
        build,
        file: &src.name,
        // Without an epoch, times are left to the commit: each new layer's is when its cache
        // record was first made (BuildKit's rule), so a cached rebuild is the same image.
        created: config.epoch.map(time::rfc3339),
        named_contexts: &dir_names,
        context_aliases: &config.context_aliases,
    };
    let images = Arc::new(ImageSource::new(
        &config.store,
        &config.registry,
        config.pull,
    ));
    let mut lowered = match lower(&parsed, &src.text, &lower_opts, &FrontendImages(&images)) {
        Ok(l) => l,
        Err(d) => {
            report(&d, &src.name, &src.text);
            return Ok(Err(ExitCode::FAILURE));
        }
    };
    // BuildKit also takes the epoch from the Dockerfile: a global `ARG SOURCE_DATE_EPOCH=N`.
    let epoch = match config.epoch {
        Some(epoch) => Some(epoch),
        None => match dockerfile_epoch(&lowered.graph) {
            Ok(Some(epoch)) => {
                let created = time::rfc3339(epoch);
                for h in lowered
                    .config
                    .history
                    .iter_mut()
                    .filter(|h| h.created.is_none())
                {
                    h.created = Some(created.clone());
                }
                lowered.config.created = Some(created);
                Some(epoch)
            }
            Ok(None) => None,
            Err(d) => {
                report(&d, &src.name, &src.text);
                return Ok(Err(ExitCode::FAILURE));
            }
        },
    };
    Ok(Ok(Front {
        src,
        lowered,
        epoch,
        images,
    }))
}

/// The epoch a global `ARG SOURCE_DATE_EPOCH` gives (its default, or the build arg that
/// overrides it): seconds since 1970, or an error at the ARG.
fn dockerfile_epoch(graph: &StageGraph) -> Result<Option<i64>, Diagnostic> {
    const NAME: &str = "SOURCE_DATE_EPOCH";
    let Some(value) = graph
        .global_value(NAME)
        .map(str::trim)
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    let span = graph.global_span(NAME).unwrap_or_default();
    if let Ok(epoch) = value.parse::<i64>() {
        return Ok(Some(epoch));
    }
    if graph.stages.iter().any(|s| {
        s.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(value))
    }) {
        return Err(Diagnostic::error(
            format!("SOURCE_DATE_EPOCH={value} names a stage: an epoch taken from a source stage's timestamps is not supported by kiln"),
            span,
        )
        .with_hint("give a number of seconds since 1970, here or with --build-arg SOURCE_DATE_EPOCH=N"));
    }
    Err(
        Diagnostic::error(format!("invalid SOURCE_DATE_EPOCH: {value}"), span)
            .with_hint("a number of seconds since 1970"),
    )
}
