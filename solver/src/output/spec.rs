//! `-o/--output` values as buildx reads them: CSV fields (`"name=a,b"` quotes a comma),
//! `type=image|registry|oci|docker|local|tar`, a bare path for `type=local`, `-` for a tar on
//! stdout. Every key a type does not take is refused by name, so a typo never passes silently.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::export::{ImageForm, LayerCompression};
use crate::layer::Compression;

/// What `-o` asked for; [`OutputSpec::parse`] checks it whole before anything is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// The exporter.
    pub kind: OutputKind,
    /// How the image itself is written (compression, media types, annotations).
    pub form: ImageForm,
}

/// The exporters, with what each needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputKind {
    /// `type=image` (`type=registry` is this with `push`): names in kiln's store, pushed
    /// when asked.
    Image {
        /// `name=`: references (several, comma-separated inside quotes).
        names: Vec<String>,
        /// `push=true`.
        push: bool,
        /// `push-by-digest=true`: pushed as `name@digest`, no tag.
        push_by_digest: bool,
        /// `store=false` leaves kiln's store untagged.
        store: bool,
    },
    /// `type=oci`: an OCI image layout, a tarball unless `tar=false`.
    Oci {
        /// Where it goes.
        dest: Destination,
        /// `tar=false`: a layout directory.
        tar: bool,
        /// `name=`: the `org.opencontainers.image.ref.name` (the tag of it).
        name: Option<String>,
    },
    /// `type=docker`: a docker archive (`docker load`'s input); without `dest=`, loaded into
    /// the local docker (or podman), as `--load` does.
    Docker {
        /// Where it goes; `None` loads it.
        dest: Option<Destination>,
        /// `name=`: the archive's `RepoTags` (else the build's `-t` names).
        names: Vec<String>,
    },
    /// `type=local`: the image's filesystem as a directory (or a tar on stdout for `-`).
    Local {
        /// Where it goes.
        dest: Destination,
    },
    /// `type=tar`: the image's filesystem as one tar.
    Tar {
        /// Where it goes.
        dest: Destination,
    },
}

/// A file or directory, or stdout (`dest=-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A path.
    Path(PathBuf),
    /// Standard output, as a tar stream.
    Stdout,
}

impl Destination {
    fn parse(value: &str) -> Self {
        if value == "-" {
            Self::Stdout
        } else {
            Self::Path(PathBuf::from(value))
        }
    }
}

/// A `-o` value kiln cannot take: the value, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--output {spec:?}: {reason}")]
pub struct OutputSpecError {
    /// The value as given.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

impl OutputSpec {
    /// Parses one `-o` value.
    pub fn parse(spec: &str) -> Result<Self, OutputSpecError> {
        let err = |reason: String| OutputSpecError {
            spec: spec.to_owned(),
            reason,
        };
        if spec == "-" {
            return Ok(Self::plain(OutputKind::Tar {
                dest: Destination::Stdout,
            }));
        }
        if !spec.contains('=') {
            return Ok(Self::plain(OutputKind::Local {
                dest: Destination::Path(PathBuf::from(spec)),
            }));
        }
        let mut fields = BTreeMap::new();
        for part in csv_fields(spec)? {
            let Some((k, v)) = part.split_once('=') else {
                return Err(err(format!("{part:?} is not key=value")));
            };
            fields.insert(k.trim().to_owned(), v.trim().to_owned());
        }
        let kind = fields.remove("type").unwrap_or_else(|| "local".into());
        let mut form = ImageForm::default();
        let image_kind = ["image", "registry", "oci", "docker"].contains(&kind.as_str());
        if image_kind {
            form = take_form(spec, &mut fields)?;
        }
        let take_bool =
            |fields: &mut BTreeMap<String, String>, key: &str, default: bool| match fields
                .remove(key)
                .as_deref()
            {
                None => Ok(default),
                Some("true") | Some("") => Ok(true),
                Some("false") => Ok(false),
                Some(v) => Err(err(format!("{key}={v} is not true or false"))),
            };
        let dest = fields.remove("dest").map(|d| Destination::parse(&d));
        let need_dest = |dest: Option<Destination>| {
            dest.ok_or_else(|| {
                err(format!(
                    "type={kind} needs dest=PATH (or dest=- for stdout)"
                ))
            })
        };
        let names = fields
            .remove("name")
            .map(|n| {
                n.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let has_names = !names.is_empty();
        let kind = match kind.as_str() {
            "image" | "registry" => {
                let push = take_bool(&mut fields, "push", kind == "registry")?;
                let push_by_digest = take_bool(&mut fields, "push-by-digest", false)?;
                // The name as given is already canonical in kiln's store; accepted for buildx.
                take_bool(&mut fields, "name-canonical", false)?;
                let store = take_bool(&mut fields, "store", true)?;
                if take_bool(&mut fields, "unpack", false)? {
                    return Err(err(
                        "unpack=true: kiln's store keeps images as layers".into()
                    ));
                }
                if let Some(dest) = dest {
                    return Err(err(format!(
                        "type={kind} takes name=, not dest= ({dest:?})"
                    )));
                }
                if names.is_empty() && (push || kind == "registry") {
                    return Err(err("pushing needs name=REGISTRY/REPOSITORY[:TAG]".into()));
                }
                OutputKind::Image {
                    names,
                    push,
                    push_by_digest,
                    store,
                }
            }
            "oci" => {
                let tar = take_bool(&mut fields, "tar", true)?;
                let dest = need_dest(dest)?;
                if !tar && dest == Destination::Stdout {
                    return Err(err(
                        "tar=false writes a directory, which stdout cannot be".into()
                    ));
                }
                if names.len() > 1 {
                    return Err(err("type=oci takes one name=".into()));
                }
                OutputKind::Oci {
                    dest,
                    tar,
                    name: names.into_iter().next(),
                }
            }
            "docker" => {
                if !take_bool(&mut fields, "tar", true)? {
                    return Err(err(
                        "type=docker,tar=false: use type=oci,tar=false for a directory".into(),
                    ));
                }
                OutputKind::Docker { dest, names }
            }
            "local" => OutputKind::Local {
                dest: need_dest(dest)?,
            },
            "tar" => OutputKind::Tar {
                dest: need_dest(dest)?,
            },
            other => {
                return Err(err(format!(
                    "unknown type {other:?} (image, registry, oci, docker, local, tar)"
                )));
            }
        };
        if !image_kind && has_names {
            return Err(err(
                "name= is for image, registry, oci and docker outputs".into()
            ));
        }
        if let Some(k) = fields.keys().next() {
            return Err(err(format!("unknown option {k:?}")));
        }
        if form.oci_mediatypes == Some(false)
            && form
                .compression
                .is_some_and(|c| c.kind == Compression::Zstd)
        {
            return Err(err(
                "compression=zstd has no Docker media type: drop oci-mediatypes=false".into(),
            ));
        }
        Ok(Self { kind, form })
    }

    fn plain(kind: OutputKind) -> Self {
        Self {
            kind,
            form: ImageForm::default(),
        }
    }

    /// The compression this output writes the build's own layers in, when it writes them
    /// compressed: every image leaving the store (an archive, a push), and a store image
    /// only when `compression=` asks. The solver then compresses the target's layers while
    /// it writes them (`SolveOptions::edge`), where the export would read them back.
    pub fn layer_compression(&self) -> Option<LayerCompression> {
        let wanted = match &self.kind {
            OutputKind::Image { push: true, .. }
            | OutputKind::Oci { .. }
            | OutputKind::Docker { .. } => self.form.at_the_edge().compression,
            OutputKind::Image { .. } => self.form.compression,
            OutputKind::Local { .. } | OutputKind::Tar { .. } => None,
        };
        wanted.filter(|c| c.kind != Compression::None)
    }

    /// True when this output writes to stdout.
    pub fn uses_stdout(&self) -> bool {
        matches!(
            &self.kind,
            OutputKind::Oci {
                dest: Destination::Stdout,
                ..
            } | OutputKind::Docker {
                dest: Some(Destination::Stdout),
                ..
            } | OutputKind::Local {
                dest: Destination::Stdout
            } | OutputKind::Tar {
                dest: Destination::Stdout
            }
        )
    }
}

/// The image-form keys of an image, registry, oci or docker output.
fn take_form(
    spec: &str,
    fields: &mut BTreeMap<String, String>,
) -> Result<ImageForm, OutputSpecError> {
    let err = |reason: String| OutputSpecError {
        spec: spec.to_owned(),
        reason,
    };
    let mut form = ImageForm::default();
    let level = match fields.remove("compression-level") {
        None => None,
        Some(v) => Some(
            v.parse::<i32>()
                .map_err(|_| err(format!("compression-level={v} is not a number")))?,
        ),
    };
    match fields.remove("compression").as_deref() {
        None => {
            if level.is_some() {
                return Err(err("compression-level needs compression=gzip|zstd".into()));
            }
        }
        Some(name) => {
            let kind = match name {
                "gzip" => Compression::Gzip,
                "zstd" => Compression::Zstd,
                "uncompressed" => Compression::None,
                "estargz" => {
                    return Err(err(
                        "compression=estargz (lazy pulling) is not supported by kiln: \
                                use gzip or zstd"
                            .into(),
                    ));
                }
                other => {
                    return Err(err(format!(
                        "compression={other}: expected gzip, zstd or uncompressed"
                    )));
                }
            };
            let range = match kind {
                Compression::Gzip => 0..=9,
                Compression::Zstd => 1..=22,
                Compression::None => 0..=0,
            };
            if let Some(l) = level
                && !range.contains(&l)
            {
                return Err(err(format!(
                    "compression-level={l} is outside {}..={} for compression={name}",
                    range.start(),
                    range.end()
                )));
            }
            form.compression = Some(LayerCompression { kind, level });
        }
    }
    let flag =
        |fields: &mut BTreeMap<String, String>, key: &str| match fields.remove(key).as_deref() {
            None => Ok(None),
            Some("true") | Some("") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(err(format!("{key}={v} is not true or false"))),
        };
    form.force_compression = flag(fields, "force-compression")?.unwrap_or(false);
    // kiln always clamps the mtimes of the files it writes to SOURCE_DATE_EPOCH.
    if flag(fields, "rewrite-timestamp")? == Some(false) {
        return Err(err(
            "rewrite-timestamp=false: kiln always clamps file times to \
                    SOURCE_DATE_EPOCH in the layers it writes"
                .into(),
        ));
    }
    form.oci_mediatypes = flag(fields, "oci-mediatypes")?;
    let keys: Vec<String> = fields
        .keys()
        .filter(|k| k.starts_with("annotation"))
        .cloned()
        .collect();
    for key in keys {
        let value = fields.remove(&key).unwrap_or_default();
        let Some((kind, name)) = key.split_once('.') else {
            return Err(err(format!("{key}: expected annotation[-TYPE].KEY=VALUE")));
        };
        let kind = match kind {
            "annotation" => "manifest",
            k => k.strip_prefix("annotation-").unwrap_or(k),
        };
        form.annotations
            .add(kind, name, &value)
            .map_err(|e| err(e.to_string()))?;
    }
    Ok(form)
}

/// Splits on commas outside double quotes, as Go's encoding/csv does for buildx; quotes are
/// dropped.
fn csv_fields(spec: &str) -> Result<Vec<String>, OutputSpecError> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    for c in spec.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    if quoted {
        return Err(OutputSpecError {
            spec: spec.to_owned(),
            reason: "unterminated quote".into(),
        });
    }
    out.push(field);
    Ok(out.into_iter().filter(|f| !f.trim().is_empty()).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::export::Annotations;

    fn kind(spec: &str) -> OutputKind {
        OutputSpec::parse(spec).unwrap().kind
    }

    fn path(p: &str) -> Destination {
        Destination::Path(PathBuf::from(p))
    }

    #[test]
    fn buildx_forms() {
        assert_eq!(kind("dir"), OutputKind::Local { dest: path("dir") });
        assert_eq!(
            kind("-"),
            OutputKind::Tar {
                dest: Destination::Stdout
            }
        );
        assert_eq!(
            kind("type=oci,dest=x.tar"),
            OutputKind::Oci {
                dest: path("x.tar"),
                tar: true,
                name: None
            }
        );
        assert_eq!(
            kind("type=oci,dest=out,tar=false,name=app:1"),
            OutputKind::Oci {
                dest: path("out"),
                tar: false,
                name: Some("app:1".into())
            }
        );
        assert_eq!(
            kind("type=registry,\"name=r/a:1,r/a:2\""),
            OutputKind::Image {
                names: vec!["r/a:1".into(), "r/a:2".into()],
                push: true,
                push_by_digest: false,
                store: true
            }
        );
        assert_eq!(
            kind("type=image,name=a,push=true,push-by-digest=true,name-canonical=true"),
            OutputKind::Image {
                names: vec!["a".into()],
                push: true,
                push_by_digest: true,
                store: true
            }
        );
        assert_eq!(
            kind("type=docker"),
            OutputKind::Docker {
                dest: None,
                names: vec![]
            }
        );
        assert!(
            OutputSpec::parse("type=docker,dest=-")
                .unwrap()
                .uses_stdout()
        );
        assert!(
            OutputSpec::parse("type=local,dest=-")
                .unwrap()
                .uses_stdout()
        );
    }

    #[test]
    fn image_forms() {
        let s = OutputSpec::parse(
            "type=oci,dest=o,compression=zstd,compression-level=3,force-compression=true,\
             rewrite-timestamp=true,\
             annotation.org.opencontainers.image.title=t,annotation-manifest-descriptor.d=1",
        )
        .unwrap();
        assert_eq!(
            s.form.compression,
            Some(LayerCompression {
                kind: Compression::Zstd,
                level: Some(3)
            })
        );
        assert!(s.form.force_compression);
        assert_eq!(
            s.form.annotations.manifest["org.opencontainers.image.title"],
            "t"
        );
        assert_eq!(s.form.annotations.manifest_descriptor["d"], "1");
        let mut a = Annotations::default();
        a.add_flag("index:k=v").unwrap();
        a.add_flag("plain=1").unwrap();
        assert_eq!(a.index["k"], "v");
        assert_eq!(a.manifest["plain"], "1");
        assert!(a.add_flag("novalue").is_err());
    }

    #[test]
    fn mistakes_are_named() {
        for (spec, needle) in [
            ("type=nope,dest=x", "unknown type"),
            ("type=oci", "needs dest="),
            ("type=oci,dest=x,bogus=1", "\"bogus\""),
            ("type=oci,dest=-,tar=false", "stdout"),
            ("type=registry", "name="),
            ("type=oci,dest=o,compression=estargz", "estargz"),
            (
                "type=oci,dest=o,compression=gzip,compression-level=12",
                "outside 0..=9",
            ),
            (
                "type=oci,dest=o,compression=zstd,oci-mediatypes=false",
                "Docker media type",
            ),
            ("type=local,dest=d,compression=gzip", "\"compression\""),
            ("type=image,name=\"a", "unterminated"),
        ] {
            let e = OutputSpec::parse(spec).unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }
}
