//! Money: `i64` cents inside, `Decimal` with two decimals at the edges.
//!
//! SQLite stores a DECIMAL as a float, so the database only ever sees integer cents. Parsing
//! from the API refuses what a family's money must never be: negative or zero amounts where a
//! payment is meant, more than two decimals, and amounts above a configurable cap.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An amount of euro cents. Signed, because balances and deltas can be negative; amounts that
/// move money are checked positive by [`Cents::parse_amount`].
///
/// `DeriveValueType` lets a `FromQueryResult` row hold `Cents` directly (stored as BIGINT).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, sea_orm::DeriveValueType,
)]
#[serde(transparent)]
pub struct Cents(pub i64);

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("the amount must be greater than zero")]
    NotPositive,
    #[error("the amount has more than two decimals")]
    TooPrecise,
    #[error("the amount is above the limit of {0}")]
    AboveCap(Cents),
}

impl Cents {
    pub const ZERO: Cents = Cents(0);

    /// Parses an amount that moves money: strictly positive, at most two decimals, at most `cap`.
    pub fn parse_amount(value: Decimal, cap: Cents) -> Result<Cents, AmountError> {
        let c = Self::from_decimal(value)?;
        if c.0 <= 0 {
            return Err(AmountError::NotPositive);
        }
        if c > cap {
            return Err(AmountError::AboveCap(cap));
        }
        Ok(c)
    }

    /// Converts an exact decimal with at most two decimals (any sign) to cents.
    pub fn from_decimal(value: Decimal) -> Result<Cents, AmountError> {
        let normalized = value.normalize();
        if normalized.scale() > 2 {
            return Err(AmountError::TooPrecise);
        }
        // Checked: a Decimal near its 96-bit limit times 100 would otherwise panic.
        let too_large = || AmountError::AboveCap(Cents(i64::MAX));
        let cents = normalized.checked_mul(Decimal::ONE_HUNDRED).ok_or_else(too_large)?;
        i64::try_from(cents).map(Cents).map_err(|_| too_large())
    }

    /// The amount as a decimal with exactly two decimals ("80.00").
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, 2)
    }

    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0.checked_add(other.0).map(Cents)
    }

    pub fn checked_sub(self, other: Cents) -> Option<Cents> {
        self.0.checked_sub(other.0).map(Cents)
    }
}

impl std::fmt::Display for Cents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} €", self.to_decimal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn parses_two_decimals_and_refuses_three() {
        let cap = Cents(100_000);
        assert_eq!(Cents::parse_amount(d("80.00"), cap), Ok(Cents(8000)));
        assert_eq!(Cents::parse_amount(d("12.5"), cap), Ok(Cents(1250)));
        assert_eq!(Cents::parse_amount(d("0.01"), cap), Ok(Cents(1)));
        assert_eq!(Cents::parse_amount(d("1.001"), cap), Err(AmountError::TooPrecise));
        // Trailing zeros beyond two decimals are still an exact amount.
        assert_eq!(Cents::parse_amount(d("1.500"), cap), Ok(Cents(150)));
    }

    #[test]
    fn refuses_zero_negative_and_above_cap() {
        let cap = Cents(50_000);
        assert_eq!(Cents::parse_amount(d("0"), cap), Err(AmountError::NotPositive));
        assert_eq!(Cents::parse_amount(d("-5.00"), cap), Err(AmountError::NotPositive));
        assert_eq!(Cents::parse_amount(d("500.01"), cap), Err(AmountError::AboveCap(cap)));
        assert!(Cents::parse_amount(d("99999999999999999999"), cap).is_err());
    }

    #[test]
    fn huge_decimals_are_refused_not_a_panic() {
        let cap = Cents(50_000);
        assert_eq!(Cents::from_decimal(Decimal::MAX), Err(AmountError::AboveCap(Cents(i64::MAX))));
        assert_eq!(Cents::from_decimal(Decimal::MIN), Err(AmountError::AboveCap(Cents(i64::MAX))));
        assert_eq!(Cents::parse_amount(Decimal::MAX, cap), Err(AmountError::AboveCap(Cents(i64::MAX))));
    }

    #[test]
    fn renders_with_two_decimals() {
        assert_eq!(Cents(8000).to_decimal().to_string(), "80.00");
        assert_eq!(Cents(5).to_decimal().to_string(), "0.05");
        assert_eq!(Cents(-1234).to_decimal().to_string(), "-12.34");
    }

    proptest::proptest! {
        #[test]
        fn decimal_round_trip(c in -1_000_000_000i64..1_000_000_000) {
            proptest::prop_assert_eq!(Cents::from_decimal(Cents(c).to_decimal()), Ok(Cents(c)));
        }
    }
}
