//! `ADD --checksum=<algo>:<hex>`: the pinned digest, and hashing a download in sha256 (the
//! content digest kiln keys by) and in the pinned algorithm when it is another one.

use std::fs;
use std::path::Path;

use sha2::{Digest as _, Sha256, Sha384, Sha512};

use super::error::HttpError;

/// A `--checksum`, parsed.
#[derive(Debug)]
pub(super) struct Pinned {
    /// As written: `sha256:…`.
    pub(super) expected: String,
    pub(super) algo: Algo,
    hex: String,
}

/// The algorithms BuildKit accepts for `--checksum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Algo {
    Sha256,
    Sha384,
    Sha512,
}

/// What a download hashed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Digests {
    /// `sha256:…` of the content.
    pub(super) sha256: String,
    /// The pinned algorithm's digest, when it is not sha256.
    pub(super) other: Option<String>,
}

impl Pinned {
    /// Parses `s`, the checksum given for `url`.
    pub(super) fn parse(s: &str, url: &str) -> Result<Self, HttpError> {
        let bad = |reason| HttpError::Checksum {
            url: url.to_owned(),
            checksum: s.to_owned(),
            reason,
        };
        let (algo, hex) = s.split_once(':').ok_or_else(|| bad("invalid checksum"))?;
        let (algo, len) = match algo {
            "sha256" => (Algo::Sha256, 64),
            "sha384" => (Algo::Sha384, 96),
            "sha512" => (Algo::Sha512, 128),
            _ => return Err(bad("unsupported checksum algorithm in")),
        };
        if hex.len() != len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("invalid checksum"));
        }
        Ok(Pinned {
            expected: s.to_owned(),
            algo,
            hex: hex.to_ascii_lowercase(),
        })
    }

    fn want(&self) -> String {
        format!("{}:{}", self.algo.name(), self.hex)
    }

    /// Whether the content has the pinned digest.
    pub(super) fn matches(&self, got: &Digests) -> bool {
        self.actual(got) == self.want()
    }

    /// The content's digest in the pinned algorithm.
    pub(super) fn actual(&self, got: &Digests) -> String {
        match self.algo {
            Algo::Sha256 => got.sha256.clone(),
            Algo::Sha384 | Algo::Sha512 => got.other.clone().unwrap_or_default(),
        }
    }

    /// Whether a stored download (content digest `sha256`, at `file`) has the pinned digest;
    /// another algorithm than sha256 re-reads the file.
    pub(super) fn matches_stored(&self, sha256: &str, file: &Path) -> bool {
        if self.algo == Algo::Sha256 {
            return sha256 == self.want();
        }
        let Ok(mut f) = fs::File::open(file) else {
            return false;
        };
        let mut h = Hasher::new(Some(self.algo));
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match std::io::Read::read(&mut f, &mut buf) {
                Ok(0) => break,
                Ok(n) => h.update(buf.get(..n).unwrap_or_default()),
                Err(_) => return false,
            }
        }
        h.finish().other.is_some_and(|d| d == self.want())
    }
}

impl Algo {
    fn name(self) -> &'static str {
        match self {
            Algo::Sha256 => "sha256",
            Algo::Sha384 => "sha384",
            Algo::Sha512 => "sha512",
        }
    }
}

/// sha256 always (the content digest), and the pinned algorithm when it is another one.
pub(super) struct Hasher {
    sha256: Sha256,
    other: Option<OtherHasher>,
}

enum OtherHasher {
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    /// A hasher for a download pinned to `pinned` (if at all).
    pub(super) fn new(pinned: Option<Algo>) -> Self {
        Hasher {
            sha256: Sha256::new(),
            other: match pinned {
                Some(Algo::Sha384) => Some(OtherHasher::Sha384(Sha384::new())),
                Some(Algo::Sha512) => Some(OtherHasher::Sha512(Sha512::new())),
                _ => None,
            },
        }
    }

    pub(super) fn update(&mut self, data: &[u8]) {
        self.sha256.update(data);
        match &mut self.other {
            Some(OtherHasher::Sha384(h)) => h.update(data),
            Some(OtherHasher::Sha512(h)) => h.update(data),
            None => {}
        }
    }

    pub(super) fn finish(self) -> Digests {
        Digests {
            sha256: format!("sha256:{}", hex::encode(self.sha256.finalize())),
            other: self.other.map(|o| match o {
                OtherHasher::Sha384(h) => format!("sha384:{}", hex::encode(h.finalize())),
                OtherHasher::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn checksums_parse_and_compare_lowercase() {
        let p = Pinned::parse(&format!("sha256:{}", "AB".repeat(32)), "u").unwrap();
        let got = Digests {
            sha256: format!("sha256:{}", "ab".repeat(32)),
            other: None,
        };
        assert!(p.matches(&got));
        let unsupported = Pinned::parse("md5:00", "https://h/f").unwrap_err();
        assert_eq!(
            unsupported.to_string(),
            "https://h/f: unsupported checksum algorithm in \"md5:00\""
        );
        assert!(Pinned::parse("sha256:00", "u").is_err());
        let mut h = Hasher::new(Some(Algo::Sha512));
        h.update(b"abc");
        let d = h.finish();
        assert_eq!(
            d.sha256,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(d.other.unwrap().starts_with("sha512:ddaf35a1"));
    }
}
