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

use super::mapping::{
    attr, checked_uai, finish_guardian, finish_pupil, set_guardian_attr, set_pupil_attr,
};
use super::records::{
    FieldIssue, Guardian, Link, ParseError, ParseItem, ParseStats, ParseWarning, Pupil, Record,
};
use super::values::parse_flag;

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

// Indexes into COLUMNS.
const UAI: usize = 0;
const INE: usize = 1;
const ELEVE_ID: usize = 2;
const NOM: usize = 3;
const PRENOM: usize = 4;
const NAISSANCE: usize = 5;
const MEF: usize = 6;
const DIVISION: usize = 7;
const BOURSIER: usize = 8;
const ECHELON: usize = 9;
const RESP_ID: usize = 10;
const RESP_NIVEAU: usize = 11;
const LIEN: usize = 12;
const NOM_RESP: usize = 13;
const PRENOM_RESP: usize = 14;
const MEL_RESP: usize = 15;
const TEL_RESP: usize = 16;
const PERCOIT: usize = 17;
const HEBERGE: usize = 18;
const SORTIE: usize = 19;

/// Streams the records of one département CSV file.
pub fn parse_csv<R: Read>(reader: R, file_name: &str) -> CsvParser<R> {
    let rdr = ReaderBuilder::new()
        .delimiter(b';')
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    CsvParser {
        rdr,
        file: file_name.to_owned(),
        cols: None,
        width: 0,
        row: ByteRecord::new(),
        pending: VecDeque::new(),
        stats: ParseStats {
            format: Some("CSV"),
            ..ParseStats::default()
        },
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
        ParseError {
            file: self.file.clone(),
            line,
            column: 0,
            message: message.into(),
        }
    }

    fn warn(
        &mut self,
        line: u64,
        column: u64,
        key: Option<&str>,
        code: &'static str,
        message: impl Into<String>,
    ) {
        self.stats.warnings += 1;
        let w = ParseWarning {
            line,
            column,
            record_key: key.map(str::to_owned),
            code,
            message: message.into(),
        };
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
            self.warn(
                line,
                0,
                None,
                "CSV_LATIN9",
                "the file is not UTF-8: reading it as ISO-8859-15 (Latin-9)",
            );
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
            let name = raw
                .trim_start_matches('\u{feff}')
                .split('(')
                .next()
                .unwrap_or_default();
            let name = name
                .trim()
                .trim_end_matches('*')
                .trim()
                .to_ascii_lowercase();
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
            let hint = if names.len() == 1 && names[0].contains(',') {
                " (the separator must be ';')"
            } else {
                ""
            };
            return Err(self.error(
                line,
                format!("missing required column(s): {}{hint}", missing.join(", ")),
            ));
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
            let msg = format!(
                "{} fields where the header has {}: row skipped",
                fields.len(),
                self.width
            );
            self.warn(line, 0, None, "ROW_LENGTH", msg);
            self.stats.ignore("skipped rows");
            return Ok(());
        }
        let get = |c: usize| {
            cols[c]
                .and_then(|i| fields.get(i))
                .map_or("", String::as_str)
        };
        let one = |c: usize| vec![get(c).to_owned()];
        let key = get(ELEVE_ID).to_owned();
        if key.is_empty() {
            self.warn(
                line,
                field_no(cols[ELEVE_ID]),
                None,
                "MISSING_ID",
                "no eleve_id_siecle: row skipped",
            );
            self.stats.ignore("skipped rows");
            return Ok(());
        }
        // Each issue with the column it comes from; pupil issues are reported with the pupil.
        let mut pupil_issues: Vec<(usize, FieldIssue)> = Vec::new();
        let mut row_issues: Vec<(usize, FieldIssue)> = Vec::new();
        let mut p = Pupil {
            key: key.clone(),
            siecle_id: Some(key.clone()),
            ..Pupil::default()
        };
        let uai = get(UAI);
        if !uai.is_empty() {
            let mut issues = Vec::new();
            let uai = checked_uai(uai, &mut issues);
            pupil_issues.extend(issues.into_iter().map(|i| (UAI, i)));
            p.structure_keys = vec![uai.clone()];
            p.uai = Some(uai);
        }
        for (c, a) in [
            (INE, attr::INE),
            (NOM, attr::FAMILY_NAME),
            (PRENOM, attr::GIVEN_NAME),
            (NAISSANCE, attr::BIRTH_DATE),
            (MEF, attr::MEF),
            (DIVISION, attr::CLASSES),
            (BOURSIER, attr::BOURSIER),
            (SORTIE, attr::LEFT_AT),
        ] {
            let mut issues = Vec::new();
            set_pupil_attr(&mut p, a, &one(c), &mut issues);
            pupil_issues.extend(issues.into_iter().map(|i| (c, i)));
        }
        p.echelon = match get(ECHELON) {
            "" => None,
            e @ ("1" | "2" | "3") => e.parse().ok(),
            bad => {
                row_issues.push((
                    ECHELON,
                    FieldIssue::dropped("BAD_VALUE", format!("echelon {bad:?} is not 1, 2 or 3")),
                ));
                None
            }
        };
        let mut issues = Vec::new();
        finish_pupil(&mut p, &mut issues);
        pupil_issues.extend(issues.drain(..).map(|i| (NOM, i)));

        let resp = get(RESP_ID).to_owned();
        let mut guardian_and_link = None;
        if !resp.is_empty() {
            let mut g = Guardian {
                key: resp.clone(),
                pupil_keys: vec![key.clone()],
                ..Guardian::default()
            };
            for (c, a) in [
                (NOM_RESP, attr::FAMILY_NAME),
                (PRENOM_RESP, attr::GIVEN_NAME),
                (MEL_RESP, attr::MAIL),
                (TEL_RESP, attr::MOBILE),
            ] {
                set_guardian_attr(&mut g, a, &one(c), &mut issues);
            }
            finish_guardian(&mut g, &mut issues);
            row_issues.extend(issues.drain(..).map(|i| (NOM_RESP, i)));
            let legal_level = match get(RESP_NIVEAU) {
                l @ ("0" | "1" | "2") => l.parse().unwrap_or(0),
                bad => {
                    row_issues.push((
                        RESP_NIVEAU,
                        FieldIssue::dropped(
                            "BAD_VALUE",
                            format!("resp_niveau {bad:?} is not 1 or 2 (0 for a contact)"),
                        ),
                    ));
                    0
                }
            };
            let mut flag = |c: usize, what: &str| -> Option<bool> {
                let raw = get(c);
                if raw.is_empty() {
                    return None;
                }
                let v = parse_flag(raw);
                if v.is_none() {
                    row_issues.push((
                        c,
                        FieldIssue::dropped("BAD_VALUE", format!("{what} {raw:?} is not 0 or 1")),
                    ));
                }
                v
            };
            let receives_aid = flag(PERCOIT, "percoit_aides");
            let houses_pupil = flag(HEBERGE, "heberge_eleve");
            let link = Link {
                pupil_key: key.clone(),
                guardian_key: resp,
                legal_level,
                relation_code: get(LIEN).to_owned(),
                financial: false,
                contact: false,
                receives_aid,
                houses_pupil,
            };
            guardian_and_link = Some((g, link));
        }

        let skip = pupil_issues
            .iter()
            .chain(row_issues.iter())
            .any(|(_, i)| i.value_dropped);
        let new_pupil = self.last_pupil.as_deref() != Some(key.as_str());
        for (c, i) in pupil_issues
            .into_iter()
            .filter(|(_, i)| skip || new_pupil || i.value_dropped)
            .chain(row_issues)
        {
            self.warn(line, field_no(cols[c]), Some(&key), i.code, i.message);
        }
        if skip {
            self.warn(
                line,
                0,
                Some(&key),
                "ROW_SKIPPED",
                "row skipped because of the problems above",
            );
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
