//! The Pass card number: 16 digits, the last one a Luhn check digit.
//!
//! Luhn is the ISO/IEC 7812 scheme every payment terminal and card form already knows, and it
//! catches all single-digit typos and most adjacent swaps when a parent or a merchant types the
//! number by hand. We issue the numbers ourselves: [`CardNumber::from_body`] appends the check
//! digit to a 15-digit body.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{IdError, luhn_sum, luhn_valid};

/// A 16-digit card number with a valid Luhn check digit.
///
/// `Display` groups it as `1234 5678 9012 3456`; use [`CardNumber::masked`] in logs and UIs
/// that do not need the whole number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CardNumber(String);

impl CardNumber {
    /// Parses a typed number: spaces and dashes are ignored, anything else is refused.
    pub fn parse(raw: &str) -> Result<CardNumber, IdError> {
        let digits = digits_only(raw, 16).ok_or(IdError::CardNumberFormat)?;
        if !luhn_valid(digits.as_bytes()) {
            return Err(IdError::CardNumberCheckDigit);
        }
        Ok(CardNumber(digits))
    }

    /// Builds a number from a 15-digit body (spaces/dashes ignored) by appending its check digit.
    pub fn from_body(body: &str) -> Result<CardNumber, IdError> {
        let mut digits = digits_only(body, 15).ok_or(IdError::CardNumberFormat)?;
        digits.push(char::from(b'0' + check_digit(digits.as_bytes())));
        Ok(CardNumber(digits))
    }

    /// The 16 digits, without separators.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Only the last 4 digits visible: `**** **** **** 3456`.
    pub fn masked(&self) -> String {
        format!("**** **** **** {}", self.0.get(12..).unwrap_or_default())
    }
}

/// The Luhn digit that completes `body` (ASCII digits only).
fn check_digit(body: &[u8]) -> u8 {
    let sum = luhn_sum(body, true);
    // `sum % 10` is below 10, so the result fits a digit.
    ((10 - sum % 10) % 10) as u8
}

/// Keeps the digits of `raw` when it holds exactly `len` digits plus spaces or dashes.
fn digits_only(raw: &str, len: usize) -> Option<String> {
    let mut out = String::with_capacity(len);
    for c in raw.trim().chars() {
        match c {
            '0'..='9' => out.push(c),
            ' ' | '-' => {}
            _ => return None,
        }
    }
    (out.len() == len).then_some(out)
}

impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, chunk) in self.0.as_bytes().chunks(4).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(std::str::from_utf8(chunk).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

impl FromStr for CardNumber {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CardNumber::parse(s)
    }
}

impl TryFrom<String> for CardNumber {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        CardNumber::parse(&s)
    }
}

impl From<CardNumber> for String {
    fn from(c: CardNumber) -> String {
        c.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_with_separators_and_formats_in_groups() {
        // 4539 1488 0343 6467 is a classic Luhn-valid test number.
        let c = CardNumber::parse("4539-1488 0343-6467").unwrap();
        assert_eq!(c.as_str(), "4539148803436467");
        assert_eq!(c.to_string(), "4539 1488 0343 6467");
        assert_eq!(c.masked(), "**** **** **** 6467");
        assert_eq!(c.to_string().parse::<CardNumber>(), Ok(c));
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(CardNumber::parse("4539148803436468"), Err(IdError::CardNumberCheckDigit));
        assert_eq!(CardNumber::parse("453914880343646"), Err(IdError::CardNumberFormat));
        assert_eq!(CardNumber::parse("4539x48803436467"), Err(IdError::CardNumberFormat));
        assert_eq!(CardNumber::parse(""), Err(IdError::CardNumberFormat));
        assert_eq!(CardNumber::from_body("12"), Err(IdError::CardNumberFormat));
    }

    #[test]
    fn from_body_appends_the_check_digit() {
        assert_eq!(CardNumber::from_body("453914880343646").unwrap().as_str(), "4539148803436467");
        assert_eq!(CardNumber::from_body("000000000000000").unwrap().as_str(), "0000000000000000");
    }

    proptest! {
        #[test]
        fn any_body_with_its_digit_parses(body in "[0-9]{15}") {
            let card = CardNumber::from_body(&body).unwrap();
            prop_assert_eq!(CardNumber::parse(card.as_str()), Ok(card.clone()));
            prop_assert!(card.as_str().starts_with(&body));
        }

        #[test]
        fn changing_any_single_digit_breaks_it(body in "[0-9]{15}", pos in 0usize..16, delta in 1u8..10) {
            let card = CardNumber::from_body(&body).unwrap();
            let mut bytes = card.as_str().as_bytes().to_vec();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
            let typo = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(CardNumber::parse(&typo), Err(IdError::CardNumberCheckDigit));
        }
    }
}
