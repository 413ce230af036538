//! Cross-checks of the exporters with independent tools, run only where they are installed
//! (`skopeo`, `umoci`); the end-to-end suite runs them for real.

use std::path::Path;
use std::process::{Command, Output};

use super::test_image::build;
use super::{export_docker_archive, export_oci_layout, export_oci_tar};
use crate::image::layout::read_oci_layout;
use crate::store::ContentStore;
use crate::store::test_dir::TestDir;
use kiln_llb::Platform;

fn installed(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(tool: &str, args: &[&str]) -> Output {
    let output = Command::new(tool).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn skopeo_reads_every_export() {
    assert!(
        installed("skopeo"),
        "skopeo is missing: run `bash .ci/setup`"
    );
    let dir = TestDir::new("skopeo");
    let store = ContentStore::open(&dir.path().join("store")).unwrap();
    let image = build(&store, &[&[("etc/a", b"1")], &[("etc/b", b"2")]], None);
    let layout = dir.path().join("layout");
    let oci_tar = dir.path().join("oci.tar");
    let docker_tar = dir.path().join("docker.tar");
    export_oci_layout(&store, &image.manifest, &layout, Some("1.0")).unwrap();
    export_oci_tar(&store, &image.manifest, &oci_tar, Some("1.0")).unwrap();
    export_docker_archive(
        &store,
        &image.manifest,
        &["app:1.0".to_owned()],
        &docker_tar,
    )
    .unwrap();

    let inspect = run(
        "skopeo",
        &["inspect", &format!("oci:{}:1.0", path(&layout))],
    );
    let json: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(json["Digest"], image.manifest.to_string());
    run(
        "skopeo",
        &["inspect", &format!("oci-archive:{}:1.0", path(&oci_tar))],
    );
    let inspect = run(
        "skopeo",
        &["inspect", &format!("docker-archive:{}", path(&docker_tar))],
    );
    let json: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(json["Layers"].as_array().unwrap().len(), 2);

    // Copying verifies every blob; from the docker archive it also checks layers against
    // the config's diff ids. The copy back is an OCI layout kiln must read.
    let copied = dir.path().join("copied");
    run(
        "skopeo",
        &[
            "copy",
            &format!("docker-archive:{}", path(&docker_tar)),
            &format!("oci:{}:back", path(&copied)),
        ],
    );
    let back = read_oci_layout(&copied, Some("back"), &Platform::host()).unwrap();
    // skopeo re-serializes the config when it turns a docker image into an OCI one, so
    // compare what it means, not its bytes.
    let diff_ids = |bytes: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(bytes).unwrap()["rootfs"]["diff_ids"].clone()
    };
    assert_eq!(
        diff_ids(&back.config),
        diff_ids(&store.read_blob(&image.config).unwrap())
    );
    let copied2 = dir.path().join("copied2");
    run(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}:1.0", path(&layout)),
            &format!("oci:{}:x", path(&copied2)),
        ],
    );
    assert_eq!(
        read_oci_layout(&copied2, Some("x"), &Platform::host())
            .unwrap()
            .manifest_digest,
        image.manifest
    );
}

#[test]
fn umoci_unpacks_layout() {
    assert!(installed("umoci"), "umoci is missing: run `bash .ci/setup`");
    let dir = TestDir::new("umoci");
    let store = ContentStore::open(&dir.path().join("store")).unwrap();
    let image = build(&store, &[&[("etc/a", b"1")], &[("etc/b", b"2")]], None);
    let layout = dir.path().join("layout");
    export_oci_layout(&store, &image.manifest, &layout, Some("1.0")).unwrap();
    run(
        "umoci",
        &["stat", "--image", &format!("{}:1.0", path(&layout))],
    );
    let bundle = dir.path().join("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:1.0", path(&layout)),
            path(&bundle),
        ],
    );
    assert_eq!(std::fs::read(bundle.join("rootfs/etc/b")).unwrap(), b"2");
}
