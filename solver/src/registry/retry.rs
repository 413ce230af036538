//! Sorting registry failures into transient and fatal (connection errors, 5xx answers, 429
//! and bodies that do not match their digest — a truncated or corrupted transfer — are tried
//! again; refusals: 401/403, 404, invalid requests, are not), over [`crate::retry`].

use std::future::Future;
use std::time::Duration;

use oci_client::errors::{OciDistributionError, OciErrorCode};

use super::RegistryError;
pub(super) use crate::retry::error_chain;
use crate::retry::{Backoff, GaveUp};

/// How many times a transfer is attempted in all, and the waits between.
const POLICY: Backoff = Backoff {
    attempts: 5,
    first: Duration::from_millis(200),
    max: Duration::from_secs(3),
};

/// The outcome of one failed registry attempt.
pub(crate) type Failure = crate::retry::Failure<RegistryError>;

impl Failure {
    /// Sorts an oci-client error for `reference` into transient or fatal.
    pub(crate) fn from_oci(reference: &str, registry: &str, e: OciDistributionError) -> Self {
        use OciDistributionError as E;
        match e {
            E::RequestError(err) => {
                if let Some(status) = err.status() {
                    return Self::from_status(
                        reference,
                        registry,
                        status.as_u16(),
                        err.to_string(),
                    );
                }
                if let Some(refused) = crate::tls::refused_certificate(&err) {
                    return Self::Fatal(RegistryError::Invalid {
                        reference: reference.to_owned(),
                        detail: format!("{registry}: {refused}"),
                    });
                }
                Self::Transient(error_chain(&err))
            }
            E::ServerError { code, url, message } => Self::from_status(
                reference,
                registry,
                code,
                format!("{url}: {code} {message}"),
            ),
            E::IoError(err) => Self::Transient(err.to_string()),
            E::DigestError(err) => {
                Self::Transient(format!("content does not match its digest: {err}"))
            }
            E::UnauthorizedError { url } => Self::Fatal(RegistryError::Unauthorized {
                reference: reference.to_owned(),
                registry: registry.to_owned(),
                detail: format!("{url} answered 401"),
            }),
            E::AuthenticationFailure(detail) => Self::Fatal(RegistryError::Unauthorized {
                reference: reference.to_owned(),
                registry: registry.to_owned(),
                detail: if detail.trim().is_empty() {
                    "the token endpoint refused the credentials".to_owned()
                } else {
                    detail.trim().to_owned()
                },
            }),
            E::ImageManifestNotFoundError(detail) => Self::Fatal(RegistryError::NotFound {
                reference: reference.to_owned(),
                detail,
            }),
            E::RegistryError { envelope, url } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                let detail = format!("{url}: {envelope}");
                if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    Self::Fatal(RegistryError::Unauthorized {
                        reference: reference.to_owned(),
                        registry: registry.to_owned(),
                        detail,
                    })
                } else if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::BlobUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                    )
                }) {
                    Self::Fatal(RegistryError::NotFound {
                        reference: reference.to_owned(),
                        detail,
                    })
                } else if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::Toomanyrequests
                            // An upload whose bytes arrived damaged (or whose session the
                            // registry lost): starting the upload again can succeed.
                            | OciErrorCode::DigestInvalid
                            | OciErrorCode::BlobUploadInvalid
                            | OciErrorCode::BlobUploadUnknown
                            | OciErrorCode::SizeInvalid
                    )
                }) {
                    Self::Transient(detail)
                } else {
                    Self::Fatal(RegistryError::Invalid {
                        reference: reference.to_owned(),
                        detail,
                    })
                }
            }
            // A registry that drops the connection mid-upload often surfaces as a missing
            // Location header or a spec violation; both are worth one more try.
            E::RegistryNoLocationError | E::RegistryNoDigestError => Self::Transient(e.to_string()),
            other => Self::Fatal(RegistryError::Invalid {
                reference: reference.to_owned(),
                detail: other.to_string(),
            }),
        }
    }

    /// Sorts an HTTP answer with status `code` (not a success) into transient or fatal.
    pub(crate) fn from_http(reference: &str, registry: &str, code: u16, detail: String) -> Self {
        Self::from_status(reference, registry, code, detail)
    }

    fn from_status(reference: &str, registry: &str, code: u16, detail: String) -> Self {
        match code {
            401 | 403 => Self::Fatal(RegistryError::Unauthorized {
                reference: reference.to_owned(),
                registry: registry.to_owned(),
                detail,
            }),
            404 => Self::Fatal(RegistryError::NotFound {
                reference: reference.to_owned(),
                detail,
            }),
            408 | 429 | 500..=599 => Self::Transient(detail),
            // Damaged upload bytes or a lost upload session: starting over can succeed.
            400 if [
                "DIGEST_INVALID",
                "BLOB_UPLOAD_INVALID",
                "BLOB_UPLOAD_UNKNOWN",
                "SIZE_INVALID",
            ]
            .iter()
            .any(|code| detail.contains(code)) =>
            {
                Self::Transient(detail)
            }
            _ => Self::Fatal(RegistryError::Invalid {
                reference: reference.to_owned(),
                detail,
            }),
        }
    }
}

/// Runs `attempt` until it succeeds, fails fatally, or the policy's transient failures.
pub(crate) async fn retry<T, F, Fut>(
    reference: &str,
    what: &str,
    attempt: F,
) -> Result<T, RegistryError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let transfer = |attempts, detail| RegistryError::Transfer {
        reference: reference.to_owned(),
        what: what.to_owned(),
        attempts,
        detail,
    };
    crate::retry::retry(&POLICY, attempt, |_| {})
        .await
        .map_err(|gave_up| match gave_up {
            GaveUp::Fatal(e) => e,
            GaveUp::Exhausted { attempts, last } => transfer(attempts, last),
            GaveUp::Cancelled => transfer(POLICY.attempts, "cancelled".to_owned()),
        })
}
