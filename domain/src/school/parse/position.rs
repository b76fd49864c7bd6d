//! Line and column numbers for a streaming reader.
//!
//! quick-xml reports byte offsets; people need lines. [`LineTracker`] sits between the file and
//! the parser and counts newlines as bytes are consumed. It keeps the offsets of the newlines
//! consumed since the last [`LineTracker::mark`] only (the parser marks before each event), so
//! any offset inside the event being read can be placed, at constant memory.

use std::io::{self, BufRead, Read};

/// A 1-based position in the file (column in bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub line: u64,
    pub column: u64,
}

/// A `BufRead` wrapper that counts lines over consumed bytes. It remembers the offsets of the
/// newlines consumed since the last [`LineTracker::mark`] only, which is enough to place any
/// offset inside the event being read.
pub(crate) struct LineTracker<R> {
    inner: R,
    offset: u64,
    line: u64,
    /// Offset of the first byte of the current line (after a BOM on line 1).
    pub(crate) line_start: u64,
    mark_line: u64,
    pub(crate) mark_line_start: u64,
    mark_offset: u64,
    recent: Vec<u64>,
}

impl<R: BufRead> LineTracker<R> {
    pub(crate) fn new(inner: R) -> Self {
        LineTracker {
            inner,
            offset: 0,
            line: 1,
            line_start: 0,
            mark_line: 1,
            mark_line_start: 0,
            mark_offset: 0,
            recent: Vec::new(),
        }
    }

    /// Forgets the newlines seen so far: positions before this point are no longer needed.
    pub(crate) fn mark(&mut self) {
        self.recent.clear();
        self.mark_offset = self.offset;
        self.mark_line = self.line;
        self.mark_line_start = self.line_start;
    }

    /// Line and column of a byte offset at or after the mark (best effort before it).
    pub(crate) fn locate(&self, at: u64) -> Pos {
        if at >= self.mark_offset {
            let k = self.recent.partition_point(|&nl| nl < at);
            let start = if k > 0 { self.recent[k - 1] + 1 } else { self.mark_line_start };
            Pos { line: self.mark_line + k as u64, column: at.saturating_sub(start) + 1 }
        } else {
            Pos { line: self.mark_line, column: at.saturating_sub(self.mark_line_start) + 1 }
        }
    }
}

impl<R: BufRead> BufRead for LineTracker<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if amt > 0 {
            // The bytes being consumed are the head of the current buffer: `fill_buf` on a
            // non-empty buffer returns it again without reading.
            if let Ok(buf) = self.inner.fill_buf() {
                for (i, b) in buf.iter().take(amt).enumerate() {
                    if *b == b'\n' {
                        let at = self.offset + i as u64;
                        self.recent.push(at);
                        self.line += 1;
                        self.line_start = at + 1;
                    }
                }
            }
        }
        self.offset += amt as u64;
        self.inner.consume(amt);
    }
}

impl<R: BufRead> Read for LineTracker<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let avail = self.fill_buf()?;
            let n = avail.len().min(out.len());
            out[..n].copy_from_slice(&avail[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_across_consumes() {
        let mut t = LineTracker::new(&b"ab\ncd\r\nef\n\ngh"[..]);
        t.mark();
        t.consume(4); // "ab\nc"
        assert_eq!(t.locate(0), Pos { line: 1, column: 1 });
        assert_eq!(t.locate(3), Pos { line: 2, column: 1 });
        t.mark();
        let mut rest = Vec::new();
        t.read_to_end(&mut rest).unwrap();
        assert_eq!(t.locate(4), Pos { line: 2, column: 2 });
        assert_eq!(t.locate(7), Pos { line: 3, column: 1 });
        assert_eq!(t.locate(11), Pos { line: 5, column: 1 });
        assert_eq!(t.locate(12), Pos { line: 5, column: 2 });
        // Before the mark, on the mark's line: still right.
        assert_eq!(t.locate(3), Pos { line: 2, column: 1 });
    }
}
