//! Identifiers that cross the system boundary, as parse-don't-validate newtypes.
//!
//! Every type here can only be built through a parser that checks its format and its check
//! digit/letter, so a value of type [`Uai`], [`CardNumber`], [`Siret`] or [`Iban`] is valid by
//! construction and the rest of the code never re-checks it.
//!
//! School data is the exception: real exports carry test values and pseudo-structures that fail
//! the checks (see `shared/reference/ent-formats.md` §3), and one bad UAI must not stop an
//! import of 100,000 pupils. So [`Uai`] and [`Ine`] also have a *lenient* path that normalises
//! the value, keeps it, and returns the failure as a warning instead of an error.
//!
//! All failures share one error type, [`IdError`], whose [`IdError::code`] is stable (it is
//! logged, counted in import reports and may be sent to clients). Messages never repeat a card
//! number or an IBAN, so they are safe to log.

mod card_number;
mod iban;
mod ine;
mod mef;
mod siret;
mod uai;

pub use card_number::CardNumber;
pub use iban::{Bic, Iban};
pub use ine::{Ine, IneFormat};
pub use mef::{GradeLevel, grade_from_mef, is_well_formed_mef};
pub use siret::{Siren, Siret};
pub use uai::Uai;

/// Why an identifier was refused (strict parsers) or flagged (lenient parsers).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not 7 digits followed by a letter.
    #[error("UAI {0:?} is malformed: expected 7 digits then a check letter, like 0921778H")]
    UaiFormat(String),
    /// Well formed, but the check letter does not match the 7 digits.
    #[error("UAI {value}: the check letter should be {expected}")]
    UaiCheckLetter { value: String, expected: char },
    /// None of the three known INE layouts (RNIE, BEA, apprentissage).
    #[error("INE {0:?} matches none of the known formats (RNIE, BEA, apprentissage)")]
    IneFormat(String),
    /// BEA layout, but the letter does not match the mod-23 key of the 10 digits.
    #[error("INE {value}: BEA check letter should probably be {expected}")]
    IneCheckLetter { value: String, expected: char },
    /// Not 16 digits (after removing spaces and dashes).
    #[error("a card number has 16 digits")]
    CardNumberFormat,
    /// 16 digits, but the Luhn check digit is wrong (typo).
    #[error("this card number is not valid (check digit mismatch): please check for a typo")]
    CardNumberCheckDigit,
    /// Not 14 digits.
    #[error("SIRET {0:?} is malformed: expected 14 digits")]
    SiretFormat(String),
    /// 14 digits, failing the Luhn (or La Poste) rule.
    #[error("SIRET {0}: the check digit does not match")]
    SiretChecksum(String),
    /// Not 9 digits.
    #[error("SIREN {0:?} is malformed: expected 9 digits")]
    SirenFormat(String),
    /// 9 digits, failing the Luhn rule.
    #[error("SIREN {0}: the check digit does not match")]
    SirenChecksum(String),
    /// Bad characters, or no country code and check digits at the start.
    #[error("this IBAN is malformed: expected 2 letters, 2 digits, then letters and digits")]
    IbanFormat,
    /// Wrong length for its country.
    #[error("an IBAN from {country} has {expected} characters, this one has {actual}")]
    IbanLength { country: String, expected: usize, actual: usize },
    /// The ISO 13616 mod-97 check failed (typo).
    #[error("this IBAN is not valid (checksum mismatch): please check for a typo")]
    IbanChecksum,
    /// Not one of the grade level codes `6E`, `5E`, `4E`, `3E`, `OTHER`.
    #[error("unknown grade level {0:?}: expected 6E, 5E, 4E, 3E or OTHER")]
    GradeLevel(String),
    /// Not a BIC/SWIFT code of 8 or 11 characters.
    #[error("BIC {0:?} is malformed: expected 8 or 11 characters like BNPAFRPP or BNPAFRPPXXX")]
    BicFormat(String),
}

impl IdError {
    /// Stable machine-readable code, used in import reports and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            IdError::UaiFormat(_) => "INVALID_UAI",
            IdError::UaiCheckLetter { .. } => "UAI_CHECK_LETTER",
            IdError::IneFormat(_) => "INE_FORMAT",
            IdError::IneCheckLetter { .. } => "INE_CHECK_LETTER",
            IdError::CardNumberFormat => "INVALID_CARD_NUMBER",
            IdError::CardNumberCheckDigit => "CARD_NUMBER_CHECK_DIGIT",
            IdError::SiretFormat(_) => "INVALID_SIRET",
            IdError::SiretChecksum(_) => "SIRET_CHECKSUM",
            IdError::SirenFormat(_) => "INVALID_SIREN",
            IdError::SirenChecksum(_) => "SIREN_CHECKSUM",
            IdError::IbanFormat => "INVALID_IBAN",
            IdError::IbanLength { .. } => "IBAN_LENGTH",
            IdError::IbanChecksum => "IBAN_CHECKSUM",
            IdError::BicFormat(_) => "INVALID_BIC",
            IdError::GradeLevel(_) => "INVALID_GRADE_LEVEL",
        }
    }
}

/// The 23-letter alphabet of the UAI and INE-BEA keys: A–Z without I, O and Q, which are too
/// easy to confuse with 1 and 0 (SACoche `tester_UAI`, pyKol `validateur_lettre23`).
pub(crate) const MOD23_ALPHABET: &[u8; 23] = b"ABCDEFGHJKLMNPRSTUVWXYZ";

/// Mod-23 key letter of a string of ASCII digits; `None` if it holds anything else.
pub(crate) fn mod23_letter(digits: &str) -> Option<char> {
    if digits.is_empty() {
        return None;
    }
    let mut rem: u32 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        rem = (rem * 10 + u32::from(b - b'0')) % 23;
    }
    MOD23_ALPHABET.get(rem as usize).map(|b| char::from(*b))
}

/// Luhn checksum over ASCII digits: `true` when the sum is a multiple of 10.
/// The caller guarantees `digits` holds only ASCII digits.
pub(crate) fn luhn_valid(digits: &[u8]) -> bool {
    luhn_sum(digits, false).is_multiple_of(10)
}

/// Luhn sum. Digits are doubled from the right, starting with the rightmost digit when
/// `double_last` is true (used to compute a missing check digit) or the second from the right
/// otherwise (used to verify a complete number).
pub(crate) fn luhn_sum(digits: &[u8], double_last: bool) -> u32 {
    digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b.saturating_sub(b'0'));
            let doubled = (i % 2 == 0) == double_last;
            if doubled {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum()
}

/// Keeps ASCII letters and digits, uppercased: the common normalisation of identifiers typed by
/// people or exported with separators (`"fr76 3000-6000"`, `" %! 070803070aj _+ "`).
pub(crate) fn alnum_upper(raw: &str) -> String {
    raw.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mod23_matches_the_worked_examples() {
        // ent-formats.md §3.1: 921778 = 23×40077 + 7 → H.
        assert_eq!(mod23_letter("0921778"), Some('H'));
        assert_eq!(mod23_letter("0752387"), Some('M'));
        assert_eq!(mod23_letter("09217x8"), None);
        assert_eq!(mod23_letter(""), None);
    }

    #[test]
    fn luhn_on_known_numbers() {
        assert!(luhn_valid(b"79927398713"));
        assert!(!luhn_valid(b"79927398710"));
        // Computing a check digit: body "7992739871" → 3.
        let s = luhn_sum(b"7992739871", true);
        assert_eq!((10 - s % 10) % 10, 3);
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(IdError::UaiFormat(String::new()).code(), "INVALID_UAI");
        assert_eq!(IdError::IbanChecksum.code(), "IBAN_CHECKSUM");
        assert_eq!(IdError::CardNumberCheckDigit.code(), "CARD_NUMBER_CHECK_DIGIT");
    }
}
