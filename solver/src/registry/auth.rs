//! Credentials from docker's configuration (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`): `auths`, `credHelpers` and `credsStore`, as docker reads them.

use docker_credential::{CredentialRetrievalError, DockerCredential};
use oci_client::secrets::RegistryAuth;

use super::RegistryError;

/// The key docker's config uses for Docker Hub.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The credentials for `domain`, or anonymous when docker's config has none.
pub(crate) fn credentials(domain: &str) -> Result<RegistryAuth, RegistryError> {
    let server = if domain == "docker.io" || domain == "index.docker.io" {
        DOCKER_HUB_KEY
    } else {
        domain
    };
    let Some(path) = config_path() else {
        return Ok(RegistryAuth::Anonymous);
    };
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RegistryAuth::Anonymous),
        Err(e) => {
            return Err(RegistryError::Credentials {
                registry: domain.to_owned(),
                detail: format!("{}: {e}", path.display()),
            });
        }
    };
    match docker_credential::get_credential_from_reader(std::io::BufReader::new(file), server) {
        Ok(DockerCredential::UsernamePassword(user, pass)) => Ok(RegistryAuth::Basic(user, pass)),
        // An identity token is a refresh token for the registry's OAuth flow; oci-client
        // sends it as a bearer token, which registries that issue them accept.
        Ok(DockerCredential::IdentityToken(token)) => Ok(RegistryAuth::Bearer(token)),
        Err(
            CredentialRetrievalError::ConfigNotFound
            | CredentialRetrievalError::NoCredentialConfigured,
        ) => Ok(RegistryAuth::Anonymous),
        Err(e) => Err(RegistryError::Credentials {
            registry: domain.to_owned(),
            detail: format!("{}: {e}", path.display()),
        }),
    }
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json` (docker's lookup).
fn config_path() -> Option<std::path::PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker")))
        .map(|dir| dir.join("config.json"))
}
