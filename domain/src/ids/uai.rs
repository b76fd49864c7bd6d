//! UAI (Unité Administrative Immatriculée, ex-RNE): the national identifier of a school.
//!
//! Layout (ent-formats.md §3.1): 3-character département code (`092` Hauts-de-Seine, `075`,
//! `014`; Corse is `620`/`720`; DOM `971`–`976`), 4 digits, then a check letter
//! `"ABCDEFGHJKLMNPRSTUVWXYZ"[int(first 7 chars) mod 23]`. Corse codes are digits in practice,
//! so a UAI whose first 7 characters are not all digits is malformed.
//!
//! Real AAF exports contain pseudo-structures (`1004001V`, "Z.REMP-…") that fail the check, so
//! importers use [`Uai::parse_lenient`], which keeps the value and reports the problem.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{IdError, mod23_letter};

/// A UAI whose format and check letter were verified; always uppercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Uai(String);

impl Uai {
    /// Strict parse: trims, uppercases, checks 7 digits + letter and the mod-23 check letter.
    pub fn parse(raw: &str) -> Result<Uai, IdError> {
        let value = normalise(raw);
        check(&value)?;
        Ok(Uai(value))
    }

    /// Soft parse for importers: returns the normalised value (trimmed, uppercased) in every
    /// case, with the reason it would be refused by [`Uai::parse`], if any.
    pub fn parse_lenient(raw: &str) -> (String, Option<IdError>) {
        let value = normalise(raw);
        let problem = check(&value).err();
        (value, problem)
    }

    /// The expected check letter for the 7 leading digits, or `None` if they are not 7 digits.
    pub fn check_letter(first7: &str) -> Option<char> {
        if first7.len() != 7 {
            return None;
        }
        mod23_letter(first7)
    }

    /// The UAI as stored: 8 uppercase characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The département code, the first 3 characters (`"092"`): eligibility is by département.
    pub fn departement(&self) -> &str {
        // Valid by construction: 8 ASCII characters.
        self.0.get(..3).unwrap_or_default()
    }

    /// The academic mailbox of the school's head, `ce.<uai lowercase>@<domain>`
    /// (e.g. `ac-versailles.fr` for the 92), a convention used to reach a collège.
    pub fn head_mailbox(&self, academy_domain: &str) -> String {
        format!("ce.{}@{academy_domain}", self.0.to_ascii_lowercase())
    }
}

fn normalise(raw: &str) -> String {
    raw.trim().to_ascii_uppercase()
}

fn check(value: &str) -> Result<(), IdError> {
    let bytes = value.as_bytes();
    let well_formed = bytes.len() == 8 && bytes[..7].iter().all(u8::is_ascii_digit) && bytes[7].is_ascii_uppercase();
    if !well_formed {
        return Err(IdError::UaiFormat(value.to_owned()));
    }
    let expected = mod23_letter(&value[..7]).ok_or_else(|| IdError::UaiFormat(value.to_owned()))?;
    if char::from(bytes[7]) != expected {
        return Err(IdError::UaiCheckLetter { value: value.to_owned(), expected });
    }
    Ok(())
}

impl fmt::Display for Uai {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Uai {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uai::parse(s)
    }
}

impl TryFrom<String> for Uai {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Uai::parse(&s)
    }
}

impl From<Uai> for String {
    fn from(u: Uai) -> String {
        u.0
    }
}

impl AsRef<str> for Uai {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_uais_are_valid() {
        // ent-formats.md §3.1, each checked by computation.
        for (raw, dep) in [
            ("0921778H", "092"), // Collège Joliot-Curie, Bagneux
            ("0752387M", "075"), // CLG André Malraux, Paris
            ("0750680G", "075"),
            ("0751703U", "075"),
            ("0140070A", "014"),
        ] {
            let uai = Uai::parse(raw).unwrap();
            assert_eq!(uai.as_str(), raw);
            assert_eq!(uai.departement(), dep);
        }
    }

    #[test]
    fn normalises_case_and_spaces() {
        let uai = Uai::parse(" 0921778h ").unwrap();
        assert_eq!(uai.to_string(), "0921778H");
        assert_eq!(uai.head_mailbox("ac-versailles.fr"), "ce.0921778h@ac-versailles.fr");
    }

    #[test]
    fn aaf_pseudo_structures_fail_the_check() {
        // entcore's AAF fixture "Z.REMP" structures.
        for (raw, expected) in [("1004001V", 'F'), ("1004002D", 'G')] {
            let err = Uai::parse(raw).unwrap_err();
            assert_eq!(err, IdError::UaiCheckLetter { value: raw.into(), expected });
            assert_eq!(err.code(), "UAI_CHECK_LETTER");
        }
    }

    #[test]
    fn malformed_values() {
        for raw in ["", "092177H", "0921778HH", "2A01234X", "09217781", "0921778É"] {
            let err = Uai::parse(raw).unwrap_err();
            assert_eq!(err.code(), "INVALID_UAI", "{raw}");
        }
    }

    #[test]
    fn lenient_keeps_the_value_and_reports() {
        assert_eq!(Uai::parse_lenient("0921778h"), ("0921778H".into(), None));
        let (v, w) = Uai::parse_lenient("1004001v");
        assert_eq!(v, "1004001V");
        assert_eq!(w.map(|e| e.code()), Some("UAI_CHECK_LETTER"));
    }

    #[test]
    fn check_letter_helper_and_serde() {
        assert_eq!(Uai::check_letter("0921778"), Some('H'));
        assert_eq!(Uai::check_letter("092177"), None);
        let uai: Uai = "0140070A".parse().unwrap();
        let back = Uai::try_from(String::from(uai.clone())).unwrap();
        assert_eq!(back, uai);
        assert!(Uai::try_from("0140070B".to_owned()).is_err());
    }
}
