//! `kiln build`: parse, lower, solve, commit the image, tag it and export it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use kiln_frontend::diagnostics::Diagnostic;
use kiln_frontend::lower::{BaseImages, LowerOptions, lower};
use kiln_frontend::parser;
use kiln_frontend::span::Span;
use kiln_llb::{ImageConfig, Source};
use kiln_solver::context::Context;
use kiln_solver::layer::LayerOptions;
use kiln_solver::solve::{Progress, SolveError, SolveOptions, Solver, commit_image};
use kiln_solver::store::Store;

use crate::cli::BuildArgs;
use crate::commands::build_input::{build_options, locate, named_contexts, secrets, ssh_agents};
use crate::commands::registry::registry_for;
use crate::commands::{open_store, outputs, print_stdout, progress, report};
use crate::source::{DockerfileSource, read_dockerfile};
use crate::time;
use kiln_solver::registry::Registry;
use kiln_solver::remote_cache::{CacheConfig, CacheRecord, RemoteCaches, select_records};
use kiln_solver::secrets::Redactor;

use crate::commands::cache_spec::{self, CacheLocation, CacheSpec};

/// Base images come from kiln's own store, for the platform each stage asks; one the store
/// lacks for that platform (or every one, with `--pull`) is pulled from its registry first,
/// once per build.
struct StoreImages<'a> {
    store: &'a Store,
    registry: &'a Registry,
    always_pull: bool,
    quiet: bool,
    pulled: std::cell::RefCell<std::collections::BTreeSet<(String, kiln_llb::Platform)>>,
}

impl BaseImages for StoreImages<'_> {
    fn config(&self, source: &Source) -> Result<ImageConfig, String> {
        if let Source::Image {
            reference,
            platform,
        } = source
        {
            self.pull_if_needed(reference, platform)?;
        }
        let resolved =
            kiln_solver::image::resolve(self.store, source).map_err(|e| e.to_string())?;
        if let Some(warning) = &resolved.warning {
            progress::note(&format!("warning: {warning}"));
        }
        Ok(resolved.config)
    }
}

impl StoreImages<'_> {
    fn pull_if_needed(&self, reference: &str, platform: &kiln_llb::Platform) -> Result<(), String> {
        let key = (reference.to_owned(), platform.clone());
        if self.pulled.borrow().contains(&key) {
            return Ok(());
        }
        let started = Instant::now();
        let pulled = kiln_solver::registry::block_on(self.registry.ensure_image(
            self.store,
            reference,
            platform,
            self.always_pull,
        ))
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        if let Some(pulled) = pulled
            && !self.quiet
        {
            progress::note(&format!(
                "pulled {} {} for {platform} ({} blobs downloaded) in {:.2}s",
                kiln_solver::store::familiar_name(&pulled.reference),
                pulled.manifest_digest,
                pulled.downloaded,
                started.elapsed().as_secs_f64()
            ));
        }
        self.pulled.borrow_mut().insert(key);
        Ok(())
    }
}

pub(crate) fn run(args: &BuildArgs) -> Result<ExitCode> {
    if let Some(spec) = args
        .call
        .filter(|c| c.method != crate::call_spec::Method::Build)
    {
        return crate::commands::call::run(args, spec);
    }
    let started = Instant::now();
    let view = progress::View::select(args.progress, args.quiet);
    let store = open_store(&args.store)?;
    // Held for the whole build: `kiln prune` waits for it, so it never removes a blob or a
    // snapshot this build is writing or about to reference.
    let _store_lock = kiln_solver::store::StoreLock::shared(store.root())?;
    let (dockerfile, context_dir) = locate(args)?;
    let src = read_dockerfile(&dockerfile)?;
    let parsed = match parser::parse(&src.text) {
        Ok(p) => p,
        Err(d) => {
            report(&d, &src.name, &src.text);
            return Ok(ExitCode::FAILURE);
        }
    };
    let epoch = time::source_date_epoch()?;
    let build = build_options(args)?;
    let (named_dirs, aliases) = named_contexts(&args.build_contexts)?;
    let dir_names: Vec<String> = named_dirs.keys().cloned().collect();
    let lower_opts = LowerOptions {
        build: &build,
        file: &src.name,
        created: Some(time::rfc3339(epoch.unwrap_or_else(time::now))),
        named_contexts: &dir_names,
        context_aliases: &aliases,
    };
    let registry = registry_for(&args.registry)?;
    let images = StoreImages {
        store: &store,
        registry: &registry,
        always_pull: args.pull,
        quiet: args.quiet,
        pulled: Default::default(),
    };
    let lowered = match lower(&parsed, &src.text, &lower_opts, &images) {
        Ok(l) => l,
        Err(d) => {
            report(&d, &src.name, &src.text);
            return Ok(ExitCode::FAILURE);
        }
    };
    // Images only read by COPY --from or RUN --mount=from= were not needed while lowering;
    // pull any the store lacks now, before the solver looks for them.
    for (i, op) in lowered.definition.ops.iter().enumerate() {
        if let kiln_llb::Op::Source(Source::Image {
            reference,
            platform,
        }) = op
            && let Err(e) = images.pull_if_needed(reference, platform)
        {
            report(
                &Diagnostic::error(
                    format!("pulling {reference}: {e}"),
                    op_span(&lowered.definition, i),
                ),
                &src.name,
                &src.text,
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    let mut contexts = BTreeMap::new();
    let df_path = (dockerfile != Path::new("-")).then_some(dockerfile.as_path());
    match &context_dir {
        Some(dir) => {
            contexts.insert("context".to_owned(), Context::open(dir, df_path)?);
        }
        None => {
            let empty = store.root().join("tmp/empty-context");
            std::fs::create_dir_all(&empty)
                .with_context(|| format!("creating {}", empty.display()))?;
            contexts.insert("context".to_owned(), Context::open(&empty, None)?);
        }
    }
    for (name, dir) in &named_dirs {
        contexts.insert(name.clone(), Context::open(dir, None)?);
    }
    let secret_values = secrets(&args.secrets)?;
    let redactor = Redactor::new(secret_values.values().map(Vec::as_slice));
    crate::stderr::set_redactor(redactor.clone());
    let solve_opts = SolveOptions {
        contexts,
        no_cache: args.no_cache,
        no_cache_stages: args
            .no_cache_filter
            .iter()
            .map(|s| s.to_lowercase())
            .collect(),
        layer: LayerOptions {
            source_date_epoch: epoch,
            ..LayerOptions::default()
        },
        executor: match crate::commands::executor_for(args.runtime.as_deref(), &store) {
            Ok(e) => Some(e),
            // An explicit --runtime that cannot be used is an error now; without one, only a
            // RUN step needs an executor and it reports the problem itself.
            Err(e) if args.runtime.is_some() => anyhow::bail!("--runtime: {e}"),
            Err(_) => None,
        },
        secrets: secret_values,
        ssh: ssh_agents(&args.ssh)?,
        remote_cache: import_caches(args, &store, &registry)?,
    };
    let cache_to = args
        .cache_to
        .iter()
        .map(|s| cache_spec::parse("--cache-to", s, true))
        .collect::<Result<Vec<_>>>()?;
    let remote_cache = solve_opts.remote_cache.clone();
    let (progress, rx) = Progress::channel();
    let printer = progress::spawn(rx, view);
    let solver = Solver::new(
        store.clone(),
        lowered.definition.clone(),
        solve_opts,
        progress,
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the scheduler")?;
    let result = runtime.block_on(solver.solve(lowered.target));
    drop(runtime);
    let records = solver.cache_records();
    let explain_steps = solver.explain_steps();
    // The solver holds the progress channel open; the printer ends when it is gone.
    drop(solver);
    let stats = printer.join().unwrap_or_default();
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            report_solve_error(&e, &lowered.definition, &src);
            return Ok(ExitCode::FAILURE);
        }
    };
    crate::commands::explain::after_build(
        args,
        &store,
        &dockerfile,
        &lowered,
        explain_steps,
        &redactor,
    );
    // A cache hit from an imported cache may have left a layer's blob remote; the image
    // needs them all before it is tagged.
    remote_cache
        .ensure_local(store.content(), result.layers())
        .map_err(|e| anyhow::anyhow!("fetching layers from the imported cache: {e}"))?;
    let mut config = lowered.config.clone();
    for label in &args.labels {
        // docker build: `--label KEY` alone sets an empty value.
        let (k, v) = label.split_once('=').unwrap_or((label.as_str(), ""));
        config.config.labels.insert(k.to_owned(), v.to_owned());
    }
    let platform = kiln_llb::Platform::new(&config.os, &config.architecture, &config.variant);
    // All or nothing: after a SIGINT/SIGTERM nothing more is committed, exported, pushed or
    // tagged, and the tag comes last, so an interrupted build never leaves a name behind.
    if cancelled() {
        return Ok(interrupted());
    }
    let image = commit_image(&store, config, result.layers()).map_err(anyhow::Error::msg)?;
    for spec in &args.outputs {
        if cancelled() {
            return Ok(interrupted());
        }
        outputs::export(
            &store,
            solver_snapshots(&store)?,
            spec,
            &image,
            result.layers(),
            &args.tags,
        )?;
    }
    for spec in &cache_to {
        if cancelled() {
            return Ok(interrupted());
        }
        export_cache(
            spec,
            &store,
            &registry,
            &remote_cache,
            &records,
            result.layers(),
            args.quiet,
        )?;
    }
    if args.push {
        if args.tags.is_empty() {
            bail!("--push needs a name to push to: add -t REGISTRY/REPOSITORY[:TAG]");
        }
        for tag in &args.tags {
            if cancelled() {
                return Ok(interrupted());
            }
            let started = Instant::now();
            let pushed = kiln_solver::registry::block_on(registry.push(
                &store,
                &image.manifest_digest,
                tag,
            ))??;
            if !args.quiet {
                progress::note(&format!(
                    "pushed {} {} in {:.2}s",
                    pushed.reference,
                    pushed.digest,
                    started.elapsed().as_secs_f64()
                ));
            }
        }
    }
    if cancelled() {
        return Ok(interrupted());
    }
    let mut names = Vec::new();
    for tag in &args.tags {
        let full = store
            .images()
            .tag_image(tag, &image.manifest_digest, &platform, false)
            .with_context(|| format!("tagging {tag}"))?;
        names.push(kiln_solver::store::familiar_name(&full));
    }
    let id = image.manifest_digest.to_string();
    if let Some(path) = &args.iidfile {
        kiln_solver::export::write_atomic(path, id.as_bytes())?;
    }
    if let Some(path) = &args.metadata_file {
        let mut meta = serde_json::json!({
            "containerimage.digest": id,
            "containerimage.config.digest": image.config_digest.to_string(),
            "image.name": names.join(","),
        });
        redactor.redact_json(&mut meta);
        kiln_solver::export::write_atomic(path, serde_json::to_string_pretty(&meta)?.as_bytes())?;
    }
    if args.quiet {
        print_stdout(&format!("{id}\n"))?;
    } else {
        progress::summary(view, &names, &image, &stats, started.elapsed());
    }
    Ok(ExitCode::SUCCESS)
}

fn cancelled() -> bool {
    kiln_solver::cancel::is_cancelled()
}

/// The exit of a build stopped by SIGINT/SIGTERM (what the shell reports for Ctrl-C).
fn interrupted() -> ExitCode {
    ExitCode::from(130)
}

/// Imports every `--cache-from`; like BuildKit, one that cannot be read is a warning.
fn import_caches(args: &BuildArgs, store: &Store, registry: &Registry) -> Result<RemoteCaches> {
    let mut caches = RemoteCaches::default();
    for spec in &args.cache_from {
        let parsed = cache_spec::parse("--cache-from", spec, false)?;
        let imported = match &parsed.location {
            CacheLocation::Registry(r) => kiln_solver::registry::block_on(
                kiln_solver::remote_cache::import_registry(registry, store, r),
            )
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string())),
            CacheLocation::Local(dir) => kiln_solver::remote_cache::import_local(dir),
        };
        match imported {
            Ok(cache) => {
                if !args.quiet {
                    progress::note(&format!("importing cache {spec}: {} records", cache.len()));
                }
                caches.push(cache);
            }
            Err(e) => progress::note(&format!("warning: --cache-from {spec}: {e}")),
        }
    }
    Ok(caches)
}

/// Writes the build's cache records to one `--cache-to` destination.
fn export_cache(
    spec: &CacheSpec,
    store: &Store,
    registry: &Registry,
    remote_cache: &RemoteCaches,
    records: &[CacheRecord],
    final_layers: &[kiln_solver::solve::LayerRecord],
    quiet: bool,
) -> Result<()> {
    let started = Instant::now();
    let records = select_records(records, spec.mode, final_layers);
    let layers: Vec<_> = records.iter().map(|r| r.layer.clone()).collect();
    remote_cache
        .ensure_local(store.content(), &layers)
        .map_err(|e| anyhow::anyhow!("exporting the cache: {e}"))?;
    let count = records.len();
    let config = CacheConfig::new(records);
    let (what, digest) = match &spec.location {
        CacheLocation::Registry(r) => (
            r.clone(),
            kiln_solver::registry::block_on(kiln_solver::remote_cache::export_registry(
                registry, store, r, &config,
            ))??,
        ),
        CacheLocation::Local(dir) => (
            dir.display().to_string(),
            kiln_solver::remote_cache::export_local(store, dir, &config)
                .map_err(|e| anyhow::anyhow!("--cache-to {}: {e}", dir.display()))?,
        ),
    };
    if !quiet {
        progress::note(&format!(
            "exported cache to {what}: {count} records, {digest} in {:.2}s",
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(())
}

fn solver_snapshots(store: &Store) -> Result<kiln_solver::snapshot::Snapshots> {
    kiln_solver::snapshot::Snapshots::open(store.root())
        .map_err(|e| anyhow::anyhow!("snapshots: {e}"))
}

fn report_solve_error(e: &SolveError, def: &kiln_llb::Definition, src: &DockerfileSource) {
    let span = match e {
        SolveError::Op { op, .. } => op_span(def, *op),
        SolveError::Definition(_) => Span::default(),
    };
    report(
        &Diagnostic::error(e.to_string(), span),
        &src.name,
        &src.text,
    );
}

/// The Dockerfile span op `op` was lowered from (empty when the op has no location).
fn op_span(def: &kiln_llb::Definition, op: usize) -> Span {
    def.locations
        .get(op)
        .map(|l| Span::new(l.span.0, l.span.1))
        .unwrap_or_default()
}
