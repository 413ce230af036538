//! The parallel gzip encoder: a valid single gzip member, identical bytes whatever the thread
//! count or write chunking, accepted by gzip(1).

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use crate::layer::pargz::{BLOCK, ParGzEncoder};
use crate::layer::testutil::noise;

/// Compressible but varied bytes: words with numbers, some runs of noise.
fn sample(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let words = [
        "layer ", "image ", "build ", "cache\n", "kiln ", "tar ", "0000 ",
    ];
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let r = next();
        if r % 11 == 0 {
            out.extend_from_slice(&r.to_le_bytes());
        } else {
            out.extend_from_slice(words[(r % words.len() as u64) as usize].as_bytes());
            out.extend_from_slice((r % 1000).to_string().as_bytes());
        }
    }
    out.truncate(len);
    out
}

fn compress(data: &[u8], threads: usize, chunk: usize) -> Vec<u8> {
    let mut enc =
        ParGzEncoder::with_threads(Vec::new(), flate2::Compression::default(), threads).unwrap();
    for piece in data.chunks(chunk.max(1)) {
        enc.write_all(piece).unwrap();
    }
    enc.flush().unwrap();
    enc.finish().unwrap()
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    // GzDecoder reads a single member: trailing data or a second member would be left over.
    let mut decoder = flate2::read::GzDecoder::new(gz);
    let mut out = Vec::new();
    decoder.read_to_end(&mut out).unwrap();
    out
}

const SIZES: [usize; 9] = [
    0,
    1,
    1000,
    BLOCK - 1,
    BLOCK,
    BLOCK + 1,
    2 * BLOCK,
    5 * BLOCK + 12_345,
    40 * BLOCK + 7,
];

#[test]
fn round_trips_at_block_edges() {
    for len in SIZES {
        let data = sample(len, len as u64 + 1);
        let gz = compress(&data, 4, 64 * 1024);
        assert_eq!(&gz[..3], &[0x1f, 0x8b, 8], "len {len}");
        assert!(gunzip(&gz) == data, "len {len}");
    }
}

#[test]
fn bytes_do_not_depend_on_threads_or_write_sizes() {
    for len in [3 * BLOCK + 999, 40 * BLOCK + 7] {
        let data = sample(len, 99);
        let reference = compress(&data, 1, len);
        for (threads, chunk) in [(1, 4096), (2, 1), (2, 100_003), (3, BLOCK), (8, 7777)] {
            if chunk == 1 && len > 4 * BLOCK {
                continue;
            }
            assert!(
                compress(&data, threads, chunk) == reference,
                "len {len}, {threads} threads, {chunk}-byte writes"
            );
        }
    }
}

#[test]
fn compresses_about_as_well_as_one_stream() {
    let data = sample(30 * BLOCK, 5);
    let ours = compress(&data, 2, 1 << 20).len();
    let mut single = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    single.write_all(&data).unwrap();
    let single = single.finish().unwrap().len();
    assert!(ours < data.len() / 2, "{ours} of {}", data.len());
    // The dictionary carries the window across blocks: only the flush markers are extra.
    assert!(
        ours * 100 <= single * 101,
        "ours {ours}, single stream {single}"
    );
}

/// Random stretches, text and random again: the random blocks are stored, not deflated,
/// the text still compressed, the stream one valid member with the same bytes for any
/// thread count, which gzip(1) reads back.
fn mixed() -> Vec<u8> {
    let mut data = noise(2 * BLOCK + 100, 21);
    data.extend_from_slice(&sample(3 * BLOCK, 22));
    data.extend_from_slice(&noise(BLOCK + 5000, 23));
    data
}

#[test]
fn random_blocks_are_stored_and_text_still_compressed() {
    let data = mixed();
    let gz = compress(&data, 3, 70_000);
    assert!(gunzip(&gz) == data);
    assert!(
        compress(&data, 1, data.len()) == gz,
        "thread count changed the bytes"
    );
    let random = 3 * BLOCK + 5100;
    let mut text = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    text.write_all(&sample(3 * BLOCK, 22)).unwrap();
    let text = text.finish().unwrap().len();
    // Stored: the random bytes plus 5 bytes per 64 KiB stored block and the flush markers.
    assert!(gz.len() >= random, "{} < {random}", gz.len());
    assert!(
        gz.len() <= random + text + text / 50 + 200,
        "{} > {random} + {text}",
        gz.len()
    );
}

#[test]
fn gzip_tool_accepts_the_stream() {
    let mut data = sample(9 * BLOCK + 3, 17);
    data.extend_from_slice(&mixed());
    let gz = compress(&data, 2, 50_000);
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&gz).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "gzip -dc failed");
    assert!(out.stdout == data);
}

#[test]
fn dropping_unfinished_encoder_does_not_hang() {
    let data = sample(20 * BLOCK, 3);
    let mut enc =
        ParGzEncoder::with_threads(Vec::new(), flate2::Compression::default(), 2).unwrap();
    enc.write_all(&data).unwrap();
    drop(enc);
}

/// The bytes themselves are pinned: an image's layer digests must not move with the CPU
/// (zlib-rs picks SIMD paths at run time), a zlib-rs upgrade or a change to the stored-block
/// test without anyone noticing. Text, binary-like and random blocks, two threads.
#[test]
fn compressed_bytes_are_pinned() {
    use sha2::Digest as _;
    let mut data = sample(7 * BLOCK + 4321, 31);
    data.extend_from_slice(&mixed());
    let gz = compress(&data, 2, 65_536);
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&gz)),
        "9df481fb3282a4e2e8acbe0b124d7f396be6899c829dd9ab12307eb00eebb113"
    );
}
