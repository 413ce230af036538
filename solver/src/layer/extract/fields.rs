//! The metadata of a tar entry, from its ustar header and the PAX records that override it
//! (the tar crate already applies PAX `path`, `linkpath`, `size`, `uid` and `gid`).

use std::io::Read;

use rustix::fs::Timespec;

use crate::layer::LayerError;
use crate::layer::meta::timespec;

/// What is applied to an extracted file besides its content.
#[derive(Debug, Clone)]
pub(super) struct Fields {
    pub(super) mode: u32,
    pub(super) uid: u64,
    pub(super) gid: u64,
    pub(super) mtime: Timespec,
    pub(super) device: (u32, u32),
    pub(super) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

const XATTR_PREFIX: &str = "SCHILY.xattr.";

impl Fields {
    /// Reads the fields of `entry`; a field that does not parse makes the tar corrupt.
    pub(super) fn read<R: Read>(
        entry: &mut tar::Entry<'_, R>,
        name: &str,
    ) -> Result<Self, LayerError> {
        let corrupt = |what: &str, error: std::io::Error| LayerError::Input {
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("tar entry {name:?}: bad {what}: {error}"),
            ),
        };
        let header = entry.header();
        let mode = header.mode().map_err(|e| corrupt("mode", e))? & 0o7777;
        let uid = header.uid().map_err(|e| corrupt("uid", e))?;
        let gid = header.gid().map_err(|e| corrupt("gid", e))?;
        let mtime = header.mtime().map_err(|e| corrupt("mtime", e))?;
        let major = header
            .device_major()
            .map_err(|e| corrupt("device major", e))?;
        let minor = header
            .device_minor()
            .map_err(|e| corrupt("device minor", e))?;
        let mut fields = Self {
            mode,
            uid,
            gid,
            mtime: timespec(i64::try_from(mtime).unwrap_or(i64::MAX), 0),
            device: (major.unwrap_or(0), minor.unwrap_or(0)),
            xattrs: Vec::new(),
        };

        let Some(records) = entry
            .pax_extensions()
            .map_err(|e| corrupt("PAX header", e))?
        else {
            return Ok(fields);
        };
        for record in records {
            let record = record.map_err(|e| corrupt("PAX record", e))?;
            let Ok(key) = record.key() else { continue };
            let value = record.value_bytes();
            let bad =
                |what: &str| corrupt(what, std::io::Error::other(String::from_utf8_lossy(value)));
            match key {
                "mtime" => fields.mtime = parse_time(value).ok_or_else(|| bad("PAX mtime"))?,
                "SCHILY.devmajor" => {
                    fields.device.0 = parse_u32(value).ok_or_else(|| bad("PAX devmajor"))?
                }
                "SCHILY.devminor" => {
                    fields.device.1 = parse_u32(value).ok_or_else(|| bad("PAX devminor"))?
                }
                _ => {
                    if let Some(attr) = key.strip_prefix(XATTR_PREFIX) {
                        fields
                            .xattrs
                            .push((attr.as_bytes().to_vec(), value.to_vec()));
                    }
                }
            }
        }
        Ok(fields)
    }
}

fn parse_u32(value: &[u8]) -> Option<u32> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// A PAX time: `[-]seconds[.fraction]`, the fraction kept to nanoseconds.
fn parse_time(value: &[u8]) -> Option<Timespec> {
    let text = std::str::from_utf8(value).ok()?;
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: i64 = whole.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, b) in fraction.bytes().take(9).enumerate() {
        nanos += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
    }
    Some(if !negative {
        timespec(seconds, nanos)
    } else if nanos == 0 {
        timespec(-seconds, 0)
    } else {
        timespec(-seconds - 1, 1_000_000_000 - nanos)
    })
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn pax_times() {
        let t = parse_time(b"1700000000.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 250_000_000));
        let t = parse_time(b"-1.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 500_000_000));
        let t = parse_time(b"-5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-5, 0));
        assert!(parse_time(b"x").is_none());
        assert!(parse_time(b"1.x").is_none());
    }
}
