//! The command-line interface: every subcommand and flag, as clap definitions.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// kiln — build OCI images from Dockerfiles, without a daemon.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about, long_about = None)]
#[command(
    after_help = "Examples:\n  kiln build -t app:1.0 .\n  kiln build --call outline .          # the build args, secrets and ssh a build takes\n  kiln images\n  kiln push app:1.0 registry.example.com/team/app:1.0\n  kiln parse --format json - < Dockerfile\n\nRun `kiln <command> --help` for a command's flags and examples."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build an image from a Dockerfile and a context directory.
    #[command(
        after_help = "Examples:\n  kiln build -t app:1.0 .\n  kiln build -f build/Dockerfile --target test .\n  SOURCE_DATE_EPOCH=0 kiln build -o type=oci,dest=app.tar .\n  kiln build --build-context assets=../assets -t site .\n  kiln build --call targets .                     # list the stages\n  kiln build --call outline --target app .        # build args, secrets, ssh of a stage\n  kiln build --network none --no-cache-filter test -t app ."
    )]
    Build(Box<BuildArgs>),
    /// List the images in kiln's store.
    #[command(after_help = "Examples:\n  kiln images\n  kiln images --root /srv/kiln")]
    Images(StoreArgs),
    /// Give an image another name.
    #[command(
        after_help = "Examples:\n  kiln tag app:1.0 app:latest\n  kiln tag app:1.0 registry.example.com/team/app:1.0"
    )]
    Tag(TagArgs),
    /// Remove image names (blobs are freed by prune).
    #[command(
        after_help = "Examples:\n  kiln rmi app:1.0\n  kiln rmi app:1.0 app:latest && kiln prune -f"
    )]
    Rmi(RmiArgs),
    /// Parse a Dockerfile and print its syntax tree.
    #[command(
        after_help = "Examples:\n  kiln parse                       # ./Dockerfile, BuildKit's dump format\n  kiln parse --format json app.Dockerfile\n  cat Dockerfile | kiln parse -"
    )]
    Parse(ParseArgs),
    /// Download an image from a registry into the store.
    #[command(
        after_help = "Examples:\n  kiln pull busybox\n  kiln pull --platform linux/arm64 127.0.0.1:5000/base:1"
    )]
    Pull(PullArgs),
    /// Upload an image from the store to a registry.
    #[command(
        after_help = "Examples:\n  kiln push registry.example.com/app:1.0\n  kiln push app:1.0 127.0.0.1:5000/team/app:1.0"
    )]
    Push(PushArgs),
    /// Show the store's disk usage by kind (apparent size, as `du -sb` counts it).
    #[command(after_help = "Examples:\n  kiln du\n  kiln du --format json")]
    Du(DuArgs),
    /// Remove what no tagged image needs: unreachable blobs, stale snapshots, dead cache entries.
    #[command(
        after_help = "Examples:\n  kiln prune -f\n  kiln prune --all -f                      # also the build cache images do not need\n  kiln prune --keep-storage 2GB -f         # keep the newest 2 GB of build cache\n  kiln prune --all --filter until=24h -f   # only what is older than a day"
    )]
    Prune(PruneArgs),
    /// Show the history of an image, newest step first.
    #[command(
        after_help = "Examples:\n  kiln history app:1.0\n  kiln history --no-trunc app:1.0\n  kiln history --format json app:1.0"
    )]
    History(HistoryArgs),
    /// Show an image's id, names, manifest and config as JSON.
    #[command(
        after_help = "Examples:\n  kiln inspect app:1.0\n  kiln inspect app:1.0 | jq '.[0].Config.config.Env'"
    )]
    Inspect(InspectArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  kiln completion bash > /etc/bash_completion.d/kiln\n  kiln completion zsh > \"${fpath[1]}/_kiln\"\n  kiln completion fish > ~/.config/fish/completions/kiln.fish"
    )]
    Completion(CompletionArgs),
    /// Print kiln's man page (roff), or write one per subcommand into a directory.
    #[command(hide = true)]
    Man(ManArgs),
    /// Print kiln's version.
    #[command(after_help = "Examples:\n  kiln version\n  kiln --version")]
    Version,
}

/// How kiln talks to registries.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RegistryArgs {
    /// Talk plain HTTP to this registry (`HOST[:PORT]`, repeatable); localhost and 127.0.0.1
    /// always are. Also read from `insecure-registries` in $KILN_CONFIG
    /// (default /etc/kiln/config.json).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub(crate) insecure_registries: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PullArgs {
    /// The image reference, `[REGISTRY/]REPO[:TAG][@DIGEST]`.
    pub(crate) reference: String,
    /// The platform to pick from a multi-platform image (default: this host's); several,
    /// comma-separated, pull each.
    #[arg(long)]
    pub(crate) platform: Option<String>,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PushArgs {
    /// The image in the store, by name or id.
    pub(crate) source: String,
    /// Where to push it (default: the source name).
    pub(crate) destination: Option<String>,
    /// Write the pushed digest as JSON to this file.
    #[arg(long = "metadata-file", value_name = "FILE")]
    pub(crate) metadata_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

/// Where kiln keeps its store.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StoreArgs {
    /// The state directory (default: $KILN_ROOT, /var/lib/kiln for root, else
    /// $XDG_DATA_HOME/kiln).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct BuildArgs {
    /// The build context directory (`-` reads a Dockerfile from stdin, with no context).
    pub(crate) context: PathBuf,
    /// The Dockerfile (default: PATH/Dockerfile; `-` reads standard input).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// Name the image (repeatable), `name[:tag]`.
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub(crate) tags: Vec<String>,
    /// Set a build-time variable (repeatable); `KEY` alone takes it from the environment.
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]", value_parser = build_arg)]
    pub(crate) build_args: Vec<String>,
    /// Build this stage instead of the last one.
    #[arg(long)]
    pub(crate) target: Option<String>,
    /// Do not use the cache.
    #[arg(long)]
    pub(crate) no_cache: bool,
    /// Do not use the cache for the steps of this stage (repeatable, by `AS` name); the other
    /// stages keep using it.
    #[arg(long = "no-cache-filter", value_name = "STAGE")]
    pub(crate) no_cache_filter: Vec<String>,
    /// Explain, on standard error, why each step missed the cache compared with the last
    /// build of the same Dockerfile and target in this store.
    #[arg(long)]
    pub(crate) explain_cache: bool,
    /// The network of RUN steps without a `--network` of their own: `default` (the host's,
    /// as BuildKit's OCI worker without CNI), `none` (loopback only) or `host`.
    #[arg(long, value_enum, default_value_t = NetworkArg::Default, value_name = "MODE")]
    pub(crate) network: NetworkArg,
    /// Describe the build instead of running it: `outline` (the build args, secrets and SSH
    /// agents the target takes) or `targets` (the stages); add `,format=json` for JSON.
    #[arg(
        long,
        value_name = "outline|targets[,format=json]",
        value_parser = crate::call_spec::parse_spec
    )]
    pub(crate) call: Option<crate::call_spec::CallSpec>,
    /// Set a label on the image (repeatable), `KEY=VALUE`; overrides a LABEL of the same key.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub(crate) labels: Vec<String>,
    /// Always look base images up in their registry, even when the store has them.
    #[arg(long)]
    pub(crate) pull: bool,
    /// Push every `-t` name to its registry after the build.
    #[arg(long)]
    pub(crate) push: bool,
    /// Import build cache: `type=registry,ref=REPO[:TAG]` or `type=local,src=DIR`
    /// (repeatable).
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub(crate) cache_from: Vec<String>,
    /// Export build cache: `type=registry,ref=REPO[:TAG][,mode=min|max]` or
    /// `type=local,dest=DIR[,mode=min|max]` (repeatable).
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub(crate) cache_to: Vec<String>,
    /// Target platform, `os/arch[/variant]`; several, comma-separated, build one image per
    /// platform under one index (`linux/amd64,linux/arm64`).
    #[arg(long)]
    pub(crate) platform: Option<String>,
    /// Extra named contexts: `NAME=DIR`, `NAME=oci-layout://PATH[:tag|@digest]` or
    /// `NAME=docker-image://REF`.
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub(crate) build_contexts: Vec<String>,
    /// Export the result, as buildx names it (repeatable): `type=image[,name=N][,push=true]`,
    /// `type=registry,name=N`, `type=oci,dest=FILE.tar` (`tar=false`: a layout directory),
    /// `type=docker,dest=FILE`, `type=local,dest=DIR`, `type=tar,dest=FILE`; `dest=-` (or
    /// `-o -`) streams a tar to stdout. Image outputs take `compression=gzip|zstd|uncompressed`,
    /// `compression-level=N`, `force-compression=true`, `oci-mediatypes=false`,
    /// `annotation[-manifest-descriptor].KEY=V`.
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub(crate) outputs: Vec<String>,
    /// Load the image into docker (or podman) when the build is done: `-o type=docker`.
    #[arg(long)]
    pub(crate) load: bool,
    /// Add an annotation to the image: `[manifest:|manifest-descriptor:]KEY=VALUE`
    /// (repeatable).
    #[arg(long = "annotation", value_name = "[TYPE:]KEY=VALUE")]
    pub(crate) annotations: Vec<String>,
    /// Write the image id (manifest digest) to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) iidfile: Option<PathBuf>,
    /// Write build metadata (image digest, config digest, names) as JSON to this file.
    #[arg(long = "metadata-file", value_name = "FILE")]
    pub(crate) metadata_file: Option<PathBuf>,
    /// Print only the image id.
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// How progress is shown on standard error: `auto` (the live view on a terminal, else
    /// plain), `tty`, `plain`, `quiet` or `rawjson` (one JSON object per event).
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto, value_name = "MODE")]
    pub(crate) progress: ProgressMode,
    /// A secret for RUN --mount=type=secret: `id=NAME,src=PATH` or `id=NAME,env=VAR`.
    #[arg(
        long = "secret",
        value_name = "id=NAME,src=PATH|env=VAR",
        value_parser = secret_spec
    )]
    pub(crate) secrets: Vec<String>,
    /// An SSH agent for RUN --mount=type=ssh: `default` (from $SSH_AUTH_SOCK) or `ID=SOCKET`.
    #[arg(long = "ssh", value_name = "default|ID=SOCKET")]
    pub(crate) ssh: Vec<String>,
    /// How RUN steps are executed: the built-in sandbox (default) or an OCI runtime such as
    /// `runc` ($KILN_RUNTIME).
    #[arg(long, env = "KILN_RUNTIME", value_name = "sandbox|runc|PATH")]
    pub(crate) runtime: Option<String>,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TagArgs {
    /// An existing image name or id.
    pub(crate) source: String,
    /// The new name.
    pub(crate) target: String,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RmiArgs {
    /// Image names to remove.
    #[arg(required = true)]
    pub(crate) names: Vec<String>,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ParseArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ParseFormat::Buildkit)]
    pub(crate) format: ParseFormat,
    /// The Dockerfile to parse (`-` reads standard input).
    #[arg(default_value = "Dockerfile")]
    pub(crate) file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ParseFormat {
    /// BuildKit's `Node.Dump()` format, byte for byte.
    Buildkit,
    /// The typed instructions with their spans, as JSON.
    Json,
}

/// `kiln build --progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProgressMode {
    /// `tty` when standard error is a terminal, else `plain`.
    Auto,
    /// A live view: one line per step, a timer, the tail of a running step's output.
    Tty,
    /// One line per event, every output line prefixed by its step number (CI logs).
    Plain,
    /// Nothing but errors.
    Quiet,
    /// One JSON object per event, for programs.
    Rawjson,
}

/// `kiln build --network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum NetworkArg {
    /// The builder's default: the host's network.
    Default,
    /// No network but loopback (a network namespace of its own).
    None,
    /// The host's network.
    Host,
}

/// `--build-arg KEY[=VALUE]`: the key must not be empty.
fn build_arg(value: &str) -> Result<String, String> {
    match value.split_once('=').map_or(value, |(k, _)| k) {
        "" => {
            Err("the name is empty: use KEY=VALUE, or KEY to take it from the environment".into())
        }
        _ => Ok(value.to_owned()),
    }
}

/// `--secret`: checked here so that a malformed one is a usage error; the values are read
/// when the build starts.
fn secret_spec(value: &str) -> Result<String, String> {
    let (mut id, mut src, mut env) = (false, false, false);
    for field in value.split(',') {
        match field.split_once('=') {
            Some(("id", v)) if !v.is_empty() => id = true,
            Some(("src" | "source", v)) if !v.is_empty() => src = true,
            Some(("env", v)) if !v.is_empty() => env = true,
            Some(("type", "file" | "env")) => {}
            _ => {
                return Err(format!(
                    "unknown or empty field {field:?}: use id=NAME,src=PATH or id=NAME,env=VAR"
                ));
            }
        }
    }
    if !id && !env {
        return Err("id= is required: use id=NAME,src=PATH or id=NAME,env=VAR".into());
    }
    if !src && !env {
        return Err("give src=PATH or env=VAR".into());
    }
    Ok(value.to_owned())
}

/// Table for people, JSON for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TableFormat {
    /// Aligned columns.
    Table,
    /// JSON.
    Json,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DuArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub(crate) format: TableFormat,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PruneArgs {
    /// Also remove all build cache that no tagged image needs.
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Keep the most recently used build cache up to this size (`500MB`, `1.5GiB`; kB/MB/GB
    /// are powers of 1000, KiB/MiB/GiB of 1024).
    #[arg(long = "keep-storage", value_name = "SIZE")]
    pub(crate) keep_storage: Option<String>,
    /// Only remove what is older than this: `until=DURATION` (`24h`, `90m`, `7d`, `1h30m`).
    #[arg(long = "filter", value_name = "until=DURATION")]
    pub(crate) filters: Vec<String>,
    /// Also empty the RUN --mount=type=cache directories.
    #[arg(long = "cache-mounts")]
    pub(crate) cache_mounts: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct HistoryArgs {
    /// The image, by name or id.
    pub(crate) image: String,
    /// The platform's image, of a name built or pulled for several (default: this host's).
    #[arg(long)]
    pub(crate) platform: Option<String>,
    /// Do not truncate the CREATED BY column.
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub(crate) format: TableFormat,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// Images, by name or id.
    #[arg(required = true)]
    pub(crate) images: Vec<String>,
    /// The platform's image, of a name built or pulled for several (default: this host's).
    #[arg(long)]
    pub(crate) platform: Option<String>,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CompletionArgs {
    /// The shell to complete for.
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ManArgs {
    /// Write `kiln.1` and one page per subcommand (`kiln-build.1`, …) into this directory
    /// instead of printing `kiln.1`.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}
