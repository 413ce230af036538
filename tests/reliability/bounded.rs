//! Hostile registries: a blob that never ends (its descriptor says it is small) and a 100 MB
//! manifest, from a test server on a free loopback port. kiln must stop reading at the size it
//! was promised or at the manifest limit, fail with an error naming what it refused, and keep
//! the store and its own memory under 100 MB.

use std::collections::HashMap;
use std::io::{BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::common::Tmp;
use crate::common::proxy::read_head;
use crate::common::registry::sha256;
use crate::support::{Background, Stderr, serial, tree_size};

/// The most a hostile server streams in one response before it gives up on its own (kiln
/// should stop far sooner).
const SAFETY_CAP: u64 = 2 << 30;
/// What kiln may hold, on disk and in memory, whatever the server sends.
const BUDGET: u64 = 100 << 20;
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// How the server answers one path.
#[derive(Clone)]
enum Answer {
    /// These bytes, with their length.
    Bytes(&'static str, Vec<u8>),
    /// Bytes without end, as fast as the client reads: `length` is what the headers claim
    /// (`None`: no Content-Length, the body ends when the connection does).
    Endless {
        content_type: &'static str,
        length: Option<u64>,
    },
}

/// A registry that lies, on 127.0.0.1; stopped when dropped.
struct Hostile {
    addr: String,
    served: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Hostile {
    fn start(routes: HashMap<String, Answer>) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let served = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let routes = Arc::new(routes);
        let (served2, stop2) = (served.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (routes, served, stop) =
                            (routes.clone(), served2.clone(), stop2.clone());
                        std::thread::spawn(move || serve(stream, &routes, &served, &stop));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Hostile { addr, served, stop }
    }

    fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    stream: TcpStream,
    routes: &HashMap<String, Answer>,
    served: &AtomicU64,
    stop: &AtomicBool,
) {
    stream.set_nonblocking(false).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    while let Ok(Some(head)) = read_head(&mut reader) {
        let mut parts = head.start.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let path = parts.next().unwrap_or("").to_owned();
        let answer = routes.get(&path).cloned();
        let head_only = method == "HEAD";
        let result = match answer {
            None => write!(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
            Some(Answer::Bytes(content_type, body)) => {
                let digest = sha256(&body);
                let written = write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
                     Docker-Content-Digest: {digest}\r\n\r\n",
                    body.len()
                );
                if head_only {
                    written
                } else {
                    written.and_then(|()| out.write_all(&body))
                }
            }
            Some(Answer::Endless {
                content_type,
                length,
            }) => {
                let length = length.map_or(String::new(), |n| format!("Content-Length: {n}\r\n"));
                let mut written = write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n{length}Connection: close\r\n\r\n"
                );
                if !head_only {
                    let chunk = [b' '; 64 * 1024];
                    let mut sent = 0;
                    while written.is_ok() && !stop.load(Ordering::SeqCst) && sent < SAFETY_CAP {
                        written = out.write_all(&chunk);
                        sent += chunk.len() as u64;
                        served.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                    }
                    return;
                }
                written
            }
        };
        if result.is_err() {
            return;
        }
    }
}

/// A small config the manifests point at.
fn config() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": crate::devices::host_arch(),
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(b"layer")]},
    }))
    .unwrap()
}

/// A gzip layer of an empty tar.
fn empty_layer() -> Vec<u8> {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&[0; 1024]).unwrap();
    gz.finish().unwrap()
}

fn manifest(config: (&str, usize), layer: (&str, usize)) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config.0, "size": config.1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer.0, "size": layer.1}],
    }))
    .unwrap()
}

/// `kiln pull <reference>` against the server; the failures of the probe named `what`.
fn pull_within_budget(
    t: &Tmp,
    hostile: &Hostile,
    repo: &str,
    what: &str,
    must_name: &str,
) -> Vec<String> {
    let root = t.join(&format!("root-{repo}"));
    let reference = format!("{}/{repo}:1", hostile.addr);
    let before = hostile.served();
    let mut kiln = Background::start(&root, &t.join("logs"), &["pull", &reference], Stderr::File);
    let (status, peak) = kiln.wait_sampling_rss(Duration::from_secs(120));
    let mut failures = Vec::new();
    match status {
        None => failures.push(format!("{what}: still pulling after 120 s")),
        Some(s) if s.success() => failures.push(format!("{what}: the pull succeeded")),
        Some(_) => {}
    }
    let stderr = kiln.stderr();
    if !stderr.contains(must_name) {
        failures.push(format!(
            "{what}: the error does not name {must_name}:\n{stderr}"
        ));
    }
    let stored = tree_size(Path::new(&root));
    if stored > BUDGET {
        failures.push(format!("{what}: the store grew to {stored} bytes"));
    }
    if peak > BUDGET {
        failures.push(format!(
            "{what}: kiln's resident memory peaked at {peak} bytes"
        ));
    }
    let served = hostile.served() - before;
    if served > BUDGET {
        failures.push(format!("{what}: kiln read {served} bytes of it"));
    }
    crate::support::note(&format!(
        "{what}: exit {status:?}, store {stored} B, peak RSS {peak} B, {served} B read; {}",
        stderr.lines().last().unwrap_or("")
    ));
    failures
}

#[test]
fn endless_blobs_and_huge_manifests_are_refused_within_budget() {
    let _serial = serial();
    let t = Tmp::new("rel-hostile");
    let config = config();
    let config_digest = sha256(&config);
    let small_layer = sha256(b"a small layer that never ends");
    let small_config = sha256(b"a small config that never ends");
    let endless = |content_type| Answer::Endless {
        content_type,
        length: None,
    };
    let mut routes = HashMap::new();
    routes.insert(
        "/v2/".to_owned(),
        Answer::Bytes("application/json", b"{}".to_vec()),
    );
    // A manifest whose layer claims 1500 bytes and never ends.
    routes.insert(
        "/v2/endless-layer/manifests/1".to_owned(),
        Answer::Bytes(
            MANIFEST,
            manifest((&config_digest, config.len()), (&small_layer, 1500)),
        ),
    );
    routes.insert(
        format!("/v2/endless-layer/blobs/{config_digest}"),
        Answer::Bytes("application/octet-stream", config.clone()),
    );
    routes.insert(
        format!("/v2/endless-layer/blobs/{small_layer}"),
        endless("application/octet-stream"),
    );
    // A manifest whose config claims 300 bytes and never ends (its layer is a real one).
    let layer = empty_layer();
    let layer_digest = sha256(&layer);
    routes.insert(
        "/v2/endless-config/manifests/1".to_owned(),
        Answer::Bytes(
            MANIFEST,
            manifest((&small_config, 300), (&layer_digest, layer.len())),
        ),
    );
    routes.insert(
        format!("/v2/endless-config/blobs/{layer_digest}"),
        Answer::Bytes("application/octet-stream", layer),
    );
    routes.insert(
        format!("/v2/endless-config/blobs/{small_config}"),
        endless("application/octet-stream"),
    );
    // A 100 MB manifest, announced as such, and one that never says its length.
    for (repo, length) in [
        ("huge-manifest", Some(100 << 20)),
        ("endless-manifest", None),
    ] {
        routes.insert(
            format!("/v2/{repo}/manifests/1"),
            Answer::Endless {
                content_type: MANIFEST,
                length,
            },
        );
    }
    let hostile = Hostile::start(routes);
    let mut failures = Vec::new();
    for (repo, what, must_name) in [
        (
            "endless-layer",
            "an endless layer blob",
            small_layer.as_str(),
        ),
        (
            "endless-config",
            "an endless config blob",
            small_config.as_str(),
        ),
        ("huge-manifest", "a 100 MB manifest", "manifest"),
        ("endless-manifest", "a manifest without end", "manifest"),
    ] {
        failures.extend(pull_within_budget(&t, &hostile, repo, what, must_name));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
