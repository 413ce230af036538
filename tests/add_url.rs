//! ADD from http:// URLs end to end, against a tiny HTTP server the test runs on 127.0.0.1:
//! placement (into a directory, to a file name, beside local sources), mode 0600 and mtime
//! from `Last-Modified`, `--checksum`, `--chmod`/`--chown`, the cache (a conditional request
//! keeps the step cached; changed content reruns it) and failures (404, a 500 retried).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{Tmp, describe, kiln, write_files};

/// `Wed, 21 Oct 2015 07:28:00 GMT`.
const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";
const LAST_MODIFIED_SECS: i64 = 1_445_412_480;

/// One file the server serves.
#[derive(Clone)]
struct File {
    body: Vec<u8>,
    last_modified: Option<String>,
    etag: Option<String>,
}

#[derive(Default)]
struct State {
    files: BTreeMap<String, File>,
    /// Statuses to answer with before serving the file, per path.
    failures: BTreeMap<String, Vec<u16>>,
    /// Requests per path.
    requests: BTreeMap<String, usize>,
    /// Full bodies sent per path.
    bodies: BTreeMap<String, usize>,
}

/// A minimal HTTP/1.1 server on a free 127.0.0.1 port; stopped when dropped.
struct Server {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let state = state.clone();
                            std::thread::spawn(move || serve(stream, &state));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(e) => panic!("accept: {e}"),
                    }
                }
            })
        };
        Server {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn put(&self, path: &str, body: &[u8], last_modified: Option<&str>, etag: Option<&str>) {
        self.state.lock().unwrap().files.insert(
            path.to_owned(),
            File {
                body: body.to_vec(),
                last_modified: last_modified.map(str::to_owned),
                etag: etag.map(str::to_owned),
            },
        );
    }

    fn fail_next(&self, path: &str, statuses: &[u16]) {
        self.state
            .lock()
            .unwrap()
            .failures
            .insert(path.to_owned(), statuses.to_vec());
    }

    fn requests(&self, path: &str) -> usize {
        *self.state.lock().unwrap().requests.get(path).unwrap_or(&0)
    }

    fn bodies(&self, path: &str) -> usize {
        *self.state.lock().unwrap().bodies.get(path).unwrap_or(&0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let mut if_none_match = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("if-none-match")
        {
            if_none_match = Some(value.trim().to_owned());
        }
    }
    let (status, headers, body) = {
        let mut s = state.lock().unwrap();
        *s.requests.entry(path.clone()).or_default() += 1;
        let failure = s.failures.get_mut(&path).and_then(|f| {
            if f.is_empty() {
                None
            } else {
                Some(f.remove(0))
            }
        });
        match (failure, s.files.get(&path).cloned()) {
            (Some(code), _) => (code, Vec::new(), b"failing on purpose\n".to_vec()),
            (None, None) => (404, Vec::new(), b"no such file\n".to_vec()),
            (None, Some(f)) => {
                let mut headers = Vec::new();
                if let Some(lm) = &f.last_modified {
                    headers.push(format!("Last-Modified: {lm}"));
                }
                if let Some(tag) = &f.etag {
                    headers.push(format!("ETag: {tag}"));
                }
                if f.etag.is_some() && if_none_match == f.etag {
                    (304, headers, Vec::new())
                } else {
                    *s.bodies.entry(path.clone()).or_default() += 1;
                    (200, headers, f.body)
                }
            }
        }
    };
    let reason = match status {
        200 => "OK",
        304 => "Not Modified",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Other",
    };
    let mut out = stream;
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
    if status != 304 {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for h in headers {
        head.push_str(&h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(&body);
    let _ = out.flush();
}

/// Builds `ctx` into a local directory `out` (replaced).
fn build_local(root: &Path, ctx: &Path, out: &Path, extra: &[&str]) -> common::Run {
    let _ = std::fs::remove_dir_all(out);
    let mut args = vec!["build".to_owned()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push("-o".into());
    args.push(format!("type=local,dest={}", out.display()));
    args.push(ctx.to_str().unwrap().to_owned());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    kiln(root, &refs)
}

fn mtime(root: &Path, rel: &str) -> i64 {
    std::fs::symlink_metadata(root.join(rel)).unwrap().mtime()
}

fn sha256_of(data: &[u8]) -> String {
    let dir = Tmp::new("sha");
    let p = dir.join("f");
    std::fs::write(&p, data).unwrap();
    let out = common::tool("sha256sum", &[p.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    format!("sha256:{}", out.stdout.split_whitespace().next().unwrap())
}

/// The line `#N <name>` is followed by `#N CACHED` for the step whose name contains `what`.
fn step_cached(stderr: &str, what: &str) -> bool {
    let lines: Vec<&str> = stderr.lines().collect();
    lines.windows(2).any(|w| {
        w[0].contains(what) && {
            let n = w[0].split_whitespace().next().unwrap_or("#?");
            w[1] == format!("{n} CACHED")
        }
    })
}

#[test]
fn add_url_places_the_file_with_mode_0600_and_the_servers_mtime() {
    let t = Tmp::new("add-url-place");
    let root = t.join("root");
    let server = Server::start();
    server.put(
        "/files/hello.txt",
        b"hello\n",
        Some(LAST_MODIFIED),
        Some("\"h1\""),
    );
    server.put("/plain", b"no date\n", None, None);
    // A gzip-compressed tar stays as it is: remote archives are not unpacked.
    let archive = t.join("archive");
    write_files(&archive, &[("inside.txt", "x\n")]);
    let tgz = t.join("a.tar.gz");
    let tar = common::tool(
        "tar",
        &[
            "-czf",
            tgz.to_str().unwrap(),
            "-C",
            archive.to_str().unwrap(),
            ".",
        ],
    );
    assert_eq!(tar.code, 0, "{}", tar.stderr);
    let tgz_bytes = std::fs::read(&tgz).unwrap();
    server.put("/a.tar.gz", &tgz_bytes, Some(LAST_MODIFIED), None);

    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[
            ("local.txt", "local\n"),
            (
                "Dockerfile",
                &format!(
                    "FROM scratch\n\
                     ADD {hello} /d/\n\
                     ADD {hello} /named.txt\n\
                     ADD {plain} /plain.txt\n\
                     ADD {tgz} /archives/\n\
                     ADD local.txt {hello} /mixed/\n\
                     WORKDIR /w\n\
                     ADD {hello} rel/\n",
                    hello = server.url("/files/hello.txt"),
                    plain = server.url("/plain"),
                    tgz = server.url("/a.tar.gz"),
                ),
            ),
        ],
    );
    let out = t.join("out");
    build_local(&root, &ctx, &out, &[]).ok();
    assert_eq!(describe(&out, "d/hello.txt"), "600 0:0 file:hello\n");
    assert_eq!(describe(&out, "named.txt"), "600 0:0 file:hello\n");
    assert_eq!(describe(&out, "plain.txt"), "600 0:0 file:no date\n");
    assert_eq!(describe(&out, "mixed/hello.txt"), "600 0:0 file:hello\n");
    assert_eq!(describe(&out, "mixed/local.txt"), "644 0:0 file:local\n");
    assert_eq!(describe(&out, "w/rel/hello.txt"), "600 0:0 file:hello\n");
    assert_eq!(mtime(&out, "d/hello.txt"), LAST_MODIFIED_SECS);
    assert_eq!(mtime(&out, "named.txt"), LAST_MODIFIED_SECS);
    assert_eq!(mtime(&out, "plain.txt"), 0, "no Last-Modified: the epoch");
    assert_eq!(
        std::fs::read(out.join("archives/a.tar.gz")).unwrap(),
        tgz_bytes,
        "a remote archive is not unpacked"
    );
    assert!(!out.join("archives/inside.txt").exists());
}

#[test]
fn add_url_checksum_chmod_and_chown() {
    let t = Tmp::new("add-url-sum");
    let root = t.join("root");
    let server = Server::start();
    let body = b"#!/bin/sh\necho tool\n";
    server.put("/tool", body, Some(LAST_MODIFIED), None);
    let good = sha256_of(body);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "FROM scratch\n\
                 ADD --checksum={good} --chown=1000:50 --chmod=755 {url} /usr/bin/tool\n",
                url = server.url("/tool"),
            ),
        )],
    );
    let out = t.join("out");
    build_local(&root, &ctx, &out, &[]).ok();
    assert_eq!(
        describe(&out, "usr/bin/tool"),
        "755 1000:50 file:#!/bin/sh\necho tool\n"
    );

    // A wrong checksum fails, naming the URL and both digests; nothing is cached for it.
    let wrong = format!("sha256:{}", "0".repeat(64));
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "FROM scratch\nADD --checksum={wrong} {url} /tool\n",
                url = server.url("/tool"),
            ),
        )],
    );
    let run = build_local(&root, &ctx, &out, &[]).failed();
    assert!(
        run.stderr.contains(&server.url("/tool"))
            && run.stderr.contains(&good)
            && run.stderr.contains(&wrong)
            && run.stderr.contains("digest mismatch"),
        "{}",
        run.stderr
    );
    // A malformed checksum is the Dockerfile's error, before anything is downloaded.
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "FROM scratch\nADD --checksum=sha256:beef {url} /tool\n",
                url = server.url("/tool"),
            ),
        )],
    );
    let before = server.requests("/tool");
    let run = build_local(&root, &ctx, &out, &[]).failed();
    assert!(run.stderr.contains("checksum"), "{}", run.stderr);
    assert_eq!(server.requests("/tool"), before);
}

#[test]
fn add_url_stays_cached_while_the_content_does() {
    let t = Tmp::new("add-url-cache");
    let root = t.join("root");
    let server = Server::start();
    server.put("/v", b"one\n", Some(LAST_MODIFIED), Some("\"v1\""));
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            &format!("FROM scratch\nADD {} /v.txt\n", server.url("/v")),
        )],
    );
    let out = t.join("out");
    let first = build_local(&root, &ctx, &out, &[]).ok();
    assert!(!step_cached(&first.stderr, "ADD "), "{}", first.stderr);
    assert_eq!(describe(&out, "v.txt"), "600 0:0 file:one\n");
    assert_eq!(server.bodies("/v"), 1);

    // Same content: a conditional request answered 304, the step cached.
    let second = build_local(&root, &ctx, &out, &[]).ok();
    assert!(step_cached(&second.stderr, "ADD "), "{}", second.stderr);
    assert_eq!(server.requests("/v"), 2, "the URL is asked again");
    assert_eq!(server.bodies("/v"), 1, "but not downloaded again");
    assert_eq!(describe(&out, "v.txt"), "600 0:0 file:one\n");

    // New content at the URL: downloaded and the step reruns.
    server.put("/v", b"two\n", Some(LAST_MODIFIED), Some("\"v2\""));
    let third = build_local(&root, &ctx, &out, &[]).ok();
    assert!(!step_cached(&third.stderr, "ADD "), "{}", third.stderr);
    assert_eq!(describe(&out, "v.txt"), "600 0:0 file:two\n");

    // A server without ETags is downloaded every time; the same bytes keep the step cached.
    server.put("/v", b"two\n", Some(LAST_MODIFIED), None);
    let fourth = build_local(&root, &ctx, &out, &[]).ok();
    assert!(step_cached(&fourth.stderr, "ADD "), "{}", fourth.stderr);
    assert_eq!(server.bodies("/v"), 3);
}

#[test]
fn add_url_http_errors_name_the_url_and_5xx_is_retried() {
    let t = Tmp::new("add-url-errors");
    let root = t.join("root");
    let server = Server::start();
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            &format!("FROM scratch\nADD {} /m\n", server.url("/missing")),
        )],
    );
    let out = t.join("out");
    let run = build_local(&root, &ctx, &out, &[]).failed();
    assert!(
        run.stderr.contains(&server.url("/missing")) && run.stderr.contains("404"),
        "{}",
        run.stderr
    );
    assert_eq!(server.requests("/missing"), 1, "a 404 is not retried");

    // One 500, then the file: the download is retried and succeeds.
    server.put("/flaky", b"eventually\n", None, None);
    server.fail_next("/flaky", &[500]);
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            &format!("FROM scratch\nADD {} /f\n", server.url("/flaky")),
        )],
    );
    build_local(&root, &ctx, &out, &[]).ok();
    assert_eq!(describe(&out, "f"), "600 0:0 file:eventually\n");
    assert_eq!(server.requests("/flaky"), 2);

    // A server that keeps failing: the build gives up with the status in the message.
    server.fail_next("/flaky", &[500, 500, 500, 500, 500]);
    let run = build_local(&root, &ctx, &out, &["--no-cache"]).failed();
    assert!(
        run.stderr.contains(&server.url("/flaky")) && run.stderr.contains("500"),
        "{}",
        run.stderr
    );

    // COPY never downloads.
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            &format!("FROM scratch\nCOPY {} /f\n", server.url("/flaky")),
        )],
    );
    let run = build_local(&root, &ctx, &out, &[]).failed();
    assert!(
        run.stderr.contains("source can't be a URL for COPY"),
        "{}",
        run.stderr
    );
}

/// An HTTPS server (Python's `http.server` wrapped in `ssl`) serving `dir` on a free
/// 127.0.0.1 port with a certificate for 127.0.0.1 signed by a CA the test makes with the
/// `openssl` tool; killed when dropped.
struct TlsServer {
    child: std::process::Child,
    port: u16,
}

impl TlsServer {
    /// Makes the CA (`ca.pem`) and the server's key pair under `work`, then starts serving.
    fn start(work: &Path, dir: &Path) -> Self {
        let at = |name: &str| work.join(name).to_str().unwrap().to_owned();
        std::fs::write(
            work.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let steps: [Vec<String>; 3] = [
            [
                &["req", "-x509"][..],
                &ec[..],
                &["-days", "2", "-subj", "/CN=kiln test CA"],
            ]
            .concat()
            .iter()
            .map(|s| (*s).to_owned())
            .chain([
                "-addext".into(),
                "basicConstraints=critical,CA:TRUE".into(),
                "-addext".into(),
                "keyUsage=critical,keyCertSign".into(),
                "-keyout".into(),
                at("ca.key"),
                "-out".into(),
                at("ca.pem"),
            ])
            .collect(),
            [&["req"][..], &ec[..], &["-subj", "/CN=127.0.0.1"]]
                .concat()
                .iter()
                .map(|s| (*s).to_owned())
                .chain([
                    "-keyout".into(),
                    at("server.key"),
                    "-out".into(),
                    at("server.csr"),
                ])
                .collect(),
            [
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &at("server.csr"),
                "-CA",
                &at("ca.pem"),
                "-CAkey",
                &at("ca.key"),
                "-CAcreateserial",
                "-extfile",
                &at("server.ext"),
                "-out",
                &at("server.pem"),
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        ];
        for args in &steps {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = common::tool("openssl", &refs);
            assert_eq!(run.code, 0, "openssl {}: {}", args.join(" "), run.stderr);
        }
        let script = "import functools, http.server, ssl, sys\n\
            root, cert, key = sys.argv[1:4]\n\
            handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)\n\
            httpd = http.server.HTTPServer(('127.0.0.1', 0), handler)\n\
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
            ctx.load_cert_chain(cert, key)\n\
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)\n\
            print(httpd.server_address[1], flush=True)\n\
            httpd.serve_forever()\n";
        let mut child = std::process::Command::new("python3")
            .args(["-c", script, dir.to_str().unwrap()])
            .args([at("server.pem"), at("server.key")])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the HTTPS server did not start: {line:?}")
        });
        Self { child, port }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HTTPS downloads verify the server against the system's roots, which `SSL_CERT_FILE`
/// replaces — how users behind an intercepting proxy trust its CA: with the test CA there the
/// file arrives; with only the distribution's bundle the build fails naming the URL and the
/// certificate problem.
#[test]
fn add_https_url_trusts_the_roots_ssl_cert_file_names() {
    let t = Tmp::new("add-url-https");
    let root = t.join("root");
    let served = t.join("served");
    write_files(&served, &[("hello.txt", "over tls\n")]);
    let server = TlsServer::start(t.path(), &served);
    let url = format!("https://127.0.0.1:{}/hello.txt", server.port);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            &format!("FROM scratch\nADD {url} /hello.txt\n"),
        )],
    );
    let out = t.join("out");
    let local = format!("type=local,dest={}", out.display());
    let args = ["build", "-o", &local, ctx.to_str().unwrap()];
    let ca = t.join("ca.pem");
    common::kiln_env(&root, &args, &[("SSL_CERT_FILE", ca.to_str().unwrap())]).ok();
    assert_eq!(describe(&out, "hello.txt"), "600 0:0 file:over tls\n");

    let run = common::kiln_env(
        &root,
        &["build", "--no-cache", "-o", &local, ctx.to_str().unwrap()],
        &[("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")],
    )
    .failed();
    assert!(
        run.stderr.contains(&url)
            && run.stderr.contains("UnknownIssuer")
            && run
                .stderr
                .contains("SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt")
            && !run.stderr.contains("retrying"),
        "{}",
        run.stderr
    );
}
