//! MEF (Module Élémentaire de Formation): the 11-character code of a pupil's course, and the
//! collège grade level derived from it.
//!
//! Rule (ent-formats.md §3.3, verified on the AAF and SIECLE fixtures): the level is given by the
//! first 3 characters, `100`→6e, `101`→5e, `102`→4e, `103`→3e. Option variants keep the prefix
//! (`1001000B11A` 6EME BILANGUE, `1031000F11A` 3EME bilangue), so the prefix rule covers them.
//! SEGPA/ULIS MEFs use other prefixes that no public source confirms; they are *not* guessed:
//! an unknown MEF gives `None`, and the importer reports it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::IdError;

/// A collège grade level. [`GradeLevel::Other`] is never derived from a MEF (unknown MEFs give
/// `None`); it exists so an agent can record a pupil of a non-standard course by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum GradeLevel {
    Sixieme,
    Cinquieme,
    Quatrieme,
    Troisieme,
    Other,
}

impl GradeLevel {
    /// Every level, in school order.
    pub const ALL: [GradeLevel; 5] =
        [GradeLevel::Sixieme, GradeLevel::Cinquieme, GradeLevel::Quatrieme, GradeLevel::Troisieme, GradeLevel::Other];

    /// Stable code stored in the database and sent to clients.
    pub fn as_str(self) -> &'static str {
        match self {
            GradeLevel::Sixieme => "6E",
            GradeLevel::Cinquieme => "5E",
            GradeLevel::Quatrieme => "4E",
            GradeLevel::Troisieme => "3E",
            GradeLevel::Other => "OTHER",
        }
    }
}

impl FromStr for GradeLevel {
    type Err = IdError;
    /// Accepts the stable codes, case-insensitively, and the `6EME` spelling of exports.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "6E" | "6EME" => Ok(GradeLevel::Sixieme),
            "5E" | "5EME" => Ok(GradeLevel::Cinquieme),
            "4E" | "4EME" => Ok(GradeLevel::Quatrieme),
            "3E" | "3EME" => Ok(GradeLevel::Troisieme),
            "OTHER" => Ok(GradeLevel::Other),
            _ => Err(IdError::GradeLevel(s.to_owned())),
        }
    }
}

impl fmt::Display for GradeLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<GradeLevel> for &'static str {
    fn from(g: GradeLevel) -> &'static str {
        g.as_str()
    }
}

impl TryFrom<String> for GradeLevel {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// `true` for 11 ASCII letters or digits, the shape of every MEF seen in AAF and SIECLE files.
pub fn is_well_formed_mef(code: &str) -> bool {
    let code = code.trim();
    code.len() == 11 && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The collège level of a MEF code, from its first 3 characters; `None` when the code is
/// malformed or not a 6e–3e MEF (lycée, SEGPA/ULIS, unknown): never a guess.
pub fn grade_from_mef(code: &str) -> Option<GradeLevel> {
    let code = code.trim();
    if !is_well_formed_mef(code) {
        return None;
    }
    match code.get(..3)? {
        "100" => Some(GradeLevel::Sixieme),
        "101" => Some(GradeLevel::Cinquieme),
        "102" => Some(GradeLevel::Quatrieme),
        "103" => Some(GradeLevel::Troisieme),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_from_real_mefs() {
        // ent-formats.md §3.3: fixture codes and their option variants.
        for (mef, level) in [
            ("10010012110", GradeLevel::Sixieme),
            ("10110001110", GradeLevel::Cinquieme),
            ("10210001110", GradeLevel::Quatrieme),
            ("10310019110", GradeLevel::Troisieme),
            ("1001000B11A", GradeLevel::Sixieme),
            ("1011000B11A", GradeLevel::Cinquieme),
            ("1021000E11A", GradeLevel::Quatrieme),
            ("1031000E11A", GradeLevel::Troisieme),
            ("1031000F11A", GradeLevel::Troisieme),
        ] {
            assert_eq!(grade_from_mef(mef), Some(level), "{mef}");
        }
    }

    #[test]
    fn unknown_or_malformed_mefs_give_none() {
        // 24133610210 is "1CAP2 COIFFURE" in the AAF fixture: not collège.
        for mef in ["24133610210", "16710001110", "1001", "", "100100121100", "1001001211-"] {
            assert_eq!(grade_from_mef(mef), None, "{mef}");
        }
    }

    #[test]
    fn codes_round_trip() {
        for g in GradeLevel::ALL {
            assert_eq!(g.as_str().parse::<GradeLevel>(), Ok(g));
            assert_eq!(g.to_string(), g.as_str());
        }
        assert_eq!("6eme".parse::<GradeLevel>(), Ok(GradeLevel::Sixieme));
        assert!("7E".parse::<GradeLevel>().is_err());
    }
}
