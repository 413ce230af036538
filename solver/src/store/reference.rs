//! Image references, normalized the way docker does (distribution/reference's
//! `ParseNormalizedNamed` + `TagNameOnly`), so `kiln build -t busybox` and `docker` agree on
//! what a name means: `busybox` is `docker.io/library/busybox:latest`.
//!
//! Grammar (from distribution/reference):
//! `reference := name [":" tag] ["@" digest]`, `name := [domain "/"] path`,
//! `domain := host [":" port]`, `path := component ("/" component)*`,
//! `component := [a-z0-9]+ (([._] | "__" | "-"+) [a-z0-9]+)*`, `tag := [\w][\w.-]{0,127}`.

use std::fmt;

use oci_spec::image::{Digest, DigestAlgorithm};

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// Why a string is not a valid image reference; each variant carries the reference as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// The reference does not follow the grammar.
    #[error("invalid reference format {reference:?}: {reason}")]
    InvalidFormat {
        /// The reference as given.
        reference: String,
        /// Which part is wrong.
        reason: &'static str,
    },
    /// Docker refuses upper case in repository paths.
    #[error("invalid reference format {reference:?}: repository name ({path}) must be lowercase")]
    Uppercase {
        /// The reference as given.
        reference: String,
        /// The offending repository path.
        path: String,
    },
    /// The name (domain and path) is longer than 255 characters.
    #[error(
        "invalid reference {reference:?}: repository name must not be more than 255 characters"
    )]
    NameTooLong {
        /// The reference as given.
        reference: String,
    },
    /// A bare 64-character hex string looks like an image ID, so docker refuses it as a name.
    #[error("invalid repository name ({reference}), cannot specify 64-byte hexadecimal strings")]
    HexIdentifier {
        /// The reference as given.
        reference: String,
    },
}

/// A parsed, normalized image reference: domain, repository path, optional tag and digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference the way `docker` reads one typed by a user (no default tag added).
    pub fn parse_normalized(reference: &str) -> Result<Self, ReferenceError> {
        let invalid = |reason| ReferenceError::InvalidFormat {
            reference: reference.to_owned(),
            reason,
        };
        if reference.is_empty() {
            return Err(invalid("empty reference"));
        }
        if reference.len() == 64
            && reference
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(ReferenceError::HexIdentifier {
                reference: reference.to_owned(),
            });
        }
        let (domain, remainder) = split_domain(reference);
        let remainder = remainder.as_str();

        let (name_and_tag, digest) = match remainder.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (remainder, None),
        };
        let (path, tag) = match name_and_tag.split_once(':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (name_and_tag, None),
        };
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase {
                reference: reference.to_owned(),
                path: path.to_owned(),
            });
        }
        if !valid_domain(&domain) {
            return Err(invalid("invalid registry domain"));
        }
        if !path.split('/').all(valid_path_component) {
            return Err(invalid("invalid repository path"));
        }
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(invalid("invalid tag"));
            }
        }
        let digest = match digest {
            Some(text) => {
                Some(parse_reference_digest(text).ok_or_else(|| invalid("invalid digest"))?)
            }
            None => None,
        };
        if domain.len() + 1 + path.len() > MAX_NAME_LEN {
            return Err(ReferenceError::NameTooLong {
                reference: reference.to_owned(),
            });
        }
        Ok(Self {
            domain,
            path: path.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// Adds the `latest` tag when the reference has neither tag nor digest (docker's
    /// `TagNameOnly`).
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_owned());
        }
        self
    }

    /// The registry host (and port): `docker.io`, `localhost:5000`, …
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path within the registry: `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `domain/path`, without tag or digest.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository as docker shows it: `busybox`, `user/app`, `localhost:5000/x`.
    pub fn familiar_repository(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.repository();
        }
        match self.path.strip_prefix(OFFICIAL_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_owned(),
            _ => self.path.clone(),
        }
    }

    /// The whole reference as docker shows it: `busybox:latest`.
    pub fn familiar(&self) -> String {
        let mut out = self.familiar_repository();
        self.push_tag_and_digest(&mut out);
        out
    }

    fn push_tag_and_digest(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest.as_ref());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.repository();
        self.push_tag_and_digest(&mut out);
        f.write_str(&out)
    }
}

/// Normalizes a user-typed reference: `busybox` → `docker.io/library/busybox:latest`.
pub fn normalize_reference(reference: &str) -> Result<String, ReferenceError> {
    Ok(Reference::parse_normalized(reference)?
        .with_default_tag()
        .to_string())
}

/// A reference as docker displays it: `docker.io/library/busybox:latest` → `busybox:latest`.
///
/// Text that does not parse is returned unchanged, since this is only for display.
pub fn familiar_name(reference: &str) -> String {
    match Reference::parse_normalized(reference) {
        Ok(parsed) => parsed.familiar(),
        Err(_) => reference.to_owned(),
    }
}

/// docker's `splitDockerDomain`: the first component is a registry only if it looks like one
/// (has a `.` or `:`, is `localhost`, or has upper case, which a path cannot); official
/// images on Docker Hub live under `library/`.
fn split_domain(reference: &str) -> (String, String) {
    let (domain, remainder) = match reference.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DEFAULT_DOMAIN, reference),
    };
    let domain = if domain == LEGACY_DEFAULT_DOMAIN {
        DEFAULT_DOMAIN
    } else {
        domain
    };
    // Tags and digests cannot contain '/', so this looks at the path alone.
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        return (domain.to_owned(), format!("{OFFICIAL_PREFIX}{remainder}"));
    }
    (domain.to_owned(), remainder.to_owned())
}

/// `host[:port]` where host is a dotted domain name, an IPv4 address, or `[IPv6]`.
fn valid_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        if inside.is_empty() || !inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    let host_ok = domain.starts_with('[') || host.split('.').all(valid_domain_component);
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn valid_domain_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// `[a-z0-9]+ (([._] | "__" | "-"+) [a-z0-9]+)*`.
fn valid_path_component(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let sep_start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[sep_start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
}

/// `[\w][\w.-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    match bytes.first() {
        Some(first) if word(*first) && bytes.len() <= MAX_TAG_LEN => bytes[1..]
            .iter()
            .all(|b| word(*b) || *b == b'.' || *b == b'-'),
        _ => false,
    }
}

/// A digest as docker accepts it in a reference: a known SHA-2 algorithm and full hex.
pub fn parse_reference_digest(text: &str) -> Option<Digest> {
    let digest = Digest::try_from(text).ok()?;
    matches!(
        digest.algorithm(),
        DigestAlgorithm::Sha256 | DigestAlgorithm::Sha384 | DigestAlgorithm::Sha512
    )
    .then_some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "ead0a4a53df89fd173874b46093b6e62d8c72967bbf606d672c9e8c9d2f8c7e4";

    #[test]
    fn normalization_table() {
        let d = format!("sha256:{HEX}");
        let cases: Vec<(String, String)> = vec![
            ("busybox".into(), "docker.io/library/busybox:latest".into()),
            (
                "busybox:1.36".into(),
                "docker.io/library/busybox:1.36".into(),
            ),
            ("app:1.0".into(), "docker.io/library/app:1.0".into()),
            (
                "library/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            ("user/app".into(), "docker.io/user/app:latest".into()),
            ("user/app/sub:v2".into(), "docker.io/user/app/sub:v2".into()),
            (
                "docker.io/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "index.docker.io/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/library/busybox:latest".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            ("localhost:5000/x".into(), "localhost:5000/x:latest".into()),
            ("localhost/x:v1".into(), "localhost/x:v1".into()),
            (
                "localhost".into(),
                "docker.io/library/localhost:latest".into(),
            ),
            (
                "localhost:5000".into(),
                "docker.io/library/localhost:5000".into(),
            ),
            (
                "127.0.0.1:5000/a/b/c:tag".into(),
                "127.0.0.1:5000/a/b/c:tag".into(),
            ),
            ("[::1]:5000/x".into(), "[::1]:5000/x:latest".into()),
            ("[fe80::1]/x".into(), "[fe80::1]/x:latest".into()),
            ("ghcr.io/o/r:t".into(), "ghcr.io/o/r:t".into()),
            ("Foo.com/bar".into(), "Foo.com/bar:latest".into()),
            (
                "a__b/c-d---e.f_g:T_a.g-1".into(),
                "docker.io/a__b/c-d---e.f_g:T_a.g-1".into(),
            ),
            (
                format!("busybox@{d}"),
                format!("docker.io/library/busybox@{d}"),
            ),
            (
                format!("busybox:1@{d}"),
                format!("docker.io/library/busybox:1@{d}"),
            ),
            (
                format!("localhost:5000/x@{d}"),
                format!("localhost:5000/x@{d}"),
            ),
            (
                format!("x:{}", "t".repeat(128)),
                format!("docker.io/library/x:{}", "t".repeat(128)),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                normalize_reference(&input).as_deref(),
                Ok(expected.as_str()),
                "{input}"
            );
        }
    }

    #[test]
    fn invalid_references() {
        let long_path = format!("{}/x", "a".repeat(260));
        let cases: Vec<String> = vec![
            "".into(),
            "Busybox".into(),
            "user/App".into(),
            "busybox:".into(),
            ":tag".into(),
            "busybox:-x".into(),
            "busybox:.x".into(),
            format!("x:{}", "t".repeat(129)),
            "a//b".into(),
            "a/".into(),
            "/a".into(),
            "_foo".into(),
            "foo_".into(),
            "foo..bar".into(),
            "foo___bar".into(),
            "foo-".into(),
            "foo$".into(),
            "a b".into(),
            "localhost:abc/x".into(),
            "localhost:/x".into(),
            "-bad.com/x".into(),
            "[zz]/x".into(),
            "busybox@sha256:abc".into(),
            format!("busybox@md5:{HEX}"),
            format!("busybox@sha256:{}", HEX.to_uppercase()),
            "busybox@@x".into(),
            HEX.into(),
            long_path,
        ];
        for input in cases {
            assert!(
                normalize_reference(&input).is_err(),
                "{input:?} should be refused"
            );
        }
    }

    #[test]
    fn errors_name_the_reference() {
        let err = normalize_reference("user/App").unwrap_err();
        assert!(matches!(err, ReferenceError::Uppercase { .. }));
        assert!(err.to_string().contains("user/App"));
        assert!(matches!(
            normalize_reference(HEX),
            Err(ReferenceError::HexIdentifier { .. })
        ));
        assert!(matches!(
            normalize_reference(&format!("{}/x", "a".repeat(260))),
            Err(ReferenceError::NameTooLong { .. })
        ));
    }

    #[test]
    fn familiar_names() {
        let d = format!("sha256:{HEX}");
        for (input, expected) in [
            (
                "docker.io/library/busybox:latest",
                "busybox:latest".to_owned(),
            ),
            ("busybox", "busybox".to_owned()),
            ("docker.io/user/app:1", "user/app:1".to_owned()),
            ("docker.io/library/a/b:1", "library/a/b:1".to_owned()),
            (
                "localhost:5000/x:latest",
                "localhost:5000/x:latest".to_owned(),
            ),
            (
                &format!("docker.io/library/busybox@{d}"),
                format!("busybox@{d}"),
            ),
            ("not a reference", "not a reference".to_owned()),
        ] {
            assert_eq!(familiar_name(input), expected, "{input}");
        }
    }

    #[test]
    fn parts() {
        let r = Reference::parse_normalized("localhost:5000/team/app:v1").unwrap();
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.path(), "team/app");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest(), None);
        assert_eq!(r.repository(), "localhost:5000/team/app");
        assert_eq!(r.familiar_repository(), "localhost:5000/team/app");
        let r = Reference::parse_normalized("busybox").unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.with_default_tag().tag(), Some("latest"));
    }
}
