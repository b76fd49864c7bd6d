//! The import's public vocabulary: formats, inputs, options, progress and the summary.
//!
//! The summary is `Serialize` so the CLI can print it as one JSON line and the same shape is
//! stored (per file) in `roster_import.files`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;
use crate::school::parse::ParseError;

/// Which parser reads the files of one import. One import has one format: the source-key
/// prefix (`aaf:`, `siecle:`, `csv:`) and the snapshot scope depend on it. Stored as
/// `aaf`, `siecle`, `csv` (`roster_import.format`); parsing takes any case (`--format AAF`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    sea_orm::DeriveValueType,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case", ascii_case_insensitive)]
#[sea_orm(value_type = "String")]
pub enum RosterFormat {
    /// The académie's AAF export (`ficAlimMENESR`).
    Aaf,
    /// SIECLE BEE XML exports of one collège each.
    Siecle,
    /// The département CSV, one row per pupil–guardian link.
    Csv,
}

/// One file to import: `name` is what reports and issues show (the original file name, not a
/// temporary path), `path` is where to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportFile {
    pub name: String,
    pub path: PathBuf,
}

impl ImportFile {
    /// A file named after the last component of its path.
    pub fn from_path(path: impl AsRef<Path>) -> ImportFile {
        let path = path.as_ref().to_owned();
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        ImportFile { name, path }
    }
}

/// How to import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// The files are the whole roster of their scope: pupils and guardians of that scope that
    /// are missing get `left_at`, and the links the files state replace the stored ones.
    pub full_snapshot: bool,
    /// Who ran it (staff account or `cli:<user>`), stored on the import.
    pub author: String,
}

crate::stored_enum! {
    /// Where an import stands. Stored as `running`, `succeeded`, `rejected` (`roster_import.status`).
    pub enum ImportStatus {
        /// Started, not finished (or the process died: nothing of it was committed).
        Running,
        /// Committed.
        Succeeded,
        /// A file was malformed (or the database failed): nothing of the import was kept.
        Rejected,
    }
}

/// What happened to the records of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Newly marked as left (snapshot leaver, `deleteRequest`, past leaving date).
    pub left: u64,
    /// Records refused (missing mandatory data, patch of an unknown record).
    pub rejected: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.created += o.created;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.left += o.left;
        self.rejected += o.rejected;
    }
}

/// What happened to pupil–guardian links.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCounts {
    pub created: u64,
    /// Fields or the stating side changed.
    pub updated: u64,
    /// Ended, i.e. deleted (links are facts of the current roster, not history): no longer
    /// stated by anyone (a full snapshot, a `replace` of the AAF link attribute), or the
    /// guardian left.
    pub ended: u64,
    /// Links that a guardian's record of this import states and the pupil's does not
    /// (`LINK_ONE_SIDED`, stored with legal level 0).
    pub one_sided: u64,
}

/// One file of the import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOutcome {
    pub name: String,
    /// Records the parser produced.
    pub records: u64,
    /// Warnings the parser produced.
    pub warnings: u64,
    /// Why the file (and so the import) was rejected.
    #[serde(default, with = "parse_error_serde")]
    pub error: Option<ParseError>,
}

/// The result of [`import_roster`](super::import_roster). The top-level counts are pupils
/// (names kept for the scripts reading the CLI's JSON); guardians, schools and links have theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    pub import_id: Uuid,
    pub status: ImportStatus,
    pub format: RosterFormat,
    pub full_snapshot: bool,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub left: u64,
    pub rejected: u64,
    /// Parse warnings plus the importer's own (rejected records, one-sided links…); all of
    /// them are counted, the first 10,000 are stored as `roster_import_issue` rows.
    pub warnings: u64,
    pub guardians: Counts,
    pub schools: Counts,
    pub links: LinkCounts,
    pub files: Vec<FileOutcome>,
    /// Why the import was rejected.
    pub error: Option<String>,
}

impl ImportSummary {
    /// `Ok` for a committed import; a rejected one becomes the `BAD_USER_INPUT` error that an
    /// API caller should see (file, line, column and what is wrong), naming the import.
    pub fn into_result(self) -> Result<ImportSummary, Error> {
        match self.status {
            ImportStatus::Succeeded => Ok(self),
            _ => {
                let what = self.error.clone().unwrap_or_else(|| "the import was rejected".to_owned());
                Err(Error::bad_input("files", format!("{what} (import {} rejected: nothing was kept)", self.import_id)))
            }
        }
    }

    pub(crate) fn new(import_id: Uuid, format: RosterFormat, full_snapshot: bool) -> ImportSummary {
        ImportSummary {
            import_id,
            status: ImportStatus::Running,
            format,
            full_snapshot,
            created: 0,
            updated: 0,
            unchanged: 0,
            left: 0,
            rejected: 0,
            warnings: 0,
            guardians: Counts::default(),
            schools: Counts::default(),
            links: LinkCounts::default(),
            files: Vec::new(),
            error: None,
        }
    }
}

/// Reported while a file is read (after each chunk of records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub file: String,
    /// Records of this file so far.
    pub records: u64,
    pub bytes_read: u64,
    pub bytes_total: u64,
}

/// `ParseError` is the parser's type (no serde): stored and printed as
/// `{file, line, column, message}`.
mod parse_error_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::school::parse::ParseError;

    #[derive(Serialize, Deserialize)]
    struct Mirror {
        file: String,
        line: u64,
        column: u64,
        message: String,
    }

    pub fn serialize<S: Serializer>(e: &Option<ParseError>, s: S) -> Result<S::Ok, S::Error> {
        e.as_ref()
            .map(|e| Mirror { file: e.file.clone(), line: e.line, column: e.column, message: e.message.clone() })
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ParseError>, D::Error> {
        let m: Option<Mirror> = Option::deserialize(d)?;
        Ok(m.map(|m| ParseError { file: m.file, line: m.line, column: m.column, message: m.message }))
    }
}
