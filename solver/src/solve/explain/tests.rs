//! Unit tests of the explain records and their comparison.
#![allow(clippy::unwrap_used)]

use super::*;

fn step(op: usize, name: &str, key: &str, parent: Option<(&str, &str)>) -> StepRecord {
    StepRecord {
        op,
        name: name.to_owned(),
        source: false,
        params: BTreeMap::new(),
        env: BTreeMap::new(),
        parent: parent.map(|(n, k)| ParentRecord {
            name: n.to_owned(),
            key: k.to_owned(),
        }),
        image: None,
        reads: Vec::new(),
        key: key.to_owned(),
        ran: false,
    }
}

fn build(steps: Vec<StepRecord>) -> BuildRecord {
    BuildRecord {
        version: RECORD_VERSION,
        dockerfile: "/d/Dockerfile".into(),
        target: String::new(),
        build_args: ["V".to_owned()].into(),
        no_cache: false,
        no_cache_stages: BTreeSet::new(),
        steps,
    }
}

fn from(digest: &str) -> StepRecord {
    let mut s = step(0, "[stage-0 1/3] FROM busybox", digest, None);
    s.source = true;
    s.image = Some(ImageRecord {
        reference: "busybox".into(),
        digest: digest.into(),
    });
    s
}

#[test]
fn places_parse_stage_and_position() {
    let p = Place::of("[my stage 3/5] RUN echo [x] y");
    assert_eq!(p.stage.as_deref(), Some("my stage"));
    assert_eq!(p.position, Some(3));
    assert_eq!(p.text, "RUN echo [x] y");
    let q = Place::of("[internal] load build context");
    assert_eq!((q.stage, q.position), (None, None));
}

#[test]
fn an_arg_change_is_named_once_then_inherited() {
    let run = |op, n: &str, key: &str, parent: (&str, &str), v: &str| {
        let mut s = step(op, n, key, Some(parent));
        s.env.insert("V".into(), v.into());
        s
    };
    let old = build(vec![
        from("sha256:a"),
        run(
            1,
            "[stage-0 2/3] RUN one",
            "k1",
            ("[stage-0 1/3] FROM busybox", "sha256:a"),
            "x",
        ),
        run(
            2,
            "[stage-0 3/3] RUN two",
            "k2",
            ("[stage-0 2/3] RUN one", "k1"),
            "x",
        ),
    ]);
    let mut new = old.clone();
    for (s, k) in new.steps[1..].iter_mut().zip(["n1", "n2"]) {
        s.env.insert("V".into(), "y".into());
        s.key = k.into();
        s.ran = true;
    }
    new.steps[2].parent = Some(ParentRecord {
        name: "[stage-0 2/3] RUN one".into(),
        key: "n1".into(),
    });
    let e = explain(&old, &new);
    assert_eq!(e.len(), 2, "an unchanged FROM is not shown");
    assert_eq!(
        e[0].causes,
        vec![Cause::BuildArg {
            name: "V".into(),
            old: Some("x".into()),
            new: Some("y".into())
        }]
    );
    assert_eq!(
        e[1].causes,
        vec![Cause::Parent {
            parent: Place::of("[stage-0 2/3] RUN one")
        }]
    );
}

#[test]
fn a_new_base_digest_is_reported_at_from() {
    let old = build(vec![from("sha256:a")]);
    let new = build(vec![from("sha256:b")]);
    let e = explain(&old, &new);
    assert_eq!(
        e[0].causes,
        vec![Cause::BaseImage {
            reference: "busybox".into(),
            old: "sha256:a".into(),
            new: "sha256:b".into()
        }]
    );
    assert!(
        explain(&old, &old).is_empty(),
        "an unchanged FROM is not shown"
    );
}

/// A read of the build context with checksum `digest` listing `files`.
fn read(files: &[(&str, &str)], digest: &str) -> ContentRead {
    ContentRead {
        from: "[internal] load build context".into(),
        local: Some("context".into()),
        digest: digest.into(),
        files: files
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect(),
    }
}

#[test]
fn file_changes_are_listed_by_kind() {
    let mut a = step(1, "[s 2/2] COPY . /", "k1", None);
    a.reads = vec![read(&[("a", "1"), ("b", "1")], "d1")];
    let mut b = step(1, "[s 2/2] COPY . /", "k2", None);
    b.reads = vec![read(&[("b", "2"), ("c", "1")], "d2")];
    b.ran = true;
    let e = explain(&build(vec![a]), &build(vec![b]));
    assert_eq!(
        e[0].causes,
        vec![Cause::Files {
            from: "[internal] load build context".into(),
            local: Some("context".into()),
            added: vec!["c".into()],
            removed: vec!["a".into()],
            modified: vec!["b".into()],
        }]
    );
}

#[test]
fn records_round_trip_atomically() {
    let dir = std::env::temp_dir().join(format!("kiln-explain-{}", std::process::id()));
    let path = record_path(&dir, "/d/Dockerfile", "");
    assert_eq!(load(&path).unwrap(), None);
    let rec = build(vec![from("sha256:a")]);
    save(&path, &rec, &Default::default()).unwrap();
    assert_eq!(load(&path).unwrap(), Some(rec));
    assert_ne!(path, record_path(&dir, "/d/Dockerfile", "app"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A read's listing lives beside the record, keyed by the read's checksum: saved once,
/// left alone while the read is unchanged, replaced (the old one removed) when it changes,
/// and loaded back into the record.
#[test]
fn listings_are_kept_beside_the_record_by_checksum() {
    let dir = std::env::temp_dir().join(format!("kiln-explain-listings-{}", std::process::id()));
    let path = record_path(&dir, "/d/Dockerfile", "");
    let with_read = |digest: &str, files: &[(&str, &str)]| {
        let mut s = step(1, "[s 2/2] COPY . /", "k", None);
        s.reads = vec![read(files, digest)];
        build(vec![s])
    };
    let listings = path.with_extension("listings");
    let listing = |digest: &str| listings.join(format!("{}.json", digest.replace(':', "-")));
    let names = || {
        let mut v: Vec<String> = std::fs::read_dir(&listings)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };

    let first = with_read("sha256:aa", &[("a", "1"), ("b", "2")]);
    save(&path, &first, &Default::default()).unwrap();
    assert!(
        !std::fs::read_to_string(&path).unwrap().contains("\"a\""),
        "the record itself holds no listing"
    );
    assert_eq!(load(&path).unwrap(), Some(first.clone()));
    let written = std::fs::metadata(listing("sha256:aa"))
        .unwrap()
        .modified()
        .unwrap();

    // Unchanged: nothing rewritten.
    std::thread::sleep(std::time::Duration::from_millis(20));
    save(&path, &first, &Default::default()).unwrap();
    let again = std::fs::metadata(listing("sha256:aa"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(written, again);

    // Changed: the new listing replaces the old one.
    let second = with_read("sha256:bb", &[("a", "1"), ("c", "3")]);
    save(&path, &second, &Default::default()).unwrap();
    assert_eq!(names(), ["sha256-bb.json"]);
    assert_eq!(load(&path).unwrap(), Some(second));
    let _ = std::fs::remove_dir_all(&dir);
}
