//! `kiln build`'s arguments resolved once into what its phases use (ripgrep's `lowargs` →
//! `hiargs`): clap's [`BuildArgs`] is read here and nowhere after, so every flag is checked
//! — and every file it names read — before the Dockerfile is, and a phase's inputs are
//! visible in one struct.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::Result;
use kiln_frontend::scope::BuildOptions;
use kiln_solver::registry::Registry;
use kiln_solver::secrets::Redactor;
use kiln_solver::store::Store;

use crate::cli::BuildArgs;
use crate::commands::build_input::{
    build_options, locate, named_contexts, no_cache_stages, platforms, secrets, ssh_agents,
};
use crate::commands::cache_spec::{self, CacheSpec};
use crate::commands::open_store;
use crate::commands::outputs::Outputs;
use crate::commands::progress;
use crate::commands::registry::registry_for;
use crate::time;

/// One build, as its arguments describe it.
pub(super) struct BuildConfig {
    /// How progress is shown.
    pub(super) view: progress::View,
    /// `-q`: only the image id on stdout.
    pub(super) quiet: bool,
    /// The store built into.
    pub(super) store: Store,
    /// The registry client for pulls, pushes and caches.
    pub(super) registry: Registry,
    /// The Dockerfile (`-`: standard input).
    pub(super) dockerfile: PathBuf,
    /// The context directory (`None` for a context of `-`).
    pub(super) context_dir: Option<PathBuf>,
    /// The context as given (what `--explain-cache` names a stdin Dockerfile's build by).
    pub(super) context_arg: PathBuf,
    /// Build args, platform, target and network, for the frontend (the first platform's).
    pub(super) build: BuildOptions,
    /// `--platform`'s list; more than one makes a multi-platform image.
    pub(super) platforms: Vec<kiln_llb::Platform>,
    /// The `--build-arg` keys as given (whether or not they had a value).
    pub(super) build_arg_keys: BTreeSet<String>,
    /// `--build-context NAME=DIR`.
    pub(super) named_dirs: BTreeMap<String, PathBuf>,
    /// `--build-context NAME=oci-layout://…|docker-image://…`.
    pub(super) context_aliases: Vec<(String, String)>,
    /// `SOURCE_DATE_EPOCH` from the environment or `--build-arg`.
    pub(super) epoch: Option<i64>,
    /// `--pull`.
    pub(super) pull: bool,
    /// `--secret` values (never logged).
    pub(super) secrets: BTreeMap<String, Vec<u8>>,
    /// Every secret value, in every shape it could be printed in.
    pub(super) redactor: Redactor,
    /// `--ssh` agent sockets.
    pub(super) ssh: BTreeMap<String, PathBuf>,
    /// `--runtime`.
    pub(super) runtime: Option<String>,
    /// `--no-cache`.
    pub(super) no_cache: bool,
    /// `--no-cache-filter`, lowercased.
    pub(super) no_cache_stages: BTreeSet<String>,
    /// `--cache-from`, each with its text for messages.
    pub(super) cache_from: Vec<(String, CacheSpec)>,
    /// `--cache-to`.
    pub(super) cache_to: Vec<CacheSpec>,
    /// `--explain-cache`.
    pub(super) explain_cache: bool,
    /// Every output: `-o`, `--load`, and the store's names and pushes of `-t`/`--push`.
    pub(super) outputs: Outputs,
    /// `--label KEY[=VALUE]`.
    pub(super) labels: Vec<(String, String)>,
    /// `-t`.
    pub(super) tags: Vec<String>,
    /// `--iidfile`.
    pub(super) iidfile: Option<PathBuf>,
    /// `--metadata-file`.
    pub(super) metadata_file: Option<PathBuf>,
}

impl BuildConfig {
    /// The frontend's options for each image the build makes: one per `--platform` of a
    /// multi-platform build (its platform label beside it), else the one build.
    pub(super) fn per_platform(&self) -> Vec<(BuildOptions, Option<kiln_llb::Platform>)> {
        if self.platforms.len() < 2 {
            return vec![(self.build.clone(), None)];
        }
        self.platforms
            .iter()
            .map(|p| {
                let mut build = self.build.clone();
                build.target_platform = p.clone();
                build.platform_in_names = true;
                (build, Some(p.clone()))
            })
            .collect()
    }

    /// Resolves `args`: opens the store, reads the config, secrets and ignore files they
    /// name, and checks every flag against the others.
    pub(super) fn resolve(args: &BuildArgs) -> Result<Self> {
        let view = progress::View::select(args.progress, args.quiet);
        let store = open_store(&args.store)?;
        let registry = registry_for(&args.registry)?;
        let epoch = time::source_date_epoch(&args.build_args)?;
        // Checked before anything is built, so a typo does not cost a build.
        let cache_to = args
            .cache_to
            .iter()
            .map(|s| cache_spec::parse("--cache-to", s, true))
            .collect::<Result<Vec<_>>>()?;
        let cache_from = args
            .cache_from
            .iter()
            .map(|s| Ok((s.clone(), cache_spec::parse("--cache-from", s, false)?)))
            .collect::<Result<Vec<_>>>()?;
        let outputs = Outputs::plan(args)?;
        let (dockerfile, context_dir) = locate(args)?;
        let build = build_options(args)?;
        let platforms = platforms(args.platform.as_deref())?;
        let (named_dirs, context_aliases) = named_contexts(&args.build_contexts)?;
        let secrets = secrets(&args.secrets)?;
        let redactor = Redactor::new(secrets.values().map(Vec::as_slice));
        Ok(BuildConfig {
            view,
            quiet: args.quiet,
            store,
            registry,
            dockerfile,
            context_dir,
            context_arg: args.context.clone(),
            build,
            platforms,
            build_arg_keys: args
                .build_args
                .iter()
                .map(|a| a.split_once('=').map_or(a.as_str(), |(k, _)| k).to_owned())
                .collect(),
            named_dirs,
            context_aliases,
            epoch,
            pull: args.pull,
            secrets,
            redactor,
            ssh: ssh_agents(&args.ssh)?,
            runtime: args.runtime.clone(),
            no_cache: args.no_cache,
            no_cache_stages: no_cache_stages(args),
            cache_from,
            cache_to,
            explain_cache: args.explain_cache,
            outputs,
            // docker build: `--label KEY` alone sets an empty value.
            labels: args
                .labels
                .iter()
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
                    (k.to_owned(), v.to_owned())
                })
                .collect(),
            tags: args.tags.clone(),
            iidfile: args.iidfile.clone(),
            metadata_file: args.metadata_file.clone(),
        })
    }
}
