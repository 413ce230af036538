//! An entry's name made into components under the destination, in one place: a leading `/`
//! or `./`, `//` and a trailing `/` mean nothing (Docker and containerd strip them too), and
//! `..` may move within the destination but an entry that climbs above it is refused.

use crate::fsutil::root_path::clean_components;
use crate::layer::LayerError;

/// The components of `raw`; empty for the destination itself.
pub(super) fn clean<'a>(raw: &'a [u8], entry: &str) -> Result<Vec<&'a [u8]>, LayerError> {
    clean_components(raw).ok_or_else(|| LayerError::UnsafePath {
        entry: entry.to_owned(),
        reason: "climbs out of the destination with `..`",
    })
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn names_are_cleaned_and_climbing_refused() {
        assert!(clean(b"../x", "e").is_err());
        assert!(clean(b"a/../../x", "e").is_err());
        assert_eq!(
            clean(b"/etc/passwd", "e").unwrap(),
            vec![&b"etc"[..], b"passwd"]
        );
        assert_eq!(
            clean(b"./a//b/./c/", "e").unwrap(),
            vec![&b"a"[..], b"b", b"c"]
        );
        assert!(clean(b"./", "e").unwrap().is_empty());
        assert!(clean(b"/", "e").unwrap().is_empty());
    }
}
