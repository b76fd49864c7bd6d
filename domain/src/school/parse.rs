//! Parsing half of the school-data importers: files in, typed records out, no database.
//!
//! Three sources (ent-formats.md §5): the académie's **AAF** XML export (primary), the
//! **département CSV** (fallback, one row per pupil–guardian link) and, when collèges send them,
//! **SIECLE BEE** XML exports. Each parser is an iterator of
//! `Result<`[`ParseItem`]`, `[`ParseError`]`>`:
//!
//! - it streams: memory stays flat whatever the file size (SIECLE responsables keep a small
//!   per-file map of address ids, see [`siecle`]);
//! - bad *values* (a UAI failing its check letter, a test INE, an unknown MEF, a bad date) are
//!   [`ParseWarning`]s, and the record is kept, because real exports contain them
//!   (ent-formats.md §6);
//! - a bad *file* (malformed or truncated XML, undecodable bytes, a missing CSV column) ends the
//!   stream with a [`ParseError`] carrying line and column: the importer must then discard what
//!   it staged from that file.
//!
//! [`parse_school_xml`] picks AAF or SIECLE from the root element.

pub mod aaf;
pub mod csv;
mod csv_row;
pub mod mapping;
mod position;
pub mod records;
pub mod siecle;
mod values;
mod xml;

use std::io::BufRead;

pub use aaf::parse_aaf;
pub use csv::{CsvParser, parse_csv};
pub use mapping::{apply_guardian_patch, apply_pupil_patch, apply_structure_patch};
pub use records::{
    Category, FieldIssue, Guardian, Link, ParseError, ParseItem, ParseStats, ParseWarning, Patch, Pupil, Record,
    Structure,
};
pub use siecle::parse_siecle;
pub use xml::XmlParser;

use xml::{Cx, Handler};

/// Streams an XML file whose format is given by its root: `ficAlimMENESR` (AAF) or `BEE_*`
/// (SIECLE). Any other root is a [`ParseError`].
pub fn parse_school_xml<R: BufRead>(reader: R, file_name: &str) -> XmlParser<R> {
    XmlParser::new(reader, file_name, Box::new(AutoHandler { inner: None }))
}

/// Chooses the format handler when the root element opens, then delegates to it.
struct AutoHandler {
    inner: Option<Box<dyn Handler>>,
}

impl Handler for AutoHandler {
    fn start(&mut self, cx: &mut Cx<'_>, name: &str, attrs: &[(String, String)]) -> Result<(), String> {
        if self.inner.is_none() {
            self.inner = Some(if name == "ficAlimMENESR" {
                Box::new(aaf::AafHandler::default())
            } else if name.starts_with("BEE_") {
                Box::new(siecle::SiecleHandler::default())
            } else {
                return Err(format!("unknown school file: root element <{name}> is neither AAF nor SIECLE"));
            });
        }
        match &mut self.inner {
            Some(h) => h.start(cx, name, attrs),
            None => Ok(()),
        }
    }

    fn end(&mut self, cx: &mut Cx<'_>, name: &str, text: &str) -> Result<(), String> {
        match &mut self.inner {
            Some(h) => h.end(cx, name, text),
            None => Ok(()),
        }
    }

    fn finish(&mut self, cx: &mut Cx<'_>) -> Result<(), String> {
        match &mut self.inner {
            Some(h) => h.finish(cx),
            None => Ok(()),
        }
    }
}

/// Runs a parser to the end, for small files and tests: every record and warning, or the error.
pub fn collect<I>(items: I) -> Result<(Vec<Record>, Vec<ParseWarning>), ParseError>
where
    I: IntoIterator<Item = Result<ParseItem, ParseError>>,
{
    let mut records = Vec::new();
    let mut warnings = Vec::new();
    for item in items {
        match item? {
            ParseItem::Record(r) => records.push(r),
            ParseItem::Warning(w) => warnings.push(w),
        }
    }
    Ok((records, warnings))
}

#[cfg(test)]
mod tests;
