//! PAX extended headers: `"%d %s=%s\n"` records that override the ustar fields of the next
//! entry (path, linkpath, size, owner, times, device numbers), carry extended attributes (star's
//! `SCHILY.xattr.*`, libarchive's `LIBARCHIVE.xattr.*` with URL-encoded names and base64
//! values) and describe GNU's PAX sparse formats 0.0, 0.1 and 1.0 (`GNU.sparse.*`).

use std::collections::BTreeMap;

use base64::Engine as _;
use rustix::fs::Timespec;

use super::fault::{PaxSyntax, TarFault};
use crate::layer::meta::timespec;

const SCHILY_XATTR: &str = "SCHILY.xattr.";
const LIBARCHIVE_XATTR: &str = "LIBARCHIVE.xattr.";

/// What PAX records said about the next entry.
#[derive(Debug, Default)]
pub(super) struct Pax {
    pub(super) path: Option<Vec<u8>>,
    pub(super) linkpath: Option<Vec<u8>>,
    pub(super) size: Option<u64>,
    pub(super) uid: Option<u64>,
    pub(super) gid: Option<u64>,
    pub(super) mtime: Option<Timespec>,
    pub(super) atime: Option<Timespec>,
    pub(super) devmajor: Option<u32>,
    pub(super) devminor: Option<u32>,
    /// By name, so an attribute written under both prefixes (bsdtar does) is kept once.
    pub(super) xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    pub(super) sparse: SparseRecords,
}

/// The `GNU.sparse.*` records, as written; [`super::sparse`] makes a map of them.
#[derive(Debug, Default)]
pub(super) struct SparseRecords {
    /// 1.0 has `major=1`, `minor=0`.
    pub(super) major: Option<u64>,
    pub(super) minor: Option<u64>,
    /// The real name (1.0; 0.1 may carry it too).
    pub(super) name: Option<Vec<u8>>,
    /// The real size: `realsize` (1.0) or `size` (0.x).
    pub(super) real_size: Option<u64>,
    /// 0.1: `offset,length,offset,length,…`.
    pub(super) map: Option<String>,
    /// 0.0: repeated `offset` and `numbytes` records, in order.
    pub(super) offsets: Vec<u64>,
    pub(super) lengths: Vec<u64>,
}

impl SparseRecords {
    /// Whether any record described a sparse file.
    pub(super) fn present(&self) -> bool {
        self.major.is_some()
            || self.real_size.is_some()
            || self.map.is_some()
            || !self.offsets.is_empty()
    }
}

impl Pax {
    /// Applies the records of one `x` header; a later record of the same key wins.
    pub(super) fn apply(&mut self, data: &[u8]) -> Result<(), TarFault> {
        for (key, value) in records(data).map_err(TarFault::PaxSyntax)? {
            self.apply_record(&key, value)?;
        }
        Ok(())
    }

    fn apply_record(&mut self, key: &str, value: Vec<u8>) -> Result<(), TarFault> {
        let bad = |problem: &'static str| TarFault::PaxValue {
            key: key.to_owned(),
            value: lossy(&value),
            problem,
        };
        let number = || decimal(&value).ok_or_else(|| bad("not a decimal number"));
        match key {
            "path" => self.path = Some(value),
            "linkpath" => self.linkpath = Some(value),
            "size" => self.size = Some(number()?),
            "uid" => self.uid = Some(number()?),
            "gid" => self.gid = Some(number()?),
            "mtime" => self.mtime = Some(time(&value).ok_or_else(|| bad("not a time"))?),
            "atime" => self.atime = Some(time(&value).ok_or_else(|| bad("not a time"))?),
            "SCHILY.devmajor" => {
                self.devmajor = Some(small(number()?).ok_or_else(|| bad("too large"))?)
            }
            "SCHILY.devminor" => {
                self.devminor = Some(small(number()?).ok_or_else(|| bad("too large"))?)
            }
            "GNU.sparse.major" => self.sparse.major = Some(number()?),
            "GNU.sparse.minor" => self.sparse.minor = Some(number()?),
            "GNU.sparse.name" => self.sparse.name = Some(value),
            "GNU.sparse.realsize" | "GNU.sparse.size" => self.sparse.real_size = Some(number()?),
            "GNU.sparse.map" => {
                self.sparse.map =
                    Some(String::from_utf8(value).map_err(|_| TarFault::PaxNotText {
                        key: key.to_owned(),
                    })?)
            }
            "GNU.sparse.offset" => self.sparse.offsets.push(number()?),
            "GNU.sparse.numbytes" => self.sparse.lengths.push(number()?),
            _ => {
                if let Some(name) = key.strip_prefix(SCHILY_XATTR) {
                    self.xattrs.insert(name.as_bytes().to_vec(), value);
                } else if let Some(encoded) = key.strip_prefix(LIBARCHIVE_XATTR) {
                    let name = url_decode(encoded).ok_or_else(|| bad("bad attribute name"))?;
                    let value = base64_decode(&value).ok_or_else(|| bad("not base64"))?;
                    self.xattrs.insert(name, value);
                }
                // uname, gname, ctime, comment, charset, hdrcharset, vendor keys: nothing a
                // rootfs keeps.
            }
        }
        Ok(())
    }
}

/// Splits a PAX body into its records. NUL padding after the last record is tolerated.
fn records(mut data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, PaxSyntax> {
    let mut out = Vec::new();
    while let Some(&first) = data.first() {
        if first == 0 {
            break;
        }
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or(PaxSyntax::NoLength)?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| PaxSyntax::BadLength(lossy(&data[..space])))?;
        if len <= space + 1 || len > data.len() {
            return Err(PaxSyntax::LengthMisfit(len));
        }
        let record = &data[space + 1..len];
        let record = record.strip_suffix(b"\n").ok_or(PaxSyntax::NoNewline)?;
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or(PaxSyntax::NoEquals)?;
        let key = std::str::from_utf8(&record[..eq])
            .map_err(|_| PaxSyntax::KeyNotUtf8(lossy(&record[..eq])))?;
        out.push((key.to_owned(), record[eq + 1..].to_vec()));
        data = &data[len..];
    }
    Ok(out)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn decimal(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

fn small(value: u64) -> Option<u32> {
    u32::try_from(value).ok()
}

/// A PAX time: `[-]seconds[.fraction]`, the fraction kept to nanoseconds.
pub(super) fn time(value: &[u8]) -> Option<Timespec> {
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

/// libarchive writes attribute names URL-encoded (`%XX` for bytes outside a safe set).
fn url_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// libarchive writes attribute values in base64, with or without `=` padding.
fn base64_decode(value: &[u8]) -> Option<Vec<u8>> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, value: &[u8]) -> Vec<u8> {
        let body_len = key.len() + value.len() + 3;
        let mut len = body_len + body_len.to_string().len();
        if len.to_string().len() != body_len.to_string().len() {
            len += 1;
        }
        let mut out = format!("{len} {key}=").into_bytes();
        out.extend_from_slice(value);
        out.push(b'\n');
        assert_eq!(out.len(), len);
        out
    }

    #[test]
    fn records_override_and_collect_xattrs() {
        let mut data = record("path", b"a/very/long/name");
        data.extend(record("mtime", b"1700000000.25"));
        data.extend(record("SCHILY.xattr.user.a", b"v\0w\n"));
        data.extend(record("LIBARCHIVE.xattr.user.b%3Dc", b"aGVsbG8"));
        // bsdtar writes an attribute under both prefixes: it is kept once.
        data.extend(record("LIBARCHIVE.xattr.user.a", b"dgB3Cg=="));
        data.extend(record("uname", b"root"));
        data.extend([0u8; 20]);
        let mut pax = Pax::default();
        pax.apply(&data).unwrap();
        assert_eq!(pax.path.as_deref(), Some(&b"a/very/long/name"[..]));
        let t = pax.mtime.unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 250_000_000));
        assert_eq!(pax.xattrs.len(), 2, "{:?}", pax.xattrs);
        assert_eq!(pax.xattrs[&b"user.a"[..]], b"v\0w\n");
        assert_eq!(pax.xattrs[&b"user.b=c"[..]], b"hello");
    }

    #[test]
    fn sparse_records_accumulate() {
        let mut data = record("GNU.sparse.size", b"8192");
        for (o, n) in [("0", "1"), ("4096", "2")] {
            data.extend(record("GNU.sparse.offset", o.as_bytes()));
            data.extend(record("GNU.sparse.numbytes", n.as_bytes()));
        }
        let mut pax = Pax::default();
        pax.apply(&data).unwrap();
        assert!(pax.sparse.present());
        assert_eq!(pax.sparse.offsets, [0, 4096]);
        assert_eq!(pax.sparse.lengths, [1, 2]);
        assert_eq!(pax.sparse.real_size, Some(8192));
    }

    #[test]
    fn malformed_records_are_errors() {
        let mut pax = Pax::default();
        assert!(pax.apply(b"99 path=x\n").is_err());
        assert!(pax.apply(b"x path=x\n").is_err());
        assert!(pax.apply(b"9 pathx\n\n").is_err());
        assert!(pax.apply(&record("uid", b"abc")).is_err());
    }

    #[test]
    fn pax_times() {
        let t = time(b"-1.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 500_000_000));
        let t = time(b"-5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-5, 0));
        assert!(time(b"x").is_none());
        assert!(time(b"1.x").is_none());
    }
}
