//! Registries end to end: kiln pull/push/build against Debian's real registry (anonymous,
//! htpasswd basic auth, bearer tokens through a proxy), multi-platform indexes, faults
//! injected by a proxy (retries must give byte-correct results), and remote/local build
//! cache round trips. Results are checked with skopeo, oci-image-tool and plain HTTP.
//! The first tests check the harness itself (registry, proxy) with curl and skopeo.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::proxy::{Fault, Proxy};
use common::registry::{self, Registry, get_manifest, http, push_blob, put_manifest, sha256};
use common::{Tmp, kiln, kiln_env, tool, write_files};

// ---------------------------------------------------------------------------------------
// Harness

/// A one-layer OCI image layout at `dir` (tag `x`) without kiln: an uncompressed tar of one
/// file, a config and a manifest. Returns the manifest digest.
fn tiny_layout(dir: &Path, content: &str) -> String {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    std::fs::write(rootfs.join("hello.txt"), content).unwrap();
    let layer_file = dir.join("layer.tar");
    tool(
        "tar",
        &[
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "-C",
            rootfs.to_str().unwrap(),
            "-cf",
            layer_file.to_str().unwrap(),
            "hello.txt",
        ],
    )
    .ok_tool();
    let layout = dir.join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let d = sha256(data);
        std::fs::write(blobs.join(d.trim_start_matches("sha256:")), data).unwrap();
        (d, data.len())
    };
    let layer = std::fs::read(&layer_file).unwrap();
    let (ld, ls) = put(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{ld}"]}}}}"#
    );
    let (cd, cs) = put(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{cs}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":{ls}}}]}}"#
    );
    let (md, ms) = put(manifest.as_bytes());
    std::fs::write(
        layout.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{ms},"annotations":{{"org.opencontainers.image.ref.name":"x"}}}}]}}"#
        ),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    md
}

trait ToolExt {
    fn ok_tool(self) -> Self;
}

impl ToolExt for common::Run {
    fn ok_tool(self) -> Self {
        assert_eq!(
            self.code, 0,
            "tool failed:\n{}\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// `curl` exit code, HTTP status and body for one request.
fn curl(args: &[&str]) -> (i32, String) {
    let mut a = vec!["-s", "-S", "--max-time", "30"];
    a.extend_from_slice(args);
    let r = tool("curl", &a);
    (r.code, r.stdout)
}

fn curl_status(url: &str, extra: &[&str]) -> u16 {
    let mut a = vec!["-o", "/dev/null", "-w", "%{http_code}"];
    a.extend_from_slice(extra);
    a.push(url);
    let (code, out) = curl(&a);
    assert_eq!(code, 0, "curl {url}: exit {code}");
    out.trim().parse().unwrap()
}

/// Copies the tiny image to `docker://ADDR/REPO:1` with skopeo; returns the manifest digest.
fn skopeo_push_tiny(t: &Tmp, addr: &str, repo: &str, extra: &[&str]) -> String {
    let digest = tiny_layout(&t.join(&format!("tiny-{repo}")), "hello\n");
    let layout = t.join(&format!("tiny-{repo}/layout"));
    let mut args = vec!["copy", "--preserve-digests", "--dest-tls-verify=false"];
    args.extend_from_slice(extra);
    let src = format!("oci:{}:x", layout.display());
    let dest = format!("docker://{addr}/{repo}:1");
    args.push(&src);
    args.push(&dest);
    tool("skopeo", &args).ok_tool();
    digest
}

#[test]
fn harness_registry_answers_and_stores_what_skopeo_pushes() {
    let reg = Registry::start();
    assert_eq!(curl_status(&format!("http://{}/v2/", reg.addr()), &[]), 200);
    let t = Tmp::new("h-reg");
    let digest = skopeo_push_tiny(&t, reg.addr(), "tiny", &[]);
    let m = get_manifest(reg.addr(), "tiny", "1");
    assert_eq!(m.status, 200, "{}", m.text());
    assert_eq!(m.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(sha256(&m.body), digest);
}

#[test]
fn harness_htpasswd_registry_rejects_a_wrong_password() {
    let reg = Registry::start_htpasswd("kiln", "s3cret");
    let url = format!("http://{}/v2/", reg.addr());
    assert_eq!(curl_status(&url, &[]), 401);
    assert_eq!(curl_status(&url, &["-u", "kiln:wrong"]), 401);
    assert_eq!(curl_status(&url, &["-u", "kiln:s3cret"]), 200);
    let t = Tmp::new("h-basic");
    skopeo_push_tiny(&t, reg.addr(), "tiny", &["--dest-creds", "kiln:s3cret"]);
    let bad = tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            "kiln:wrong",
            &format!("docker://{}/tiny:1", reg.addr()),
        ],
    );
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("unauthorized"), "{}", bad.stderr);
}

#[test]
fn harness_bearer_proxy_hands_out_tokens_and_forwards() {
    let reg = Registry::start();
    let proxy = Proxy::with_bearer(reg.addr(), "tok", "en");
    let base = format!("http://{}", proxy.addr());
    // No token: a challenge naming the token endpoint and, for a repository path, the scope.
    let (code, head) = curl(&["-D", "-", "-o", "/dev/null", &format!("{base}/v2/")]);
    let head = head.to_ascii_lowercase();
    assert_eq!(code, 0);
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(
        head.contains(&format!(
            "www-authenticate: bearer realm=\"{base}/token\",service=\"kiln-test\"\r\n"
        )),
        "{head}"
    );
    let (_, head) = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        &format!("{base}/v2/team/app/manifests/1"),
    ]);
    assert!(
        head.contains("scope=\"repository:team/app:pull,push\""),
        "{head}"
    );
    // Wrong password: 401; right one: a token that opens the registry.
    let token_url = format!("{base}/token?service=kiln-test&scope=repository:team/app:pull");
    assert_eq!(curl_status(&token_url, &["-u", "tok:nope"]), 401);
    let (code, body) = curl(&["-u", "tok:en", &token_url]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let token = v["token"].as_str().unwrap();
    assert_eq!(v["access_token"], token);
    assert_eq!(v["expires_in"], 300);
    let auth = format!("Authorization: Bearer {token}");
    assert_eq!(curl_status(&format!("{base}/v2/"), &["-H", &auth]), 200);
    assert_eq!(
        curl_status(
            &format!("{base}/v2/"),
            &["-H", "Authorization: Bearer forged"]
        ),
        401
    );
    assert_eq!(proxy.token_requests(), 2);
    // A real client does the whole dance, uploads included (Location points at the proxy).
    let t = Tmp::new("h-bearer");
    let digest = skopeo_push_tiny(&t, proxy.addr(), "tiny", &["--dest-creds", "tok:en"]);
    assert!(proxy.token_requests() > 2, "{}", proxy.dump());
    let m = get_manifest(reg.addr(), "tiny", "1");
    assert_eq!(m.header("docker-content-digest"), Some(digest.as_str()));
    let out = tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            "tok:en",
            &format!("docker://{}/tiny:1", proxy.addr()),
        ],
    )
    .ok_tool();
    assert_eq!(sha256(out.stdout.as_bytes()), digest);
}

#[test]
fn harness_plain_proxy_forwards_uploads_keep_alive_and_chunked_bodies() {
    let reg = Registry::start();
    let proxy = Proxy::with_faults(reg.addr(), &[]);
    let t = Tmp::new("h-plain");
    let digest = skopeo_push_tiny(&t, proxy.addr(), "tiny", &[]);
    assert_eq!(
        get_manifest(reg.addr(), "tiny", "1").header("docker-content-digest"),
        Some(digest.as_str())
    );
    assert!(
        proxy.count(Some("PUT"), "/manifests/1") == 1,
        "{}",
        proxy.dump()
    );
    // Two requests on one kept-alive connection.
    let base = format!("http://{}", proxy.addr());
    let (code, out) = curl(&[
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        "-w",
        "%{http_code} %{num_connects}\n",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        &format!("{base}/v2/"),
        &format!("{base}/v2/tiny/manifests/1"),
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        out, "200 1\n200 0\n",
        "second request reuses the connection"
    );
    // A chunked upload through the proxy.
    let blob = vec![7u8; 100_000];
    let file = t.join("blob");
    std::fs::write(&file, &blob).unwrap();
    let start = http(proxy.addr(), "POST", "/v2/tiny/blobs/uploads/", &[], b"");
    assert_eq!(start.status, 202);
    let loc = start.header("location").unwrap().to_owned();
    assert!(
        loc.starts_with(&base),
        "Location points at the proxy: {loc}"
    );
    let sep = if loc.contains('?') { '&' } else { '?' };
    let want = sha256(&blob);
    let put = curl_status(
        &format!("{loc}{sep}digest={want}"),
        &[
            "-X",
            "PUT",
            "-H",
            "Transfer-Encoding: chunked",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.display()),
        ],
    );
    assert_eq!(put, 201, "{}", proxy.dump());
    let got = http(
        proxy.addr(),
        "GET",
        &format!("/v2/tiny/blobs/{want}"),
        &[],
        b"",
    );
    assert_eq!(got.status, 200);
    assert_eq!(sha256(&got.body), want);
}

#[test]
fn harness_each_fault_fires_exactly_its_times() {
    let reg = Registry::start();
    let blob: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let digest = push_blob(reg.addr(), "f", &blob);
    let path = format!("/v2/f/blobs/{digest}");
    let proxy = Proxy::with_faults(
        reg.addr(),
        &[
            (Some("GET"), &path, Fault::Status(503), 2),
            (Some("GET"), &path, Fault::DropConnection, 1),
            (Some("GET"), &path, Fault::TruncateBody, 1),
            (Some("GET"), &path, Fault::CorruptBody, 1),
            // HEAD has no body: this rule never applies to it.
            (Some("HEAD"), &path, Fault::CorruptBody, 1),
            (None, "/manifests/", Fault::Status(500), 1),
            (None, "/manifests/", Fault::Status(502), 1),
        ],
    );
    let url = format!("http://{}{path}", proxy.addr());
    let file = Tmp::new("h-fault");
    let out = file.join("out");
    let get = || {
        let (code, status) = curl(&["-o", out.to_str().unwrap(), "-w", "%{http_code}", &url]);
        let body = std::fs::read(&out).unwrap_or_default();
        let _ = std::fs::remove_file(&out);
        (code, status, body)
    };
    let (c, s, _) = get();
    assert_eq!((c, s.as_str()), (0, "503"));
    let (c, s, _) = get();
    assert_eq!((c, s.as_str()), (0, "503"));
    let (c, _, _) = get();
    assert_eq!(c, 52, "curl: empty reply from server");
    let (c, s, body) = get();
    assert_eq!((c, s.as_str()), (18, "200"), "curl: partial file");
    assert_eq!(body.len(), blob.len() / 2);
    let (c, s, body) = get();
    assert_eq!((c, s.as_str()), (0, "200"));
    assert_eq!(body.len(), blob.len());
    assert_ne!(sha256(&body), digest, "one byte flipped");
    for _ in 0..2 {
        let (c, s, body) = get();
        assert_eq!((c, s.as_str()), (0, "200"));
        assert_eq!(sha256(&body), digest, "plan exhausted: clean again");
    }
    assert_eq!(curl_status(&url, &["-I"]), 200);
    let murl = format!("http://{}/v2/f/manifests/nope", proxy.addr());
    assert_eq!(curl_status(&murl, &[]), 500);
    assert_eq!(curl_status(&murl, &[]), 502);
    assert_eq!(curl_status(&murl, &[]), 404);
    assert_eq!(proxy.faults_fired(), 7, "{}", proxy.dump());
    assert_eq!(proxy.count(Some("GET"), &path), 7, "{}", proxy.dump());
    let statuses: Vec<u16> = proxy.requests().iter().map(|e| e.status).collect();
    assert_eq!(
        statuses,
        [503, 503, 0, 200, 200, 200, 200, 200, 500, 502, 404],
        "{}",
        proxy.dump()
    );

    // Faults on uploads act on the request body: the registry sees the damage.
    proxy.set_faults(&[
        (Some("PUT"), "/blobs/uploads/", Fault::CorruptBody, 1),
        (Some("PUT"), "/blobs/uploads/", Fault::TruncateBody, 1),
    ]);
    proxy.clear_requests();
    let other: Vec<u8> = blob.iter().rev().copied().collect();
    let want = sha256(&other);
    let upload = || {
        let start = http(proxy.addr(), "POST", "/v2/f/blobs/uploads/", &[], b"");
        assert_eq!(start.status, 202);
        let loc = start.header("location").unwrap().to_owned();
        let sep = if loc.contains('?') { '&' } else { '?' };
        let f = file.join("up");
        std::fs::write(&f, &other).unwrap();
        curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", f.display()),
            &format!("{loc}{sep}digest={want}"),
        ])
    };
    assert_eq!(
        upload(),
        (0, "400".into()),
        "corrupted upload: digest invalid"
    );
    assert_eq!(upload().0, 52, "truncated upload: connection dropped");
    assert_eq!(
        upload(),
        (0, "201".into()),
        "{}\n{}",
        proxy.dump(),
        reg.log()
    );
    assert_eq!(proxy.faults_fired(), 2, "{}", proxy.dump());
    let got = http(reg.addr(), "GET", &format!("/v2/f/blobs/{want}"), &[], b"");
    assert_eq!(sha256(&got.body), want);
}

// ---------------------------------------------------------------------------------------
// kiln against the registry

/// Environment for kiln: credentials only from `docker_config` (never the machine's).
fn env(docker_config: &str) -> [(&str, &str); 2] {
    [
        ("DOCKER_CONFIG", docker_config),
        ("SOURCE_DATE_EPOCH", "1700000000"),
    ]
}

/// An empty DOCKER_CONFIG directory: no credentials at all.
fn no_creds(t: &Tmp) -> String {
    let dir = t.join("docker-config-empty");
    std::fs::create_dir_all(&dir).unwrap();
    dir.to_str().unwrap().to_owned()
}

/// Builds busybox:latest into `root` and pushes it to `ADDR/busybox:latest`; returns the
/// manifest digest kiln printed.
fn push_busybox(t: &Tmp, root: &Path, addr: &str, dc: &str) -> String {
    common::busybox_env(root, t, &[("SOURCE_DATE_EPOCH", "1700000000")]);
    let dest = format!("{addr}/busybox:latest");
    let out = kiln_env(root, &["push", "busybox:latest", &dest], &env(dc)).ok();
    let digest = out.stdout.trim().to_owned();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "kiln push prints the digest: {:?}",
        out.stdout
    );
    digest
}

/// The manifest digest skopeo sees for `docker://REF`.
fn skopeo_digest(reference: &str) -> String {
    let out = tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ],
    )
    .ok_tool();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v["Digest"].as_str().unwrap().to_owned()
}

fn metadata_digest(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["containerimage.digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no containerimage.digest in {text}"))
        .to_owned()
}

fn blob_path(root: &Path, digest: &str) -> std::path::PathBuf {
    root.join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// Every blob in the store has the content its name says.
fn assert_store_consistent(root: &Path) {
    let dir = root.join("blobs/sha256");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let data = std::fs::read(e.path()).unwrap();
        assert_eq!(
            sha256(&data),
            format!("sha256:{name}"),
            "corrupt blob in the store: {}",
            e.path().display()
        );
    }
}

/// The manifest `digest` and everything it references are in the store, byte-correct.
fn assert_image_in_store(root: &Path, digest: &str) {
    let p = blob_path(root, digest);
    let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(sha256(&data), digest);
    let m: serde_json::Value = serde_json::from_slice(&data).unwrap();
    let mut wanted = vec![m["config"]["digest"].as_str().unwrap().to_owned()];
    for l in m["layers"].as_array().unwrap() {
        wanted.push(l["digest"].as_str().unwrap().to_owned());
    }
    for d in wanted {
        let p = blob_path(root, &d);
        let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(sha256(&data), d, "{}", p.display());
    }
}

/// `kiln images` has a line for `repo` (familiar name) and `tag`; returns its short id.
fn image_id(root: &Path, repo: &str, tag: &str) -> Option<String> {
    let out = kiln(root, &["images"]).ok().stdout;
    out.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 3 && f[0] == repo && f[1] == tag).then(|| f[2].to_owned())
    })
}

fn short(digest: &str) -> String {
    digest.trim_start_matches("sha256:")[..12].to_owned()
}

/// The config of the one image in an OCI layout written by `-o type=oci`.
fn oci_layout_config(dir: &Path) -> serde_json::Value {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let m = index["manifests"][0]["digest"].as_str().unwrap();
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob_path(dir, m)).unwrap()).unwrap();
    let c = m["config"]["digest"].as_str().unwrap();
    serde_json::from_slice(&std::fs::read(blob_path(dir, c)).unwrap()).unwrap()
}

#[test]
fn anonymous_push_is_read_by_skopeo_and_built_on_by_a_fresh_store() {
    let reg = Registry::start();
    let t = Tmp::new("reg-anon");
    let dc = no_creds(&t);
    let a = t.join("a");
    let pushed = push_busybox(&t, &a, reg.addr(), &dc);
    let base = format!("{}/busybox:latest", reg.addr());
    assert_eq!(skopeo_digest(&base), pushed);

    // Pushing again is a no-op that prints the same digest; --metadata-file records it.
    let meta = t.join("push-meta.json");
    let again = kiln_env(
        &a,
        &[
            "push",
            "--metadata-file",
            meta.to_str().unwrap(),
            "busybox:latest",
            &base,
        ],
        &env(&dc),
    )
    .ok();
    assert_eq!(again.stdout.trim(), pushed);
    assert!(
        std::fs::read_to_string(&meta).unwrap().contains(&pushed),
        "push metadata names the digest"
    );

    // An independent client copies it out and the OCI validator accepts it.
    let oci = t.join("oci");
    tool(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{base}"),
            &format!("oci:{}:x", oci.display()),
        ],
    )
    .ok_tool();
    tool(
        "oci-image-tool",
        &[
            "validate",
            "--type",
            "image",
            "--ref",
            "name=x",
            oci.to_str().unwrap(),
        ],
    )
    .ok_tool();

    // A fresh store builds on it and pushes the result.
    let b = t.join("b");
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            &format!("FROM {base}\nRUN echo hi > /f\nCMD [\"cat\", \"/f\"]\n"),
        )],
    );
    let app = format!("{}/app:1", reg.addr());
    let meta = t.join("build-meta.json");
    kiln_env(
        &b,
        &[
            "build",
            "--push",
            "-t",
            &app,
            "--metadata-file",
            meta.to_str().unwrap(),
            ctx.to_str().unwrap(),
        ],
        &env(&dc),
    )
    .ok();
    let built = metadata_digest(&meta);
    assert_eq!(skopeo_digest(&app), built);
    assert_image_in_store(&b, &pushed);
    assert_store_consistent(&b);

    // What was pushed is the image: unpack it from the registry and read /f.
    let oci2 = t.join("oci2");
    tool(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{app}"),
            &format!("oci:{}:1", oci2.display()),
        ],
    )
    .ok_tool();
    let bundle = t.join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:1", oci2.display()),
            bundle.to_str().unwrap(),
        ],
    )
    .ok_tool();
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/f")).unwrap(),
        "hi\n"
    );
}

#[test]
fn a_base_pushed_by_skopeo_is_pulled_and_built_on() {
    let reg = Registry::start();
    let t = Tmp::new("reg-skopeo");
    let dc = no_creds(&t);
    let a = t.join("a");
    common::busybox(&a, &t);
    // kiln writes an OCI layout; skopeo pushes it, once as OCI and once converted to
    // Docker schema 2.
    let layout = |name: &str, content: &str| {
        let ctx = t.join(&format!("base-{name}"));
        write_files(
            &ctx,
            &[(
                "Dockerfile",
                &format!("FROM busybox\nRUN echo {content} > /base\n"),
            )],
        );
        let dir = t.join(&format!("layout-{name}"));
        kiln_env(
            &a,
            &[
                "build",
                "-t",
                "base:1",
                "-o",
                &format!("type=oci,tar=false,dest={}", dir.display()),
                ctx.to_str().unwrap(),
            ],
            &env(&dc),
        )
        .ok();
        dir
    };
    let v1 = layout("v1", "one");
    let skopeo_push = |dir: &Path, dest: &str, extra: &[&str]| {
        let mut args = vec!["copy", "--dest-tls-verify=false"];
        args.extend_from_slice(extra);
        let src = format!("oci:{}:1", dir.display());
        let dest = format!("docker://{}/{dest}", reg.addr());
        args.push(&src);
        args.push(&dest);
        tool("skopeo", &args).ok_tool();
    };
    skopeo_push(&v1, "base:oci", &[]);
    skopeo_push(&v1, "base:docker", &["--format", "v2s2"]);
    let m = get_manifest(reg.addr(), "base", "docker");
    assert_eq!(
        m.header("content-type"),
        Some("application/vnd.docker.distribution.manifest.v2+json")
    );

    let b = t.join("b");
    let read_base = |tag: &str, extra: &[&str], from: &str| {
        let ctx = t.join(&format!("ctx-{tag}"));
        write_files(
            &ctx,
            &[("Dockerfile", &format!("FROM {from}\nRUN cp /base /copy\n"))],
        );
        let out = t.join(&format!("out-{tag}"));
        let mut args = vec!["build".to_owned()];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args.extend([
            "-o".to_owned(),
            format!("type=local,dest={}", out.display()),
            ctx.to_str().unwrap().to_owned(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kiln_env(&b, &args, &env(&dc)).ok();
        std::fs::read_to_string(out.join("copy")).unwrap()
    };
    let oci_ref = format!("{}/base:oci", reg.addr());
    let docker_ref = format!("{}/base:docker", reg.addr());
    kiln_env(&b, &["pull", &oci_ref], &env(&dc)).ok();
    assert_eq!(read_base("oci", &[], &oci_ref), "one\n");
    assert_eq!(read_base("docker", &[], &docker_ref), "one\n");
    // `kiln pull` stores it under its name, byte for byte.
    let c = t.join("c");
    kiln_env(&c, &["pull", &docker_ref], &env(&dc)).ok();
    let docker_digest = skopeo_digest(&docker_ref);
    assert_eq!(
        image_id(&c, &format!("{}/base", reg.addr()), "docker"),
        Some(short(&docker_digest))
    );
    assert_image_in_store(&c, &docker_digest);
    // A named build context can be a registry image too.
    assert_eq!(
        read_base(
            "ctx",
            &[
                "--build-context",
                &format!("thebase=docker-image://{oci_ref}")
            ],
            "thebase",
        ),
        "one\n"
    );

    // An image only read by COPY --from is pulled by the solve when it reaches it, into a
    // store that has nothing, and the pull is reported on its step.
    let d = t.join("d");
    let ctx = t.join("ctx-copy-from");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            &format!("FROM scratch\nCOPY --from={docker_ref} /base /copied\n"),
        )],
    );
    let out = t.join("out-copy-from");
    let args = [
        "build",
        "--progress=plain",
        "-o",
        &format!("type=local,dest={}", out.display()),
        ctx.to_str().unwrap(),
    ];
    let r = kiln_env(&d, &args, &env(&dc)).ok();
    assert_eq!(
        std::fs::read_to_string(out.join("copied")).unwrap(),
        "one\n"
    );
    assert!(
        r.stderr.contains(&format!("pulled {docker_ref} ")),
        "{}",
        r.stderr
    );
    assert_image_in_store(&d, &docker_digest);
    // A reference the registry does not have fails at its instruction, naming it.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY --from={}/nope:1 /base /copied\n",
            reg.addr()
        ),
    )
    .unwrap();
    let r = kiln_env(&d, &args, &env(&dc)).failed();
    assert!(
        r.stderr.contains(&format!("pulling {}/nope:1", reg.addr()))
            && r.stderr.contains("Dockerfile:2"),
        "{}",
        r.stderr
    );

    // The tag moves on; the store keeps what it has until --pull asks again.
    let v2 = layout("v2", "two");
    skopeo_push(&v2, "base:oci", &[]);
    assert_eq!(read_base("again", &[], &oci_ref), "one\n");
    assert_eq!(read_base("pull", &["--pull"], &oci_ref), "two\n");
    assert_store_consistent(&b);
}

#[test]
fn htpasswd_basic_auth_from_docker_config() {
    let reg = Registry::start_htpasswd("kiln", "s3cret");
    let t = Tmp::new("reg-basic");
    let good = registry::docker_config(&t.join("dc-good"), reg.addr(), "kiln", "s3cret");
    let bad = registry::docker_config(&t.join("dc-bad"), reg.addr(), "kiln", "wrong");
    let none = no_creds(&t);
    let a = t.join("a");
    common::busybox(&a, &t);
    let reference = format!("{}/busybox:latest", reg.addr());

    for (dc, what) in [(&bad, "wrong password"), (&none, "no credentials")] {
        let r = kiln_env(&a, &["push", "busybox:latest", &reference], &env(dc)).failed();
        assert!(
            r.stderr.contains(reg.addr()),
            "push with {what}: names the registry:\n{}",
            r.stderr
        );
        assert!(
            r.stderr.to_lowercase().contains("unauthorized"),
            "push with {what}: says unauthorized:\n{}",
            r.stderr
        );
    }
    let r = kiln_env(&a, &["push", "busybox:latest", &reference], &env(&good)).ok();
    let digest = r.stdout.trim().to_owned();
    let out = tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            "kiln:s3cret",
            &format!("docker://{reference}"),
        ],
    )
    .ok_tool();
    assert!(out.stdout.contains(&digest), "{}", out.stdout);

    let b = t.join("b");
    for (dc, what) in [(&bad, "wrong password"), (&none, "no credentials")] {
        let r = kiln_env(&b, &["pull", &reference], &env(dc)).failed();
        assert!(
            r.stderr.contains(&reference) || r.stderr.contains(reg.addr()),
            "pull with {what}: names the reference:\n{}",
            r.stderr
        );
        assert!(
            r.stderr.to_lowercase().contains("unauthorized"),
            "pull with {what}: says unauthorized:\n{}",
            r.stderr
        );
        assert_eq!(
            image_id(&b, &format!("{}/busybox", reg.addr()), "latest"),
            None,
            "nothing tagged after a refused pull"
        );
    }
    kiln_env(&b, &["pull", &reference], &env(&good)).ok();
    assert_eq!(
        image_id(&b, &format!("{}/busybox", reg.addr()), "latest"),
        Some(short(&digest))
    );
    assert_image_in_store(&b, &digest);
}

#[test]
fn bearer_tokens_through_a_proxy() {
    let reg = Registry::start();
    let proxy = Proxy::with_bearer(reg.addr(), "tok", "en");
    let t = Tmp::new("reg-bearer");
    let good = registry::docker_config(&t.join("dc-good"), proxy.addr(), "tok", "en");
    let bad = registry::docker_config(&t.join("dc-bad"), proxy.addr(), "tok", "nope");
    let a = t.join("a");
    common::busybox(&a, &t);
    let reference = format!("{}/busybox:latest", proxy.addr());
    let r = kiln_env(&a, &["push", "busybox:latest", &reference], &env(&bad)).failed();
    assert!(
        r.stderr.to_lowercase().contains("unauthorized"),
        "{}",
        r.stderr
    );
    let digest = kiln_env(&a, &["push", "busybox:latest", &reference], &env(&good))
        .ok()
        .stdout
        .trim()
        .to_owned();
    assert!(proxy.token_requests() >= 1, "{}", proxy.dump());
    assert_eq!(
        skopeo_digest(&format!("{}/busybox:latest", reg.addr())),
        digest
    );

    let before = proxy.token_requests();
    let b = t.join("b");
    kiln_env(&b, &["pull", &reference], &env(&good)).ok();
    assert!(proxy.token_requests() > before, "{}", proxy.dump());
    assert_image_in_store(&b, &digest);
    assert_eq!(
        image_id(&b, &format!("{}/busybox", proxy.addr()), "latest"),
        Some(short(&digest))
    );
    // kiln was challenged, fetched tokens, and then got through (the proxy forwards only
    // requests with a token it handed out).
    let log = proxy.requests();
    assert!(log.iter().any(|e| e.status == 401), "{}", proxy.dump());
    assert!(
        log.iter()
            .any(|e| e.path.starts_with("/v2/busybox/blobs/") && e.status == 200),
        "{}",
        proxy.dump()
    );
}

fn host_arch() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", "arm64"),
        "aarch64" => ("arm64", "amd64"),
        other => panic!("no test platform pair for {other}"),
    }
}

#[test]
fn multi_platform_index_picks_the_requested_platform() {
    let reg = Registry::start();
    let t = Tmp::new("reg-multi");
    let dc = no_creds(&t);
    let a = t.join("a");
    common::busybox(&a, &t);
    let addr = reg.addr();
    let (host, other) = host_arch();

    // The host image as kiln pushes it, and a copy whose config says `other`.
    let host_digest = kiln_env(
        &a,
        &["push", "busybox:latest", &format!("{addr}/multi:{host}")],
        &env(&dc),
    )
    .ok()
    .stdout
    .trim()
    .to_owned();
    let m = get_manifest(addr, "multi", &host_digest);
    assert_eq!(m.status, 200);
    let media_type = m.header("content-type").unwrap().to_owned();
    let mut manifest: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_owned();
    let config = http(
        addr,
        "GET",
        &format!("/v2/multi/blobs/{config_digest}"),
        &[],
        b"",
    );
    let mut config: serde_json::Value = serde_json::from_slice(&config.body).unwrap();
    assert_eq!(config["architecture"], host);
    config["architecture"] = other.into();
    if other == "arm64" {
        config["variant"] = "v8".into();
    }
    let config = serde_json::to_vec(&config).unwrap();
    manifest["config"]["digest"] = push_blob(addr, "multi", &config).into();
    manifest["config"]["size"] = config.len().into();
    let other_manifest = serde_json::to_vec(&manifest).unwrap();
    let other_digest = put_manifest(addr, "multi", other, &media_type, &other_manifest);

    let platform = |arch: &str| {
        let mut p = serde_json::json!({"architecture": arch, "os": "linux"});
        if arch == "arm64" {
            p["variant"] = "v8".into();
        }
        p
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": media_type, "digest": other_digest,
             "size": other_manifest.len(), "platform": platform(other)},
            {"mediaType": media_type, "digest": host_digest,
             "size": m.body.len(), "platform": platform(host)},
        ],
    });
    put_manifest(
        addr,
        "multi",
        "1",
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&index).unwrap(),
    );
    let reference = format!("{addr}/multi:1");
    let repo = format!("{addr}/multi");

    // --platform picks the other one; the default is the host's.
    let b = t.join("b");
    kiln_env(
        &b,
        &["pull", "--platform", &format!("linux/{other}"), &reference],
        &env(&dc),
    )
    .ok();
    assert_eq!(image_id(&b, &repo, "1"), Some(short(&other_digest)));
    assert_image_in_store(&b, &other_digest);
    let c = t.join("c");
    kiln_env(&c, &["pull", &reference], &env(&dc)).ok();
    assert_eq!(image_id(&c, &repo, "1"), Some(short(&host_digest)));

    // A build for the other platform starts from its config.
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[("Dockerfile", &format!("FROM {reference}\nLABEL x=1\n"))],
    );
    for (arch, root) in [(other, &b), (host, &c)] {
        let out = t.join(&format!("oci-{arch}"));
        kiln_env(
            root,
            &[
                "build",
                "--platform",
                &format!("linux/{arch}"),
                "-o",
                &format!("type=oci,tar=false,dest={}", out.display()),
                ctx.to_str().unwrap(),
            ],
            &env(&dc),
        )
        .ok();
        let cfg = oci_layout_config(&out);
        assert_eq!(cfg["architecture"], arch, "{cfg}");
        assert_eq!(cfg["config"]["Labels"]["x"], "1");
    }
    // A fresh store resolves the index at build time as well.
    let d = t.join("d");
    let out = t.join("oci-fresh");
    kiln_env(
        &d,
        &[
            "build",
            "--platform",
            &format!("linux/{other}"),
            "-o",
            &format!("type=oci,tar=false,dest={}", out.display()),
            ctx.to_str().unwrap(),
        ],
        &env(&dc),
    )
    .ok();
    assert_eq!(oci_layout_config(&out)["architecture"], other);
}

/// The fault kinds the retry tests go through.
const FAULTS: [Fault; 4] = [
    Fault::DropConnection,
    Fault::Status(500),
    Fault::TruncateBody,
    Fault::CorruptBody,
];

#[test]
fn pulls_survive_transient_faults_and_fail_cleanly_on_persistent_ones() {
    let reg = Registry::start();
    let t = Tmp::new("reg-fault-pull");
    let dc = no_creds(&t);
    let a = t.join("a");
    let digest = push_busybox(&t, &a, reg.addr(), &dc);
    let m: serde_json::Value =
        serde_json::from_slice(&get_manifest(reg.addr(), "busybox", &digest).body).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_owned();

    for (i, fault) in FAULTS.into_iter().enumerate() {
        let proxy = Proxy::with_faults(
            reg.addr(),
            &[
                (Some("GET"), "/blobs/sha256:", fault, 2),
                (Some("GET"), "/manifests/", fault, 1),
            ],
        );
        let root = t.join(&format!("pull-{i}"));
        let reference = format!("{}/busybox:latest", proxy.addr());
        let r = kiln_env(&root, &["pull", &reference], &env(&dc));
        assert_eq!(
            r.code,
            0,
            "pull through {fault:?} x2 on blobs, x1 on manifests:\n{}\n{}",
            r.stderr,
            proxy.dump()
        );
        assert_eq!(proxy.faults_fired(), 3, "{fault:?}:\n{}", proxy.dump());
        assert_image_in_store(&root, &digest);
        assert_store_consistent(&root);
        assert_eq!(
            image_id(&root, &format!("{}/busybox", proxy.addr()), "latest"),
            Some(short(&digest))
        );
    }

    // Faults that never stop: exit 1 naming what failed, nothing tagged, the store intact,
    // and a clean pull afterwards works.
    let forever: [(Option<&str>, String, Fault); 3] = [
        (Some("GET"), format!("/blobs/{layer}"), Fault::CorruptBody),
        (Some("GET"), format!("/blobs/{layer}"), Fault::TruncateBody),
        (Some("GET"), "/manifests/".to_owned(), Fault::Status(503)),
    ];
    for (i, (method, path, fault)) in forever.iter().enumerate() {
        let proxy = Proxy::with_faults(reg.addr(), &[(*method, path, *fault, 1000)]);
        let root = t.join(&format!("forever-{i}"));
        let reference = format!("{}/busybox:latest", proxy.addr());
        let r = kiln_env(&root, &["pull", &reference], &env(&dc)).failed();
        assert!(
            r.stderr.contains(&reference)
                || r.stderr.contains(&layer)
                || r.stderr.contains(&format!("{}/busybox", proxy.addr())),
            "{fault:?} forever on {path}: the error names the reference or digest:\n{}",
            r.stderr
        );
        assert!(proxy.faults_fired() >= 2, "retried:\n{}", proxy.dump());
        assert_eq!(
            image_id(&root, &format!("{}/busybox", proxy.addr()), "latest"),
            None
        );
        assert_store_consistent(&root);
        proxy.set_faults(&[]);
        kiln_env(&root, &["pull", &reference], &env(&dc)).ok();
        assert_image_in_store(&root, &digest);
        assert_store_consistent(&root);
    }
}

#[test]
fn pushes_survive_transient_faults_and_fail_cleanly_on_persistent_ones() {
    let t = Tmp::new("reg-fault-push");
    let dc = no_creds(&t);
    let a = t.join("a");
    // The digest a clean push gives.
    let clean = Registry::start();
    let digest = push_busybox(&t, &a, clean.addr(), &dc);
    drop(clean);

    let check = |reg: &Registry, repo: &str| {
        let m = get_manifest(reg.addr(), repo, "latest");
        assert_eq!(m.status, 200, "{}", m.text());
        assert_eq!(sha256(&m.body), digest);
        let m: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
        let mut blobs = vec![m["config"]["digest"].as_str().unwrap().to_owned()];
        for l in m["layers"].as_array().unwrap() {
            blobs.push(l["digest"].as_str().unwrap().to_owned());
        }
        for b in blobs {
            let got = http(
                reg.addr(),
                "GET",
                &format!("/v2/{repo}/blobs/{b}"),
                &[],
                b"",
            );
            assert_eq!(got.status, 200);
            assert_eq!(sha256(&got.body), b, "blob {b} in the registry");
        }
    };

    // Never accepted: exit 1 naming the reference, no tag in the registry, and a clean
    // push afterwards works.
    let forever: [(Option<&str>, &str, Fault); 2] = [
        (Some("PUT"), "/manifests/", Fault::Status(500)),
        (None, "/blobs/uploads/", Fault::DropConnection),
    ];
    for (method, path, fault) in forever {
        let reg = Registry::start();
        let proxy = Proxy::with_faults(reg.addr(), &[(method, path, fault, 1000)]);
        let reference = format!("{}/busybox:latest", proxy.addr());
        let r = kiln_env(&a, &["push", "busybox:latest", &reference], &env(&dc)).failed();
        assert!(
            r.stderr.contains(&reference)
                || r.stderr.contains(&format!("{}/busybox", proxy.addr())),
            "{fault:?} forever on {path}: the error names the reference:\n{}",
            r.stderr
        );
        assert!(proxy.faults_fired() >= 2, "retried:\n{}", proxy.dump());
        assert_eq!(get_manifest(reg.addr(), "busybox", "latest").status, 404);
        proxy.set_faults(&[]);
        kiln_env(&a, &["push", "busybox:latest", &reference], &env(&dc)).ok();
        check(&reg, "busybox");
    }

    for fault in FAULTS {
        // A registry per fault, so every blob really is uploaded (no mounts, no skips).
        let reg = Registry::start();
        // A corrupted upload is refused by the registry (DIGEST_INVALID) and must be sent
        // again; a corrupted manifest cannot be told from a wrong one, so it is left out.
        let mut rules = vec![(None, "/blobs/uploads/", fault, 1)];
        if fault != Fault::CorruptBody {
            rules.push((Some("PUT"), "/manifests/", fault, 1));
        }
        let proxy = Proxy::with_faults(reg.addr(), &rules);
        let reference = format!("{}/busybox:latest", proxy.addr());
        let r = kiln_env(&a, &["push", "busybox:latest", &reference], &env(&dc));
        assert_eq!(
            r.code,
            0,
            "push through {fault:?}:\n{}\n{}",
            r.stderr,
            proxy.dump()
        );
        assert_eq!(r.stdout.trim(), digest);
        assert_eq!(
            proxy.faults_fired(),
            rules.len(),
            "{fault:?}:\n{}",
            proxy.dump()
        );
        check(&reg, "busybox");
    }
}

const CACHE_DOCKERFILE: &str = "FROM BASE AS builder
RUN seq 1 20000 > /big
RUN wc -l /big > /count

FROM BASE
COPY --from=builder /count /count
RUN cat /count > /copied
CMD [\"cat\", \"/copied\"]
";

/// Layer digests referenced by a cache manifest or index, following nested manifests.
fn cache_layers(fetch: &dyn Fn(&str) -> Vec<u8>, doc: &[u8], out: &mut BTreeSet<String>) {
    let v: serde_json::Value = serde_json::from_slice(doc).unwrap();
    let descriptors = v["manifests"]
        .as_array()
        .into_iter()
        .chain(v["layers"].as_array())
        .flatten();
    for d in descriptors {
        let mt = d["mediaType"].as_str().unwrap_or("");
        let digest = d["digest"].as_str().unwrap();
        if mt.contains("layer") {
            out.insert(digest.to_owned());
        } else if mt.contains("manifest") || mt.contains("index") {
            cache_layers(fetch, &fetch(digest), out);
        }
    }
}

/// The diff id of each layer blob the cache's records name (from its config blobs, read
/// with `blob`; manifests with `fetch`).
fn cache_diff_ids(
    fetch: &dyn Fn(&str) -> Vec<u8>,
    blob: &dyn Fn(&str) -> Vec<u8>,
    doc: &[u8],
    out: &mut std::collections::BTreeMap<String, String>,
) {
    let v: serde_json::Value = serde_json::from_slice(doc).unwrap();
    for d in v["manifests"].as_array().into_iter().flatten() {
        cache_diff_ids(fetch, blob, &fetch(d["digest"].as_str().unwrap()), out);
    }
    if let Some(config) = v["config"]["digest"].as_str() {
        let c: serde_json::Value = serde_json::from_slice(&blob(config)).unwrap();
        for r in c["records"].as_array().into_iter().flatten() {
            let layer = &r["layer"];
            out.insert(
                layer["digest"].as_str().unwrap().to_owned(),
                layer["diff_id"].as_str().unwrap().to_owned(),
            );
        }
    }
}

/// The diff ids of the image `digest` in the store at `root`.
fn image_diff_ids(root: &Path, digest: &str) -> BTreeSet<String> {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob_path(root, digest)).unwrap()).unwrap();
    let config = m["config"]["digest"].as_str().unwrap();
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob_path(root, config)).unwrap()).unwrap();
    c["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect()
}

/// Builds the cache context in `root` with `args`; returns the run and the image digest.
fn cache_build(t: &Tmp, root: &Path, ctx: &Path, dc: &str, args: &[&str]) -> (common::Run, String) {
    let meta = t.join(&format!(
        "meta-{}.json",
        root.file_name().unwrap().to_string_lossy()
    ));
    let mut all = vec!["build", "--metadata-file", meta.to_str().unwrap()];
    all.extend_from_slice(args);
    all.push(ctx.to_str().unwrap());
    // No SOURCE_DATE_EPOCH: the image is the same because each cached step keeps the time
    // its layer was first made, which the cache carries to the other store.
    let r = kiln_env(root, &all, &[("DOCKER_CONFIG", dc)]).ok();
    let d = metadata_digest(&meta);
    (r, d)
}

fn assert_all_cached(r: &common::Run) {
    let (cached, ran) = r.counts();
    assert_eq!(ran, 0, "every step from the imported cache:\n{}", r.stderr);
    assert!(cached >= 4, "RUN, RUN, COPY, RUN cached:\n{}", r.stderr);
}

/// Store `a` builds the two-stage cache context exporting with `--cache-to TO`; a fresh
/// store `b` builds it again importing with `--cache-from FROM`.
struct RoundTrip {
    a: PathBuf,
    da: String,
    b: PathBuf,
    db: String,
}

fn cache_round_trip(reg: &Registry, t: &Tmp, to: &str, from: &str) -> RoundTrip {
    let dc = no_creds(t);
    let seed = t.join("seed");
    push_busybox(t, &seed, reg.addr(), &dc);
    let ctx = t.join("ctx");
    let base = format!("{}/busybox:latest", reg.addr());
    write_files(
        &ctx,
        &[("Dockerfile", &CACHE_DOCKERFILE.replace("BASE", &base))],
    );
    let a = t.join("a");
    let (ra, da) = cache_build(t, &a, &ctx, &dc, &["--cache-to", to]);
    assert_eq!(
        ra.counts().1,
        4,
        "a cold build runs every step:\n{}",
        ra.stderr
    );
    let b = t.join("b");
    let (rb, db) = cache_build(t, &b, &ctx, &dc, &["--cache-from", from]);
    assert_all_cached(&rb);
    assert_eq!(da, db, "same image from the cache");
    RoundTrip { a, da, b, db }
}

/// mode=max exported the builder stage (`layers` lists what the cache holds, `diff_ids` the
/// diff id of each); the fresh store fetched only what the final image needs. The cache
/// carries compressed blobs of the plain layers store `a` keeps, so layers are matched by
/// diff id. Returns the builder-only layers.
fn assert_only_final_layers_fetched(
    layers: &BTreeSet<String>,
    diff_ids: &std::collections::BTreeMap<String, String>,
    rt: &RoundTrip,
) -> Vec<String> {
    let final_ids = image_diff_ids(&rt.a, &rt.da);
    let final_layers: BTreeSet<String> = layers
        .iter()
        .filter(|l| diff_ids.get(*l).is_some_and(|id| final_ids.contains(id)))
        .cloned()
        .collect();
    let builder_only: Vec<String> = layers.difference(&final_layers).cloned().collect();
    assert!(
        !builder_only.is_empty(),
        "mode=max exports the builder's layers: {layers:?} vs {final_layers:?}"
    );
    for l in &builder_only {
        assert!(
            !blob_path(&rt.b, l).exists(),
            "builder-only layer {l} was fetched"
        );
    }
    assert_image_in_store(&rt.b, &rt.db);
    assert_store_consistent(&rt.b);
    builder_only
}

#[test]
fn registry_cache_round_trip_to_a_fresh_store() {
    let reg = Registry::start();
    let t = Tmp::new("reg-cache");
    let cache = format!("{}/cache:main", reg.addr());
    let rt = cache_round_trip(
        &reg,
        &t,
        &format!("type=registry,ref={cache},mode=max"),
        &format!("type=registry,ref={cache}"),
    );
    let top = get_manifest(reg.addr(), "cache", "main");
    assert_eq!(top.status, 200, "{}", top.text());
    let fetch = |d: &str| get_manifest(reg.addr(), "cache", d).body;
    let mut layers = BTreeSet::new();
    cache_layers(&fetch, &top.body, &mut layers);
    let blob = |d: &str| {
        let path = format!("/v2/cache/blobs/{d}");
        http(reg.addr(), "GET", &path, &[], &[]).body
    };
    let mut diff_ids = std::collections::BTreeMap::new();
    cache_diff_ids(&fetch, &blob, &top.body, &mut diff_ids);
    assert_only_final_layers_fetched(&layers, &diff_ids, &rt);
}

#[test]
fn local_cache_round_trip_to_a_fresh_store() {
    let reg = Registry::start();
    let t = Tmp::new("reg-cache-local");
    let dir = t.join("cache-dir");
    let rt = cache_round_trip(
        &reg,
        &t,
        &format!("type=local,dest={},mode=max", dir.display()),
        &format!("type=local,src={}", dir.display()),
    );
    let index = std::fs::read(dir.join("index.json")).unwrap();
    let fetch = |d: &str| std::fs::read(blob_path(&dir, d)).unwrap();
    let mut layers = BTreeSet::new();
    cache_layers(&fetch, &index, &mut layers);
    let mut diff_ids = std::collections::BTreeMap::new();
    cache_diff_ids(&fetch, &fetch, &index, &mut diff_ids);
    for l in assert_only_final_layers_fetched(&layers, &diff_ids, &rt) {
        assert!(blob_path(&dir, &l).exists(), "{l} in the cache dir");
    }
}
