//! A build's outputs: every `-o`, `--load` and the implied `type=image` of `-t`/`--push`,
//! parsed and checked before anything is built, then run through the solver's exporters.

use anyhow::{Result, bail};
use kiln_solver::export::Annotations;
use kiln_solver::output::{Built, Exported, Exporter, OutputKind, OutputSpec};

use crate::cli::BuildArgs;

/// The exporters of one build, in the order they run: the `-o` outputs as given, then the
/// store's names and pushes of `-t`/`--push` (last, so an interrupted build leaves no name).
pub(crate) struct Outputs {
    explicit: Vec<(OutputSpec, Box<dyn Exporter>)>,
    implied: (OutputSpec, Box<dyn Exporter>),
}

/// What the outputs did, for the summary, `--iidfile` and `--metadata-file`.
pub(crate) struct Published {
    /// The image the build's id names: the first image output's, else the store's.
    pub(crate) descriptor: oci_spec::image::Descriptor,
    /// Names given in the store.
    pub(crate) names: Vec<String>,
}

impl Outputs {
    /// Parses and checks `-o`, `--load`, `--annotation`, `--push` against each other.
    pub(crate) fn plan(args: &BuildArgs) -> Result<Self> {
        let mut annotations = Annotations::default();
        for flag in &args.annotations {
            annotations.add_flag(flag)?;
        }
        let mut specs = args
            .outputs
            .iter()
            .map(|s| OutputSpec::parse(s).map_err(anyhow::Error::from))
            .collect::<Result<Vec<_>>>()?;
        if args.load {
            specs.push(OutputSpec {
                kind: OutputKind::Docker {
                    dest: None,
                    names: Vec::new(),
                },
                form: Default::default(),
            });
        }
        let to_stdout = specs.iter().filter(|s| s.uses_stdout()).count();
        if to_stdout > 1 {
            bail!("only one output can stream to stdout (dest=-)");
        }
        if to_stdout == 1 && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            // Checked now too, so the mistake does not cost a build.
            return Err(kiln_solver::output::OutputError::Terminal.into());
        }
        if to_stdout == 1 && args.quiet {
            bail!(
                "-q prints the image id on stdout, where an output streams its tar: drop -q or write the output to a file"
            );
        }
        let multi_platform =
            crate::commands::build_input::platforms(args.platform.as_deref())?.len() > 1;
        check_platforms(&specs, &annotations, multi_platform)?;
        if args.push && args.tags.is_empty() {
            bail!("--push needs a name to push to: add -t REGISTRY/REPOSITORY[:TAG]");
        }
        let explicit = specs
            .into_iter()
            .map(|spec| {
                let exporter = spec.exporter(&annotations)?;
                Ok((spec, exporter))
            })
            .collect::<Result<Vec<_>, kiln_solver::output::OutputError>>()?;
        let implied_spec = OutputSpec {
            kind: OutputKind::Image {
                names: Vec::new(),
                push: args.push,
                push_by_digest: false,
                store: true,
            },
            form: Default::default(),
        };
        let implied = implied_spec.exporter(&annotations)?;
        Ok(Self {
            explicit,
            implied: (implied_spec, implied),
        })
    }

    /// The compression the first output that compresses the build's layers writes them in
    /// (see [`OutputSpec::layer_compression`]); others, if they differ, compress at export.
    pub(crate) fn edge_compression(&self) -> Option<kiln_solver::export::LayerCompression> {
        self.explicit
            .iter()
            .chain(std::iter::once(&self.implied))
            .find_map(|(spec, _)| spec.layer_compression())
    }

    /// Runs the `-o` outputs; `between` runs after them and before the store's names (the
    /// cache export goes there). `None` when cancelled.
    pub(crate) fn run(
        &self,
        built: &Built<'_>,
        quiet: bool,
        between: impl FnOnce() -> Result<bool>,
    ) -> Result<Option<Published>> {
        let mut first_image = None;
        let mut names = Vec::new();
        for (spec, exporter) in &self.explicit {
            if kiln_solver::cancel::is_cancelled() {
                return Ok(None);
            }
            let done = exporter.export(built)?;
            if spec.writes_image() && first_image.is_none() {
                first_image.clone_from(&done.descriptor);
            }
            report(&done, quiet, &mut names);
        }
        if !between()? || kiln_solver::cancel::is_cancelled() {
            return Ok(None);
        }
        let done = self.implied.1.export(built)?;
        report(&done, quiet, &mut names);
        let Some(descriptor) = first_image.or(done.descriptor) else {
            bail!("internal: the store's image has no descriptor");
        };
        Ok(Some(Published { descriptor, names }))
    }
}

/// What needs one platform, or several, checked before the build: a docker archive holds one
/// platform's image; index annotations need an index (BuildKit: "index annotations not
/// supported for single platform export").
fn check_platforms(
    specs: &[OutputSpec],
    annotations: &Annotations,
    multi_platform: bool,
) -> Result<()> {
    if multi_platform {
        if specs
            .iter()
            .any(|s| matches!(s.kind, OutputKind::Docker { .. }))
        {
            bail!(kiln_solver::output::DOCKER_MULTI_PLATFORM);
        }
        return Ok(());
    }
    let index_keys: Vec<&String> = annotations
        .index
        .keys()
        .chain(specs.iter().flat_map(|s| s.form.annotations.index.keys()))
        .collect();
    if !index_keys.is_empty() {
        bail!(
            "index annotations ({}) need a multi-platform build (--platform A,B)",
            index_keys
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

fn report(done: &Exported, quiet: bool, names: &mut Vec<String>) {
    names.extend(done.tagged.iter().cloned());
    if quiet {
        return;
    }
    for (pushed, took) in &done.pushed {
        crate::commands::progress::note(&format!(
            "pushed {} {} in {:.2}s",
            pushed.reference,
            pushed.digest,
            took.as_secs_f64()
        ));
    }
    for note in &done.notes {
        crate::commands::progress::note(note);
    }
}
