//! The socket a `RUN --mount=type=ssh` step sees: a fresh Unix socket with the mount's
//! owner and mode, each connection relayed to the user's agent. BuildKit serves the agent
//! the same way (a socket it creates per mount), so `uid=`, `gid=` and `mode=` apply to
//! that socket and the user's own agent socket is never bound into the container or changed.

use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// A relay socket, serving until dropped (after the step's process ended).
pub(super) struct SshProxy {
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl SshProxy {
    /// Listens at `at` (owned `uid:gid`, mode `mode`), relaying to the agent at `agent`.
    pub(super) fn start(
        agent: &Path,
        at: &Path,
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> io::Result<Self> {
        let listener = UnixListener::bind(at)?;
        std::os::unix::fs::chown(at, Some(uid), Some(gid))?;
        std::fs::set_permissions(at, std::fs::Permissions::from_mode(mode))?;
        // Polled rather than blocking, so that dropping the proxy ends the accept loop.
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let agent = agent.to_path_buf();
        let flag = Arc::clone(&stop);
        let accept = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let agent = agent.clone();
                        std::thread::spawn(move || {
                            let _ = relay(client, &agent);
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(_) => break,
                }
            }
        });
        Ok(SshProxy {
            stop,
            accept: Some(accept),
            path: at.to_path_buf(),
        })
    }
}

impl Drop for SshProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Copies bytes both ways between one client and a new connection to the agent.
fn relay(client: UnixStream, agent: &Path) -> io::Result<()> {
    client.set_nonblocking(false)?;
    let upstream = UnixStream::connect(agent)?;
    let (mut c_read, mut u_write) = (client.try_clone()?, upstream.try_clone()?);
    let to_agent = std::thread::spawn(move || {
        let _ = io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut u_read, mut c_write) = (upstream, client);
    let _ = io::copy(&mut u_read, &mut c_write);
    let _ = c_write.shutdown(std::net::Shutdown::Write);
    let _ = to_agent.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::{Read as _, Write as _};
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    #[test]
    fn relays_to_the_agent_with_its_own_owner_and_mode() {
        let dir = std::env::temp_dir().join(format!("kiln-ssh-proxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let agent_path = dir.join("agent.sock");
        let agent = UnixListener::bind(&agent_path).unwrap();
        let echo = std::thread::spawn(move || {
            let (mut s, _) = agent.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let at = dir.join("proxy.sock");
        let proxy = SshProxy::start(&agent_path, &at, 100, 102, 0o741).unwrap();
        let meta = std::fs::metadata(&at).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (100, 102, 0o741)
        );
        let mut c = UnixStream::connect(&at).unwrap();
        c.write_all(b"hello").unwrap();
        let mut back = [0u8; 5];
        c.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"hello");
        echo.join().unwrap();
        drop(proxy);
        assert!(!at.exists(), "the socket goes with the proxy");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
