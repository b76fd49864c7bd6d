//! Money at the API edge: a string with exactly two decimals ("80.00"), EUR only.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use passerelle_domain::Cents;
use rust_decimal::Decimal;
use std::str::FromStr;

/// The `Decimal` scalar of the mobile contract. Input accepts a string (or a JSON number
/// with at most two decimals); output is always a string with two decimals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Money(pub Cents);

#[Scalar(name = "Decimal")]
impl ScalarType for Money {
    fn parse(value: Value) -> InputValueResult<Self> {
        let text = match &value {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            _ => return Err(InputValueError::expected_type(value)),
        };
        let d = Decimal::from_str(&text).map_err(|_| InputValueError::custom("not a decimal amount"))?;
        let cents = Cents::from_decimal(d).map_err(|e| InputValueError::custom(e.to_string()))?;
        // No amount the service handles comes near the ledger's per-leg cap: anything above
        // it is a mistake or an attack on the arithmetic, refused at the edge.
        let cap = passerelle_domain::ledger::max_leg_amount();
        if cents.0.unsigned_abs() > cap.0.unsigned_abs() {
            return Err(InputValueError::custom(format!("the amount is above the limit of {cap}")));
        }
        Ok(Money(cents))
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_decimal().to_string())
    }
}
