//! MEF (Module Élémentaire de Formation): the 11-character code of a pupil's course, and the
//! collège grade level derived from it.
//!
//! Rule (ent-formats.md §3.3, verified on the AAF and SIECLE fixtures): the level is given by the
//! first 3 characters, `100`→6e, `101`→5e, `102`→4e, `103`→3e. Option variants keep the prefix
//! (`1001000B11A` 6EME BILANGUE, `1031000F11A` 3EME bilangue), so the prefix rule covers them.
//! SEGPA/ULIS MEFs use other prefixes that no public source confirms; they are *not* guessed:
//! an unknown MEF gives `None`, and the importer reports it.

use serde::{Deserialize, Serialize};

use super::IdError;

/// A collège grade level. [`GradeLevel::Other`] is never derived from a MEF (unknown MEFs give
/// `None`); it exists so an agent can record a pupil of a non-standard course by hand.
///
/// The stable code (`6E`, `5E`, `4E`, `3E`, `OTHER`) is what `pupil.grade` and the stored
/// policies hold; parsing also accepts the `6EME` spelling of exports, in any case. Its own
/// derives rather than `stored_enum!`: the stored text is these codes, not snake_case.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
    sea_orm::DeriveValueType,
)]
#[serde(into = "&'static str", try_from = "String")]
#[strum(ascii_case_insensitive, parse_err_ty = IdError, parse_err_fn = unknown_grade)]
#[sea_orm(value_type = "String")]
pub enum GradeLevel {
    #[strum(to_string = "6E", serialize = "6EME")]
    Sixieme,
    #[strum(to_string = "5E", serialize = "5EME")]
    Cinquieme,
    #[strum(to_string = "4E", serialize = "4EME")]
    Quatrieme,
    #[strum(to_string = "3E", serialize = "3EME")]
    Troisieme,
    #[strum(to_string = "OTHER")]
    Other,
}

fn unknown_grade(s: &str) -> IdError {
    IdError::GradeLevel(s.to_owned())
}

/// For serde's `try_from`: the policies stored as JSON hold the codes.
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
        use strum::VariantArray as _;
        let codes: Vec<&'static str> = GradeLevel::VARIANTS.iter().map(|g| (*g).into()).collect();
        assert_eq!(codes, ["6E", "5E", "4E", "3E", "OTHER"], "the stored codes, in school order");
        for g in GradeLevel::VARIANTS {
            assert_eq!(g.to_string().parse::<GradeLevel>(), Ok(*g));
            assert_eq!(g.to_string(), <&'static str>::from(*g));
        }
        assert_eq!("6eme".parse::<GradeLevel>(), Ok(GradeLevel::Sixieme));
        assert_eq!("7E".parse::<GradeLevel>(), Err(IdError::GradeLevel("7E".into())));
        assert_eq!(serde_json::to_string(&GradeLevel::VARIANTS).unwrap(), r#"["6E","5E","4E","3E","OTHER"]"#);
    }
}
