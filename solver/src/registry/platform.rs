//! Picking one manifest out of an OCI index or a Docker manifest list for a platform.

use kiln_llb::Platform;
use serde::Deserialize;

/// This host's platform, in OCI terms (`linux/amd64`, `linux/arm64/v8`…).
pub fn host_platform() -> Platform {
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    };
    Platform {
        os: "linux".to_owned(),
        architecture: architecture.to_owned(),
        variant: String::new(),
    }
}

/// The parts of an index kiln reads (the same JSON shape for OCI and Docker).
#[derive(Debug, Deserialize)]
pub(crate) struct Index {
    pub(crate) manifests: Vec<IndexEntry>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct IndexEntry {
    #[serde(rename = "mediaType", default)]
    pub(crate) media_type: String,
    pub(crate) digest: String,
    #[serde(default)]
    pub(crate) platform: Option<EntryPlatform>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct EntryPlatform {
    #[serde(default)]
    pub(crate) os: String,
    #[serde(default)]
    pub(crate) architecture: String,
    #[serde(default)]
    pub(crate) variant: Option<String>,
}

impl EntryPlatform {
    fn describe(&self) -> String {
        match self.variant.as_deref() {
            Some(v) if !v.is_empty() => format!("{}/{}/{v}", self.os, self.architecture),
            _ => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// The entry for `want`: os and architecture must match; a wanted variant must match, and
/// without one the first entry wins (arm64 images usually carry `v8`). Attestation
/// manifests (`unknown/unknown`) never match.
pub(crate) fn select<'a>(index: &'a Index, want: &Platform) -> Result<&'a IndexEntry, String> {
    let candidates = index.manifests.iter().filter(|e| {
        e.platform.as_ref().is_some_and(|p| {
            p.os == want.os
                && p.architecture == want.architecture
                && (want.variant.is_empty()
                    || p.variant.as_deref() == Some(want.variant.as_str())
                    // arm64's only variant is v8; an unqualified entry is the same thing.
                    || (want.architecture == "arm64" && p.variant.as_deref().unwrap_or("").is_empty()))
        })
    });
    let mut best: Option<&IndexEntry> = None;
    for e in candidates {
        let exact = e
            .platform
            .as_ref()
            .and_then(|p| p.variant.as_deref())
            .unwrap_or("")
            == want.variant;
        if exact {
            return Ok(e);
        }
        best.get_or_insert(e);
    }
    best.ok_or_else(|| {
        index
            .manifests
            .iter()
            .filter_map(|e| e.platform.as_ref().map(EntryPlatform::describe))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn index() -> Index {
        serde_json::from_str(
            r#"{"manifests":[
              {"mediaType":"m","digest":"sha256:aa","platform":{"os":"linux","architecture":"amd64"}},
              {"mediaType":"m","digest":"sha256:bb","platform":{"os":"linux","architecture":"arm","variant":"v7"}},
              {"mediaType":"m","digest":"sha256:cc","platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
              {"mediaType":"m","digest":"sha256:dd","platform":{"os":"unknown","architecture":"unknown"}}
            ]}"#,
        )
        .unwrap()
    }

    fn p(os: &str, arch: &str, variant: &str) -> Platform {
        Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.into(),
        }
    }

    #[test]
    fn picks_by_os_arch_and_variant() {
        let i = index();
        assert_eq!(
            select(&i, &p("linux", "amd64", "")).unwrap().digest,
            "sha256:aa"
        );
        assert_eq!(
            select(&i, &p("linux", "arm64", "")).unwrap().digest,
            "sha256:cc"
        );
        assert_eq!(
            select(&i, &p("linux", "arm64", "v8")).unwrap().digest,
            "sha256:cc"
        );
        assert_eq!(
            select(&i, &p("linux", "arm", "v7")).unwrap().digest,
            "sha256:bb"
        );
        let err = select(&i, &p("linux", "s390x", "")).unwrap_err();
        assert!(
            err.contains("linux/arm/v7") && err.contains("linux/amd64"),
            "{err}"
        );
    }
}
