//! `GET /v2/<name>/manifests/<reference>` with a bound: oci-client reads a manifest body
//! whole into memory whatever its size, so a hostile registry could choose how much memory a
//! pull takes (a 100 MB manifest took 2 GB of RSS). Here the body is streamed and refused past
//! [`MAX_JSON`] bytes. Authentication is the session's: the bearer token oci-client obtained,
//! or the basic credentials.

use base64::Engine as _;
use futures_util::StreamExt as _;
use oci_client::client::ClientProtocol;
use oci_client::secrets::RegistryAuth;

use super::blobs::{MAX_JSON, Session};
use super::retry::Failure;
use super::{RegistryError, media};

impl Session {
    /// The manifest `oref` names and the digest the registry announces for it (empty when it
    /// sends none).
    pub(crate) async fn get_manifest(
        &self,
        oref: &oci_client::Reference,
    ) -> Result<(Vec<u8>, String), Failure> {
        let scheme = match &self.clients.protocol {
            ClientProtocol::Http => "http",
            ClientProtocol::Https => "https",
            ClientProtocol::HttpsExcept(hosts) => {
                if hosts.iter().any(|h| h == oref.registry()) {
                    "http"
                } else {
                    "https"
                }
            }
        };
        let tag_or_digest = oref
            .digest()
            .or(oref.tag())
            .map_or_else(|| "latest".to_owned(), str::to_owned);
        let url = format!(
            "{scheme}://{}/v2/{}/manifests/{tag_or_digest}",
            oref.resolve_registry(),
            oref.repository()
        );
        let client = self.clients.http().map_err(|e| {
            Failure::Fatal(RegistryError::Invalid {
                reference: self.display.clone(),
                detail: format!("making an HTTP client: {e}"),
            })
        })?;
        let mut request = client
            .get(&url)
            .header("Accept", media::ACCEPTED.join(", "));
        request = match (&self.token, &self.auth) {
            (Some(token), _) => request.bearer_auth(token),
            (None, RegistryAuth::Basic(user, password)) => {
                let pair =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                request.header("Authorization", format!("Basic {pair}"))
            }
            (None, _) => request,
        };
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Transient(format!("{url}: {}", super::retry::error_chain(&e))))?;
        let status = response.status();
        if !status.is_success() {
            let body = bounded_text(response).await;
            return Err(Failure::from_http(
                &self.display,
                self.reference.domain(),
                status.as_u16(),
                format!("{url}: {status}: {body}"),
            ));
        }
        if response.content_length().is_some_and(|n| n > MAX_JSON) {
            return Err(self.too_large(&tag_or_digest));
        }
        let announced = response
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            if crate::cancel::is_cancelled() {
                return Err(Failure::Fatal(RegistryError::Cancelled {
                    reference: self.display.clone(),
                }));
            }
            let chunk = chunk.map_err(|e| {
                Failure::Transient(format!("{url}: {}", super::retry::error_chain(&e)))
            })?;
            if (body.len() + chunk.len()) as u64 > MAX_JSON {
                return Err(self.too_large(&tag_or_digest));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, announced))
    }

    fn too_large(&self, what: &str) -> Failure {
        Failure::Fatal(RegistryError::TooLarge {
            reference: self.display.clone(),
            what: format!("manifest {what}"),
            limit: MAX_JSON,
        })
    }
}

/// The start of an error body, for the message (never more than a few KiB of it).
async fn bounded_text(response: reqwest::Response) -> String {
    let mut text = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        text.extend_from_slice(&chunk);
        if text.len() > 4096 {
            text.truncate(4096);
            break;
        }
    }
    String::from_utf8_lossy(&text).trim().to_owned()
}
