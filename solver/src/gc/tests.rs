//! Prune policy and usage on small hand-made stores.

use std::time::Duration;

use super::test_support::{
    age, cache_layer, has_layer_snapshot, has_rootfs, image, index, snapshots_for,
};
use super::*;
use crate::store::test_dir::TestDir;

const HOUR: Duration = Duration::from_secs(3600);

/// Two images sharing a base layer, every layer also a cache entry, snapshots for both.
struct Fixture {
    dir: TestDir,
    store: Store,
    a: test_support::TestImage,
    b: test_support::TestImage,
}

const BASE: &[u8] = b"shared base layer";
const A_TOP: &[u8] = b"layer only image a has";
const B_TOP: &[u8] = b"layer only image b has, a bit longer";

fn fixture(name: &str) -> Fixture {
    let dir = TestDir::new(name);
    let store = Store::open(dir.path()).unwrap();
    crate::snapshot::Snapshots::open(dir.path()).unwrap();
    cache_layer(&store, "k-base", BASE);
    cache_layer(&store, "k-a", A_TOP);
    cache_layer(&store, "k-b", B_TOP);
    let a = image(store.content(), &[BASE, A_TOP]);
    let b = image(store.content(), &[BASE, B_TOP]);
    store.images().tag("a:1", &a.manifest).unwrap();
    store.images().tag("b:1", &b.manifest).unwrap();
    snapshots_for(dir.path(), &[BASE, A_TOP]);
    snapshots_for(dir.path(), &[BASE, B_TOP]);
    Fixture { dir, store, a, b }
}

fn run(f: &Fixture, opts: &PruneOptions) -> Report {
    let report = prune(&f.store, opts, || {}).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    report
}

fn cache_keys(store: &Store) -> Vec<String> {
    store
        .meta()
        .cache_entries()
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

#[test]
fn nothing_to_do_on_a_tidy_store() {
    let f = fixture("gc-tidy");
    let report = run(&f, &PruneOptions::default());
    assert_eq!(report.blobs + report.snapshots + report.cache_entries, 0);
    assert_eq!(report.freed, 0);
    assert_eq!(report.kept_cache, 3);
}

#[test]
fn default_prune_after_untag_keeps_the_cache() {
    let f = fixture("gc-default");
    f.store.images().untag("b:1").unwrap();
    // An entry whose blob is gone is dropped whatever the policy.
    let gone = cache_layer(&f.store, "k-gone", b"deleted layer");
    f.store.content().remove(&gone).unwrap();

    let report = run(&f, &PruneOptions::default());
    let content = f.store.content();
    // B's manifest and config go; its layer stays, as build cache.
    assert!(!content.contains(&f.b.manifest));
    assert!(!content.contains(&f.b.config));
    assert!(content.contains(&f.b.layers[1]));
    assert!(has_layer_snapshot(f.dir.path(), B_TOP));
    // B's merged rootfs is no tagged image's chain any more.
    assert!(!has_rootfs(f.dir.path(), &[BASE, B_TOP]));
    assert!(has_rootfs(f.dir.path(), &[BASE, A_TOP]));
    for d in [&f.a.manifest, &f.a.config, &f.a.layers[0], &f.a.layers[1]] {
        assert!(content.contains(d));
    }
    assert_eq!(cache_keys(&f.store), ["k-a", "k-b", "k-base"]);
    assert_eq!(report.cache_entries, 1);
    assert_eq!(report.blobs, 2);
    assert_eq!(report.snapshots, 1);
    assert!(report.freed > 0);
}

#[test]
fn all_drops_cache_no_image_needs() {
    let f = fixture("gc-all");
    f.store.images().untag("b:1").unwrap();
    let before = Inventory::scan(f.dir.path()).unwrap().total();
    let report = run(
        &f,
        &PruneOptions {
            all: true,
            ..PruneOptions::default()
        },
    );
    let after = Inventory::scan(f.dir.path()).unwrap().total();
    assert_eq!(before - after, report.freed, "freed is what du loses");
    assert!(!f.store.content().contains(&f.b.layers[1]));
    assert!(!has_layer_snapshot(f.dir.path(), B_TOP));
    // The shared base and A's layer are needed by a:1, so their entries stay.
    assert!(f.store.content().contains(&f.b.layers[0]));
    assert!(has_layer_snapshot(f.dir.path(), BASE));
    assert_eq!(cache_keys(&f.store), ["k-a", "k-base"]);
    assert_eq!(report.kept_cache, 2);
}

#[test]
fn keep_storage_keeps_the_newest_cache() {
    let dir = TestDir::new("gc-keep");
    let store = Store::open(dir.path()).unwrap();
    let layers: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 1000]).collect();
    for (i, layer) in layers.iter().enumerate() {
        let d = cache_layer(&store, &format!("k{i}"), layer);
        // k0 is the newest, k3 the oldest.
        age(&store.content().blob_path(&d), HOUR * (i as u32 + 1));
    }
    let report = prune(
        &store,
        &PruneOptions {
            keep_storage: Some(2500),
            ..PruneOptions::default()
        },
        || {},
    )
    .unwrap();
    assert_eq!(cache_keys(&store), ["k0", "k1"]);
    assert_eq!(report.cache_entries, 2);
    assert_eq!(report.blobs, 2);
    assert_eq!(report.freed, 2000);

    // Zero keeps nothing that no image needs.
    prune(
        &store,
        &PruneOptions {
            keep_storage: Some(0),
            ..PruneOptions::default()
        },
        || {},
    )
    .unwrap();
    assert!(cache_keys(&store).is_empty());
}

#[test]
fn until_spares_recent_things() {
    let f = fixture("gc-until");
    f.store.images().untag("b:1").unwrap();
    f.store.images().untag("a:1").unwrap();
    // A's blobs are old, B's are new.
    for d in [&f.a.manifest, &f.a.config, &f.a.layers[1]] {
        age(&f.store.content().blob_path(d), 48 * HOUR);
    }
    let report = run(
        &f,
        &PruneOptions {
            all: true,
            until: Some(24 * HOUR),
            ..PruneOptions::default()
        },
    );
    let content = f.store.content();
    assert!(!content.contains(&f.a.manifest));
    assert!(!content.contains(&f.a.layers[1]));
    assert!(content.contains(&f.b.manifest));
    assert!(content.contains(&f.b.layers[1]));
    assert!(content.contains(&f.b.layers[0]));
    assert_eq!(cache_keys(&f.store), ["k-b", "k-base"]);
    assert_eq!(report.blobs, 3);
    // Snapshot directories are all new here.
    assert_eq!(report.snapshots, 0);
}

#[test]
fn gc_roots_and_indexes_keep_their_images() {
    let dir = TestDir::new("gc-roots");
    let store = Store::open(dir.path()).unwrap();
    let pinned = image(store.content(), &[b"pinned layer"]);
    let multi = image(store.content(), &[b"platform layer"]);
    let idx = index(store.content(), &[&multi.manifest]);
    let loose = image(store.content(), &[b"loose layer"]);
    store
        .meta()
        .gc_root_put("build/1", &pinned.manifest)
        .unwrap();
    store.images().tag("multi", &idx).unwrap();
    let report = prune(&store, &PruneOptions::default(), || {}).unwrap();
    let content = store.content();
    for d in [&pinned.layers[0], &multi.layers[0], &multi.config, &idx] {
        assert!(content.contains(d));
    }
    for d in [&loose.manifest, &loose.config, &loose.layers[0]] {
        assert!(!content.contains(d));
    }
    assert_eq!(report.blobs, 3);
}

#[test]
fn temps_and_cache_mounts() {
    let f = fixture("gc-temps");
    let root = f.dir.path();
    let old = root.join("ingest/blob-1-0-0.tmp");
    let fresh = root.join("ingest/blob-2-0-0.tmp");
    std::fs::write(&old, b"abandoned").unwrap();
    std::fs::write(&fresh, b"being written").unwrap();
    age(&old, 2 * HOUR);
    let mount = root.join("cache-mounts/abc");
    std::fs::create_dir_all(mount.join("data")).unwrap();
    std::fs::write(mount.join("data/pkg"), b"cached download").unwrap();
    std::fs::write(mount.join("lock"), b"").unwrap();

    // Temps named after their owner go when it is dead, however young; a live one's stay.
    let dead_dir = root.join(format!("tmp/kiln-tmp-{}-1-0.run", u32::MAX));
    std::fs::create_dir_all(dead_dir.join("upper/usr")).unwrap();
    let dead_view = root.join(format!("snapshots/views/kiln-tmp-{}-1-1.views", u32::MAX));
    std::fs::create_dir_all(dead_view.join("0123")).unwrap();
    let dead_record = root.join(format!("http-cache/urls/kiln-tmp-{}-1-2.record", u32::MAX));
    std::fs::create_dir_all(dead_record.parent().unwrap()).unwrap();
    std::fs::write(&dead_record, b"{}").unwrap();
    let live = root
        .join("ingest")
        .join(crate::fsutil::owner::temp_name("blob"));
    std::fs::write(&live, b"being written").unwrap();
    age(&live, 2 * HOUR);

    let report = run(&f, &PruneOptions::default());
    assert_eq!(report.temps, 4);
    assert!(!old.exists() && fresh.exists());
    assert!(!dead_dir.exists() && !dead_view.exists() && !dead_record.exists());
    assert!(live.exists());
    assert!(mount.exists(), "cache mounts stay without --cache-mounts");

    // A step holding the mount's lock keeps it.
    let held = std::fs::OpenOptions::new()
        .write(true)
        .open(mount.join("lock"))
        .unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let opts = PruneOptions {
        cache_mounts: true,
        ..PruneOptions::default()
    };
    let report = prune(&f.store, &opts, || {}).unwrap();
    assert_eq!(report.cache_mounts, 0);
    assert!(
        report.errors[0].to_string().contains("in use"),
        "{:?}",
        report.errors
    );
    drop(held);
    let report = run(&f, &opts);
    assert_eq!(report.cache_mounts, 1);
    assert!(!mount.exists());
}

#[test]
fn prune_waits_for_running_builds() {
    let f = fixture("gc-wait");
    let build = crate::store::StoreLock::shared(f.dir.path()).unwrap();
    let store = f.store.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let pruner = std::thread::spawn(move || {
        prune(&store, &PruneOptions::default(), || tx.send(()).unwrap()).unwrap()
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("prune should report that it waits");
    std::thread::sleep(Duration::from_millis(100));
    assert!(!pruner.is_finished());
    drop(build);
    pruner.join().unwrap();
}

#[test]
fn usage_adds_up_and_matches_prune_all() {
    let f = fixture("gc-usage");
    f.store.images().untag("b:1").unwrap();
    let usage = usage(&f.store).unwrap();
    let sum: u64 = usage.rows.iter().map(|r| r.size).sum();
    assert_eq!(sum, usage.total);
    assert_eq!(usage.total, Inventory::scan(f.dir.path()).unwrap().total());
    let row = |c: Category| usage.rows.iter().find(|r| r.category == c).unwrap().clone();
    let images = row(Category::Images);
    assert_eq!(images.count, 1);
    let a_meta = f.store.content().size(&f.a.manifest).unwrap()
        + f.store.content().size(&f.a.config).unwrap();
    assert_eq!(images.size, a_meta);
    assert_eq!(images.reclaimable, 0);
    // Blobs: 3 layers + B's manifest and config (no longer an image).
    assert_eq!(row(Category::Blobs).count, 5);
    assert_eq!(row(Category::Snapshots).count, 5);
    assert_eq!(row(Category::Metadata).count, 1);
    assert_eq!(usage.cache_entries, 3);
    let report = run(
        &f,
        &PruneOptions {
            all: true,
            cache_mounts: true,
            ..PruneOptions::default()
        },
    );
    assert_eq!(report.freed, usage.reclaimable);
}

#[test]
fn add_url_downloads_go_with_all_only() {
    let f = fixture("gc-http-cache");
    let files = f.dir.path().join("http-cache/files");
    let urls = f.dir.path().join("http-cache/urls");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::create_dir_all(&urls).unwrap();
    std::fs::write(files.join("d1"), b"downloaded bytes").unwrap();
    std::fs::write(urls.join("u1"), b"{\"etag\":\"x\"}").unwrap();
    age(&files.join("d1"), 2 * HOUR);
    age(&urls.join("u1"), 2 * HOUR);
    run(&f, &PruneOptions::default());
    assert!(files.join("d1").exists(), "a default prune keeps downloads");
    let before = Inventory::scan(f.dir.path()).unwrap().total();
    let report = run(
        &f,
        &PruneOptions {
            all: true,
            ..PruneOptions::default()
        },
    );
    assert!(!files.join("d1").exists() && !urls.join("u1").exists());
    let after = Inventory::scan(f.dir.path()).unwrap().total();
    assert_eq!(before - after, report.freed, "freed is what du loses");
}
