//! The registry client: pulls images into the content store and pushes them out, over the
//! OCI distribution API (oci-client), with docker's credentials, plain HTTP for local and
//! named insecure registries, and retries with backoff on transient failures.
//!
//! Every blob is streamed into the content store through an [`Ingest`](crate::store::Ingest)
//! that verifies its digest, so a truncated or corrupted download is never stored; a manifest
//! is stored (and tagged) only after everything it references is present.

mod auth;
mod blobs;
mod ensure;
mod error;
mod manifest_get;
mod pull;
mod push;
mod retry;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;

pub(crate) use crate::image::manifest::Manifest;
pub use blobs::Session;
pub use error::RegistryError;
pub use pull::PulledImage;
pub use push::PushedImage;

use crate::store::Reference as StoreRef;

pub use crate::image::manifest::media;

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Registries (`host[:port]`) spoken to over plain HTTP, besides localhost/127.0.0.1.
    pub insecure: Vec<String>,
}

/// A registry client shared by every pull and push of one kiln process.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    options: RegistryOptions,
    /// One pair of clients per registry host: the scheme is fixed per client, and each keeps
    /// its own tokens.
    clients: Mutex<HashMap<String, Clients>>,
}

/// The clients for one registry.
#[derive(Clone)]
pub(crate) struct Clients {
    /// Chunked uploads (the default) and every download.
    pub(crate) chunked: Arc<oci_client::Client>,
    /// Monolithic uploads, for registries that refuse chunked ones; made on first need,
    /// because every client reads the system's CA roots (a few milliseconds with rustls).
    monolithic: Arc<tokio::sync::OnceCell<Arc<oci_client::Client>>>,
    /// Plain HTTP requests kiln makes itself (bounded manifest reads), made on first need.
    http: Arc<std::sync::OnceLock<reqwest::Client>>,
    pub(crate) protocol: ClientProtocol,
}

impl Clients {
    fn new(protocol: ClientProtocol) -> Self {
        crate::tls::install_provider();
        Self {
            chunked: Arc::new(oci_client::Client::new(client_config(&protocol, false))),
            monolithic: Arc::new(tokio::sync::OnceCell::new()),
            http: Arc::new(std::sync::OnceLock::new()),
            protocol,
        }
    }

    /// The client for requests kiln makes itself, with the same timeouts as oci-client's.
    pub(crate) fn http(&self) -> Result<reqwest::Client, reqwest::Error> {
        if let Some(client) = self.http.get() {
            return Ok(client.clone());
        }
        // `Clients::new` installed the TLS provider.
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(30))
            .read_timeout(std::time::Duration::from_secs(120))
            .build()?;
        Ok(self.http.get_or_init(|| client).clone())
    }

    /// The monolithic-upload client, authenticated for `op` on `reference`.
    pub(crate) async fn monolithic(
        &self,
        reference: &oci_client::Reference,
        auth: &RegistryAuth,
        op: oci_client::RegistryOperation,
    ) -> Result<Arc<oci_client::Client>, oci_client::errors::OciDistributionError> {
        self.monolithic
            .get_or_try_init(|| async {
                let client = oci_client::Client::new(client_config(&self.protocol, true));
                client.auth(reference, auth, op).await?;
                Ok(Arc::new(client))
            })
            .await
            .cloned()
    }
}

fn client_config(protocol: &ClientProtocol, monolithic: bool) -> ClientConfig {
    ClientConfig {
        protocol: protocol.clone(),
        use_monolithic_push: monolithic,
        connect_timeout: Some(std::time::Duration::from_secs(30)),
        read_timeout: Some(std::time::Duration::from_secs(120)),
        ..ClientConfig::default()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("insecure", &self.inner.options.insecure)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// A client for these options.
    pub fn new(options: RegistryOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                options,
                clients: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Whether `domain` is spoken to over plain HTTP.
    pub fn is_insecure(&self, domain: &str) -> bool {
        is_loopback(domain) || self.inner.options.insecure.iter().any(|h| h == domain)
    }

    /// The clients for `domain`, made on first use.
    pub(crate) fn clients(&self, domain: &str) -> Clients {
        let mut map = self
            .inner
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(domain.to_owned())
            .or_insert_with(|| {
                let protocol = if self.is_insecure(domain) {
                    ClientProtocol::Http
                } else {
                    ClientProtocol::Https
                };
                Clients::new(protocol)
            })
            .clone()
    }

    /// Credentials for the registry of `reference`, from docker's config.
    pub(crate) fn auth_for(&self, reference: &StoreRef) -> Result<RegistryAuth, RegistryError> {
        auth::credentials(reference.domain())
    }
}

/// Whether `domain` is a loopback registry (plain HTTP on any port, as docker does).
pub(crate) fn is_loopback(domain: &str) -> bool {
    let host = match domain.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => domain,
    };
    matches!(host, "localhost" | "[::1]") || host.starts_with("127.")
}

/// The oci-client reference for one of ours, by tag or by digest.
pub(crate) fn client_ref(r: &StoreRef, digest: Option<&str>) -> oci_client::Reference {
    let registry = r.domain().to_owned();
    let repository = r.path().to_owned();
    match (digest, r.digest(), r.tag()) {
        (Some(d), _, _) => oci_client::Reference::with_digest(registry, repository, d.to_owned()),
        (None, Some(d), _) => {
            oci_client::Reference::with_digest(registry, repository, d.to_string())
        }
        (None, None, tag) => oci_client::Reference::with_tag(
            registry,
            repository,
            tag.unwrap_or("latest").to_owned(),
        ),
    }
}

/// Runs `fut` to completion from synchronous code: on the current (multi-thread) tokio
/// runtime when called from one of its threads, a task's included, else on a runtime of its
/// own.
pub fn block_on<F: std::future::Future>(fut: F) -> Result<F::Output, RegistryError> {
    match tokio::runtime::Handle::try_current() {
        // `Handle::block_on` panics inside an async task; `block_in_place` first hands the
        // worker's other tasks away, which is sound on a multi-thread runtime (and a no-op
        // on a blocking thread).
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            Ok(tokio::task::block_in_place(|| handle.block_on(fut)))
        }
        Ok(_) => Err(RegistryError::Runtime(
            "a registry call cannot block inside a current-thread runtime".to_owned(),
        )),
        Err(_) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| RegistryError::Runtime(e.to_string()))?;
            Ok(rt.block_on(fut))
        }
    }
}

#[cfg(test)]
mod block_on_tests {
    #![allow(clippy::unwrap_used)]

    /// From inside a task of the multi-thread runtime the solver runs on, where
    /// `Handle::block_on` would panic; and from plain synchronous code.
    #[test]
    fn blocks_inside_a_task_and_outside_any_runtime() {
        assert_eq!(super::block_on(async { 1 }).unwrap(), 1);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            tokio::spawn(async { super::block_on(async { 2 }).unwrap() })
                .await
                .unwrap()
        });
        assert_eq!(got, 2);
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(
            current
                .block_on(async { super::block_on(async { 3 }) })
                .is_err()
        );
    }
}
