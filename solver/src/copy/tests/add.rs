//! ADD of local archives.

use std::io::Write;
use std::os::unix::fs::MetadataExt;

use super::*;

/// A tar holding `pkg/` (0750, 1000:1000), `pkg/bin/tool` (0755), a symlink and a hard
/// link to the tool, all dated 1_500_000_000.
fn sample_tar() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, link: Option<&str>, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(1000);
        header.set_gid(1000);
        header.set_mtime(1_500_000_000);
        header.set_size(data.len() as u64);
        if let Some(link) = link {
            header.set_link_name(link).unwrap();
        }
        builder.append_data(&mut header, path, data).unwrap();
    };
    add("pkg/", tar::EntryType::Directory, 0o750, None, b"");
    add(
        "pkg/bin/tool",
        tar::EntryType::Regular,
        0o755,
        None,
        b"#!/bin/true\n",
    );
    add(
        "pkg/latest",
        tar::EntryType::Symlink,
        0o777,
        Some("bin/tool"),
        b"",
    );
    add(
        "pkg/again",
        tar::EntryType::Link,
        0o755,
        Some("pkg/bin/tool"),
        b"",
    );
    builder.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn add_spec(sources: &[&str], dest: &str) -> CopySpec {
    CopySpec {
        unpack_archives: true,
        ..spec(sources, dest)
    }
}

#[test]
fn add_extracts_a_tar_gz() {
    let (ctx, out) = (Scratch::new("add-ctx"), Scratch::new("add-out"));
    std::fs::write(ctx.join("pkg.tar.gz"), gzip(&sample_tar())).unwrap();
    let stats = run(&add_spec(&["pkg.tar.gz"], "/opt"), &ctx, None, &out).unwrap();
    assert_eq!((stats.archives, stats.archive_entries), (1, 4));
    assert_eq!(
        listing(&out),
        [
            "opt dir 755 0:0",
            "opt/pkg dir 750 1000:1000",
            "opt/pkg/again file 755 1000:1000",
            "opt/pkg/bin dir 755 0:0",
            "opt/pkg/bin/tool file 755 1000:1000",
            "opt/pkg/latest link->bin/tool 1000:1000",
        ]
    );
    assert_eq!(read(&out, "opt/pkg/bin/tool"), "#!/bin/true\n");
    let (tool, again) = (
        lstat(&out, "opt/pkg/bin/tool"),
        lstat(&out, "opt/pkg/again"),
    );
    assert_eq!(tool.ino(), again.ino());
    assert_eq!(tool.mtime(), 1_500_000_000);
    assert_eq!(lstat(&out, "opt/pkg").mtime(), 1_500_000_000);
}

#[test]
fn add_with_chown_and_every_compression() {
    let tar = sample_tar();
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(&tar).unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bz.write_all(&tar).unwrap();
    let archives = [
        ("plain.tar", tar.clone()),
        ("x.tar.xz", xz.finish().unwrap()),
        ("x.tar.bz2", bz.finish().unwrap()),
        ("x.tar.zst", zstd::encode_all(&tar[..], 1).unwrap()),
        // The name does not matter, the content does.
        ("gz.bin", gzip(&tar)),
    ];
    for (name, bytes) in archives {
        let (ctx, out) = (Scratch::new("addc-ctx"), Scratch::new("addc-out"));
        std::fs::write(ctx.join(name), bytes).unwrap();
        let mut spec = add_spec(&[name], "/x/");
        spec.chown = Some("5:6".into());
        run(&spec, &ctx, None, &out).unwrap();
        let tool = lstat(&out, "x/pkg/bin/tool");
        assert_eq!((tool.uid(), tool.gid()), (5, 6), "{name}");
        assert_eq!(
            lstat(&out, "x").uid(),
            5,
            "{name}: the new destination is the user's"
        );
    }
}

#[test]
fn add_copies_what_is_not_an_archive_and_copy_never_extracts() {
    let (ctx, out) = (Scratch::new("addn-ctx"), Scratch::new("addn-out"));
    ctx.file("notes.tar.gz", "not really");
    std::fs::write(ctx.join("real.tar"), sample_tar()).unwrap();
    run(&add_spec(&["notes.tar.gz"], "/n"), &ctx, None, &out).unwrap();
    assert_eq!(read(&out, "n"), "not really");
    run(&spec(&["real.tar"], "/r"), &ctx, None, &out).unwrap();
    assert!(lstat(&out, "r").is_file());
}

#[test]
fn add_refuses_entries_that_leave_the_destination() {
    let (ctx, out) = (Scratch::new("adde-ctx"), Scratch::new("adde-out"));
    let mut header = tar::Header::new_old();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(1);
    header.set_mode(0o644);
    // `set_path` refuses `..`, so the name is written by hand.
    let name = b"../../evil";
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &b"x"[..]).unwrap();
    std::fs::write(ctx.join("evil.tar"), builder.into_inner().unwrap()).unwrap();
    let err = run(&add_spec(&["evil.tar"], "/d/"), &ctx, None, &out).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("tar entry \"../../evil\": climbs out of the destination with `..`"),
        "{err}"
    );
    assert!(err.to_string().contains("evil.tar"), "{err}");
}

/// BuildKit's testDockerfileAddArchiveThroughAbsoluteSymlink (moby/moby#53258): entries
/// under `var/run/` follow the image's `var/run -> /run` inside the rootfs; the image's
/// `run` comes up into the layer with its own metadata; an explicit entry replaces.
#[test]
fn add_follows_the_images_symlinked_parents() {
    let (ctx, rootfs, out) = (
        Scratch::new("adds-ctx"),
        Scratch::new("adds-rootfs"),
        Scratch::new("adds-out"),
    );
    rootfs.dir("run");
    rootfs.chmod("run", 0o710);
    rootfs.dir("var");
    rootfs.symlink("var/run", "/run");
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind, link) in [
        ("var/run/act/", tar::EntryType::Directory, None),
        ("var/run/act/HEAD", tar::EntryType::Regular, None),
        (
            "var/run/act/HEAD.link",
            tar::EntryType::Link,
            Some("var/run/act/HEAD"),
        ),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_size(if kind == tar::EntryType::Regular {
            4
        } else {
            0
        });
        if let Some(link) = link {
            header.set_link_name(link).unwrap();
        }
        let data: &[u8] = if kind == tar::EntryType::Regular {
            b"ref\n"
        } else {
            b""
        };
        builder.append_data(&mut header, path, data).unwrap();
    }
    std::fs::write(ctx.join("payload.tar"), builder.into_inner().unwrap()).unwrap();
    run(&add_spec(&["payload.tar"], "/"), &ctx, Some(&rootfs), &out).unwrap();
    assert_eq!(
        listing(&out),
        [
            "run dir 710 0:0",
            "run/act dir 755 0:0",
            "run/act/HEAD file 644 0:0",
            "run/act/HEAD.link file 644 0:0",
            // Passed through on the way to the link, so brought up unchanged, as COPY does.
            "var dir 755 0:0",
        ]
    );
    assert_eq!(
        lstat(&out, "run/act/HEAD").ino(),
        lstat(&out, "run/act/HEAD.link").ino()
    );
}

/// BuildKit's unpack ignores --chmod: the destination is made 0755 (MkdirAll(dest, 0755,
/// chown)) and the entries keep the archive's modes.
#[test]
fn add_chmod_does_not_touch_an_archive() {
    let (ctx, out) = (Scratch::new("addm-ctx"), Scratch::new("addm-out"));
    std::fs::write(ctx.join("pkg.tar"), sample_tar()).unwrap();
    let mut spec = add_spec(&["pkg.tar"], "/opt/x/");
    spec.chmod = Some("700".into());
    run(&spec, &ctx, None, &out).unwrap();
    let listed = listing(&out);
    assert!(listed.contains(&"opt dir 755 0:0".to_owned()), "{listed:?}");
    assert!(
        listed.contains(&"opt/x dir 755 0:0".to_owned()),
        "{listed:?}"
    );
    assert!(
        listed.contains(&"opt/x/pkg dir 750 1000:1000".to_owned()),
        "{listed:?}"
    );
    assert!(
        listed.contains(&"opt/x/pkg/bin/tool file 755 1000:1000".to_owned()),
        "{listed:?}"
    );
}
