//! INE (Identifiant National Élève), 11 characters, the pupil's national identifier.
//!
//! Three layouts exist (ent-formats.md §3.2, regexes from a public apprenticeship-data repo,
//! consistent with Wikipedia "Numéro BEA"):
//! - INE-RNIE `^[0-9]{9}[A-Z]{2}$` (`070832327JA`): the 2-letter key algorithm is not public,
//!   so only the format is checked;
//! - INE-BEA `^[0-9]{10}[A-Z]$` (`0113014881M`): the letter is *probably* the mod-23 key of the
//!   10 digits (it matches the one real-looking sample), so a mismatch is only a warning;
//! - apprentissage `^[0-9]{4}A[0-9]{5}[A-Z]$`.
//!
//! Test exports violate all of these (`100000000AA` happens to fit RNIE, but `00000000123`
//! does not), and the INE is a matching aid, not our key. So nothing here rejects a pupil:
//! [`Ine::parse_lenient`] keeps every non-empty value and reports what looks wrong.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{IdError, alnum_upper, mod23_letter};

/// Which INE layout a value follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IneFormat {
    /// 9 digits + 2 letters (Répertoire National des Identifiants Élèves).
    Rnie,
    /// 10 digits + 1 letter (Base Élèves Académique).
    Bea,
    /// 4 digits, `A`, 5 digits, 1 letter.
    Apprentissage,
    /// None of the above (test data, typos): kept as is.
    Unknown,
}

/// A normalised INE (uppercase, without spaces or punctuation) and its recognised layout.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ine {
    value: String,
    format: IneFormat,
}

impl Ine {
    /// Soft parse: `None` only when nothing is left after normalisation (an absent INE).
    /// Otherwise the INE is kept, with a warning if its layout is unknown ([`IdError::IneFormat`])
    /// or its BEA letter looks wrong ([`IdError::IneCheckLetter`]).
    pub fn parse_lenient(raw: &str) -> Option<(Ine, Option<IdError>)> {
        let value = alnum_upper(raw);
        if value.is_empty() {
            return None;
        }
        let format = detect(&value);
        let warning = match format {
            IneFormat::Unknown => Some(IdError::IneFormat(value.clone())),
            IneFormat::Bea => bea_letter_problem(&value),
            IneFormat::Rnie | IneFormat::Apprentissage => None,
        };
        Some((Ine { value, format }, warning))
    }

    /// Strict parse, for values typed by an agent: the layout must be a known one. The BEA
    /// check letter is still not enforced, because its algorithm is only probable.
    pub fn parse(raw: &str) -> Result<Ine, IdError> {
        match Ine::parse_lenient(raw) {
            Some((ine, _)) if ine.format != IneFormat::Unknown => Ok(ine),
            Some((ine, _)) => Err(IdError::IneFormat(ine.value)),
            None => Err(IdError::IneFormat(String::new())),
        }
    }

    /// The normalised value.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The recognised layout.
    pub fn format(&self) -> IneFormat {
        self.format
    }
}

fn detect(v: &str) -> IneFormat {
    let b = v.as_bytes();
    if b.len() != 11 {
        return IneFormat::Unknown;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let upper = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_uppercase);
    if digits(0..9) && upper(9..11) {
        IneFormat::Rnie
    } else if digits(0..10) && upper(10..11) {
        IneFormat::Bea
    } else if digits(0..4) && b[4] == b'A' && digits(5..10) && upper(10..11) {
        IneFormat::Apprentissage
    } else {
        IneFormat::Unknown
    }
}

fn bea_letter_problem(v: &str) -> Option<IdError> {
    let expected = mod23_letter(v.get(..10)?)?;
    let actual = char::from(*v.as_bytes().get(10)?);
    (actual != expected).then(|| IdError::IneCheckLetter { value: v.to_owned(), expected })
}

impl fmt::Display for Ine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl TryFrom<String> for Ine {
    type Error = IdError;
    /// Lenient on purpose: stored INEs may be test values of unknown layout.
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Ine::parse_lenient(&s).map(|(ine, _)| ine).ok_or_else(|| IdError::IneFormat(String::new()))
    }
}

impl From<Ine> for String {
    fn from(i: Ine) -> String {
        i.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lenient(raw: &str) -> (Ine, Option<&'static str>) {
        let (ine, w) = Ine::parse_lenient(raw).unwrap();
        (ine, w.map(|e| e.code()))
    }

    #[test]
    fn recognises_the_three_layouts() {
        let (i, w) = lenient("070832327JA");
        assert_eq!((i.format(), w), (IneFormat::Rnie, None));
        let (i, w) = lenient("0113014881M");
        assert_eq!((i.format(), w), (IneFormat::Bea, None));
        let (i, w) = lenient("1234A12345K");
        assert_eq!((i.format(), w), (IneFormat::Apprentissage, None));
    }

    #[test]
    fn normalises_like_dossiersco() {
        let (i, w) = lenient(" %! 070803070aj _+ ");
        assert_eq!(i.as_str(), "070803070AJ");
        assert_eq!(w, None);
    }

    #[test]
    fn test_values_are_kept_with_a_warning() {
        // ent-formats.md §3.2: values seen in test exports.
        assert_eq!(lenient("100000000AA").1, None); // fits RNIE by chance
        let (i, w) = lenient("00000000123");
        assert_eq!((i.as_str(), i.format(), w), ("00000000123", IneFormat::Unknown, Some("INE_FORMAT")));
        let (i, w) = lenient("0000000001X");
        assert_eq!((i.format(), w), (IneFormat::Bea, Some("INE_CHECK_LETTER")));
        assert!(Ine::parse_lenient(" - ").is_none());
    }

    #[test]
    fn strict_parse_requires_a_known_layout() {
        assert!(Ine::parse("070832327JA").is_ok());
        assert!(Ine::parse("0000000001X").is_ok()); // BEA letter only probable
        assert_eq!(Ine::parse("ABC").unwrap_err().code(), "INE_FORMAT");
        assert!(Ine::parse("").is_err());
    }

    #[test]
    fn serde_round_trip_is_lenient() {
        let i = Ine::try_from("00000000123".to_owned()).unwrap();
        assert_eq!(String::from(i), "00000000123");
    }
}
