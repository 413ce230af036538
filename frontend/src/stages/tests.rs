use super::*;
use crate::parser::parse;

fn graph(src: &str, opts: &BuildOptions) -> Result<StageGraph, Diagnostic> {
    resolve(&parse(src).unwrap(), src, opts)
}

fn ok(src: &str) -> StageGraph {
    graph(src, &BuildOptions::default()).unwrap()
}

fn err(src: &str, opts: &BuildOptions) -> Diagnostic {
    graph(src, opts).unwrap_err()
}

#[test]
fn global_args_expand_in_from_and_build_args_override() {
    let src = "ARG TAG=1.0\nARG IMG=busybox:${TAG}\nFROM ${IMG} AS a\nFROM a\n";
    let g = ok(src);
    assert_eq!(g.stages[0].base, Base::Image("busybox:1.0".into()));
    assert_eq!(g.stages[1].base, Base::Stage(0));
    let mut opts = BuildOptions::default();
    opts.build_args.insert("TAG".into(), "2.0".into());
    let g = graph(src, &opts).unwrap();
    assert_eq!(g.stages[0].base, Base::Image("busybox:2.0".into()));
}

#[test]
fn global_arg_is_invisible_in_a_stage_until_redeclared() {
    let src = "ARG V=1\nFROM scratch\nENV A=x$V\nARG V\nENV B=y$V\n";
    let g = ok(src);
    assert_eq!(g.stages[0].base, Base::Scratch);
    assert_eq!(
        g.stages[0].env,
        [
            ("A".to_owned(), "x".to_owned()),
            ("B".to_owned(), "y1".to_owned())
        ]
    );
}

#[test]
fn env_shadows_arg_and_is_inherited_by_child_stages() {
    let src = "FROM scratch AS base\nARG X=arg\nENV X=env Y=$X\nFROM base\nENV Z=$X\n";
    let g = ok(src);
    assert_eq!(g.stages[0].env[1], ("Y".to_owned(), "arg".to_owned()));
    assert_eq!(
        g.stages[1].env.last().unwrap(),
        &("Z".to_owned(), "env".to_owned())
    );
}

#[test]
fn platform_args_are_usable_in_from() {
    let src = "FROM --platform=$BUILDPLATFORM busybox AS b\nARG TARGETARCH\nENV A=$TARGETARCH\n";
    let opts = BuildOptions {
        target_platform: crate::scope::Platform::parse("linux/arm64").unwrap(),
        build_platform: crate::scope::Platform::parse("linux/amd64").unwrap(),
        ..BuildOptions::default()
    };
    let g = graph(src, &opts).unwrap();
    assert_eq!(g.stages[0].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(g.stages[0].env, [("A".to_owned(), "arm64".to_owned())]);
}

#[test]
fn copy_from_and_mount_from_make_edges() {
    let src = "FROM scratch AS a\nFROM scratch AS b\n\
               COPY --from=a /x /x\nRUN --mount=from=0,target=/m true\n\
               COPY --from=alpine:3 /y /y\nFROM b\n";
    let g = ok(src);
    assert_eq!(g.stages[1].deps, BTreeSet::from([0]));
    assert_eq!(g.stages[1].sources[0], [SourceRef::Stage(0)]);
    assert_eq!(g.stages[1].sources[1], [SourceRef::Stage(0)]);
    assert_eq!(
        g.stages[1].sources[2],
        [SourceRef::Image("alpine:3".into())]
    );
    assert_eq!(g.order, [0, 1, 2]);
}

#[test]
fn target_prunes_unneeded_stages() {
    let src = "FROM scratch AS a\nFROM scratch AS b\nFROM scratch AS c\nCOPY --from=a / /\n";
    let opts = BuildOptions {
        target: Some("C".into()),
        ..BuildOptions::default()
    };
    let g = graph(src, &opts).unwrap();
    assert_eq!(g.target, 2);
    assert_eq!(g.order, [0, 2]);
}

#[test]
fn unknown_target_names_the_stages() {
    let opts = BuildOptions {
        target: Some("nope".into()),
        ..BuildOptions::default()
    };
    let e = err("FROM scratch AS a\nFROM scratch AS b\n", &opts);
    assert_eq!(e.message, "target stage \"nope\" could not be found");
    assert_eq!(e.hint.as_deref(), Some("the named stages are: a, b"));
}

/// BuildKit's testDuplicateStageName builds (the name check is a lint warning), and its
/// name map keeps the last stage: COPY --from and --target mean that one, while a FROM
/// means the last one defined before it.
#[test]
fn duplicate_names_mean_the_last_stage_so_far() {
    let src = "FROM scratch AS a\nFROM busybox AS A\nFROM a\nCOPY --from=a / /\n";
    let g = ok(src);
    assert_eq!(g.stages[2].base, Base::Stage(1));
    assert_eq!(g.stages[2].sources[0], [SourceRef::Stage(1)]);
    let opts = BuildOptions {
        target: Some("a".into()),
        ..BuildOptions::default()
    };
    assert_eq!(graph(src, &opts).unwrap().target, 1);
    // A third `a` after the copy is the one --from means: not defined yet there.
    let later = format!("{src}FROM scratch AS a\n");
    let e = err(&later, &BuildOptions::default());
    assert!(
        e.message.starts_with("cannot copy from stage \"a\""),
        "{}",
        e.message
    );
}

/// BuildKit's testOutOfOrderStage: a stage is dispatched after those before it, so copying
/// or mounting from itself or a later stage fails, naming both.
#[test]
fn sources_must_be_defined_before_the_stage() {
    let src = "FROM busybox AS target\nCOPY --from=build / /out\nFROM busybox AS build\n";
    let e = err(src, &BuildOptions::default());
    assert_eq!(
        e.message,
        "cannot copy from stage \"build\", it needs to be defined before current stage \"target\""
    );
    assert_eq!(&src[e.span.start..e.span.end], "COPY --from=build / /out");
    let e = err(
        "FROM scratch AS a\nCOPY --from=a / /\n",
        &BuildOptions::default(),
    );
    assert!(
        e.message.starts_with("cannot copy from stage \"a\""),
        "{}",
        e.message
    );
    let e = err(
        "FROM busybox\nRUN --mount=from=1,target=/m true\nFROM scratch\n",
        &BuildOptions::default(),
    );
    assert_eq!(
        e.message,
        "cannot mount from stage \"1\" to \"/m\", stage needs to be defined before current command"
    );
}

/// BuildKit's testDockerfileCopyFromArgs: --from is not expanded; a `$` in it is an error.
#[test]
fn copy_from_takes_no_variables() {
    let e = err(
        "FROM scratch\nARG FOO=x\nCOPY --from=$FOO . .\n",
        &BuildOptions::default(),
    );
    assert!(
        e.message
            .starts_with("variable expansion is not supported for --from"),
        "{}",
        e.message
    );
}

#[test]
fn out_of_range_stage_index_is_an_error() {
    let src = "FROM scratch\nCOPY --from=3 / /\n";
    let e = err(src, &BuildOptions::default());
    assert!(
        e.message.starts_with("invalid stage index 3"),
        "{}",
        e.message
    );
    assert_eq!(&src[e.span.start..e.span.end], "COPY --from=3 / /");
}

#[test]
fn instructions_before_from_are_errors() {
    let e = err("ENV A=b\nFROM scratch\n", &BuildOptions::default());
    assert_eq!(e.message, "no build stage in current context");
    assert_eq!(e.span.start, 0);
}

#[test]
fn from_later_stage_name_is_an_image() {
    let g = ok("FROM b AS a\nFROM scratch AS b\n");
    assert_eq!(g.stages[0].base, Base::Image("b".into()));
}

#[test]
fn blank_base_is_an_error() {
    let e = err("ARG IMG\nFROM $IMG\n", &BuildOptions::default());
    assert_eq!(e.message, "base name ($IMG) should not be blank");
}

/// BuildKit's testExposeExpansion: a port expands into words before it is checked.
#[test]
fn expose_expands_into_several_ports() {
    ok("FROM scratch\nARG PORTS=\"3000 4000/udp\"\nEXPOSE $PORTS\nEXPOSE 5000\n");
}
