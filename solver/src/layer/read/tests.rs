//! The reader on hand-made headers of each dialect; archives written by the real tools are read
//! in `layer/tests/writers.rs`.

use super::*;

/// A header block built field by field.
struct Raw([u8; BLOCK]);

impl Raw {
    fn new(name: &[u8], flag: u8) -> Self {
        let mut raw = Raw([0u8; BLOCK]);
        raw.put(fields::NAME.start, name);
        raw.put(fields::MODE.start, b"0000644\0");
        raw.put(fields::UID.start, b"0000000\0");
        raw.put(fields::GID.start, b"0000000\0");
        raw.put(fields::SIZE.start, b"00000000000\0");
        raw.put(fields::MTIME.start, b"00000000000\0");
        raw.0[fields::TYPEFLAG] = flag;
        raw
    }

    fn gnu(mut self) -> Self {
        self.put(257, b"ustar  \0");
        self
    }

    fn ustar(mut self) -> Self {
        self.put(257, b"ustar\0");
        self.put(263, b"00");
        self
    }

    fn put(&mut self, at: usize, bytes: &[u8]) {
        self.0[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn size(mut self, size: u64) -> Self {
        let text = format!("{size:011o}\0");
        self.put(fields::SIZE.start, text.as_bytes());
        self
    }

    fn field(mut self, range: std::ops::Range<usize>, bytes: &[u8]) -> Self {
        self.0[range.clone()].fill(0);
        self.put(range.start, bytes);
        self
    }

    /// The block with its checksum filled in.
    fn block(mut self) -> [u8; BLOCK] {
        self.0[148..156].fill(b' ');
        let sum: u64 = self.0.iter().map(|&b| u64::from(b)).sum();
        let text = format!("{sum:06o}\0 ");
        self.put(148, text.as_bytes());
        self.0
    }
}

fn with_data(tar: &mut Vec<u8>, header: [u8; BLOCK], data: &[u8]) {
    tar.extend_from_slice(&header);
    tar.extend_from_slice(data);
    tar.resize(tar.len() + pad(data.len() as u64) as usize, 0);
}

fn pax_body(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let body = key.len() + value.len() + 3;
        let mut len = body + body.to_string().len();
        if len.to_string().len() != body.to_string().len() {
            len += 1;
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// Every entry with its data (sparse files expanded).
fn read_all(tar: &[u8]) -> Result<Vec<(Entry, Vec<u8>)>, LayerError> {
    let mut reader = TarReader::new(tar);
    let mut out = Vec::new();
    while let Some(entry) = reader.next_entry()? {
        let mut stored = Vec::new();
        reader.data().read_to_end(&mut stored).unwrap();
        let content = match &entry.sparse {
            None => stored,
            Some(map) => {
                let mut file = vec![0u8; entry.size as usize];
                let mut at = 0;
                for s in map {
                    let (o, l) = (s.offset as usize, s.length as usize);
                    file[o..o + l].copy_from_slice(&stored[at..at + l]);
                    at += l;
                }
                file
            }
        };
        out.push((entry, content));
    }
    Ok(out)
}

#[test]
fn gnu_header_with_empty_device_fields_and_long_names() {
    let long = "d/".repeat(80) + "file";
    let mut tar = Vec::new();
    // GNU tar leaves devmajor/devminor all NUL for everything but devices.
    with_data(&mut tar, Raw::new(b"./", b'5').gnu().block(), b"");
    let mut name = long.clone().into_bytes();
    name.push(0);
    with_data(
        &mut tar,
        Raw::new(b"././@LongLink", b'L')
            .gnu()
            .size(name.len() as u64)
            .block(),
        &name,
    );
    with_data(
        &mut tar,
        Raw::new(&long.as_bytes()[..100], b'0')
            .gnu()
            .size(5)
            .block(),
        b"hello",
    );
    let target = "t/".repeat(70);
    with_data(
        &mut tar,
        Raw::new(b"././@LongLink", b'K')
            .gnu()
            .size(target.len() as u64)
            .block(),
        target.as_bytes(),
    );
    with_data(&mut tar, Raw::new(b"link", b'2').gnu().block(), b"");
    with_data(
        &mut tar,
        Raw::new(b"dev/null", b'3')
            .gnu()
            .field(fields::DEVMAJOR, b"0000001\0")
            .field(fields::DEVMINOR, b"0000003\0")
            .block(),
        b"",
    );
    tar.extend_from_slice(&[0u8; 2 * BLOCK]);
    let entries = read_all(&tar).unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[0].0.kind, Kind::Directory);
    assert_eq!(entries[1].0.name, long.as_bytes());
    assert_eq!(entries[1].1, b"hello");
    assert_eq!(entries[2].0.link, target.as_bytes());
    assert_eq!(entries[2].0.kind, Kind::Symlink);
    assert_eq!(entries[3].0.device, (1, 3));
}

#[test]
fn v7_directories_numeric_padding_and_base256() {
    let mut tar = Vec::new();
    with_data(&mut tar, Raw::new(b"olddir/", 0).block(), b"");
    // Spaces instead of NULs, and an all-NUL uid: both read as numbers.
    let header = Raw::new(b"f", 0)
        .field(fields::MODE, b"   755 \0")
        .field(fields::UID, b"\0\0\0\0\0\0\0\0")
        .field(fields::GID, &{
            let mut g = [0u8; 8];
            g[0] = 0x80;
            g[4..].copy_from_slice(&70000u32.to_be_bytes());
            g
        })
        .size(3)
        .block();
    with_data(&mut tar, header, b"abc");
    tar.extend_from_slice(&[0u8; BLOCK]); // one zero block, then the end
    let entries = read_all(&tar).unwrap();
    assert_eq!(entries[0].0.kind, Kind::Directory);
    assert_eq!(entries[1].0.mode, 0o755);
    assert_eq!(entries[1].0.uid, 0);
    assert_eq!(entries[1].0.gid, 70000);
    assert_eq!(entries[1].1, b"abc");
}

#[test]
fn ustar_prefix_and_header_only_types_ignore_size() {
    let mut tar = Vec::new();
    let header = Raw::new(b"name", b'0')
        .ustar()
        .field(345..500, b"some/prefix")
        .size(2)
        .block();
    with_data(&mut tar, header, b"hi");
    // A hardlink whose size field is set carries no data (Go's isHeaderOnlyType).
    let link = Raw::new(b"hard", b'1')
        .ustar()
        .field(fields::LINKNAME, b"some/prefix/name")
        .size(700)
        .block();
    tar.extend_from_slice(&link);
    with_data(
        &mut tar,
        Raw::new(b"after", b'0').ustar().size(1).block(),
        b"x",
    );
    let entries = read_all(&tar).unwrap(); // no end marker at all: the stream just ends
    assert_eq!(entries[0].0.name, b"some/prefix/name");
    assert_eq!(entries[1].0.kind, Kind::Hardlink);
    assert_eq!(entries[2].0.name, b"after");
    assert_eq!(entries[2].1, b"x");
}

#[test]
fn pax_overrides_and_global_headers_are_skipped() {
    let mut tar = Vec::new();
    let global = pax_body(&[("comment", b"made by git archive"), ("uid", b"99")]);
    with_data(
        &mut tar,
        Raw::new(b"pax_global_header", b'g')
            .ustar()
            .size(global.len() as u64)
            .block(),
        &global,
    );
    let local = pax_body(&[
        ("path", "x/".repeat(100).as_bytes()),
        ("uid", b"5000000"),
        ("mtime", b"1234.5"),
        ("size", b"4"),
        ("SCHILY.xattr.security.capability", b"\x01\x00\x00\x02"),
    ]);
    with_data(
        &mut tar,
        Raw::new(b"PaxHeaders/x", b'x')
            .ustar()
            .size(local.len() as u64)
            .block(),
        &local,
    );
    with_data(
        &mut tar,
        Raw::new(b"short", b'0').ustar().size(4).block(),
        b"data",
    );
    with_data(&mut tar, Raw::new(b"plain", b'0').ustar().block(), b"");
    tar.extend_from_slice(&[0u8; 2 * BLOCK]);
    let entries = read_all(&tar).unwrap();
    assert_eq!(entries.len(), 2);
    let e = &entries[0].0;
    assert_eq!(e.name, "x/".repeat(100).as_bytes());
    assert_eq!(e.uid, 5_000_000);
    assert_eq!((e.mtime.tv_sec, e.mtime.tv_nsec), (1234, 500_000_000));
    assert_eq!(
        e.xattrs,
        [(
            b"security.capability".to_vec(),
            b"\x01\x00\x00\x02".to_vec()
        )]
    );
    // Nothing of the first entry's PAX records leaks to the next, nor the global uid.
    assert_eq!(entries[1].0.uid, 0);
    assert_eq!(entries[1].0.name, b"plain");
}

#[test]
fn gnu_old_sparse_with_extension_block() {
    // 6 segments of 1 byte at 0, 4096, …: 4 in the header, 2 in one extension block.
    let segments: Vec<(u64, u64)> = (0..6).map(|i| (i * 4096, 1)).collect();
    let real = 6 * 4096;
    let mut header = Raw::new(b"sparse", b'S').gnu().size(6);
    for (i, (o, l)) in segments.iter().take(4).enumerate() {
        let at = fields::GNU_SPARSE.start + i * 24;
        header.put(at, format!("{o:011o}\0").as_bytes());
        header.put(at + 12, format!("{l:011o}\0").as_bytes());
    }
    header.0[fields::GNU_IS_EXTENDED] = 1;
    header.put(
        fields::GNU_REAL_SIZE.start,
        format!("{real:011o}\0").as_bytes(),
    );
    let mut tar = Vec::new();
    tar.extend_from_slice(&header.block());
    let mut ext = [0u8; BLOCK];
    for (i, (o, l)) in segments[4..].iter().enumerate() {
        ext[i * 24..i * 24 + 12].copy_from_slice(format!("{o:011o}\0").as_bytes());
        ext[i * 24 + 12..i * 24 + 24].copy_from_slice(format!("{l:011o}\0").as_bytes());
    }
    tar.extend_from_slice(&ext);
    tar.extend_from_slice(b"abcdef");
    tar.resize(tar.len() + pad(6) as usize, 0);
    tar.extend_from_slice(&[0u8; 2 * BLOCK]);
    let entries = read_all(&tar).unwrap();
    let (e, content) = &entries[0];
    assert_eq!(e.kind, Kind::Regular);
    assert_eq!(e.size, real);
    assert_eq!(content.len() as u64, real);
    assert_eq!(content[4096], b'b');
    assert_eq!(content[5 * 4096], b'f');
    assert_eq!(content.iter().filter(|&&b| b != 0).count(), 6);
}

#[test]
fn pax_sparse_formats() {
    let data = b"HEADTAIL";
    let real = 1 << 20;
    let map_records_00: Vec<(&str, Vec<u8>)> = vec![
        ("GNU.sparse.size", real.to_string().into_bytes()),
        ("GNU.sparse.numblocks", b"2".to_vec()),
        ("GNU.sparse.offset", b"0".to_vec()),
        ("GNU.sparse.numbytes", b"4".to_vec()),
        ("GNU.sparse.offset", (real - 4).to_string().into_bytes()),
        ("GNU.sparse.numbytes", b"4".to_vec()),
        ("GNU.sparse.name", b"real/name".to_vec()),
    ];
    let map_01 = format!("0,4,{},4", real - 4);
    let map_records_01: Vec<(&str, Vec<u8>)> = vec![
        ("GNU.sparse.size", real.to_string().into_bytes()),
        ("GNU.sparse.map", map_01.into_bytes()),
        ("GNU.sparse.name", b"real/name".to_vec()),
    ];
    let map_records_10: Vec<(&str, Vec<u8>)> = vec![
        ("GNU.sparse.major", b"1".to_vec()),
        ("GNU.sparse.minor", b"0".to_vec()),
        ("GNU.sparse.name", b"real/name".to_vec()),
        ("GNU.sparse.realsize", real.to_string().into_bytes()),
    ];
    for (version, records) in [
        ("0.0", map_records_00),
        ("0.1", map_records_01),
        ("1.0", map_records_10),
    ] {
        let mut stored = Vec::new();
        if version == "1.0" {
            stored.extend_from_slice(format!("2\n0\n4\n{}\n4\n", real - 4).as_bytes());
            stored.resize(BLOCK, 0);
        }
        stored.extend_from_slice(data);
        let refs: Vec<(&str, &[u8])> = records.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        let body = pax_body(&refs);
        let mut tar = Vec::new();
        with_data(
            &mut tar,
            Raw::new(b"./PaxHeaders/x", b'x')
                .ustar()
                .size(body.len() as u64)
                .block(),
            &body,
        );
        with_data(
            &mut tar,
            Raw::new(b"./GNUSparseFile.0/name", b'0')
                .ustar()
                .size(stored.len() as u64)
                .block(),
            &stored,
        );
        tar.extend_from_slice(&[0u8; 2 * BLOCK]);
        let entries = read_all(&tar).unwrap_or_else(|e| panic!("{version}: {e}"));
        let (e, content) = &entries[0];
        assert_eq!(e.name, b"real/name", "{version}");
        assert_eq!(e.size, real, "{version}");
        assert_eq!(&content[..4], b"HEAD", "{version}");
        assert_eq!(&content[real as usize - 4..], b"TAIL", "{version}");
    }
}

#[test]
fn corrupt_archives_are_errors_naming_the_place() {
    let mut bad_sum = Raw::new(b"f", b'0').block();
    bad_sum[0] = b'g';
    let err = read_all(&bad_sum).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");

    let mut cut = Vec::new();
    with_data(
        &mut cut,
        Raw::new(b"f", b'0').size(1000).block(),
        &[1u8; 1000],
    );
    cut.truncate(700);
    let mut reader = TarReader::new(&cut[..]);
    reader.next_entry().unwrap().unwrap();
    let err = reader.data().read_to_end(&mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("\"f\""), "{err}");

    let mut hidden = Vec::new();
    hidden.extend_from_slice(&[0u8; BLOCK]);
    hidden.extend_from_slice(&Raw::new(b"f", b'0').block());
    let err = read_all(&hidden).unwrap_err();
    assert!(err.to_string().contains("zero block"), "{err}");

    let huge = Raw::new(b"PaxHeaders/x", b'x').size(1 << 30).block();
    let err = read_all(&huge).unwrap_err();
    assert!(err.to_string().contains("extended header"), "{err}");

    let bad_mode = Raw::new(b"m", b'0')
        .field(fields::MODE, b"07x4\0\0\0\0")
        .block();
    let err = read_all(&bad_mode).unwrap_err();
    assert!(
        err.to_string().contains("mode") && err.to_string().contains("\"m\""),
        "{err}"
    );

    let volume = Raw::new(b"M", b'M').gnu().block();
    let err = read_all(&volume).unwrap_err();
    assert!(matches!(err, LayerError::Unsupported { .. }), "{err}");
}

#[test]
fn absurd_sizes_and_names_are_refused() {
    // 2^52 in base-256.
    let huge = Raw::new(b"huge", b'0')
        .ustar()
        .field(fields::SIZE, &[0x80, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0]);
    let err = read_all(&huge.block()).unwrap_err();
    assert!(
        err.to_string().contains("larger than a filesystem holds"),
        "{err}"
    );

    let long = "d/".repeat(3000);
    let body = pax_body(&[("path", long.as_bytes())]);
    let mut tar = Vec::new();
    with_data(
        &mut tar,
        Raw::new(b"x", b'x').ustar().size(body.len() as u64).block(),
        &body,
    );
    with_data(&mut tar, Raw::new(b"short", b'0').ustar().block(), b"");
    let err = read_all(&tar).unwrap_err();
    assert!(
        err.to_string().contains("longer than a path may be"),
        "{err}"
    );
}
