//! Reading one file: the parser runs on a blocking thread and hands its items over in chunks.
//!
//! Why a thread: parsing is synchronous CPU and file work (XML decoding of hundreds of MB for an
//! AAF set). On a blocking thread it neither stalls the async runtime nor waits for the
//! database: the parser fills the next chunks while the importer writes the previous batch, so
//! the two overlap. The channel is bounded ([`CHANNEL_CHUNKS`] × [`CHUNK_ITEMS`] items), so
//! memory stays flat: a slow database makes the parser wait, it never buffers the file. If the
//! importer stops (error, rejection), it drops the receiver and the thread ends at its next send.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::types::{ImportFile, RosterFormat};
use crate::error::Error;
use crate::school::parse::{ParseError, ParseItem, ParseStats, parse_aaf, parse_csv, parse_siecle};

/// Items per message.
const CHUNK_ITEMS: usize = 512;
/// Messages in flight.
const CHANNEL_CHUNKS: usize = 8;
/// Read buffer of the file.
const READ_BUFFER: usize = 256 * 1024;

/// What the parser thread sends.
pub(super) enum Chunk {
    Items(Vec<ParseItem>),
    /// The file was read to the end without error.
    End(ParseStats),
    /// The file is malformed: nothing of it may be kept. The stats are those so far.
    Failed(ParseError, ParseStats),
}

/// The receiving end for one file.
pub(super) struct FileReader {
    rx: mpsc::Receiver<Chunk>,
    bytes_read: Arc<AtomicU64>,
    pub bytes_total: u64,
}

impl FileReader {
    pub async fn next(&mut self) -> Option<Chunk> {
        self.rx.recv().await
    }

    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }
}

/// Checks that a file can be read, before anything is written.
pub(super) fn check_readable(file: &ImportFile) -> Result<(), Error> {
    let f = File::open(&file.path).map_err(|e| unreadable(file, &e))?;
    let meta = f.metadata().map_err(|e| unreadable(file, &e))?;
    if !meta.is_file() {
        return Err(Error::bad_input("files", format!("{}: not a regular file", file.name)));
    }
    Ok(())
}

fn unreadable(file: &ImportFile, e: &io::Error) -> Error {
    Error::bad_input("files", format!("{}: cannot be read ({e})", file.name))
}

/// Opens the file and starts its parser thread (needs a Tokio runtime, which sea-orm has).
pub(super) fn start(format: RosterFormat, file: &ImportFile) -> Result<FileReader, Error> {
    let f = File::open(&file.path).map_err(|e| unreadable(file, &e))?;
    let bytes_total = f.metadata().map_err(|e| unreadable(file, &e))?.len();
    let bytes_read = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let counted = Counting { inner: f, n: bytes_read.clone() };
    let name = file.name.clone();
    // Detached: it ends when the file does or when the receiver is gone.
    drop(tokio::task::spawn_blocking(move || {
        let reader = BufReader::with_capacity(READ_BUFFER, counted);
        match format {
            RosterFormat::Aaf => {
                let mut p = parse_aaf(reader, &name);
                let failed = pump(&mut p, &tx);
                finish(&tx, failed, p.stats());
            }
            RosterFormat::Siecle => {
                let mut p = parse_siecle(reader, &name);
                let failed = pump(&mut p, &tx);
                finish(&tx, failed, p.stats());
            }
            RosterFormat::Csv => {
                let mut p = parse_csv(reader, &name);
                let failed = pump(&mut p, &tx);
                finish(&tx, failed, p.stats());
            }
        }
    }));
    Ok(FileReader { rx, bytes_read, bytes_total })
}

/// How a parse run ended, seen from the thread.
enum Ended {
    Complete,
    Failed(ParseError),
    /// The importer is gone.
    Abandoned,
}

/// Sends items in chunks until the file ends, fails, or nobody listens.
fn pump<I: Iterator<Item = Result<ParseItem, ParseError>>>(items: &mut I, tx: &mpsc::Sender<Chunk>) -> Ended {
    let mut chunk = Vec::with_capacity(CHUNK_ITEMS);
    for item in items.by_ref() {
        match item {
            Ok(i) => {
                chunk.push(i);
                if chunk.len() == CHUNK_ITEMS {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_ITEMS));
                    if tx.blocking_send(Chunk::Items(full)).is_err() {
                        return Ended::Abandoned;
                    }
                }
            }
            // Items before the error are dropped with the file: they will be rolled back anyway.
            Err(e) => return Ended::Failed(e),
        }
    }
    if !chunk.is_empty() && tx.blocking_send(Chunk::Items(chunk)).is_err() {
        return Ended::Abandoned;
    }
    Ended::Complete
}

fn finish(tx: &mpsc::Sender<Chunk>, ended: Ended, stats: &ParseStats) {
    let last = match ended {
        Ended::Complete => Chunk::End(stats.clone()),
        Ended::Failed(e) => Chunk::Failed(e, stats.clone()),
        Ended::Abandoned => return,
    };
    // A closed channel means the importer stopped first: nothing left to tell.
    let _ = tx.blocking_send(last);
}

/// Counts the bytes read from the file, for progress.
struct Counting<R> {
    inner: R,
    n: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
