//! A layer compressed in the same pass as its plain tar is written: a writer that hands every
//! byte to the plain tar's writer and a copy to a compressor on a thread of its own, so the
//! compression (most of an export's CPU) overlaps reading the files and hashing the tar
//! instead of following them. Bounded: at most [`IN_FLIGHT`] chunks wait for the compressor,
//! then the writer waits for it.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::{Compression, LayerError, compress_tar};

/// Bytes handed over at once.
const CHUNK: usize = 1 << 20;
/// Chunks queued for the compressor before the writer waits.
const IN_FLIGHT: usize = 8;

/// Writes to `plain`, and the same bytes, compressed, to the compressor's own writer.
pub(crate) struct Alongside<W, C: Write + Send + 'static> {
    plain: W,
    side: Side<C>,
}

/// The compressor's end: the chunk being filled, the queue, the thread.
struct Side<C: Write + Send + 'static> {
    chunk: Vec<u8>,
    sender: Option<SyncSender<Vec<u8>>>,
    worker: Option<JoinHandle<Result<C, LayerError>>>,
}

impl<W: Write, C: Write + Send + 'static> Alongside<W, C> {
    /// Starts the compressor writing `to` (at `level`) into `compressed`.
    pub(crate) fn new(
        plain: W,
        to: Compression,
        level: Option<i32>,
        compressed: C,
    ) -> io::Result<Self> {
        let (sender, receiver) = sync_channel(IN_FLIGHT);
        let worker = std::thread::Builder::new()
            .name("kiln-compress".into())
            .spawn(move || compress_tar(Chunks::new(receiver), to, level, compressed))?;
        Ok(Self {
            plain,
            side: Side {
                chunk: Vec::with_capacity(CHUNK),
                sender: Some(sender),
                worker: Some(worker),
            },
        })
    }

    /// Ends the stream: the plain writer, and the compressed one when the compressor
    /// finished — `None` when it failed or stopped, which costs only the export a
    /// compression of its own (the plain tar is what the build needs).
    pub(crate) fn finish(mut self) -> io::Result<(W, Option<C>)> {
        let compressed = self.side.finish();
        self.plain.flush()?;
        Ok((self.plain, compressed))
    }
}

impl<C: Write + Send + 'static> Side<C> {
    fn push(&mut self, bytes: &[u8]) {
        if self.sender.is_some() {
            self.chunk.extend_from_slice(bytes);
            if self.chunk.len() >= CHUNK {
                self.hand_over();
            }
        }
    }

    fn hand_over(&mut self) {
        if self.chunk.is_empty() {
            return;
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        if let Some(sender) = &self.sender
            && sender.send(chunk).is_err()
        {
            // The compressor stopped (its error is dropped at `finish`): write on without it.
            self.sender = None;
        }
    }

    fn finish(&mut self) -> Option<C> {
        self.hand_over();
        drop(self.sender.take());
        self.worker
            .take()
            .and_then(|w| w.join().ok())
            .and_then(Result::ok)
    }
}

impl<W: Write, C: Write + Send + 'static> Write for Alongside<W, C> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.plain.write(buf)?;
        self.side.push(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.plain.flush()
    }
}

impl<C: Write + Send + 'static> Drop for Side<C> {
    fn drop(&mut self) {
        // Abandoned (the layer failed): the compressor sees its input end and stops; its
        // partial output is dropped with it, so nothing half-written outlives the layer.
        drop(self.sender.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The chunks a channel delivers, as one stream.
struct Chunks {
    receiver: Receiver<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

impl Chunks {
    fn new(receiver: Receiver<Vec<u8>>) -> Self {
        Self {
            receiver,
            current: Vec::new(),
            at: 0,
        }
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            match self.receiver.recv() {
                Ok(next) => {
                    self.current = next;
                    self.at = 0;
                }
                // The writer is done (or gone): the end of the stream.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::layer::testutil::noise;

    #[test]
    fn the_compressed_side_is_what_compressing_the_plain_bytes_gives() {
        let mut data = noise(3 * CHUNK + 12_345, 7);
        data.extend(std::iter::repeat_n(b'k', 2 * CHUNK));
        for kind in [Compression::Gzip, Compression::Zstd] {
            let mut w = Alongside::new(Vec::new(), kind, None, Vec::new()).unwrap();
            // Odd-sized writes, as a tar writer makes them.
            for piece in data.chunks(70_001) {
                w.write_all(piece).unwrap();
            }
            let (plain, compressed) = w.finish().unwrap();
            assert_eq!(plain, data);
            let alone = compress_tar(&data[..], kind, None, Vec::new()).unwrap();
            assert_eq!(compressed.unwrap(), alone, "{kind:?}");
        }
    }

    /// A compressor whose writer fails leaves the plain side whole and gives no blob.
    #[test]
    fn a_failing_compressor_costs_only_the_compressed_side() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let data = noise(4 * CHUNK, 3);
        let mut w = Alongside::new(Vec::new(), Compression::Gzip, None, Broken).unwrap();
        for piece in data.chunks(100_000) {
            w.write_all(piece).unwrap();
        }
        let (plain, compressed) = w.finish().unwrap();
        assert_eq!(plain, data);
        assert!(compressed.is_none());
    }
}
