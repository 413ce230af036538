//! The status pipe between the child and the parent: fixed-size records the child can write
//! without allocating. The pipe is close-on-exec, so its end-of-file tells the parent the
//! command was started (or that the child died trying).

use std::os::fd::BorrowedFd;

/// One record's size: kind, three pad bytes, a u32 and an i32 (little-endian).
pub(super) const RECORD_LEN: usize = 12;

/// What the child reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Record {
    /// Op number `op` failed with `errno`.
    OpFailed { op: u32, errno: i32 },
    /// No candidate for argv[0] could be executed; `errno` as execvp would report it.
    ExecFailed { errno: i32 },
    /// Op number `op` (an `Ensure`) created its path from prefix `first` on.
    Stub { op: u32, first: u32 },
}

const OP_FAILED: u8 = 1;
const EXEC_FAILED: u8 = 2;
const STUB: u8 = 3;

impl Record {
    /// The wire form.
    pub(super) fn encode(self) -> [u8; RECORD_LEN] {
        let (kind, a, b) = match self {
            Record::OpFailed { op, errno } => (OP_FAILED, op, errno),
            Record::ExecFailed { errno } => (EXEC_FAILED, 0, errno),
            Record::Stub { op, first } => (STUB, op, first as i32),
        };
        let mut out = [0u8; RECORD_LEN];
        out[0] = kind;
        out[4..8].copy_from_slice(&a.to_le_bytes());
        out[8..12].copy_from_slice(&b.to_le_bytes());
        out
    }

    /// Parses everything the child wrote; a torn tail (the child died mid-write) is dropped.
    pub(super) fn decode_all(bytes: &[u8]) -> Vec<Record> {
        bytes
            .chunks_exact(RECORD_LEN)
            .filter_map(|c| {
                let a = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
                let b = i32::from_le_bytes([c[8], c[9], c[10], c[11]]);
                match c[0] {
                    OP_FAILED => Some(Record::OpFailed { op: a, errno: b }),
                    EXEC_FAILED => Some(Record::ExecFailed { errno: b }),
                    STUB => Some(Record::Stub {
                        op: a,
                        first: b as u32,
                    }),
                    _ => None,
                }
            })
            .collect()
    }

    /// Writes the record (child side: no allocation; a record is below PIPE_BUF, so atomic).
    pub(super) fn send(self, fd: BorrowedFd<'_>) {
        let bytes = self.encode();
        // Nothing to do about a failed write: the parent then sees a plain exit status.
        let _ = nix::unistd::write(fd, &bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let records = [
            Record::OpFailed { op: 7, errno: 2 },
            Record::ExecFailed { errno: 13 },
            Record::Stub { op: 40, first: 1 },
        ];
        let mut bytes: Vec<u8> = records.iter().flat_map(|r| r.encode()).collect();
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(Record::decode_all(&bytes), records);
    }
}
