//! Sparse files: where the stored data segments go in the real file, whose gaps are holes.
//!
//! Four encodings are in use: GNU's old `S` entries (a map in the header and in extension
//! blocks after it), and GNU's three PAX forms — 0.0 (repeated `GNU.sparse.offset` and
//! `GNU.sparse.numbytes` records), 0.1 (one `GNU.sparse.map` record) and 1.0 (the map as decimal
//! lines at the start of the data, padded to a block; libarchive writes this one for any file
//! with holes).

use super::fault::SparseFault;
use super::fields::{BLOCK, number};
use super::pax::SparseRecords;

/// One stored run of data and where it belongs in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) offset: u64,
    pub(crate) length: u64,
}

/// Entries of GNU's old sparse map (24 bytes each: 12-byte offset, 12-byte length) until the
/// first whose offset begins with NUL, as GNU and BSD tar stop.
pub(super) fn gnu_entries(area: &[u8], out: &mut Vec<Segment>) -> Result<(), SparseFault> {
    for entry in area.chunks_exact(24) {
        if entry[0] == 0 {
            break;
        }
        let field = |range: std::ops::Range<usize>| {
            number(&entry[range])
                .ok()
                .and_then(|v| u64::try_from(v).ok())
                .ok_or(SparseFault::GnuEntry)
        };
        out.push(Segment {
            offset: field(0..12)?,
            length: field(12..24)?,
        });
    }
    Ok(())
}

/// The map of PAX formats 0.0 and 0.1 (1.0 keeps it in the data: see [`Map10`]).
pub(super) fn pax_map(records: &SparseRecords) -> Result<Vec<Segment>, SparseFault> {
    if let Some(map) = &records.map {
        let numbers: Vec<u64> = map
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.trim().parse::<u64>())
            .collect::<Result<_, _>>()
            .map_err(|_| SparseFault::MapNotNumbers(map.clone()))?;
        if numbers.len() % 2 != 0 {
            return Err(SparseFault::MapOddCount(map.clone()));
        }
        return Ok(numbers
            .chunks_exact(2)
            .map(|p| Segment {
                offset: p[0],
                length: p[1],
            })
            .collect());
    }
    if records.offsets.len() != records.lengths.len() {
        return Err(SparseFault::Unpaired);
    }
    Ok(records
        .offsets
        .iter()
        .zip(&records.lengths)
        .map(|(&offset, &length)| Segment { offset, length })
        .collect())
}

/// Reads the 1.0 map from the start of the data, a block at a time: a count, then an offset
/// and a length per segment, each a decimal number ended by a newline.
#[derive(Debug, Default)]
pub(super) struct Map10 {
    /// The unfinished line carried over from the previous block.
    partial: Vec<u8>,
    /// How many numbers follow the count, once it is read.
    want: Option<u64>,
    numbers: Vec<u64>,
    /// Bytes of data the map used, a whole number of blocks.
    pub(super) consumed: u64,
}

/// The most segments a 1.0 map may declare: a bound against a hostile count.
const MAX_SEGMENTS: u64 = 1 << 20;

impl Map10 {
    /// Takes one more block; returns the map once it is complete.
    pub(super) fn feed(
        &mut self,
        block: &[u8; BLOCK],
    ) -> Result<Option<Vec<Segment>>, SparseFault> {
        self.consumed += BLOCK as u64;
        let mut rest = &block[..];
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..newline]);
            rest = &rest[newline + 1..];
            let line = std::mem::take(&mut self.partial);
            let value: u64 = std::str::from_utf8(&line)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    SparseFault::Map10Line(String::from_utf8_lossy(&line).into_owned())
                })?;
            match self.want {
                None if value > MAX_SEGMENTS => {
                    return Err(SparseFault::Map10Count(value));
                }
                None => self.want = Some(value * 2),
                Some(_) => self.numbers.push(value),
            }
            if self.want == Some(self.numbers.len() as u64) {
                return Ok(Some(
                    self.numbers
                        .chunks_exact(2)
                        .map(|p| Segment {
                            offset: p[0],
                            length: p[1],
                        })
                        .collect(),
                ));
            }
        }
        if self.partial.len() + rest.len() > 64 {
            return Err(SparseFault::Map10LongLine);
        }
        self.partial.extend_from_slice(rest);
        Ok(None)
    }
}

/// Checks a map against the file's real size and the bytes stored for it: segments in order,
/// not overlapping, inside the file, and exactly covering the stored data.
pub(super) fn validate(
    segments: &[Segment],
    real_size: u64,
    stored: u64,
) -> Result<(), SparseFault> {
    let mut end = 0u64;
    let mut total = 0u64;
    for s in segments {
        let stop = s
            .offset
            .checked_add(s.length)
            .ok_or(SparseFault::SegmentOverflow)?;
        if s.offset < end || stop > real_size {
            return Err(SparseFault::SegmentMisplaced {
                offset: s.offset,
                length: s.length,
                size: real_size,
            });
        }
        end = stop;
        total += s.length;
    }
    if total != stored {
        return Err(SparseFault::Coverage {
            covered: total,
            stored,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map10_spans_blocks() {
        // 100 segments take more than a block, so numbers straddle the boundary.
        let mut text = String::from("100\n");
        for i in 0..100u64 {
            text.push_str(&format!("{}\n1\n", i * 8192));
        }
        assert!(text.len() > BLOCK && text.len() < 2 * BLOCK);
        let mut bytes = text.into_bytes();
        bytes.resize(2 * BLOCK, 0);
        let mut map = Map10::default();
        let mut block = [0u8; BLOCK];
        block.copy_from_slice(&bytes[..BLOCK]);
        assert_eq!(map.feed(&block).unwrap(), None);
        block.copy_from_slice(&bytes[BLOCK..]);
        let segments = map.feed(&block).unwrap().unwrap();
        assert_eq!(segments.len(), 100);
        assert_eq!(
            segments[99],
            Segment {
                offset: 99 * 8192,
                length: 1
            }
        );
        assert_eq!(map.consumed, 2 * BLOCK as u64);
        validate(&segments, 100 * 8192, 100).unwrap();
    }

    #[test]
    fn bad_maps_are_refused() {
        let s = |offset, length| Segment { offset, length };
        assert!(validate(&[s(0, 10), s(5, 10)], 100, 20).is_err());
        assert!(validate(&[s(0, 10)], 5, 10).is_err());
        assert!(validate(&[s(0, 10)], 100, 11).is_err());
        let mut block = [0u8; BLOCK];
        block[..4].copy_from_slice(b"x\n0\n");
        assert!(Map10::default().feed(&block).is_err());
    }

    #[test]
    fn gnu_entries_stop_at_nul() {
        let mut area = [0u8; 96];
        area[..12].copy_from_slice(b"00000000000\0");
        area[12..24].copy_from_slice(b"00000001000\0");
        let mut out = Vec::new();
        gnu_entries(&area, &mut out).unwrap();
        assert_eq!(
            out,
            [Segment {
                offset: 0,
                length: 512
            }]
        );
    }
}
