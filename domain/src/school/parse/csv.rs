//! The département CSV (ent-formats.md §5): the fallback when AAF is missing or late, filled
//! by hand or exported from SIECLE. One row per pupil–guardian link, `;`-separated.
//!
//! - **Headers** are matched by name, case-insensitively, in any order; a UTF-8 BOM, trailing
//!   `*` and annotations like `boursier(O/N)` are tolerated. A missing *required* column is a
//!   [`ParseError`]; optional columns may be absent (see [`COLUMNS`]). Extra columns are ignored.
//! - **Encoding:** UTF-8 (BOM or not). Spreadsheets on Windows save Latin-9/1252, so when a field
//!   is not valid UTF-8 the rest of the file is decoded as ISO-8859-15 (one `CSV_LATIN9`
//!   warning). Fields are decoded one by one from byte records: memory stays flat.
//! - **Rows:** a value that cannot be used (bad date, level, échelon, yes/no) gives its warning
//!   plus `ROW_SKIPPED`, and the row is dropped; soft problems (UAI check letter, INE layout,
//!   unknown MEF) are warnings only.
//! - **Grouping:** a [`Record::Pupil`] is emitted at the first row of each run of consecutive
//!   rows with the same `eleve_id_siecle`; rows of one pupil that are not contiguous emit it
//!   again (the importer upserts). A [`Record::Guardian`] (with this pupil in `pupil_keys`) and a
//!   [`Record::Link`] are emitted for every row naming a `resp_id`, so a guardian of siblings
//!   comes once per sibling.

use std::collections::VecDeque;
use std::io::Read;

use ::csv::{ByteRecord, ReaderBuilder};

use super::csv_row::{ELEVE_ID, Row, map_guardian_link, map_pupil};
use super::records::{ParseError, ParseItem, ParseStats, ParseWarning, Record};

/// Column names, and whether each is required.
pub const COLUMNS: [(&str, bool); 20] = [
    ("uai", true),
    ("ine", false),
    ("eleve_id_siecle", true),
    ("nom_eleve", true),
    ("prenom_eleve", true),
    ("date_naissance_eleve", true),
    ("code_mef", true),
    ("division", false),
    ("boursier", false),
    ("echelon", false),
    ("resp_id", true),
    ("resp_niveau", true),
    ("lien_parente", false),
    ("nom_resp", true),
    ("prenom_resp", true),
    ("mel_resp", false),
    ("tel_portable_resp", false),
    ("percoit_aides", false),
    ("heberge_eleve", false),
    ("date_sortie", false),
];

/// Streams the records of one département CSV file.
pub fn parse_csv<R: Read>(reader: R, file_name: &str) -> CsvParser<R> {
    let rdr = ReaderBuilder::new().delimiter(b';').has_headers(false).flexible(true).from_reader(reader);
    CsvParser {
        rdr,
        file: file_name.to_owned(),
        cols: None,
        width: 0,
        row: ByteRecord::new(),
        pending: VecDeque::new(),
        stats: ParseStats { format: Some("CSV"), ..ParseStats::default() },
        latin9: false,
        last_pupil: None,
        done: false,
    }
}

/// Iterator of records and warnings for one CSV file; stops at the first [`ParseError`].
pub struct CsvParser<R: Read> {
    rdr: ::csv::Reader<R>,
    file: String,
    /// Position of each known column in the file, once the header is read.
    cols: Option<[Option<usize>; 20]>,
    width: usize,
    row: ByteRecord,
    pending: VecDeque<ParseItem>,
    stats: ParseStats,
    latin9: bool,
    last_pupil: Option<String>,
    done: bool,
}

impl<R: Read> CsvParser<R> {
    /// Counters so far (complete once the iterator returned `None`).
    pub fn stats(&self) -> &ParseStats {
        &self.stats
    }

    fn error(&self, line: u64, message: impl Into<String>) -> ParseError {
        ParseError { file: self.file.clone(), line, column: 0, message: message.into() }
    }

    fn warn(&mut self, line: u64, column: u64, key: Option<&str>, code: &'static str, message: impl Into<String>) {
        self.stats.warnings += 1;
        let w = ParseWarning { line, column, record_key: key.map(str::to_owned), code, message: message.into() };
        self.pending.push_back(ParseItem::Warning(w));
    }

    fn record(&mut self, r: Record) {
        self.stats.records += 1;
        self.pending.push_back(ParseItem::Record(r));
    }

    /// Decodes one field: UTF-8 until a field proves otherwise, then ISO-8859-15.
    fn decode(&mut self, bytes: &[u8], line: u64) -> String {
        if !self.latin9 {
            if let Ok(s) = std::str::from_utf8(bytes) {
                return s.trim().to_owned();
            }
            self.latin9 = true;
            self.warn(line, 0, None, "CSV_LATIN9", "the file is not UTF-8: reading it as ISO-8859-15 (Latin-9)");
        }
        let (text, _) = encoding_rs::ISO_8859_15.decode_without_bom_handling(bytes);
        text.trim().to_owned()
    }

    fn read_row(&mut self) -> Result<Option<(u64, Vec<String>)>, ParseError> {
        let mut row = std::mem::take(&mut self.row);
        let more = self.rdr.read_byte_record(&mut row);
        let line = row.position().map_or(0, |p| p.line());
        let result = match more {
            Ok(false) => Ok(None),
            Ok(true) => {
                let fields = row.iter().map(|f| self.decode(f, line)).collect();
                Ok(Some((line, fields)))
            }
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                Err(self.error(line, format!("unreadable CSV: {e}")))
            }
        };
        self.row = row;
        result
    }

    fn read_header(&mut self) -> Result<(), ParseError> {
        let Some((line, names)) = self.read_row()? else {
            return Err(self.error(1, "empty file: no header line"));
        };
        let mut cols = [None; 20];
        for (i, raw) in names.iter().enumerate() {
            let name = raw.trim_start_matches('\u{feff}').split('(').next().unwrap_or_default();
            let name = name.trim().trim_end_matches('*').trim().to_ascii_lowercase();
            if let Some(c) = COLUMNS.iter().position(|(n, _)| *n == name) {
                cols[c].get_or_insert(i);
            }
        }
        let missing: Vec<&str> = COLUMNS
            .iter()
            .zip(cols.iter())
            .filter(|((_, req), found)| *req && found.is_none())
            .map(|((n, _), _)| *n)
            .collect();
        if !missing.is_empty() {
            let hint = if names.len() == 1 && names[0].contains(',') { " (the separator must be ';')" } else { "" };
            return Err(self.error(line, format!("missing required column(s): {}{hint}", missing.join(", "))));
        }
        self.width = names.len();
        self.cols = Some(cols);
        Ok(())
    }

    fn step(&mut self) -> Result<(), ParseError> {
        let Some(cols) = self.cols else {
            return self.read_header();
        };
        let Some((line, fields)) = self.read_row()? else {
            self.done = true;
            return Ok(());
        };
        if fields.iter().all(String::is_empty) {
            return Ok(());
        }
        if fields.len() != self.width {
            let msg = format!("{} fields where the header has {}: row skipped", fields.len(), self.width);
            self.warn(line, 0, None, "ROW_LENGTH", msg);
            self.stats.ignore("skipped rows");
            return Ok(());
        }
        let row = Row { cols: &cols, fields: &fields };
        let key = row.get(ELEVE_ID).to_owned();
        if key.is_empty() {
            self.warn(line, field_no(cols[ELEVE_ID]), None, "MISSING_ID", "no eleve_id_siecle: row skipped");
            self.stats.ignore("skipped rows");
            return Ok(());
        }
        let (p, pupil_issues) = map_pupil(&row, &key);
        let (guardian_and_link, row_issues) = map_guardian_link(&row, &key);

        let skip = pupil_issues.iter().chain(row_issues.iter()).any(|(_, i)| i.value_dropped);
        let new_pupil = self.last_pupil.as_deref() != Some(key.as_str());
        for (c, i) in pupil_issues.into_iter().filter(|(_, i)| skip || new_pupil || i.value_dropped).chain(row_issues) {
            self.warn(line, field_no(cols[c]), Some(&key), i.code, i.message);
        }
        if skip {
            self.warn(line, 0, Some(&key), "ROW_SKIPPED", "row skipped because of the problems above");
            self.stats.ignore("skipped rows");
            return Ok(());
        }
        if new_pupil {
            self.last_pupil = Some(key);
            self.record(Record::Pupil(p));
        }
        if let Some((g, link)) = guardian_and_link {
            self.record(Record::Guardian(g));
            self.record(Record::Link(link));
        }
        Ok(())
    }
}

/// 1-based field number of a column in the file (0 if the column is absent).
fn field_no(col: Option<usize>) -> u64 {
    col.map_or(0, |i| i as u64 + 1)
}

impl<R: Read> Iterator for CsvParser<R> {
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
