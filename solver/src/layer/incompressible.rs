//! Telling a block deflate cannot shrink (random bytes, or content already compressed:
//! archives, images, packed binaries) from one it can, for a fraction of deflating it.
//!
//! zlib's deflate spends as long failing on random bytes as it spends compressing text
//! (≈ 35 MB/s per core for either, where storing runs at memory speed), and a layer full of
//! compressed files is common. Deflate gains on a block through two things, and the test
//! asks for both to be absent:
//! - **Huffman coding** gains what the byte distribution's entropy lacks of 8 bits. For a
//!   distribution near uniform that gain is ≈ X² / (2 n ln 2) bits per byte, X² being the
//!   chi-square distance of the byte counts from uniform; below [`MAX_HUFFMAN_GAIN`] it is
//!   not worth a deflate. Integer arithmetic only, so the answer (and so the gzip bytes)
//!   is the same on every machine.
//! - **Matches**: repeats of [`MATCH`] bytes or more within deflate's 32 KiB window (the
//!   dictionary included) covering more than [`MAX_MATCHED`] of the block.
//!
//! A block that passes is stored as is (deflate's stored blocks): a valid stream, at most a
//! few bytes per 64 KiB larger than the input, and as deterministic as any other.

/// One position in 2^this is an anchor of the match test.
const ANCHOR_BITS: u32 = 4;
/// Deflate's window: how far back a match may reach.
const WINDOW: usize = 32 * 1024;
/// The shortest repeat counted (deflate takes 3, but a short one gains almost nothing).
const MATCH: usize = 8;
/// Blocks shorter than this are always deflated: the test's cost would not pay.
const MIN_BLOCK: usize = 4 * 1024;
/// The share of the block a Huffman code could save, as a fraction 1 / this: 1/200 (0.5%).
const MAX_HUFFMAN_GAIN: u128 = 200;
/// The share of the block matches may cover, as a fraction 1 / this: 1/100.
const MAX_MATCHED: usize = 100;
/// Bytes of the block's start tested first: text fails here, before the whole is counted.
const SAMPLE: usize = 16 * 1024;

/// Whether deflating `input` (which follows `dict` in the stream) would save less than
/// about 1.5%: its bytes near uniform, and almost no repeats.
pub(crate) fn incompressible(dict: &[u8], input: &[u8]) -> bool {
    input.len() >= MIN_BLOCK
        && near_uniform(&input[..SAMPLE.min(input.len())])
        && near_uniform(input)
        && few_matches(dict, input)
}

/// Whether a Huffman code over `bytes` would save less than 1 / [`MAX_HUFFMAN_GAIN`] of them.
fn near_uniform(bytes: &[u8]) -> bool {
    let mut counts = [0u64; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let n = u128::from(bytes.len() as u64);
    let sum_squares: u128 = counts.iter().map(|&c| u128::from(c) * u128::from(c)).sum();
    // X² = 256·Σc²/n − n; the gain in bits per byte ≈ X² / (2 n ln 2), a share of the
    // 8 bits of ≈ X² / (11.09 n). Below 1/G: X² < 11.09 n / G, i.e. with X² multiplied
    // out by n: 100 (256 Σc² − n²) < 1109 n² / G.
    let excess = (256 * sum_squares).saturating_sub(n * n);
    100 * excess * MAX_HUFFMAN_GAIN < 1109 * n * n
}

/// Whether repeats of [`MATCH`] bytes or more within the window cover less than
/// 1 / [`MAX_MATCHED`] of `input`.
///
/// Only anchors are looked up: positions whose byte has its low [`ANCHOR_BITS`] bits clear,
/// one in 16 of bytes that are near uniform (the other test saw to that). Chosen by
/// content, a repeated stretch has its anchors at the same places in both copies (a repeat
/// of 100 bytes holds one with a probability of 99.7%), and a found match is measured to
/// its end. A test of one byte per position and a table lookup at one in 16 keep this at a
/// few percent of deflating the block.
fn few_matches(dict: &[u8], input: &[u8]) -> bool {
    const ANCHOR_MASK: u8 = (1 << ANCHOR_BITS) - 1;
    const TABLE_BITS: u32 = 13;
    let dict = &dict[dict.len().saturating_sub(WINDOW)..];
    let mut data = Vec::with_capacity(dict.len() + input.len());
    data.extend_from_slice(dict);
    data.extend_from_slice(input);
    // Per anchor hash: where it was last seen (+1; 0 = none) and the 8 bytes there.
    let mut last = vec![(0usize, 0u64); 1 << TABLE_BITS];
    let limit = input.len() / MAX_MATCHED;
    let end = data.len().saturating_sub(MATCH - 1);
    let mut matched = 0;
    let mut at = 0;
    while at < end {
        let Some(&window) = data[at..].first_chunk::<MATCH>() else {
            break;
        };
        let bytes = u64::from_le_bytes(window);
        // The anchors among these 8 positions, a byte at a time but in one word: a byte
        // whose low bits are clear stays below 0x80 when 0x7f is added to it.
        let low = bytes & u64::from_ne_bytes([ANCHOR_MASK; 8]);
        let anchors = !(low + 0x7f7f_7f7f_7f7f_7f7f) & 0x8080_8080_8080_8080;
        if anchors == 0 {
            at += MATCH;
            continue;
        }
        let skip = (anchors.trailing_zeros() / 8) as usize;
        if skip > 0 {
            at += skip;
            continue;
        }
        let slot = (bytes.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - TABLE_BITS)) as usize;
        let (before, seen) = last[slot];
        last[slot] = (at + 1, bytes);
        if before > 0 && seen == bytes && at - (before - 1) <= WINDOW {
            let from = before - 1;
            let len = data[at..]
                .iter()
                .zip(&data[from..])
                .take_while(|(a, b)| a == b)
                .count();
            if at >= dict.len() {
                matched += len;
                if matched > limit {
                    return false;
                }
            }
            at += len;
            continue;
        }
        at += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::testutil::noise;

    #[test]
    fn random_bytes_are_incompressible() {
        let block = noise(128 * 1024, 7);
        assert!(incompressible(&[], &block));
        assert!(incompressible(&noise(32 * 1024, 9), &block));
    }

    #[test]
    fn text_and_binaries_are_not() {
        let text: Vec<u8> = b"kiln benchmark layer text 0123456789 abcdefghijklmnopqrstuvwxyz\n"
            .iter()
            .copied()
            .cycle()
            .take(128 * 1024)
            .collect();
        assert!(!incompressible(&[], &text));
        // Skewed bytes without repeats (a Huffman code gains).
        let skewed: Vec<u8> = noise(128 * 1024, 3).iter().map(|b| b & 0x7f).collect();
        assert!(!incompressible(&[], &skewed));
    }

    #[test]
    fn repeats_of_random_bytes_are_not() {
        // Uniform bytes, but the second half repeats the first within the window.
        let mut block = noise(16 * 1024, 5);
        block.extend_from_within(..);
        assert!(!incompressible(&[], &block));
        // A block that repeats what the dictionary (the stream's previous bytes) held.
        let dict = noise(32 * 1024, 11);
        assert!(!incompressible(&dict, &dict[..16 * 1024]));
        // Repeats beyond the window do not count: deflate cannot reach them.
        let far = noise(64 * 1024, 13);
        let mut block = far.clone();
        block.extend_from_slice(&far[..16 * 1024]);
        assert!(incompressible(&[], &block));
    }

    #[test]
    fn short_blocks_are_always_deflated() {
        assert!(!incompressible(&[], &noise(MIN_BLOCK - 1, 1)));
    }

    /// The test's promise, checked against deflate itself: what it calls incompressible,
    /// deflate at the default level shrinks by less than 1.5%.
    #[test]
    fn deflate_agrees() {
        use std::io::Write as _;
        for seed in 1..6 {
            let block = noise(128 * 1024, seed);
            assert!(incompressible(&[], &block));
            let mut z =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            z.write_all(&block).unwrap();
            let out = z.finish().unwrap();
            assert!(
                out.len() * 1000 >= block.len() * 985,
                "{} of {}",
                out.len(),
                block.len()
            );
        }
    }
}
