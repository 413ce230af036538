//! TLS for every HTTPS client kiln makes (registries, ADD URLs): rustls on ring, trusting the
//! system's roots (`SSL_CERT_FILE`/`SSL_CERT_DIR`, else the distribution's bundle — what users
//! behind an intercepting proxy already configure).

use std::sync::Once;

/// Makes ring rustls's process-wide provider; reqwest is built without one of its own and
/// refuses to build a client before one is installed.
pub(crate) fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // ring rather than aws-lc-rs (rustls's default): the same classical suites registries
        // and mirrors speak, without aws-lc's long C build in every CI run. rustls deprecates
        // ring's provider only for its lack of post-quantum key exchange.
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        // Err means another part of the process installed one first: that one serves.
        let _ = provider.install_default();
    });
}

/// When `e` failed because the peer's certificate (or the handshake) was refused: what was
/// wrong and where kiln's trust comes from. Such a failure is not transient — retrying gives
/// the same answer — and the fix is on the user's side: trust the CA that signed it.
pub(crate) fn refused_certificate(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(e);
    while let Some(cause) = next {
        // io::Error's own `source` skips the error it wraps, and hyper-rustls nests one
        // io::Error in another around rustls's: unwrap them by hand.
        let mut inner = cause;
        while let Some(wrapped) = inner
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            inner = wrapped;
        }
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return Some(format!(
                "TLS: {tls}; kiln trusts the system's roots ({}) — add the CA that signed the \
                 server's certificate there, or name a bundle that holds it with SSL_CERT_FILE",
                trust_source()
            ));
        }
        next = cause.source();
    }
    None
}

/// Where the roots come from, as rustls-native-certs looks for them.
fn trust_source() -> String {
    match (
        std::env::var_os("SSL_CERT_FILE"),
        std::env::var_os("SSL_CERT_DIR"),
    ) {
        (Some(file), _) => format!("SSL_CERT_FILE={}", file.to_string_lossy()),
        (None, Some(dir)) => format!("SSL_CERT_DIR={}", dir.to_string_lossy()),
        (None, None) => "/etc/ssl/certs".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_refused_certificate_is_found_under_an_io_error() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::other(std::io::Error::new(std::io::ErrorKind::InvalidData, tls));
        let found = refused_certificate(&io).unwrap();
        assert!(found.contains("UnknownIssuer"), "{found}");
        assert!(found.contains("SSL_CERT_FILE"), "{found}");
        assert!(refused_certificate(&std::io::Error::other("connection refused")).is_none());
    }
}
