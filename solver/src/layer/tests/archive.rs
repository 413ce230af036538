//! Compression sniffing and `is_archive`.

use std::io::{BufReader, Read, Write};

use super::layer_bytes;
use crate::layer::testutil::{TempDir, file};
use crate::layer::{Compression, decompress_reader, is_archive};

fn compressed(tar: &[u8], format: &str) -> Vec<u8> {
    match format {
        "tar" => tar.to_vec(),
        "tar.gz" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        "tar.bz2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        "tar.xz" => {
            let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        "tar.zst" => zstd::encode_all(tar, 1).unwrap(),
        other => panic!("{other}"),
    }
}

const FORMATS: [&str; 5] = ["tar", "tar.gz", "tar.bz2", "tar.xz", "tar.zst"];

#[test]
fn every_format_is_an_archive_and_decompresses() {
    let src = TempDir::new("arch-src");
    file(src.path(), "hello.txt", b"hello", 0o644, (0, 0));
    let (tar, _) = layer_bytes(src.path(), Compression::None, None);
    let dir = TempDir::new("arch");
    for format in FORMATS {
        let bytes = compressed(&tar, format);
        let path = dir.join(format!("a.{format}"));
        std::fs::write(&path, &bytes).unwrap();
        assert!(is_archive(&path).unwrap(), "{format}");
        // A one-byte buffer makes the sniffer read the magic for real.
        let mut out = Vec::new();
        decompress_reader(BufReader::with_capacity(1, &bytes[..]))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert!(out == tar, "{format}");
    }
}

#[test]
fn non_archives_are_not() {
    let dir = TempDir::new("arch-not");
    let text = dir.join("notes.txt");
    std::fs::write(
        &text,
        "just text, long enough to fill a tar block? ".repeat(20),
    )
    .unwrap();
    assert!(!is_archive(&text).unwrap());
    let gz_text = dir.join("notes.txt.gz");
    std::fs::write(
        &gz_text,
        compressed(&std::fs::read(&text).unwrap(), "tar.gz"),
    )
    .unwrap();
    assert!(!is_archive(&gz_text).unwrap());
    let empty = dir.join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert!(!is_archive(&empty).unwrap());
    let zeros = dir.join("zeros");
    std::fs::write(&zeros, [0u8; 1024]).unwrap();
    assert!(!is_archive(&zeros).unwrap());
    let corrupt = dir.join("corrupt.gz");
    std::fs::write(&corrupt, [0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    assert!(!is_archive(&corrupt).unwrap());
    assert!(is_archive(&dir.join("missing")).is_err());
}
