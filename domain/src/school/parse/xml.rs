//! Shared XML plumbing over `quick-xml`: streaming, encodings, DTD-free, positions.
//!
//! - **Streaming:** events are read from a `BufRead` into one reused buffer, and a format
//!   handler turns them into records as elements close; memory is bounded by the largest single
//!   element, not by the file (AAF sets run to hundreds of MB).
//! - **Encodings** (ent-formats.md §6): UTF-8 by default or with a BOM; otherwise the encoding
//!   declared in `<?xml … encoding="ISO-8859-15"?>` (SIECLE exports, 2020 AAF structures), which
//!   quick-xml applies when it reads the declaration. Nothing is guessed: bytes that do not decode
//!   in the declared encoding are a fatal error. An encoding `encoding_rs` does not know, and
//!   UTF-16 (which the byte-level parser cannot read), are refused up front.
//! - **No DTD:** the `DOCTYPE` is skipped, never fetched nor expanded; only the five predefined
//!   entities and character references are resolved.
//! - **Positions:** errors and warnings get 1-based line and (byte) column numbers from
//!   `position::LineTracker`, at constant memory.

use std::collections::VecDeque;
use std::io::BufRead;

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;

use super::position::{LineTracker, Pos};
use super::records::{FieldIssue, ParseError, ParseItem, ParseStats, ParseWarning, Record};

/// What a format handler gets for each event.
pub(crate) struct Cx<'a> {
    out: &'a mut VecDeque<ParseItem>,
    pub stats: &'a mut ParseStats,
    /// Where the current event starts.
    pub pos: Pos,
    /// The enclosing element (`""` for the root).
    pub parent: &'a str,
    /// Depth of the current element, the root being 1.
    pub depth: usize,
}

impl Cx<'_> {
    pub fn record(&mut self, r: Record) {
        self.stats.records += 1;
        self.out.push_back(ParseItem::Record(r));
    }

    pub fn warn(&mut self, pos: Pos, key: Option<&str>, code: &'static str, message: impl Into<String>) {
        self.stats.warnings += 1;
        let w = ParseWarning {
            line: pos.line,
            column: pos.column,
            record_key: key.map(str::to_owned),
            code,
            message: message.into(),
        };
        self.out.push_back(ParseItem::Warning(w));
    }

    pub fn issues(&mut self, pos: Pos, key: &str, issues: Vec<FieldIssue>) {
        for i in issues {
            self.warn(pos, Some(key), i.code, i.message);
        }
    }
}

/// A format: reacts to elements opening and closing. An `Err` is a fatal, positioned error.
pub(crate) trait Handler {
    fn start(&mut self, cx: &mut Cx<'_>, name: &str, attrs: &[(String, String)]) -> Result<(), String>;
    /// `text` is the element's own text (meaningful for leaf elements).
    fn end(&mut self, cx: &mut Cx<'_>, name: &str, text: &str) -> Result<(), String>;
    fn finish(&mut self, _cx: &mut Cx<'_>) -> Result<(), String> {
        Ok(())
    }
}

/// A streaming XML parser for one school-data file: an iterator of records and warnings that
/// stops at the first [`ParseError`].
pub struct XmlParser<R: BufRead> {
    reader: Reader<LineTracker<R>>,
    buf: Vec<u8>,
    text: String,
    /// Open element names, concatenated; `ends[i]` is where the i-th name ends.
    names: String,
    ends: Vec<usize>,
    attrs: Vec<(String, String)>,
    handler: Box<dyn Handler>,
    pending: VecDeque<ParseItem>,
    stats: ParseStats,
    file: String,
    bom_len: u64,
    started: bool,
    seen_root: bool,
    done: bool,
}

impl<R: BufRead> XmlParser<R> {
    pub(crate) fn new(input: R, file_name: &str, handler: Box<dyn Handler>) -> Self {
        let mut reader = Reader::from_reader(LineTracker::new(input));
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        config.trim_text(false);
        XmlParser {
            reader,
            buf: Vec::with_capacity(8 * 1024),
            text: String::new(),
            names: String::new(),
            ends: Vec::new(),
            attrs: Vec::new(),
            handler,
            pending: VecDeque::new(),
            stats: ParseStats::default(),
            file: file_name.to_owned(),
            bom_len: 0,
            started: false,
            seen_root: false,
            done: false,
        }
    }

    /// Counters so far (complete once the iterator returned `None`).
    pub fn stats(&self) -> &ParseStats {
        &self.stats
    }

    fn locate(&self, qx_offset: u64) -> Pos {
        self.reader.get_ref().locate(qx_offset + self.bom_len)
    }

    fn error(&self, pos: Pos, message: impl Into<String>) -> ParseError {
        ParseError { file: self.file.clone(), line: pos.line, column: pos.column, message: message.into() }
    }

    fn step(&mut self) -> Result<(), ParseError> {
        if !self.started {
            self.started = true;
            // quick-xml drops a BOM without counting it in its offsets; we count every byte.
            self.bom_len = match self.reader.get_mut().fill_buf() {
                Ok([0xEF, 0xBB, 0xBF, ..]) => 3,
                Ok([0xFE, 0xFF, ..] | [0xFF, 0xFE, ..]) => 2,
                Ok(_) => 0,
                Err(e) => {
                    return Err(self.error(Pos { line: 1, column: 1 }, format!("read error: {e}")));
                }
            };
            let tracker = self.reader.get_mut();
            tracker.line_start = self.bom_len;
            tracker.mark_line_start = self.bom_len;
        }
        let start = self.reader.buffer_position();
        self.reader.get_mut().mark();
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let result = match self.reader.read_event_into(&mut buf) {
            Ok(event) => self.handle(event, start),
            Err(e) => {
                let pos = self.locate(self.reader.error_position());
                Err(self.error(pos, format!("malformed XML: {e}")))
            }
        };
        self.buf = buf;
        result
    }

    fn handle(&mut self, event: Event<'_>, start: u64) -> Result<(), ParseError> {
        let pos = self.locate(start);
        let decoder = self.reader.decoder();
        let enc = decoder.encoding();
        if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
            return Err(self.error(pos, "UTF-16 files are not supported: export as UTF-8 or ISO-8859-15"));
        }
        let bad_bytes = |what: &str| format!("{what} is not valid {} (is the declared encoding right?)", enc.name());
        match event {
            Event::Decl(d) => {
                if let Some(label) = d.encoding() {
                    let label = label.map_err(|e| self.error(pos, format!("malformed XML declaration: {e}")))?;
                    if encoding_rs::Encoding::for_label(&label).is_none() {
                        let shown = String::from_utf8_lossy(&label).into_owned();
                        return Err(self.error(pos, format!("unsupported encoding {shown:?}")));
                    }
                }
            }
            Event::Start(e) => {
                let qname = e.name();
                let name = decoder.decode(qname.as_ref()).map_err(|_| self.error(pos, bad_bytes("an element name")))?;
                self.attrs.clear();
                for a in e.attributes() {
                    let a = a.map_err(|err| self.error(pos, format!("malformed attribute: {err}")))?;
                    let key = decoder
                        .decode(a.key.as_ref())
                        .map_err(|_| self.error(pos, bad_bytes("an attribute name")))?
                        .into_owned();
                    let value = a
                        .decode_and_unescape_value(decoder)
                        .map_err(|err| self.error(pos, format!("bad attribute value: {err}")))?
                        .into_owned();
                    self.attrs.push((key, value));
                }
                self.open(pos, &name)?;
            }
            Event::Empty(e) => {
                // Not produced with `expand_empty_elements`, handled for completeness.
                let name = decoder
                    .decode(e.name().as_ref())
                    .map_err(|_| self.error(pos, bad_bytes("an element name")))?
                    .into_owned();
                self.attrs.clear();
                self.open(pos, &name)?;
                self.close(pos)?;
            }
            Event::End(_) => self.close(pos)?,
            Event::Text(t) => {
                let s = t.xml10_content().map_err(|_| {
                    let at = std::str::from_utf8(&t).err().map_or(0, |e| e.valid_up_to() as u64);
                    self.error(self.locate(start + at), bad_bytes("the text"))
                })?;
                if self.ends.is_empty() {
                    if !s.trim().is_empty() {
                        return Err(self.error(pos, "text outside the root element"));
                    }
                } else {
                    self.text.push_str(&s);
                }
            }
            Event::CData(c) => {
                let s = c.xml10_content().map_err(|_| self.error(pos, bad_bytes("a CDATA section")))?;
                self.text.push_str(&s);
            }
            Event::GeneralRef(r) => {
                if let Ok(Some(ch)) = r.resolve_char_ref() {
                    self.text.push(ch);
                } else {
                    let name = r.decode().map_err(|_| self.error(pos, bad_bytes("an entity name")))?.into_owned();
                    match resolve_predefined_entity(&name) {
                        Some(s) => self.text.push_str(s),
                        None => {
                            // A DTD-declared entity: we never read the DTD, so keep it literally.
                            self.text.push('&');
                            self.text.push_str(&name);
                            self.text.push(';');
                            let mut cx = self.cx(pos);
                            cx.warn(
                                pos,
                                None,
                                "UNKNOWN_ENTITY",
                                format!("entity &{name}; is not expanded (DTDs are never read)"),
                            );
                        }
                    }
                }
            }
            Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof => {
                if let Some(open) = self.top() {
                    let msg = format!("unexpected end of file: <{open}> is not closed (truncated file?)");
                    return Err(self.error(pos, msg));
                }
                if !self.seen_root {
                    return Err(self.error(pos, "no XML element in the file (empty file?)"));
                }
                let result = {
                    let (handler, mut cx) = self.split(pos);
                    handler.finish(&mut cx)
                };
                result.map_err(|m| self.error(pos, m))?;
                self.done = true;
            }
        }
        Ok(())
    }

    fn top(&self) -> Option<&str> {
        let depth = self.ends.len();
        (depth > 0).then(|| self.names.get(name_range(&self.ends, depth)).unwrap_or_default())
    }

    fn open(&mut self, pos: Pos, name: &str) -> Result<(), ParseError> {
        if self.ends.is_empty() {
            if self.seen_root {
                return Err(self.error(pos, format!("a second root element <{name}>")));
            }
            self.seen_root = true;
        }
        let parent = name_range(&self.ends, self.ends.len());
        self.names.push_str(name);
        self.ends.push(self.names.len());
        self.text.clear();
        let depth = self.ends.len();
        // Disjoint borrows: the handler reads names and attributes and writes the queue.
        let XmlParser { names, attrs, handler, pending, stats, .. } = self;
        let mut cx = Cx { out: pending, stats, pos, parent: names.get(parent).unwrap_or_default(), depth };
        let result = handler.start(&mut cx, name, attrs);
        result.map_err(|m| self.error(pos, m))
    }

    fn close(&mut self, pos: Pos) -> Result<(), ParseError> {
        let depth = self.ends.len();
        if depth == 0 {
            return Err(self.error(pos, "closing tag without an open element"));
        }
        let own = name_range(&self.ends, depth);
        let parent = name_range(&self.ends, depth - 1);
        let XmlParser { names, text, handler, pending, stats, .. } = self;
        let name = names.get(own.clone()).unwrap_or_default();
        let mut cx = Cx { out: pending, stats, pos, parent: names.get(parent).unwrap_or_default(), depth };
        let result = handler.end(&mut cx, name, text);
        self.names.truncate(own.start);
        self.ends.pop();
        self.text.clear();
        result.map_err(|m| self.error(pos, m))
    }

    fn cx(&mut self, pos: Pos) -> Cx<'_> {
        Cx { out: &mut self.pending, stats: &mut self.stats, pos, parent: "", depth: self.ends.len() }
    }

    fn split(&mut self, pos: Pos) -> (&mut Box<dyn Handler>, Cx<'_>) {
        let cx = Cx { out: &mut self.pending, stats: &mut self.stats, pos, parent: "", depth: 0 };
        (&mut self.handler, cx)
    }
}

/// Where the name of the element at `depth` (1 = root) lies in the concatenated names;
/// an empty range for depth 0.
fn name_range(ends: &[usize], depth: usize) -> std::ops::Range<usize> {
    if depth == 0 {
        return 0..0;
    }
    let end = ends.get(depth - 1).copied().unwrap_or(0);
    let start = depth.checked_sub(2).and_then(|i| ends.get(i)).copied().unwrap_or(0);
    start..end
}

impl<R: BufRead> Iterator for XmlParser<R> {
    type Item = Result<ParseItem, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(Ok(item));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.step() {
                self.done = true;
                self.pending.clear();
                return Some(Err(e));
            }
        }
    }
}
