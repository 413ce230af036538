//! OCI chain IDs: the identity of a stack of layers, and so of a merged rootfs.

use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};

use super::SnapshotError;

/// The OCI ChainID of `diff_ids` (base first): the first diff_id itself, then
/// `sha256(parent_chain_id + " " + diff_id)` for each layer above.
pub fn chain_id(diff_ids: &[Digest]) -> Result<Digest, SnapshotError> {
    let (first, rest) = diff_ids.split_first().ok_or(SnapshotError::EmptyChain)?;
    let mut chain = first.clone();
    for diff_id in rest {
        let hash = Sha256::digest(format!("{chain} {diff_id}").as_bytes());
        chain = Digest::try_from(format!("sha256:{}", hex::encode(hash)))
            .map_err(|source| SnapshotError::Digest { source })?;
    }
    Ok(chain)
}

/// The hex part of a sha256 digest: the directory name of a layer or a chain.
pub(super) fn sha256_hex(digest: &Digest) -> Result<&str, SnapshotError> {
    match digest.algorithm() {
        oci_spec::image::DigestAlgorithm::Sha256 => Ok(digest.digest()),
        _ => Err(SnapshotError::UnsupportedDigest {
            digest: digest.clone(),
        }),
    }
}
