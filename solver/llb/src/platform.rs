//! OCI platforms: one type, one table of architecture names and their aliases, one rule for
//! which entry of an image index serves a wanted platform (containerd's `platforms.Normalize`
//! and `platforms.Only`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// An OCI platform, normalized (`linux/amd64`, `linux/arm64`, `linux/arm/v7`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, …
    pub architecture: String,
    /// `v7`, `v8`, … or empty.
    pub variant: String,
}

impl Platform {
    /// A platform from its parts, normalized: `x86_64` is `amd64`, `aarch64` is `arm64` (whose
    /// `v8` is implied), `armhf` is `arm/v7`, a bare `arm` is `arm/v7`.
    pub fn new(os: &str, architecture: &str, variant: &str) -> Self {
        let os = os.to_lowercase();
        let architecture = architecture.to_lowercase();
        let variant = variant.to_lowercase();
        let (architecture, variant) = match architecture.as_str() {
            "x86_64" | "x86-64" | "amd64" => (
                "amd64",
                if variant == "v1" {
                    ""
                } else {
                    variant.as_str()
                },
            ),
            "i386" | "i686" | "386" => ("386", variant.as_str()),
            "aarch64" | "arm64" => (
                "arm64",
                match variant.as_str() {
                    "8" | "v8" | "v8.0" => "",
                    "9" | "9.0" | "v9.0" => "v9",
                    other => other,
                },
            ),
            "armhf" => ("arm", "v7"),
            "armel" => ("arm", "v6"),
            "arm" => (
                "arm",
                match variant.as_str() {
                    "" | "7" => "v7",
                    "5" => "v5",
                    "6" => "v6",
                    "8" => "v8",
                    other => other,
                },
            ),
            other => (other, variant.as_str()),
        };
        Platform {
            os,
            architecture: architecture.to_owned(),
            variant: variant.to_owned(),
        }
    }

    /// The platform kiln runs on.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform::new("linux", architecture, "")
    }

    /// Parses `os/arch[/variant]` (or `arch` alone, on linux), normalized.
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        match parts.as_slice() {
            [arch] if !arch.is_empty() && !arch.contains(char::is_whitespace) => {
                Ok(Platform::new("linux", arch, ""))
            }
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform::new(os, arch, "")),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() => {
                Ok(Platform::new(os, arch, variant))
            }
            _ => Err(format!(
                "invalid platform {s:?}: expected os/arch or os/arch/variant"
            )),
        }
    }

    /// How well an image for `candidate` serves this platform: `None` when it cannot run here,
    /// higher for a closer match (the exact variant first, then older variants of the same
    /// architecture, which newer CPUs run: arm/v6 on arm/v7, amd64 on amd64/v3).
    pub fn score(&self, candidate: &Platform) -> Option<u32> {
        let candidate = Platform::new(&candidate.os, &candidate.architecture, &candidate.variant);
        // Attestation manifests sit in indexes as `unknown/unknown`: never an image to run.
        if candidate.os == "unknown"
            || candidate.os != self.os
            || candidate.architecture != self.architecture
        {
            return None;
        }
        if candidate.variant == self.variant {
            return Some(100);
        }
        let level = |v: &str| -> Option<u32> {
            if v.is_empty() {
                return Some(0);
            }
            v.strip_prefix('v')?.split('.').next()?.parse().ok()
        };
        let (want, have) = (level(&self.variant)?, level(&candidate.variant)?);
        (have < want).then(|| 50 + have)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// The index of the candidate that best serves `want` (the first of equals), if any; a
/// candidate without a platform never matches, nor do attestation manifests (`unknown/unknown`).
pub fn pick<'a>(
    candidates: impl IntoIterator<Item = Option<&'a Platform>>,
    want: &Platform,
) -> Option<usize> {
    let mut best: Option<(u32, usize)> = None;
    for (i, candidate) in candidates.into_iter().enumerate() {
        let Some(score) = candidate.and_then(|p| want.score(p)) else {
            continue;
        };
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, i));
        }
    }
    best.map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn aliases_normalize() {
        assert_eq!(p("linux/x86_64").to_string(), "linux/amd64");
        assert_eq!(p("linux/aarch64/v8").to_string(), "linux/arm64");
        assert_eq!(p("linux/arm64/v8"), p("linux/arm64"));
        assert_eq!(p("linux/armhf").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/arm").to_string(), "linux/arm/v7");
        assert_eq!(p("Linux/AMD64").to_string(), "linux/amd64");
        assert_eq!(p("arm64").to_string(), "linux/arm64");
        assert!(Platform::parse("linux/").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
    }

    #[test]
    fn pick_prefers_exact_then_older_variants_and_skips_attestations() {
        let entries = [
            Some(Platform::new("linux", "amd64", "")),
            Some(Platform::new("linux", "arm", "v6")),
            Some(Platform::new("linux", "arm", "v7")),
            Some(Platform::new("linux", "arm64", "v8")),
            Some(Platform::new("unknown", "unknown", "")),
            None,
        ];
        let refs = || entries.iter().map(Option::as_ref);
        assert_eq!(pick(refs(), &p("linux/amd64")), Some(0));
        assert_eq!(pick(refs(), &p("linux/arm64")), Some(3));
        assert_eq!(pick(refs(), &p("linux/arm/v7")), Some(2));
        assert_eq!(pick(refs(), &p("linux/arm/v8")), Some(2));
        assert_eq!(pick(refs(), &p("linux/arm/v6")), Some(1));
        assert_eq!(pick(refs(), &p("linux/arm/v5")), None);
        assert_eq!(pick(refs(), &p("linux/s390x")), None);
        assert_eq!(pick(refs(), &p("unknown/unknown")), None);
    }
}
