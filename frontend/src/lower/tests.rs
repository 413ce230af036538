use std::collections::BTreeMap;

use super::*;

struct FakeImages(BTreeMap<String, ImageConfig>);

impl BaseImages for FakeImages {
    fn config(&self, source: &Source) -> Result<ImageConfig, BaseImageError> {
        match source {
            Source::Image { reference, .. } => self
                .0
                .get(reference)
                .cloned()
                .ok_or_else(|| format!("{reference}: not found").into()),
            other => Err(format!("unexpected {other:?}").into()),
        }
    }
}

fn base() -> FakeImages {
    let mut c = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..ImageConfig::default()
    };
    c.set_env("PATH", "/bin");
    c.config.cmd = Some(vec!["sh".into()]);
    c.config.on_build = vec!["LABEL from.trigger=yes".into()];
    c.rootfs.diff_ids = vec!["sha256:aa".into()];
    c.history = vec![History {
        created_by: "base".into(),
        ..History::default()
    }];
    FakeImages(BTreeMap::from([("busybox".to_owned(), c)]))
}

fn lower_src(src: &str, build: &BuildOptions) -> Result<Lowered, Diagnostic> {
    let parsed = parser::parse(src).unwrap();
    let opts = LowerOptions {
        build,
        file: "Dockerfile",
        created: Some("2024-01-01T00:00:00Z".into()),
        named_contexts: &[],
        context_aliases: &[],
    };
    lower(&parsed, src, &opts, &base())
}

#[test]
fn config_steps_follow_buildkit() {
    let src = "FROM busybox\nENV A=1 B=${A}2\nLABEL l=$B\nWORKDIR app\nUSER 1000\n\
               EXPOSE 80 443/udp\nVOLUME /data\nSTOPSIGNAL SIGTERM\nENTRYPOINT [\"/e\"]\nCMD run\n";
    let l = lower_src(src, &BuildOptions::default()).unwrap();
    let c = &l.config.config;
    // Values on one ENV line see the scope before the line, as in Docker.
    assert_eq!(c.env, ["PATH=/bin", "A=1", "B=2"]);
    assert_eq!(c.labels["l"], "2");
    assert_eq!(c.working_dir, "/app");
    assert_eq!(c.user, "1000");
    assert!(c.exposed_ports.contains_key("80/tcp") && c.exposed_ports.contains_key("443/udp"));
    assert!(c.volumes.contains_key("/data"));
    assert_eq!(c.entrypoint.as_deref(), Some(&["/e".to_owned()][..]));
    assert_eq!(
        c.cmd.as_deref(),
        Some(&["/bin/sh".to_owned(), "-c".to_owned(), "run".to_owned()][..])
    );
    assert!(c.args_escaped);
    assert!(c.on_build.is_empty(), "triggers are consumed");
    assert_eq!(c.labels["from.trigger"], "yes", "the base's ONBUILD ran");
    let by: Vec<&str> = l
        .config
        .history
        .iter()
        .map(|h| h.created_by.as_str())
        .collect();
    assert_eq!(
        by,
        [
            "base",
            "LABEL from.trigger=yes",
            "ENV A=1 B=2",
            "LABEL l=2",
            "WORKDIR /app",
            "USER 1000",
            "EXPOSE map[443/udp:{} 80/tcp:{}]",
            "VOLUME [/data]",
            "STOPSIGNAL SIGTERM",
            r#"ENTRYPOINT ["/e"]"#,
            r#"CMD ["/bin/sh" "-c" "run"]"#,
        ]
    );
    let layers: Vec<bool> = l.config.history.iter().map(|h| !h.empty_layer).collect();
    assert_eq!(
        layers.iter().filter(|&&x| x).count(),
        2,
        "base layer and WORKDIR's mkdir"
    );
}

#[test]
fn entrypoint_resets_inherited_cmd() {
    let l = lower_src(
        "FROM busybox\nENTRYPOINT [\"x\"]\n",
        &BuildOptions::default(),
    )
    .unwrap();
    assert_eq!(l.config.config.cmd, None);
}

#[test]
fn copy_lowers_to_file_ops_with_sources() {
    let src = "FROM scratch AS b\nCOPY a.txt /a/\nFROM busybox\nWORKDIR /w\n\
               COPY --from=b --chown=1:2 /a/a.txt .\nCOPY <<EOF rel/\nhi $PATH\nEOF\n";
    let l = lower_src(src, &BuildOptions::default()).unwrap();
    let ops = &l.definition.ops;
    let copies: Vec<&CopyParams> = ops
        .iter()
        .filter_map(|o| match o {
            Op::File(f) => f.actions.iter().find_map(|a| match a {
                FileAction::Copy { params, .. } => Some(params),
                _ => None,
            }),
            _ => None,
        })
        .collect();
    assert_eq!(copies[0].sources, ["a.txt"]);
    assert_eq!(copies[0].dest, "/a/");
    assert_eq!(copies[1].dest, "/w/");
    assert_eq!(copies[1].chown.as_deref(), Some("1:2"));
    let mkfile = ops.iter().find_map(|o| match o {
        Op::File(f) => f.actions.iter().find_map(|a| match a {
            FileAction::Mkfile {
                dest, name, data, ..
            } => Some((format!("{dest}{name}"), data.clone())),
            _ => None,
        }),
        _ => None,
    });
    assert_eq!(
        mkfile,
        Some(("/w/rel/EOF".to_owned(), b"hi /bin\n".to_vec()))
    );
    let by: Vec<&str> = l
        .config
        .history
        .iter()
        .map(|h| h.created_by.as_str())
        .collect();
    assert!(
        by.contains(&"COPY --chown=1:2 /a/a.txt . # buildkit"),
        "{by:?}"
    );
    assert!(by.contains(&"COPY <<EOF rel/ # buildkit"), "{by:?}");
}

#[test]
fn scratch_gets_default_path_and_platform() {
    let l = lower_src("FROM scratch\nCOPY x /\n", &BuildOptions::default()).unwrap();
    assert_eq!(l.config.config.env, [format!("PATH={DEFAULT_PATH}")]);
    assert_eq!(l.config.os, "linux");
    assert_eq!(l.config.created.as_deref(), Some("2024-01-01T00:00:00Z"));
}

#[test]
fn unknown_base_image_is_located() {
    let src = "FROM nope:1\n";
    let e = lower_src(src, &BuildOptions::default()).unwrap_err();
    assert_eq!(
        e.message,
        "failed to resolve base image nope:1: nope:1: not found"
    );
    assert_eq!(&src[e.span.start..e.span.end], "nope:1");
}

#[test]
fn run_lowers_to_exec_with_env_user_cwd_and_history() {
    let src = "FROM busybox\nARG V=1\nENV E=e\nUSER app\nWORKDIR /w\n\
               RUN --network=none --mount=type=cache,target=/c echo $V\n\
               RUN [\"/bin/true\"]\nRUN <<EOF\n#!/bin/sh\necho hi\nEOF\n";
    let l = lower_src(src, &BuildOptions::default()).unwrap();
    let execs: Vec<&kiln_llb::ExecOp> = l
        .definition
        .ops
        .iter()
        .filter_map(|o| match o {
            Op::Exec(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(execs.len(), 3);
    let e = execs[0];
    assert_eq!(e.args, ["/bin/sh", "-c", "echo $V"]);
    assert_eq!(e.env, ["V=1", "PATH=/bin", "E=e"]);
    assert_eq!((e.user.as_str(), e.cwd.as_str()), ("app", "/w"));
    assert_eq!(e.network, kiln_llb::NetworkMode::None);
    assert!(
        matches!(&e.mounts[0], kiln_llb::ExecMount::Cache { id, target, .. } if id == "/c" && target == "/c")
    );
    assert_eq!(execs[1].args, ["/bin/true"]);
    assert_eq!(execs[2].args, ["/bin/sh", "-c", "/dev/pipes/EOF"]);
    let by: Vec<&str> = l
        .config
        .history
        .iter()
        .map(|h| h.created_by.as_str())
        .collect();
    assert!(
        by.contains(&"RUN |1 V=1 /bin/sh -c echo $V # buildkit"),
        "{by:?}"
    );
    assert!(
        !l.config.config.env.iter().any(|e| e.starts_with("V=")),
        "ARGs are not persisted"
    );
}

#[test]
fn insecure_run_is_refused() {
    let e = lower_src(
        "FROM scratch\nRUN --security=insecure true\n",
        &BuildOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.message, "security.insecure is not allowed");
}

#[test]
fn target_limits_lowering() {
    let build = BuildOptions {
        target: Some("a".into()),
        ..BuildOptions::default()
    };
    let l = lower_src("FROM scratch AS a\nCOPY x /\nFROM nope\n", &build).unwrap();
    assert!(
        l.definition
            .ops
            .iter()
            .all(|o| !matches!(o, Op::Source(Source::Image { .. })))
    );
}

#[test]
fn layout_selector_split() {
    assert_eq!(split_layout_selector("/x/y:tag"), ("/x/y", Some("tag")));
    assert_eq!(split_layout_selector("/x:1/y"), ("/x:1/y", None));
    assert_eq!(
        split_layout_selector("/x/y@sha256:ab"),
        ("/x/y", Some("sha256:ab"))
    );
}

/// The actions of the last file op, with each copy's source op.
fn last_file_actions(l: &Lowered) -> Vec<(Option<Op>, FileAction)> {
    let ops = &l.definition.ops;
    let Some(Op::File(f)) = ops.iter().rev().find(|o| matches!(o, Op::File(_))) else {
        panic!("no file op in {ops:?}");
    };
    f.actions
        .iter()
        .map(|a| match a {
            FileAction::Copy { source, .. } => (l.definition.get(*source).cloned(), a.clone()),
            _ => (None, a.clone()),
        })
        .collect()
}

fn http(url: &str, checksum: Option<&str>, filename: &str) -> Option<Op> {
    Some(Op::Source(Source::Http {
        url: url.to_owned(),
        checksum: checksum.map(str::to_owned),
        filename: filename.to_owned(),
    }))
}

fn copy_params(a: &FileAction) -> &CopyParams {
    match a {
        FileAction::Copy { params, .. } => params,
        other => panic!("not a copy: {other:?}"),
    }
}

#[test]
fn add_url_lowers_to_an_http_source_and_a_copy() {
    let sum = format!("sha256:{}", "ab".repeat(32));
    let src = format!(
        "FROM scratch\nARG V=1.2\nWORKDIR /w\n\
         ADD --checksum={sum} --chown=10:20 --chmod=755 https://example.com/d/tool-$V.tar.gz bin/\n"
    );
    let l = lower_src(&src, &BuildOptions::default()).unwrap();
    let actions = last_file_actions(&l);
    assert_eq!(actions.len(), 1);
    let (source, action) = &actions[0];
    assert_eq!(
        *source,
        http(
            "https://example.com/d/tool-1.2.tar.gz",
            Some(&sum),
            "tool-1.2.tar.gz"
        )
    );
    let p = copy_params(action);
    assert_eq!(p.sources, ["tool-1.2.tar.gz"]);
    assert_eq!(p.dest, "/w/bin/");
    assert_eq!(p.chown.as_deref(), Some("10:20"));
    assert_eq!(p.chmod.as_deref(), Some("755"));
    assert!(!p.unpack_archives, "remote archives are not unpacked");
    // Nothing is read from the build context.
    assert!(
        l.definition
            .ops
            .iter()
            .all(|o| !matches!(o, Op::Source(Source::Local { .. })))
    );
    let by: Vec<&str> = l
        .config
        .history
        .iter()
        .map(|h| h.created_by.as_str())
        .collect();
    assert!(
        by.contains(
            &"ADD --chown=10:20 --chmod=755 https://example.com/d/tool-1.2.tar.gz bin/ # buildkit"
        ),
        "{by:?}"
    );
}

#[test]
fn add_url_to_a_file_name_and_unnamed_urls() {
    let src =
        "FROM scratch\nADD --unpack=true https://h/a.tgz /opt/x.tgz\nADD http://h:8080/ /u/\n";
    let l = lower_src(src, &BuildOptions::default()).unwrap();
    let files: Vec<&FileOp> = l
        .definition
        .ops
        .iter()
        .filter_map(|o| match o {
            Op::File(f) => Some(f),
            _ => None,
        })
        .collect();
    let first = copy_params(&files[0].actions[0]);
    assert_eq!(first.sources, ["a.tgz"]);
    assert_eq!(first.dest, "/opt/x.tgz");
    assert!(
        first.unpack_archives,
        "--unpack=true unpacks a remote archive"
    );
    let FileAction::Copy { source, params } = &files[1].actions[0] else {
        panic!("not a copy");
    };
    assert_eq!(
        l.definition.get(*source).cloned(),
        http("http://h:8080/", None, "__unnamed__")
    );
    assert_eq!(params.sources, ["__unnamed__"]);
}

#[test]
fn add_mixes_urls_and_local_sources_in_order() {
    let src = "FROM scratch\nADD a.txt b.txt https://h/one x.tar https://h/two /d/\n";
    let l = lower_src(src, &BuildOptions::default()).unwrap();
    let actions = last_file_actions(&l);
    let shape: Vec<(String, Vec<String>, bool)> = actions
        .iter()
        .map(|(source, a)| {
            let kind = match source {
                Some(Op::Source(Source::Local { name })) => format!("local:{name}"),
                Some(Op::Source(Source::Http { url, .. })) => url.clone(),
                other => format!("{other:?}"),
            };
            let p = copy_params(a);
            (kind, p.sources.clone(), p.unpack_archives)
        })
        .collect();
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        shape,
        [
            ("local:context".to_owned(), s(&["a.txt", "b.txt"]), true),
            ("https://h/one".to_owned(), s(&["one"]), false),
            ("local:context".to_owned(), s(&["x.tar"]), true),
            ("https://h/two".to_owned(), s(&["two"]), false),
        ]
    );
}

#[test]
fn add_url_errors_follow_buildkit() {
    let err = |src: &str| {
        lower_src(src, &BuildOptions::default())
            .unwrap_err()
            .message
    };
    let sum = format!("sha256:{}", "0".repeat(64));
    assert_eq!(
        err("FROM scratch\nCOPY https://h/x /x\n"),
        "source can't be a URL for COPY"
    );
    assert_eq!(
        err(&format!(
            "FROM scratch\nADD --checksum={sum} https://h/x https://h/y /d/\n"
        )),
        "checksum can't be specified for multiple sources"
    );
    assert_eq!(
        err(&format!("FROM scratch\nADD --checksum={sum} x /d/\n")),
        "checksum can't be specified for non-HTTP(S) sources"
    );
    assert!(
        err("FROM scratch\nADD --checksum=sha256:abc https://h/x /d/\n")
            .contains("invalid checksum digest length"),
    );
    // A URL ending in .git is a git repository, which is another matter.
    assert!(err("FROM scratch\nADD https://h/repo.git /src\n").contains("not supported yet"),);
}

/// BuildKit's testOnBuildInheritedStageRun and testOnBuildNamedContext: a stage's ONBUILD
/// fires in a stage built FROM it (and not in the stage itself), and a trigger's
/// `COPY --from=NAME` means this Dockerfile's stage of that name, lowered on demand even when
/// the target's graph did not need it.
#[test]
fn stage_onbuild_fires_in_child_stages_and_resolves_stage_names() {
    let src = "FROM scratch AS other\nCOPY <<EOF /testfile\nhello\nEOF\n\
               FROM scratch AS base\nONBUILD COPY --from=other /testfile /out/foo\n\
               ONBUILD LABEL fired=yes\n\
               FROM base AS mid\n";
    let l = lower_src(src, &BuildOptions::default()).unwrap();
    let c = &l.config.config;
    assert_eq!(c.labels.get("fired").map(String::as_str), Some("yes"));
    assert!(c.on_build.is_empty(), "triggers are consumed by the child");
    let copies = l
        .definition
        .ops
        .iter()
        .filter(|op| matches!(op, Op::File(_)))
        .count();
    assert_eq!(
        copies, 2,
        "the heredoc in `other` and the trigger's COPY --from=other"
    );
    let base_only = lower_src(
        src,
        &BuildOptions {
            target: Some("base".into()),
            ..BuildOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        base_only.config.config.on_build.len(),
        2,
        "kept for later stages"
    );
    assert!(!base_only.config.config.labels.contains_key("fired"));
}

/// BuildKit's testNamedLocalContext: `--build-context base=DIR` replaces the stage named
/// `base`, whose instructions never run.
#[test]
fn a_named_context_replaces_the_stage_of_that_name() {
    let src = "FROM busybox AS base\nRUN false\nFROM scratch\nCOPY --from=base /o* /\n";
    let parsed = parser::parse(src).unwrap();
    let build = BuildOptions::default();
    let named = ["base".to_owned()];
    let opts = LowerOptions {
        build: &build,
        file: "Dockerfile",
        created: None,
        named_contexts: &named,
        context_aliases: &[],
    };
    let l = lower(&parsed, src, &opts, &base()).unwrap();
    assert!(
        !l.definition.ops.iter().any(|op| matches!(op, Op::Exec(_))),
        "the replaced stage's RUN is gone"
    );
    assert!(
        l.definition
            .ops
            .iter()
            .any(|op| matches!(op, Op::Source(Source::Local { name }) if name == "base"))
    );
}

/// BuildKit's testNamedImageContextScratch: a named context may be the empty image.
#[test]
fn a_named_context_may_be_scratch() {
    let src = "FROM busybox AS build\nCOPY <<EOF /out\nhello\nEOF\n";
    let parsed = parser::parse(src).unwrap();
    let build = BuildOptions::default();
    let aliases = [("busybox".to_owned(), "scratch".to_owned())];
    let opts = LowerOptions {
        build: &build,
        file: "Dockerfile",
        created: None,
        named_contexts: &[],
        context_aliases: &aliases,
    };
    let l = lower(&parsed, src, &opts, &base()).unwrap();
    assert!(matches!(l.definition.ops[0], Op::Source(Source::Scratch)));
    assert!(l.config.rootfs.diff_ids.is_empty(), "nothing of busybox");
}
