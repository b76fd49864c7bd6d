//! IBAN (ISO 13616) and BIC (ISO 9362), for paying merchants and refunding families by SEPA
//! transfer.
//!
//! The IBAN check is the standard mod-97: move the first 4 characters to the end, replace
//! letters by 10..35, and the number must be ≡ 1 (mod 97). It catches every single-character
//! typo. Lengths are fixed per country: we know the SEPA countries a French département will
//! meet (France and neighbours); other countries only get the generic 15..=34 bound.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{IdError, alnum_upper};

/// IBAN lengths of the countries we expect (SWIFT IBAN registry). FR includes Monaco (MC) and
/// the overseas départements, which use FR IBANs.
const LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AT", 20),
    ("BE", 16),
    ("CH", 21),
    ("DE", 22),
    ("ES", 24),
    ("FR", 27),
    ("GB", 22),
    ("IE", 22),
    ("IT", 27),
    ("LU", 20),
    ("MC", 27),
    ("NL", 18),
    ("PT", 25),
];

/// A valid IBAN, stored without spaces, uppercase. `Display` groups it by 4 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Iban(String);

impl Iban {
    /// Parses an IBAN typed or pasted with spaces, dashes or lowercase.
    pub fn parse(raw: &str) -> Result<Iban, IdError> {
        if raw.chars().any(|c| !(c.is_ascii_alphanumeric() || c == ' ' || c == '-')) {
            return Err(IdError::IbanFormat);
        }
        let v = alnum_upper(raw);
        let b = v.as_bytes();
        let well_formed =
            b.len() >= 4 && b[..2].iter().all(u8::is_ascii_uppercase) && b[2..4].iter().all(u8::is_ascii_digit);
        if !well_formed {
            return Err(IdError::IbanFormat);
        }
        let country = &v[..2];
        let (min, max) = match LENGTHS.iter().find(|(c, _)| *c == country) {
            Some((_, len)) => (*len, *len),
            None => (15, 34),
        };
        if v.len() < min || v.len() > max {
            return Err(IdError::IbanLength { country: country.to_owned(), expected: min, actual: v.len() });
        }
        if mod97(&v) != 1 {
            return Err(IdError::IbanChecksum);
        }
        Ok(Iban(v))
    }

    /// The compact form (no spaces), as SEPA files want it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ISO 3166 country code, the first 2 letters.
    pub fn country(&self) -> &str {
        self.0.get(..2).unwrap_or_default()
    }

    /// Only the country, check digits and last 4 characters visible, for logs and receipts.
    pub fn masked(&self) -> String {
        let n = self.0.len();
        format!("{}…{}", self.0.get(..4).unwrap_or_default(), self.0.get(n.saturating_sub(4)..).unwrap_or_default())
    }
}

/// ISO 7064 mod 97-10 of the rearranged IBAN, computed digit by digit so it never overflows.
fn mod97(v: &str) -> u32 {
    let rearranged = v.bytes().skip(4).chain(v.bytes().take(4));
    let mut rem: u32 = 0;
    for b in rearranged {
        rem = if b.is_ascii_digit() {
            (rem * 10 + u32::from(b - b'0')) % 97
        } else {
            // A = 10 … Z = 35: two decimal digits.
            (rem * 100 + u32::from(b - b'A') + 10) % 97
        };
    }
    rem
}

impl fmt::Display for Iban {
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

/// A BIC (SWIFT code): 4 letters of bank, 2 letters of country, 2 characters of location, and
/// an optional 3-character branch. Stored uppercase without spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Bic(String);

impl Bic {
    /// Parses `BNPAFRPP` or `BNPAFRPPXXX` (case and surrounding spaces ignored).
    pub fn parse(raw: &str) -> Result<Bic, IdError> {
        let v: String = raw.trim().to_ascii_uppercase();
        let b = v.as_bytes();
        let ok = (b.len() == 8 || b.len() == 11)
            && b[..6].iter().all(u8::is_ascii_uppercase)
            && b[6..].iter().all(u8::is_ascii_alphanumeric);
        if !ok {
            return Err(IdError::BicFormat(raw.trim().to_owned()));
        }
        Ok(Bic(v))
    }

    /// The code as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The country of the bank (characters 5–6).
    pub fn country(&self) -> &str {
        self.0.get(4..6).unwrap_or_default()
    }
}

macro_rules! string_newtype_impls {
    ($t:ident) => {
        impl FromStr for $t {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $t::parse(s)
            }
        }
        impl TryFrom<String> for $t {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                $t::parse(&s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
    };
}
string_newtype_impls!(Iban);
string_newtype_impls!(Bic);

impl fmt::Display for Bic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_test_ibans_are_valid() {
        for (raw, country) in
            [("FR7630006000011234567890189", "FR"), ("DE89370400440532013000", "DE"), ("GB82WEST12345698765432", "GB")]
        {
            let iban = Iban::parse(raw).unwrap();
            assert_eq!((iban.as_str(), iban.country()), (raw, country));
        }
    }

    #[test]
    fn normalises_and_groups() {
        let iban = Iban::parse("fr76 3000 6000 0112 3456 7890 189").unwrap();
        assert_eq!(iban.as_str(), "FR7630006000011234567890189");
        assert_eq!(iban.to_string(), "FR76 3000 6000 0112 3456 7890 189");
        assert_eq!(iban.masked(), "FR76…0189");
        assert_eq!(iban.to_string().parse::<Iban>(), Ok(iban));
    }

    #[test]
    fn refusals() {
        // One digit changed.
        assert_eq!(Iban::parse("FR7630006000011234567890188"), Err(IdError::IbanChecksum));
        // Two digits swapped.
        assert_eq!(Iban::parse("DE89370400440532031000"), Err(IdError::IbanChecksum));
        assert_eq!(Iban::parse("FR763000600001123456789018").unwrap_err().code(), "IBAN_LENGTH");
        assert_eq!(Iban::parse("XX12").unwrap_err().code(), "IBAN_LENGTH");
        assert_eq!(Iban::parse("7630006000011234567890189"), Err(IdError::IbanFormat));
        assert_eq!(Iban::parse("FR76.3000.6000"), Err(IdError::IbanFormat));
        assert_eq!(Iban::parse(""), Err(IdError::IbanFormat));
    }

    #[test]
    fn bics() {
        assert_eq!(Bic::parse("bnpafrpp").unwrap().as_str(), "BNPAFRPP");
        assert_eq!(Bic::parse("BNPAFRPPXXX").unwrap().country(), "FR");
        assert_eq!(Bic::parse(" DEUTDEFF500 ").unwrap().as_str(), "DEUTDEFF500");
        for bad in ["BNPAFRP", "BNPAFRPPXX", "BNP1FRPP", "BNPAFRP!", ""] {
            assert_eq!(Bic::parse(bad).unwrap_err().code(), "INVALID_BIC", "{bad}");
        }
    }
}
