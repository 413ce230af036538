//! Heredoc sources.

use std::os::unix::fs::MetadataExt;

use super::*;
use crate::copy::write_inline_file;

/// A heredoc written both ways (see [`both`]).
fn inline(
    dest: &str,
    name: &str,
    data: &[u8],
    chown: Option<&str>,
    chmod: Option<&str>,
    rootfs: Option<&Path>,
    out: &Path,
) -> Result<(), CopyError> {
    both(out, |upper| {
        write_inline_file(dest, name, data, chown, chmod, rootfs, upper)
    })
}

#[test]
fn heredoc_into_a_directory_takes_its_name() {
    let out = Scratch::new("here-out");
    inline(
        "/app/",
        "EOF",
        b"echo hi\n",
        None,
        Some("0755"),
        None,
        out.path(),
    )
    .unwrap();
    assert_eq!(listing(&out), ["app dir 755 0:0", "app/EOF file 755 0:0"]);
    assert_eq!(read(&out, "app/EOF"), "echo hi\n");
}

#[test]
fn heredoc_to_a_file_path_with_an_owner() {
    let (out, rootfs) = (Scratch::new("here2-out"), Scratch::new("here2-rootfs"));
    rootfs.file("etc/passwd", "svc:x:99:98::/:/bin/sh\n");
    inline(
        "/etc/svc.conf",
        "CONF",
        b"k=v\n",
        Some("svc"),
        None,
        Some(rootfs.path()),
        out.path(),
    )
    .unwrap();
    let conf = lstat(&out, "etc/svc.conf");
    assert_eq!(
        (conf.uid(), conf.gid(), conf.mode() & 0o7777),
        (99, 98, 0o644)
    );
    assert_eq!(read(&out, "etc/svc.conf"), "k=v\n");
    // /etc existed, so it is carried as it was (root-owned), not given to svc.
    assert_eq!(lstat(&out, "etc").uid(), 0);
}
