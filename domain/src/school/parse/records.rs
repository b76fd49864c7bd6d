//! The typed output shared by every school-data format (AAF, SIECLE BEE, département CSV).
//!
//! Importers consume a stream of [`ParseItem`]s: [`Record`]s to upsert and [`ParseWarning`]s to
//! report. A [`ParseError`] ends the stream: the file is malformed and must be rejected whole
//! (ent-formats.md §6: "don't half-import"), so the importer stages records and commits only
//! when the stream ended without error.
//!
//! Keys are the source's own identifiers, never our database ids: AAF jointure ids (unique only
//! within one académie, so the importer prefixes them), SIECLE `ELEVE_ID`/`PERSONNE_ID`, or the
//! UAI for a SIECLE school. Identifiers that fail a soft check (UAI, INE) are kept as found,
//! normalised, with a warning.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ids::GradeLevel;

/// What an AAF request (or a later patch) is about. Display/FromStr give the AAF spelling, as
/// in `categoriePersonne`/`categorieStructure` (the variant names); parsing fails for those we
/// ignore (`PersEducNat`, …).
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
)]
pub enum Category {
    /// A pupil (`Eleve`).
    Eleve,
    /// A parent, guardian or contact (`PersRelEleve`).
    PersRelEleve,
    /// A school or pseudo-structure (`EtabEducNat`).
    EtabEducNat,
}

/// A school (AAF `EtabEducNat`, or the school named by a SIECLE file's `UAJ`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Structure {
    /// AAF structure jointure id, or the UAI for SIECLE.
    pub key: String,
    /// Normalised UAI, kept even when its check letter is wrong (a warning says so).
    pub uai: Option<String>,
    /// Display name; AAF's `$` separators become ` - `. Empty when the format has none (SIECLE).
    pub name: String,
    /// `COLLEGE`, `ECOLE`, `SANS OBJET`… as exported.
    pub kind: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    /// `ENTServAcAcademie`, e.g. `VERSAILLES`.
    pub academie: Option<String>,
}

/// A pupil.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pupil {
    /// AAF `ENTPersonJointure`, SIECLE `ELEVE_ID`, or CSV `eleve_id_siecle`.
    pub key: String,
    /// Normalised INE, kept whatever its layout (warnings say what looks wrong).
    pub ine: Option<String>,
    /// The SIECLE `ELEVE_ID` in the collège (AAF `ENTEleveStructRattachId`).
    pub siecle_id: Option<String>,
    /// Birth name (AAF `ENTPersonNomPatro`, SIECLE `NOM_DE_FAMILLE`).
    pub family_name: String,
    /// Usage name (AAF `sn`, SIECLE `NOM_USAGE`), when given.
    pub usage_name: Option<String>,
    pub given_name: String,
    pub other_given_names: Vec<String>,
    pub birth_date: Option<NaiveDate>,
    /// AAF structure jointure ids (`ENTPersonStructRattach`, may be several), or the UAI.
    pub structure_keys: Vec<String>,
    /// The school's UAI when the format gives it per pupil (SIECLE, CSV); AAF gives
    /// `structure_keys` instead, resolved through the `Structure` records.
    pub uai: Option<String>,
    /// Division (class) codes only, never groups; codes may contain spaces (`T CAP`).
    pub classes: Vec<String>,
    pub mef: Option<String>,
    /// The MEF's label as the pupil's record gives it (AAF `ENTEleveLibelleMEF`, e.g. `5EME`).
    /// SIECLE gives labels per MEF code in its nomenclature ([`Record::Mef`]), the CSV none.
    pub mef_label: Option<String>,
    /// From the MEF; `None` when the MEF is absent or not a known collège MEF.
    pub grade: Option<GradeLevel>,
    pub boursier: Option<bool>,
    /// Bourse de collège échelon 1..=3; only the département CSV carries it.
    pub echelon: Option<u8>,
    /// SIECLE `DATE_SORTIE` / AAF `ENTEleveDateSortieStructRattach`: the pupil left.
    pub left_at: Option<NaiveDate>,
    /// AAF links, embedded in the pupil. SIECLE and CSV links come as [`Record::Link`].
    pub links: Vec<Link>,
}

/// A parent, guardian or contact person.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guardian {
    /// AAF `ENTPersonJointure`, SIECLE `PERSONNE_ID`, or CSV `resp_id`.
    pub key: String,
    /// `M.`, `Mme`, `MME`… as exported.
    pub title: Option<String>,
    pub family_name: String,
    pub usage_name: Option<String>,
    pub given_name: String,
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub home_phone: Option<String>,
    pub work_phone: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    /// Reverse links (AAF `ENTAuxPersRelEleveEleve`): the same relation seen from the other
    /// side, to reconcile with [`Pupil::links`] — never to trust alone.
    pub pupil_keys: Vec<String>,
}

/// A pupil–person relation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub pupil_key: String,
    pub guardian_key: String,
    /// 1 or 2 for a legal guardian (RL1/RL2; both can be 1), 0 for anyone else.
    pub legal_level: u8,
    /// Raw family-link code: old AAF 1/2/4…, or SIECLE `CODE_PARENTE` 10/20/…
    pub relation_code: String,
    /// Financially responsible (AAF respFinancier, SIECLE `PAIE_FRAIS_SCOLAIRES`/`RESP_FINANCIER`).
    pub financial: bool,
    /// Contact person (AAF contact field, SIECLE `PERS_CONTACT`).
    pub contact: bool,
    /// SIECLE `PERCOIT_LES_AIDES` / CSV `percoit_aides`: who receives the aid.
    pub receives_aid: Option<bool>,
    /// SIECLE `HEBERGE_ELEVE` / CSV `heberge_eleve`: the split-family signal.
    pub houses_pupil: Option<bool>,
}

/// A patch: attribute name (AAF vocabulary, see `aaf::attr`) and its new values. An empty
/// value list clears the field ("replace" with `<value/>`).
pub type Patch = Vec<(String, Vec<String>)>;

/// One thing to upsert, delete or patch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    Structure(Structure),
    Pupil(Pupil),
    Guardian(Guardian),
    /// A link given separately from the pupil (SIECLE, CSV).
    Link(Link),
    /// AAF `deleteRequest`: the person or structure left. Never hard-delete: benefit history
    /// must survive (ent-formats.md §6).
    Delete {
        category: Category,
        key: String,
    },
    /// AAF `modifyRequest`, or a late SIECLE section (classes, addresses) completing a record
    /// emitted earlier in the same file. Apply with `apply_*_patch`.
    Modify {
        category: Category,
        key: String,
        patch: Patch,
    },
    /// A MEF label from a SIECLE nomenclature.
    Mef {
        code: String,
        label: String,
        edition_label: Option<String>,
        grade: Option<GradeLevel>,
    },
}

/// A non-fatal problem: the record was kept (maybe without the bad value) or, for a CSV row,
/// skipped; the import goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParseWarning {
    /// 1-based line of the element or row concerned.
    pub line: u64,
    /// 1-based column in bytes for XML; the 1-based field number for CSV (0 = whole row).
    pub column: u64,
    pub record_key: Option<String>,
    /// Stable code: `UAI_CHECK_LETTER`, `INVALID_UAI`, `INE_FORMAT`, `INE_CHECK_LETTER`,
    /// `UNKNOWN_MEF`, `BAD_DATE`, `BAD_VALUE`, `BAD_LINK`, `DUPLICATE_LINK`, `MISSING_ID`,
    /// `MISSING_NAME`, `MISSING_CATEGORY`, `UNSUPPORTED_OPERATION`, `UNKNOWN_ENTITY`,
    /// `ROW_SKIPPED`, `ROW_LENGTH`, `CSV_LATIN9`, `MISSING_UAI`.
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for ParseWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: [{}] ", self.line, self.column, self.code)?;
        if let Some(k) = &self.record_key {
            write!(f, "{k}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// The file is malformed (bad XML, truncated, undecodable, missing CSV column): reject it whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ParseError {
    /// The name the caller gave for the file.
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

/// One element of a parse stream.
// Records are the common case: boxing them would cost an allocation each for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseItem {
    Record(Record),
    Warning(ParseWarning),
}

/// Counters available from a parser once it has run (or while it runs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// `"AAF"`, `"BEE_ELEVES"`, `"BEE_RESPONSABLES"`, `"BEE_NOMENCLATURES"`, `"BEE_STRUCTURES"`,
    /// `"CSV"`, once known.
    pub format: Option<&'static str>,
    pub records: u64,
    pub warnings: u64,
    /// Items skipped on purpose, by kind (AAF categories like `PersEducNat`, SIECLE sections,
    /// skipped CSV rows), sorted by name.
    pub ignored: Vec<(String, u64)>,
}

impl ParseStats {
    /// Counts one ignored item of this kind.
    pub fn ignore(&mut self, kind: &str) {
        match self.ignored.binary_search_by(|(k, _)| k.as_str().cmp(kind)) {
            Ok(i) => self.ignored[i].1 += 1,
            Err(i) => self.ignored.insert(i, (kind.to_owned(), 1)),
        }
    }

    /// How many items of this kind were ignored.
    pub fn ignored_count(&self, kind: &str) -> u64 {
        self.ignored.iter().find(|(k, _)| k == kind).map_or(0, |(_, n)| *n)
    }
}

/// A problem found while mapping one value to a field, before it gets a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    pub code: &'static str,
    pub message: String,
    /// The value could not be used and the field was left unset (a CSV row is then skipped);
    /// `false` for soft checks, where the value was kept.
    pub value_dropped: bool,
}

impl FieldIssue {
    pub(crate) fn soft(code: &'static str, message: impl Into<String>) -> Self {
        FieldIssue { code, message: message.into(), value_dropped: false }
    }

    pub(crate) fn dropped(code: &'static str, message: impl Into<String>) -> Self {
        FieldIssue { code, message: message.into(), value_dropped: true }
    }
}
