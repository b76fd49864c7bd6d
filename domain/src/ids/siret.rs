//! SIREN (9 digits, the company) and SIRET (14 digits, one establishment: SIREN + 5-digit NIC).
//!
//! Both end in a Luhn check digit (INSEE). One exception matters to a département paying
//! merchants and post offices: La Poste has thousands of establishments under SIREN 356000000,
//! more than a Luhn digit on the NIC allows, so INSEE numbers those SIRETs with another rule:
//! the sum of the 14 digits is a multiple of 5. Its head office (`35600000000048`) is an
//! ordinary Luhn number, so a La Poste SIRET passes under either rule. AAF `ENTStructureSIREN` actually carries a SIRET
//! (ent-formats.md §1.5), hence both types.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{IdError, luhn_valid};

/// La Poste's SIREN, whose SIRETs follow the digit-sum rule.
const LA_POSTE_SIREN: &str = "356000000";

/// A 9-digit SIREN with a valid Luhn check digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Siren(String);

/// A 14-digit SIRET, valid under Luhn or, for La Poste, under the digit-sum rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Siret(String);

/// Digits of `raw` with spaces removed, if it holds exactly `len` digits.
fn digits(raw: &str, len: usize) -> Option<String> {
    let s: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

impl Siren {
    /// Parses 9 digits (spaces allowed, as in `356 000 000`) and checks the Luhn digit.
    pub fn parse(raw: &str) -> Result<Siren, IdError> {
        let s = digits(raw, 9).ok_or_else(|| IdError::SirenFormat(raw.trim().to_owned()))?;
        if !luhn_valid(s.as_bytes()) {
            return Err(IdError::SirenChecksum(s));
        }
        Ok(Siren(s))
    }

    /// The 9 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Siret {
    /// Parses 14 digits (spaces allowed) and checks them (Luhn, or La Poste's digit sum).
    pub fn parse(raw: &str) -> Result<Siret, IdError> {
        let s = digits(raw, 14).ok_or_else(|| IdError::SiretFormat(raw.trim().to_owned()))?;
        let digit_sum = || s.bytes().map(|b| u32::from(b - b'0')).sum::<u32>();
        let valid = luhn_valid(s.as_bytes()) || (s.starts_with(LA_POSTE_SIREN) && digit_sum().is_multiple_of(5));
        // The SIREN part must be a valid SIREN too, so that `siren()` upholds its invariant.
        let valid = valid && luhn_valid(&s.as_bytes()[..9]);
        if !valid {
            return Err(IdError::SiretChecksum(s));
        }
        Ok(Siret(s))
    }

    /// The 14 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The company: the first 9 digits (checked by [`Siret::parse`]).
    pub fn siren(&self) -> Siren {
        Siren(self.0.get(..9).unwrap_or_default().to_owned())
    }

    /// The establishment number within the company: the last 5 digits.
    pub fn nic(&self) -> &str {
        self.0.get(9..).unwrap_or_default()
    }
}

macro_rules! string_newtype_impls {
    ($t:ident) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
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
string_newtype_impls!(Siren);
string_newtype_impls!(Siret);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_sirets() {
        // Public SIRETs (INSEE's head office, a common validator test value).
        for s in ["12002701600357", "73282932000074"] {
            let siret = Siret::parse(s).unwrap();
            assert!(Siren::parse(siret.siren().as_str()).is_ok());
        }
        let s = Siret::parse("120 027 016 00357").unwrap();
        assert_eq!((s.siren().as_str(), s.nic()), ("120027016", "00357"));
    }

    #[test]
    fn la_poste_uses_the_digit_sum_rule() {
        // A post office: fails Luhn, digits add up to 45.
        assert!(!luhn_valid(b"35600000049837"));
        let ok = Siret::parse("35600000049837").unwrap();
        assert_eq!((ok.siren().as_str(), ok.nic()), ("356000000", "49837"));
        // The head office is an ordinary Luhn number (digit sum 26).
        assert!(Siret::parse("35600000000048").is_ok());
        // Neither rule: refused.
        assert_eq!(Siret::parse("35600000049838").unwrap_err().code(), "SIRET_CHECKSUM");
        // The digit-sum rule is La Poste's only.
        assert!(Siret::parse("73282932000075").is_err());
    }

    #[test]
    fn refusals() {
        assert_eq!(Siret::parse("12002701600358").unwrap_err().code(), "SIRET_CHECKSUM");
        assert_eq!(Siret::parse("1200270160035").unwrap_err().code(), "INVALID_SIRET");
        assert_eq!(Siret::parse("1200270160035A").unwrap_err().code(), "INVALID_SIRET");
        assert_eq!(Siren::parse("120027017").unwrap_err().code(), "SIREN_CHECKSUM");
        assert_eq!(Siren::parse("12002701").unwrap_err().code(), "INVALID_SIREN");
        assert!(Siren::parse("356 000 000").is_ok());
    }
}
