//! Source keys, the rows we store for pupils, guardians and schools, and their fingerprints.
//!
//! **Keys.** A stored key is the source's own identifier behind a prefix naming the source, so
//! the three formats never collide within a funder and a link (stored by keys) can be joined to
//! its pupil and guardian without an id lookup:
//! - `aaf:<jointure>` for AAF pupils, guardians and structures. AAF jointure ids are unique
//!   only within one académie; a funder is one département, so (funder, `aaf:` jointure) is
//!   unique as long as a funder takes its AAF feed from one académie — true for the 92 and the
//!   78 (both ac-versailles). A funder fed by two académies would need the académie in the key.
//! - `siecle:<ELEVE_ID>` / `siecle:<PERSONNE_ID>` for SIECLE BEE files;
//! - `csv:<eleve_id_siecle>` / `csv:<resp_id>` for the département CSV;
//! - `uai:<UAI>` for schools named by a SIECLE or CSV file (they only give the UAI).
//!
//! **Fingerprints.** SHA-256 over exactly the stored, imported columns (normalised by the
//! parser), each value length-prefixed and tagged present/absent, behind a version tag: a
//! re-import of the same data gives the same fingerprint and the row is left alone. What the
//! importer decides rather than reads (`left_at`, the UAI of an AAF pupil resolved from its
//! structure, the MEF label of the pupil's code) is compared separately. Fields we do not store (other given names, groups) are
//! not part of it, so a row rebuilt from the database for a patch fingerprints like the record.

use chrono::NaiveDate;
use sea_orm::FromQueryResult;
use sha2::{Digest, Sha256};

use super::types::RosterFormat;
use crate::ids::{GradeLevel, Uai};
use crate::school::parse::{Guardian, Pupil, Structure};

/// Separator of a pupil's class codes in `pupil.class_name` (codes may contain spaces).
const CLASS_SEPARATOR: &str = ", ";

/// The prefix of people's keys (and of AAF structures' keys) for a format.
pub(super) fn prefix(format: RosterFormat) -> &'static str {
    match format {
        RosterFormat::Aaf => "aaf:",
        RosterFormat::Siecle => "siecle:",
        RosterFormat::Csv => "csv:",
    }
}

/// A person key: the source id behind the format's prefix.
pub(super) fn person_key(format: RosterFormat, raw: &str) -> String {
    format!("{}{raw}", prefix(format))
}

/// A school key: AAF structures by jointure, SIECLE/CSV schools by UAI.
pub(super) fn school_key(format: RosterFormat, raw: &str) -> String {
    match format {
        RosterFormat::Aaf => format!("aaf:{raw}"),
        RosterFormat::Siecle | RosterFormat::Csv => format!("uai:{raw}"),
    }
}

/// The source's own id inside a stored key.
pub(super) fn raw_key(key: &str) -> &str {
    key.split_once(':').map_or(key, |(_, raw)| raw)
}

/// Length-prefixed, presence-tagged SHA-256 of a row's fields.
struct Fingerprint(Sha256);

impl Fingerprint {
    fn new(kind: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"v1:");
        h.update(kind.as_bytes());
        Fingerprint(h)
    }

    fn opt(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            None => self.0.update([0u8]),
            Some(s) => {
                self.0.update([1u8]);
                self.0.update((s.len() as u64).to_le_bytes());
                self.0.update(s.as_bytes());
            }
        }
        self
    }

    fn val(&mut self, v: &str) -> &mut Self {
        self.opt(Some(v))
    }

    fn finish(&mut self) -> String {
        crate::identity::token::hex_encode(&std::mem::take(&mut self.0).finalize())
    }
}

fn flag(v: Option<bool>) -> Option<&'static str> {
    v.map(|b| if b { "1" } else { "0" })
}

/// The stored, imported columns of a pupil.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub(super) struct PupilRow {
    pub source_key: String,
    pub ine: Option<String>,
    pub siecle_id: Option<String>,
    pub family_name: String,
    pub usage_name: Option<String>,
    pub given_name: String,
    pub birth_date: Option<NaiveDate>,
    /// `aaf:<jointure>` of the first attachment structure, or `uai:<UAI>`.
    pub school_key: Option<String>,
    /// Given by SIECLE and CSV; `None` for AAF (resolved from the structure at the end).
    pub uai: Option<String>,
    pub class_name: Option<String>,
    pub mef: Option<String>,
    pub grade: Option<GradeLevel>,
    pub boursier: Option<bool>,
    pub echelon: Option<i16>,
}

impl PupilRow {
    /// The row of a parsed (or patched) pupil. A pupil attached to several structures is stored
    /// with the first one (the AAF `ENTPersonStructRattach` order).
    pub fn from_record(format: RosterFormat, p: &Pupil) -> PupilRow {
        PupilRow {
            source_key: person_key(format, &p.key),
            ine: p.ine.clone(),
            siecle_id: p.siecle_id.clone(),
            family_name: p.family_name.clone(),
            usage_name: p.usage_name.clone(),
            given_name: p.given_name.clone(),
            birth_date: p.birth_date,
            school_key: p.structure_keys.first().map(|k| school_key(format, k)),
            uai: if format == RosterFormat::Aaf { None } else { p.uai.clone() },
            class_name: (!p.classes.is_empty()).then(|| p.classes.join(CLASS_SEPARATOR)),
            mef: p.mef.clone(),
            grade: p.grade,
            boursier: p.boursier,
            echelon: p.echelon.map(i16::from),
        }
    }

    /// The record again, for applying an AAF `modifyRequest` to a stored pupil. Links are not
    /// rebuilt: a patch that touches them replaces them whole.
    pub fn to_record(&self, left_at: Option<NaiveDate>) -> Pupil {
        Pupil {
            key: raw_key(&self.source_key).to_owned(),
            ine: self.ine.clone(),
            siecle_id: self.siecle_id.clone(),
            family_name: self.family_name.clone(),
            usage_name: self.usage_name.clone(),
            given_name: self.given_name.clone(),
            other_given_names: Vec::new(),
            birth_date: self.birth_date,
            structure_keys: self.school_key.iter().map(|k| raw_key(k).to_owned()).collect(),
            uai: self.uai.clone(),
            classes: self
                .class_name
                .as_deref()
                .map(|c| c.split(CLASS_SEPARATOR).map(str::to_owned).collect())
                .unwrap_or_default(),
            mef: self.mef.clone(),
            // A label belongs to its MEF code (`mefs`): not rebuilt, a patch may give one.
            mef_label: None,
            grade: self.grade,
            boursier: self.boursier,
            echelon: self.echelon.and_then(|e| u8::try_from(e).ok()),
            left_at,
            links: Vec::new(),
        }
    }

    /// A pupil needs a family name and a given name: without them nobody can match or show it.
    pub fn is_complete(&self) -> bool {
        !self.family_name.is_empty() && !self.given_name.is_empty()
    }

    pub fn fingerprint(&self) -> String {
        let echelon = self.echelon.map(|e| e.to_string());
        let birth = self.birth_date.map(|d| d.to_string());
        Fingerprint::new("pupil")
            .opt(self.ine.as_deref())
            .opt(self.siecle_id.as_deref())
            .val(&self.family_name)
            .opt(self.usage_name.as_deref())
            .val(&self.given_name)
            .opt(birth.as_deref())
            .opt(self.school_key.as_deref())
            .opt(self.uai.as_deref())
            .opt(self.class_name.as_deref())
            .opt(self.mef.as_deref())
            .opt(self.grade.map(<&'static str>::from))
            .opt(flag(self.boursier))
            .opt(echelon.as_deref())
            .finish()
    }
}

/// The stored, imported columns of a guardian.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub(super) struct GuardianRow {
    pub source_key: String,
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
}

impl GuardianRow {
    pub fn from_record(format: RosterFormat, g: &Guardian) -> GuardianRow {
        GuardianRow {
            source_key: person_key(format, &g.key),
            title: g.title.clone(),
            family_name: g.family_name.clone(),
            usage_name: g.usage_name.clone(),
            given_name: g.given_name.clone(),
            email: g.email.clone(),
            mobile: g.mobile.clone(),
            home_phone: g.home_phone.clone(),
            work_phone: g.work_phone.clone(),
            postal_code: g.postal_code.clone(),
            city: g.city.clone(),
        }
    }

    /// The record again, for a patch; reverse links are not rebuilt (a patch of them replaces).
    pub fn to_record(&self) -> Guardian {
        Guardian {
            key: raw_key(&self.source_key).to_owned(),
            title: self.title.clone(),
            family_name: self.family_name.clone(),
            usage_name: self.usage_name.clone(),
            given_name: self.given_name.clone(),
            email: self.email.clone(),
            mobile: self.mobile.clone(),
            home_phone: self.home_phone.clone(),
            work_phone: self.work_phone.clone(),
            postal_code: self.postal_code.clone(),
            city: self.city.clone(),
            pupil_keys: Vec::new(),
        }
    }

    /// A person with no name at all cannot be shown to staff nor matched at sign-in.
    pub fn is_complete(&self) -> bool {
        !self.family_name.is_empty() || !self.given_name.is_empty()
    }

    pub fn fingerprint(&self) -> String {
        Fingerprint::new("guardian")
            .opt(self.title.as_deref())
            .val(&self.family_name)
            .opt(self.usage_name.as_deref())
            .val(&self.given_name)
            .opt(self.email.as_deref())
            .opt(self.mobile.as_deref())
            .opt(self.home_phone.as_deref())
            .opt(self.work_phone.as_deref())
            .opt(self.postal_code.as_deref())
            .opt(self.city.as_deref())
            .finish()
    }
}

/// The stored columns of a school.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub(super) struct SchoolRow {
    pub source_key: String,
    pub uai: Option<String>,
    pub name: String,
    pub kind: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub academie: Option<String>,
}

impl SchoolRow {
    pub fn from_record(format: RosterFormat, s: &Structure) -> SchoolRow {
        SchoolRow {
            source_key: school_key(format, &s.key),
            uai: s.uai.clone(),
            name: s.name.clone(),
            kind: s.kind.clone(),
            postal_code: s.postal_code.clone(),
            city: s.city.clone(),
            academie: s.academie.clone(),
        }
    }

    /// A school named only by its UAI (SIECLE `UAJ`, CSV `uai` column).
    pub fn from_uai(uai: &str) -> SchoolRow {
        SchoolRow {
            source_key: school_key(RosterFormat::Csv, uai),
            uai: Some(uai.to_owned()),
            name: String::new(),
            kind: None,
            postal_code: None,
            city: None,
            academie: None,
        }
    }

    pub fn to_record(&self) -> Structure {
        Structure {
            key: raw_key(&self.source_key).to_owned(),
            uai: self.uai.clone(),
            name: self.name.clone(),
            kind: self.kind.clone(),
            postal_code: self.postal_code.clone(),
            city: self.city.clone(),
            academie: self.academie.clone(),
        }
    }

    /// The UAI passes its format and check-letter test (pseudo-structures do not).
    pub fn uai_valid(&self) -> bool {
        self.uai.as_deref().is_some_and(|u| Uai::parse(u).is_ok())
    }

    pub fn fingerprint(&self) -> String {
        Fingerprint::new("school")
            .opt(self.uai.as_deref())
            .val(&self.name)
            .opt(self.kind.as_deref())
            .opt(self.postal_code.as_deref())
            .opt(self.city.as_deref())
            .opt(self.academie.as_deref())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_round_trips() {
        assert_eq!(person_key(RosterFormat::Aaf, "2605692"), "aaf:2605692");
        assert_eq!(school_key(RosterFormat::Siecle, "0921778H"), "uai:0921778H");
        assert_eq!(raw_key("siecle:12"), "12");
        let p = Pupil {
            key: "7".into(),
            family_name: "DUPONT".into(),
            given_name: "Zoé".into(),
            structure_keys: vec!["52006".into(), "52007".into()],
            uai: Some("0921778H".into()),
            classes: vec!["T CAP".into(), "601".into()],
            echelon: Some(2),
            ..Pupil::default()
        };
        let row = PupilRow::from_record(RosterFormat::Aaf, &p);
        assert_eq!((row.school_key.as_deref(), row.uai.as_deref()), (Some("aaf:52006"), None));
        let again = PupilRow::from_record(RosterFormat::Aaf, &row.to_record(None));
        assert_eq!(again, row);
        assert_eq!(again.fingerprint(), row.fingerprint());
        let mut other = row.clone();
        other.usage_name = Some(String::new());
        assert_ne!(other.fingerprint(), row.fingerprint()); // absent ≠ empty
    }
}
