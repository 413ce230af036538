//! A real registry for the end-to-end tests: Debian's `docker-registry` (distribution 2.8)
//! serving a temp dir on a free 127.0.0.1 port, anonymous or behind htpasswd basic auth.
//! Killed when dropped.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Tmp;

const BINARY: &str = "/usr/bin/docker-registry";

/// A running `docker-registry serve`; stopped (kill + wait) on drop.
pub struct Registry {
    child: Child,
    addr: String,
    dir: Tmp,
}

impl Registry {
    /// An anonymous registry (push and pull need no credentials).
    pub fn start() -> Self {
        Self::spawn(None)
    }

    /// A registry that wants HTTP basic auth with `user`:`pass` (htpasswd, bcrypt).
    pub fn start_htpasswd(user: &str, pass: &str) -> Self {
        Self::spawn(Some((user, pass)))
    }

    /// `127.0.0.1:PORT`, as it goes in an image reference.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Where the registry keeps its blobs and repositories.
    pub fn storage(&self) -> std::path::PathBuf {
        self.dir.join("data")
    }

    /// What the registry logged so far (access log and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    fn spawn(auth: Option<(&str, &str)>) -> Self {
        assert!(
            Path::new(BINARY).exists(),
            "{BINARY} not found: install Debian's docker-registry (bash .ci/setup)"
        );
        let dir = Tmp::new("registry");
        let auth_yaml = match auth {
            None => String::new(),
            Some((user, pass)) => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, pass])
                    .output()
                    .unwrap_or_else(|e| {
                        panic!("htpasswd: {e}: install apache2-utils (bash .ci/setup)")
                    });
                assert!(
                    out.status.success(),
                    "htpasswd -Bbn failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let file = dir.join("htpasswd");
                std::fs::write(&file, &out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                    file.display()
                )
            }
        };
        // The port is picked by binding port 0 and letting it go, so another process may
        // take it before the registry does: try a few ports.
        let mut last_log = String::new();
        for _ in 0..5 {
            let addr = format!("127.0.0.1:{}", free_port());
            let config = dir.join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\n\
                     log:\n  level: info\n  formatter: text\n\
                     storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n\
                     http:\n  addr: {addr}\n  secret: kiln-test-secret\n\
                     {auth_yaml}",
                    data = dir.join("data").display(),
                ),
            )
            .unwrap();
            let log_path = dir.join("registry.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(BINARY)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("{BINARY}: {e}"));
            match wait_ready(&mut child, &addr, &log_path) {
                Ok(()) => return Registry { child, addr, dir },
                Err(log) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let retry = log.contains("address already in use");
                    last_log = log;
                    if !retry {
                        break;
                    }
                }
            }
        }
        panic!("docker-registry did not start:\n{last_log}");
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `GET /v2/` until it answers (200, or 401 when auth is on).
fn wait_ready(child: &mut Child, addr: &str, log: &Path) -> Result<(), String> {
    let read_log = || std::fs::read_to_string(log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!("exited with {status}:\n{}", read_log()));
        }
        if let Some(200 | 401) = http_status(addr, "GET", "/v2/") {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "GET http://{addr}/v2/ did not answer within 30 s:\n{}",
                read_log()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The status code of one plain HTTP request without a body, or None when nothing answers.
pub fn http_status(addr: &str, method: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    let line = std::str::from_utf8(&head).ok()?;
    line.strip_prefix("HTTP/1.1 ")?.trim().parse().ok()
}

/// A whole HTTP response.
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One plain HTTP/1.1 request on a fresh connection (`Connection: close`); panics when
/// nothing answers.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || matches!(method, "PUT" | "POST" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut r = std::io::BufReader::new(s);
    let resp = super::proxy::read_head(&mut r)
        .unwrap_or_else(|e| panic!("{method} http://{addr}{path}: {e}"))
        .unwrap_or_else(|| panic!("{method} http://{addr}{path}: no response"));
    let status = resp
        .start
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if method == "HEAD" || status == 204 || status == 304 {
        Vec::new()
    } else {
        super::proxy::read_body(&mut r, &resp, true)
            .unwrap_or_else(|e| panic!("{method} http://{addr}{path}: body: {e}"))
    };
    HttpResponse {
        status,
        headers: resp.headers,
        body,
    }
}

/// `sha256:<hex>` of `data` (by sha256sum, so no hashing crate is needed).
pub fn sha256(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    let hex = String::from_utf8_lossy(&out.stdout);
    format!("sha256:{}", hex.split_whitespace().next().unwrap())
}

/// Uploads `data` as a blob of `repo` (POST, then PUT with the digest); returns its digest.
pub fn push_blob(addr: &str, repo: &str, data: &[u8]) -> String {
    let digest = sha256(data);
    let start = http(
        addr,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        b"",
    );
    assert_eq!(
        start.status,
        202,
        "start upload to {repo}: {}",
        start.text()
    );
    let location = start.header("location").unwrap().to_owned();
    let location = location
        .strip_prefix(&format!("http://{addr}"))
        .unwrap_or(&location);
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = http(
        addr,
        "PUT",
        &format!("{location}{sep}digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        data,
    );
    assert_eq!(put.status, 201, "upload {digest} to {repo}: {}", put.text());
    digest
}

/// PUTs a manifest or index under `reference` (tag or digest); returns its digest.
pub fn put_manifest(
    addr: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    data: &[u8],
) -> String {
    let r = http(
        addr,
        "PUT",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Content-Type", media_type)],
        data,
    );
    assert_eq!(r.status, 201, "PUT {repo}:{reference}: {}", r.text());
    sha256(data)
}

/// GETs a manifest (OCI or Docker, single or index) as the registry stores it.
pub fn get_manifest(addr: &str, repo: &str, reference: &str) -> HttpResponse {
    let accept = "application/vnd.oci.image.manifest.v1+json, \
                  application/vnd.oci.image.index.v1+json, \
                  application/vnd.docker.distribution.manifest.v2+json, \
                  application/vnd.docker.distribution.manifest.list.v2+json";
    http(
        addr,
        "GET",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Accept", accept)],
        b"",
    )
}

/// Writes `$dir/config.json` with credentials for `registry` and returns `dir` as a string
/// for `DOCKER_CONFIG`.
pub fn docker_config(dir: &Path, registry: &str, user: &str, pass: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let auth = super::proxy::base64(format!("{user}:{pass}").as_bytes());
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    dir.to_str().unwrap().to_owned()
}
