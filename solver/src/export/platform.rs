//! Choosing the manifest for this machine (linux/<host arch>) among an index's entries.

use oci_spec::image::{Arch, Descriptor, Os};

/// The platform kiln builds for, as `os/arch` for messages.
pub(crate) fn host_platform() -> String {
    format!("linux/{}", Arch::default())
}

/// The entry for linux on the host architecture, preferring the host's usual variant (or
/// none) over other variants; `None` when no entry is for this platform.
pub(crate) fn pick_for_host(descriptors: &[Descriptor]) -> Option<&Descriptor> {
    let host_arch = Arch::default();
    let host_variant = default_variant(&host_arch);
    let mut matching = descriptors.iter().filter(|d| {
        d.platform()
            .as_ref()
            .is_some_and(|p| *p.os() == Os::Linux && *p.architecture() == host_arch)
    });
    let first = matching.next()?;
    let preferred = std::iter::once(first).chain(matching).find(|d| {
        let variant = d.platform().as_ref().and_then(|p| p.variant().as_deref());
        variant.is_none() || variant == host_variant
    });
    Some(preferred.unwrap_or(first))
}

/// The variant images for this architecture usually carry.
fn default_variant(arch: &Arch) -> Option<&'static str> {
    match arch {
        Arch::ARM64 => Some("v8"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::{MediaType, Platform};

    fn desc(n: u8, os: &str, arch: &str, variant: Option<&str>) -> Descriptor {
        let digest = crate::store::sha256_digest(&[n]).unwrap();
        let mut d = Descriptor::new(MediaType::ImageManifest, 1, digest);
        let mut p = Platform::default();
        p.set_os(Os::from(os));
        p.set_architecture(Arch::from(arch));
        p.set_variant(variant.map(str::to_owned));
        d.set_platform(Some(p));
        d
    }

    #[test]
    fn picks_host_entry() {
        let host = Arch::default().to_string();
        let other = if host == "amd64" { "arm64" } else { "amd64" };
        let list = vec![
            desc(1, "linux", other, None),
            desc(2, "windows", &host, None),
            desc(3, "unknown", "unknown", None),
            desc(4, "linux", &host, Some("v99")),
            desc(5, "linux", &host, None),
        ];
        assert_eq!(pick_for_host(&list), Some(&list[4]));
        assert_eq!(pick_for_host(&list[..4]), Some(&list[3]));
        assert_eq!(pick_for_host(&list[..3]), None);
        assert!(host_platform().starts_with("linux/"));
    }
}
