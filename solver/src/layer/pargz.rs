//! Parallel gzip, the way pigz does it: the stream is cut into fixed-size blocks, each
//! deflated on its own thread with the previous 32 KiB of input preset as its dictionary and
//! ended with a sync flush (the last with a final block), and the pieces are concatenated in
//! order behind one gzip header, with the CRC-32 combined from the blocks' CRCs.
//!
//! The result is one ordinary gzip member that any reader accepts. Its bytes depend only on
//! the input and the level, never on thread timing or on how writes were chunked: block
//! boundaries sit at fixed offsets and every block is compressed by the same pure function,
//! inline or on a worker. Memory stays bounded: at most [`IN_FLIGHT_PER_THREAD`] blocks per
//! worker are queued or waiting to be written.
//!
//! gzp does the same, but wants a `Send + 'static` writer it owns on a thread of its own and
//! never hands it back; layer streams write into a borrowed ingest.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Crc, FlushCompress, Status};

/// pigz's block size: large enough that the sync flush between blocks costs nothing
/// measurable, small enough that a layer of a few hundred KiB already spreads over cores.
pub(super) const BLOCK: usize = 128 * 1024;
/// deflate's window: what a block may refer back to.
const DICT: usize = 32 * 1024;
/// Blocks queued or compressed but not yet written, per worker.
const IN_FLIGHT_PER_THREAD: usize = 3;
/// More threads than this gain little for one stream and cost memory.
const MAX_THREADS: usize = 16;

/// One block to deflate.
struct Job {
    input: Vec<u8>,
    /// The last [`DICT`] bytes before `input` (empty for the first block).
    dict: Vec<u8>,
    last: bool,
    reply: SyncSender<io::Result<Deflated>>,
}

/// A deflated block and the CRC of its input.
struct Deflated {
    data: Vec<u8>,
    crc: Crc,
}

/// Worker threads fed from one queue; they stop when the queue's sender is dropped.
struct Pool {
    jobs: Option<Sender<Job>>,
    handles: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Spawns up to `threads` workers; `None` if not even one could be started.
    fn spawn(threads: usize, level: flate2::Compression) -> Option<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("kiln-gzip-{i}"))
                .spawn(move || worker(&rx, level));
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(_) => break,
            }
        }
        (!handles.is_empty()).then_some(Self {
            jobs: Some(tx),
            handles,
        })
    }

    fn send(&self, job: Job) -> io::Result<()> {
        self.jobs
            .as_ref()
            .and_then(|tx| tx.send(job).ok())
            .ok_or_else(stopped)
    }

    /// Stops the workers and waits for them (they are idle once every reply was received).
    fn join(mut self) {
        self.jobs = None;
        for handle in std::mem::take(&mut self.handles) {
            let _ = handle.join();
        }
    }
}

fn stopped() -> io::Error {
    io::Error::other("parallel gzip: a compression thread stopped")
}

fn worker(jobs: &Mutex<Receiver<Job>>, level: flate2::Compression) {
    loop {
        let job = {
            let Ok(queue) = jobs.lock() else { return };
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let result = deflate_block(level, &job.dict, &job.input, job.last);
        // The encoder may be gone (dropped after an error): nothing left to do with it.
        let _ = job.reply.send(result);
    }
}

/// Deflates `input` as a piece of one raw deflate stream that already produced `dict`: a
/// byte-aligned run of non-final blocks (sync flush), or the stream's end when `last`.
///
/// A fresh compressor every time, never a reset one: zlib-rs (like zlib-ng before its fix
/// for issue 2100) lets stale window bytes from an earlier stream steer match choices after
/// a reset, so a reused compressor's output would depend on which blocks it saw before,
/// that is, on thread timing. Allocating one costs about 1% of compressing a block.
fn deflate_block(
    level: flate2::Compression,
    dict: &[u8],
    input: &[u8],
    last: bool,
) -> io::Result<Deflated> {
    // Stored, not deflated, when deflate would fail anyway: same validity, and a fraction
    // of the time on random or already compressed content (`incompressible`'s module doc).
    let level = if level.level() > 0 && super::incompressible::incompressible(dict, input) {
        flate2::Compression::none()
    } else {
        level
    };
    let mut compress = Compress::new(level, false);
    // Stored blocks refer to nothing: no window to preset.
    if !dict.is_empty() && level.level() > 0 {
        compress.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut data = Vec::with_capacity(input.len() + input.len() / 16 + 256);
    let mut pos = 0;
    loop {
        if data.capacity() - data.len() < 256 {
            data.reserve(data.capacity() / 2 + 256);
        }
        let before = compress.total_in();
        let status = compress
            .compress_vec(&input[pos..], &mut data, flush)
            .map_err(io::Error::other)?;
        let consumed = usize::try_from(compress.total_in() - before).map_err(io::Error::other)?;
        pos += consumed;
        let room_left = data.len() < data.capacity();
        match status {
            Status::StreamEnd => break,
            // zlib's contract: a flush is complete once it returns with output space left.
            _ if !last && pos == input.len() && room_left => break,
            Status::BufError if room_left && consumed == 0 => {
                return Err(io::Error::other("parallel gzip: deflate made no progress"));
            }
            _ => {}
        }
    }
    let mut crc = Crc::new();
    crc.update(input);
    Ok(Deflated { data, crc })
}

/// The 10-byte gzip header flate2 writes: deflate, no flags, mtime 0, XFL by level, OS 255.
fn write_header<W: Write>(inner: &mut W, level: flate2::Compression) -> io::Result<()> {
    let xfl = if level.level() >= flate2::Compression::best().level() {
        2
    } else if level.level() <= flate2::Compression::fast().level() {
        4
    } else {
        0
    };
    inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])
}

/// A gzip writer compressing blocks on worker threads; see the module docs.
pub(crate) struct ParGzEncoder<W: Write> {
    inner: W,
    level: flate2::Compression,
    threads: usize,
    /// The block being filled.
    block: Vec<u8>,
    /// The last [`DICT`] bytes of input already dispatched.
    dict: Vec<u8>,
    crc: Crc,
    /// Replies in stream order.
    pending: VecDeque<Receiver<io::Result<Deflated>>>,
    /// Started with the first full block, so small layers never start a thread; without
    /// it (one core, or no thread could start) blocks are compressed inline.
    pool: Option<Pool>,
}

impl<W: Write> ParGzEncoder<W> {
    /// Writes the gzip header (flate2's: no name, mtime 0, OS 255, so nothing varies) and
    /// returns the encoder. Worker threads default to the available parallelism.
    pub(crate) fn new(mut inner: W, level: flate2::Compression) -> io::Result<Self> {
        let threads = crate::parallel::threads(MAX_THREADS);
        write_header(&mut inner, level)?;
        Ok(Self {
            inner,
            level,
            threads,
            block: Vec::with_capacity(BLOCK),
            dict: Vec::new(),
            crc: Crc::new(),
            pending: VecDeque::new(),
            pool: None,
        })
    }

    /// The same encoder with `threads` workers (1 compresses inline); tests use it to show
    /// the bytes do not depend on it.
    #[cfg(test)]
    pub(crate) fn with_threads(
        inner: W,
        level: flate2::Compression,
        threads: usize,
    ) -> io::Result<Self> {
        let mut encoder = Self::new(inner, level)?;
        encoder.threads = threads.max(1);
        Ok(encoder)
    }

    /// Hands the full (or, when `last`, final) block to a worker or compresses it here.
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let input = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
        let tail = &input[input.len().saturating_sub(DICT)..];
        let dict = if input.len() >= DICT {
            tail.to_vec()
        } else {
            // Only the last block can be short; keep the window whole anyway.
            let mut d = self.dict[self.dict.len().saturating_sub(DICT - tail.len())..].to_vec();
            d.extend_from_slice(tail);
            d
        };
        let dict = std::mem::replace(&mut self.dict, dict);
        if self.pool.is_none() && self.threads > 1 && !last {
            self.pool = Pool::spawn(self.threads, self.level);
        }
        match &self.pool {
            Some(pool) => {
                let (reply, receiver) = mpsc::sync_channel(1);
                pool.send(Job {
                    input,
                    dict,
                    last,
                    reply,
                })?;
                self.pending.push_back(receiver);
                let window = IN_FLIGHT_PER_THREAD * pool.handles.len();
                while self.pending.len() >= window {
                    self.write_next(true)?;
                }
                // Write whatever is already done, so output flows while workers run.
                while self.write_next(false)? {}
                Ok(())
            }
            None => {
                let deflated = deflate_block(self.level, &dict, &input, last)?;
                self.emit(&deflated)
            }
        }
    }

    /// Writes the oldest pending block if it is done (or, with `wait`, once it is); whether
    /// one was written.
    fn write_next(&mut self, wait: bool) -> io::Result<bool> {
        let Some(front) = self.pending.front() else {
            return Ok(false);
        };
        let reply = if wait {
            front.recv().map_err(|_| stopped())?
        } else {
            match front.try_recv() {
                Ok(reply) => reply,
                Err(mpsc::TryRecvError::Empty) => return Ok(false),
                Err(mpsc::TryRecvError::Disconnected) => return Err(stopped()),
            }
        };
        self.pending.pop_front();
        self.emit(&reply?)?;
        Ok(true)
    }

    fn emit(&mut self, deflated: &Deflated) -> io::Result<()> {
        self.crc.combine(&deflated.crc);
        self.inner.write_all(&deflated.data)
    }

    /// Compresses what is left, writes the trailer and hands back the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        while self.write_next(true)? {}
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        self.inner.write_all(&trailer)?;
        if let Some(pool) = self.pool.take() {
            pool.join();
        }
        Ok(self.inner)
    }
}

impl<W: Write> Write for ParGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == BLOCK {
            self.dispatch(false)?;
        }
        Ok(n)
    }

    /// Writes out the blocks already compressed. It cannot flush the block being filled
    /// without moving a block boundary, which would make the bytes depend on flush calls.
    fn flush(&mut self) -> io::Result<()> {
        while self.write_next(false)? {}
        self.inner.flush()
    }
}
