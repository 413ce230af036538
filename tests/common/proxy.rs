//! An HTTP/1.1 reverse proxy for the registry tests, on a free 127.0.0.1 port: it injects
//! faults (dropped connections, 5xx, truncated or corrupted bodies) from a plan, and can put
//! bearer-token auth in front of an anonymous registry. Every request is recorded so tests
//! can say what happened. std only: a thread per connection, whole bodies buffered, a fresh
//! upstream connection per request; the Host header is forwarded unchanged so the
//! registry's `Location` headers point back at the proxy.

use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the proxy does to a request that matches a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Close the client connection without responding (nothing is forwarded).
    DropConnection,
    /// Answer with this status (500, 502, 503…) instead of forwarding.
    Status(u16),
    /// Send half the body under the full `Content-Length`, then close. Applies to the
    /// request body when the request has one (uploads: the registry sees an aborted
    /// upload, the client a dropped connection), else to a 2xx response's body.
    TruncateBody,
    /// Flip one byte of the body, same length (a wrong digest). Request body when the
    /// request has one, else a 2xx response's body.
    CorruptBody,
}

/// One rule of a fault plan: `(method or any, path substring, fault, times)`. The rule fires
/// on the first `times` matching requests, then stops.
pub type FaultRule<'a> = (Option<&'a str>, &'a str, Fault, usize);

/// One request seen by the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    pub method: String,
    /// Path and query, as sent by the client.
    pub path: String,
    /// The status sent back; 0 when the connection was closed without a response.
    pub status: u16,
    /// The fault injected into this request, if any.
    pub fault: Option<Fault>,
}

struct Rule {
    method: Option<String>,
    path_contains: String,
    fault: Fault,
    left: usize,
}

impl Rule {
    fn matches(&self, method: &str, path: &str) -> bool {
        self.left > 0
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path.contains(&self.path_contains)
    }
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    log: Vec<Exchange>,
    tokens: HashSet<String>,
    token_requests: usize,
    conns: Vec<TcpStream>,
}

struct Shared {
    upstream: String,
    addr: String,
    bearer: Option<(String, String)>,
    stop: AtomicBool,
    state: Mutex<State>,
}

/// Configures a [`Proxy`] before it starts.
pub struct ProxyBuilder {
    upstream: String,
    rules: Vec<Rule>,
    bearer: Option<(String, String)>,
}

impl ProxyBuilder {
    /// Adds fault rules (see [`FaultRule`]).
    pub fn faults(mut self, rules: &[FaultRule<'_>]) -> Self {
        self.rules.extend(rules.iter().map(rule));
        self
    }

    /// Demands bearer tokens on `/v2/**`, handed out by `GET /token` to HTTP basic
    /// `user`:`pass`.
    pub fn bearer(mut self, user: &str, pass: &str) -> Self {
        self.bearer = Some((user.to_owned(), pass.to_owned()));
        self
    }

    pub fn start(self) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared {
            upstream: self.upstream,
            addr,
            bearer: self.bearer,
            stop: AtomicBool::new(false),
            state: Mutex::new(State {
                rules: self.rules,
                ..State::default()
            }),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                if let Ok(c) = conn.try_clone() {
                    s.state.lock().unwrap().conns.push(c);
                }
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    let _ = serve(&s, conn);
                });
            }
        });
        Proxy {
            shared,
            thread: Some(thread),
        }
    }
}

fn rule(r: &FaultRule<'_>) -> Rule {
    Rule {
        method: r.0.map(str::to_owned),
        path_contains: r.1.to_owned(),
        fault: r.2,
        left: r.3,
    }
}

/// A running proxy; stopped on drop.
pub struct Proxy {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// A proxy to `upstream` (`HOST:PORT`) configured by the builder's methods.
    pub fn builder(upstream: &str) -> ProxyBuilder {
        ProxyBuilder {
            upstream: upstream.to_owned(),
            rules: Vec::new(),
            bearer: None,
        }
    }

    /// A pass-through proxy that injects the faults of `rules`.
    pub fn with_faults(upstream: &str, rules: &[FaultRule<'_>]) -> Self {
        Self::builder(upstream).faults(rules).start()
    }

    /// A proxy that demands bearer tokens, handed out to `user`:`pass` at `/token`.
    pub fn with_bearer(upstream: &str, user: &str, pass: &str) -> Self {
        Self::builder(upstream).bearer(user, pass).start()
    }

    /// `127.0.0.1:PORT`, as it goes in an image reference.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// Replaces the fault plan (rules that have not fired yet are dropped).
    pub fn set_faults(&self, rules: &[FaultRule<'_>]) {
        self.state().rules = rules.iter().map(rule).collect();
    }

    /// Every request so far, in the order they were answered.
    pub fn requests(&self) -> Vec<Exchange> {
        self.state().log.clone()
    }

    /// Forgets the recorded requests (not the plan, not the tokens).
    pub fn clear_requests(&self) {
        self.state().log.clear();
    }

    /// How many recorded requests had `method` (any when None) and a path containing `path`.
    pub fn count(&self, method: Option<&str>, path: &str) -> usize {
        self.state()
            .log
            .iter()
            .filter(|e| method.is_none_or(|m| m.eq_ignore_ascii_case(&e.method)))
            .filter(|e| e.path.contains(path))
            .count()
    }

    /// How many faults were injected so far.
    pub fn faults_fired(&self) -> usize {
        self.state()
            .log
            .iter()
            .filter(|e| e.fault.is_some())
            .count()
    }

    /// How many requests reached the token endpoint.
    pub fn token_requests(&self) -> usize {
        self.state().token_requests
    }

    /// The recorded requests, one a line, for assertion messages.
    pub fn dump(&self) -> String {
        self.state()
            .log
            .iter()
            .map(|e| format!("{} {} -> {} {:?}\n", e.method, e.path, e.status, e.fault))
            .collect()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Unblocks accept(); the loop sees the flag and ends.
        let _ = TcpStream::connect(&self.shared.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for c in self.state().conns.drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

/// A request or response head: the start line and the headers in order.
pub struct Head {
    pub start: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }
}

pub fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut start = String::new();
    // Tolerate stray blank lines between keep-alive requests.
    loop {
        start.clear();
        if r.read_line(&mut start)? == 0 {
            return Ok(None);
        }
        if !start.trim().is_empty() {
            break;
        }
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "eof in headers",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    Ok(Some(Head {
        start: start.trim_end().to_owned(),
        headers,
    }))
}

/// Reads a body framed by chunked encoding or Content-Length; without either, a request has
/// none and a response runs to the end of the connection.
pub(super) fn read_body(
    r: &mut impl BufRead,
    head: &Head,
    is_response: bool,
) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if head.has_token("transfer-encoding", "chunked") {
        loop {
            let mut line = String::new();
            r.read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size.trim(), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the blank line.
                loop {
                    let mut t = String::new();
                    if r.read_line(&mut t)? == 0 || t.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let at = body.len();
            body.resize(at + size, 0);
            r.read_exact(&mut body[at..])?;
            let mut crlf = String::new();
            r.read_line(&mut crlf)?;
        }
    } else if let Some(len) = head.get("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad content-length"))?;
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    } else if is_response {
        r.read_to_end(&mut body)?;
    }
    Ok(body)
}

/// What to send back to the client.
enum Reply {
    Respond {
        status_line: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        /// A response to HEAD: keep the upstream Content-Length, send no body.
        head_only: bool,
        truncate: bool,
    },
    Drop,
}

fn serve(shared: &Shared, client: TcpStream) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(300)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut writer = client;
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(head) = read_head(&mut reader)? else {
            return Ok(());
        };
        let mut parts = head.start.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let path = parts.next().unwrap_or("").to_owned();
        let version = parts.next().unwrap_or("HTTP/1.1").to_owned();
        if head.has_token("expect", "100-continue") {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let body = read_body(&mut reader, &head, false)?;
        let close = version == "HTTP/1.0" || head.has_token("connection", "close");
        match shared.handle(&method, &path, &head, body) {
            Reply::Drop => {
                let _ = writer.shutdown(Shutdown::Both);
                return Ok(());
            }
            Reply::Respond {
                status_line,
                headers,
                body,
                head_only,
                truncate,
            } => {
                let mut out = format!("{status_line}\r\n");
                let status = status_of(&status_line);
                for (k, v) in &headers {
                    let hop = ["connection", "keep-alive", "transfer-encoding"]
                        .iter()
                        .any(|h| k.eq_ignore_ascii_case(h));
                    let length = k.eq_ignore_ascii_case("content-length");
                    if hop || (length && !head_only) {
                        continue;
                    }
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                let bodiless = head_only || status < 200 || status == 204 || status == 304;
                if !bodiless {
                    out.push_str(&format!("Content-Length: {}\r\n", body.len()));
                }
                if close {
                    out.push_str("Connection: close\r\n");
                }
                out.push_str("\r\n");
                writer.write_all(out.as_bytes())?;
                if !bodiless {
                    if truncate {
                        writer.write_all(&body[..body.len() / 2])?;
                        writer.flush()?;
                        let _ = writer.shutdown(Shutdown::Both);
                        return Ok(());
                    }
                    writer.write_all(&body)?;
                }
                writer.flush()?;
                if close {
                    let _ = writer.shutdown(Shutdown::Both);
                    return Ok(());
                }
            }
        }
    }
}

fn status_of(status_line: &str) -> u16 {
    status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        401 => "Unauthorized",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Injected",
    }
}

fn simple(status: u16, headers: Vec<(String, String)>, body: &str) -> Reply {
    Reply::Respond {
        status_line: format!("HTTP/1.1 {status} {}", reason(status)),
        headers,
        body: body.as_bytes().to_vec(),
        head_only: false,
        truncate: false,
    }
}

fn json_headers() -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), "application/json".into()),
        (
            "Docker-Distribution-Api-Version".into(),
            "registry/2.0".into(),
        ),
    ]
}

impl Shared {
    fn record(&self, method: &str, path: &str, status: u16, fault: Option<Fault>) {
        self.state.lock().unwrap().log.push(Exchange {
            method: method.to_owned(),
            path: path.to_owned(),
            status,
            fault,
        });
    }

    fn handle(&self, method: &str, path: &str, head: &Head, mut body: Vec<u8>) -> Reply {
        if let Some((user, pass)) = &self.bearer {
            if path == "/token" || path.starts_with("/token?") {
                return self.token(method, path, head, &body, user, pass);
            }
            if path.starts_with("/v2") && !self.authorized(head) {
                self.record(method, path, 401, None);
                let mut h = json_headers();
                let mut challenge = format!(
                    "Bearer realm=\"http://{}/token\",service=\"kiln-test\"",
                    self.addr
                );
                if let Some(repo) = repo_of(path) {
                    challenge.push_str(&format!(",scope=\"repository:{repo}:pull,push\""));
                }
                h.push(("WWW-Authenticate".into(), challenge));
                return simple(
                    401,
                    h,
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#,
                );
            }
        }

        // Faults that act before anything is forwarded.
        let before = {
            let mut st = self.state.lock().unwrap();
            let found = st.rules.iter_mut().find(|r| {
                r.matches(method, path)
                    && match r.fault {
                        Fault::DropConnection | Fault::Status(_) => true,
                        Fault::TruncateBody | Fault::CorruptBody => !body.is_empty(),
                    }
            });
            found.map(|r| {
                r.left -= 1;
                r.fault
            })
        };
        match before {
            Some(f @ Fault::DropConnection) => {
                self.record(method, path, 0, Some(f));
                return Reply::Drop;
            }
            Some(f @ Fault::Status(code)) => {
                self.record(method, path, code, Some(f));
                return simple(
                    code,
                    json_headers(),
                    r#"{"errors":[{"code":"UNKNOWN","message":"injected fault","detail":null}]}"#,
                );
            }
            Some(f @ Fault::TruncateBody) => {
                // The upstream gets half the upload and a closed connection; so does the client.
                let _ = self.forward(method, path, head, &body, true);
                self.record(method, path, 0, Some(f));
                return Reply::Drop;
            }
            Some(Fault::CorruptBody) => {
                let mid = body.len() / 2;
                body[mid] ^= 0x01;
            }
            None => {}
        }

        let (resp, resp_body) = match self.forward(method, path, head, &body, false) {
            Ok(r) => r,
            Err(e) => {
                self.record(method, path, 502, before);
                return simple(502, json_headers(), &format!("proxy: upstream: {e}"));
            }
        };
        let status = status_of(&resp.start);
        let head_only = method.eq_ignore_ascii_case("HEAD");
        let mut fault = before;
        let mut truncate = false;
        let mut resp_body = resp_body;
        if before.is_none() && (200..300).contains(&status) && !resp_body.is_empty() {
            let mut st = self.state.lock().unwrap();
            let found = st.rules.iter_mut().find(|r| {
                r.matches(method, path)
                    && matches!(r.fault, Fault::TruncateBody | Fault::CorruptBody)
            });
            if let Some(r) = found {
                r.left -= 1;
                fault = Some(r.fault);
                match r.fault {
                    Fault::TruncateBody => truncate = true,
                    _ => {
                        let mid = resp_body.len() / 2;
                        resp_body[mid] ^= 0x01;
                    }
                }
            }
        }
        self.record(method, path, status, fault);
        Reply::Respond {
            status_line: resp.start,
            headers: resp.headers,
            body: resp_body,
            head_only,
            truncate,
        }
    }

    fn authorized(&self, head: &Head) -> bool {
        let Some(token) = head
            .get("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        self.state.lock().unwrap().tokens.contains(token.trim())
    }

    /// The token endpoint: `GET /token?service=..&scope=..` with HTTP basic auth, or the
    /// OAuth2 form `POST /token` (grant_type=password) some clients use.
    fn token(
        &self,
        method: &str,
        path: &str,
        head: &Head,
        body: &[u8],
        user: &str,
        pass: &str,
    ) -> Reply {
        let ok = if method.eq_ignore_ascii_case("POST") {
            let form = String::from_utf8_lossy(body);
            let field = |name: &str| {
                form.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| percent_decode(v))
            };
            field("username").as_deref() == Some(user) && field("password").as_deref() == Some(pass)
        } else {
            let want = format!("Basic {}", base64(format!("{user}:{pass}").as_bytes()));
            head.get("authorization") == Some(want.as_str())
        };
        let token = {
            let mut st = self.state.lock().unwrap();
            st.token_requests += 1;
            if ok {
                let t = format!("kiln-test-token-{}", st.tokens.len() + 1);
                st.tokens.insert(t.clone());
                Some(t)
            } else {
                None
            }
        };
        match token {
            Some(t) => {
                self.record(method, path, 200, None);
                simple(
                    200,
                    json_headers(),
                    &format!(r#"{{"token":"{t}","access_token":"{t}","expires_in":300}}"#),
                )
            }
            None => {
                self.record(method, path, 401, None);
                let mut h = json_headers();
                h.push((
                    "WWW-Authenticate".into(),
                    "Basic realm=\"kiln-test\"".into(),
                ));
                simple(
                    401,
                    h,
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"wrong credentials","detail":null}]}"#,
                )
            }
        }
    }

    /// Sends one request upstream on a fresh connection and reads the whole response.
    /// `truncate` sends half the body under the full length and gives up.
    fn forward(
        &self,
        method: &str,
        path: &str,
        head: &Head,
        body: &[u8],
        truncate: bool,
    ) -> io::Result<(Head, Vec<u8>)> {
        let mut up = TcpStream::connect(&self.upstream)?;
        up.set_read_timeout(Some(Duration::from_secs(120)))?;
        let mut out = format!("{method} {path} HTTP/1.1\r\n");
        let had_body =
            head.get("content-length").is_some() || head.has_token("transfer-encoding", "chunked");
        for (k, v) in &head.headers {
            let skip = [
                "connection",
                "keep-alive",
                "transfer-encoding",
                "content-length",
                "expect",
                "proxy-connection",
                "te",
                "upgrade",
            ]
            .iter()
            .any(|h| k.eq_ignore_ascii_case(h))
                || (self.bearer.is_some() && k.eq_ignore_ascii_case("authorization"));
            if !skip {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        if had_body || !body.is_empty() {
            out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        out.push_str("Connection: close\r\n\r\n");
        up.write_all(out.as_bytes())?;
        if truncate {
            up.write_all(&body[..body.len() / 2])?;
            up.flush()?;
            let _ = up.shutdown(Shutdown::Both);
            return Err(io::Error::other("truncated on purpose"));
        }
        up.write_all(body)?;
        up.flush()?;
        let mut r = BufReader::new(up);
        let resp = read_head(&mut r)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no response"))?;
        let status = status_of(&resp.start);
        let body = if method.eq_ignore_ascii_case("HEAD")
            || status < 200
            || status == 204
            || status == 304
        {
            Vec::new()
        } else {
            read_body(&mut r, &resp, true)?
        };
        Ok((resp, body))
    }
}

/// The repository named by a `/v2/<name>/(manifests|blobs|tags)/…` path.
fn repo_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v2/")?;
    let rest = rest.split('?').next()?;
    ["/manifests/", "/blobs/", "/tags/"]
        .iter()
        .filter_map(|m| rest.rfind(m).map(|i| &rest[..i]))
        .max_by_key(|r| r.len())
        .filter(|r| !r.is_empty())
}

/// Standard base64 with padding (for `Authorization: Basic` and Docker's config.json).
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                s.push(char::from(A[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
