//! An operation's fingerprint: SHA-256 of its canonical request, as stored with its
//! idempotency key.
//!
//! The canonical text is the compact JSON of `{"legs": [...], "metadata": ...}` (or
//! `{"metadata": ..., "request": ...}`) with every object's keys in sorted order — what
//! serialising through `serde_json::Value` (whose maps are sorted) gave when keys were first
//! stored. Building that `Value` tree cost a grant most of its key claims (tens of
//! allocations per leg, one operation per pupil), so the legs are written here through mirror
//! structs whose fields are declared in sorted order, straight into the hash. Stored keys are
//! compared with this text: `fingerprint_tests` pins it against digests computed outside Rust.

use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::model::{AccountRef, LedgerError, Leg, Operation, TransferKind};
use crate::identity::token::hex_encode;
use crate::money::Cents;

/// `Scope` with its keys in sorted order.
#[derive(Serialize)]
struct ScopeText {
    campaign: Option<Uuid>,
    funder: Uuid,
}

/// `AccountRef` with its keys in sorted order.
#[derive(Serialize)]
struct AccountText {
    id: Uuid,
    limited: bool,
    scope: ScopeText,
}

impl From<&AccountRef> for AccountText {
    fn from(a: &AccountRef) -> Self {
        AccountText {
            id: a.id,
            limited: a.limited,
            scope: ScopeText { campaign: a.scope.campaign, funder: a.scope.funder },
        }
    }
}

/// A leg with its keys in sorted order, the `leg` tag among them. A transfer is a hold
/// without `timeout_ms`.
#[derive(Serialize)]
#[serde(untagged)]
enum LegText {
    Move {
        amount: Cents,
        credit: AccountText,
        debit: AccountText,
        kind: TransferKind,
        leg: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<i64>,
    },
    Post {
        amount: Option<Cents>,
        hold: Uuid,
        leg: &'static str,
    },
    Release {
        hold: Uuid,
        leg: &'static str,
    },
}

impl From<&Leg> for LegText {
    fn from(leg: &Leg) -> Self {
        let moved = |leg, kind: &TransferKind, debit: &AccountRef, credit: &AccountRef, amount: &Cents, timeout_ms| {
            LegText::Move { amount: *amount, credit: credit.into(), debit: debit.into(), kind: *kind, leg, timeout_ms }
        };
        match leg {
            Leg::Transfer { kind, debit, credit, amount } => moved("transfer", kind, debit, credit, amount, None),
            Leg::Hold { kind, debit, credit, amount, timeout_ms } => {
                moved("hold", kind, debit, credit, amount, Some(*timeout_ms))
            }
            Leg::Post { hold, amount } => LegText::Post { amount: *amount, hold: *hold, leg: "post" },
            Leg::Void { hold } => LegText::Release { hold: *hold, leg: "void" },
            Leg::Expire { hold } => LegText::Release { hold: *hold, leg: "expire" },
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum Canonical<'a> {
    Legs { legs: Vec<LegText>, metadata: &'a serde_json::Value },
    Request { metadata: &'a serde_json::Value, request: &'a serde_json::Value },
}

/// The hex SHA-256 of `op`'s canonical request. Serialising these structs and `Value`s into
/// a hasher has no failure of its own; were serde_json to report one, the operation is refused
/// rather than keyed on a partial text.
pub(super) fn fingerprint(op: &Operation) -> Result<String, LedgerError> {
    let body = match &op.request {
        Some(request) => Canonical::Request { metadata: &op.metadata, request },
        None => Canonical::Legs { legs: op.legs.iter().map(LegText::from).collect(), metadata: &op.metadata },
    };
    let mut hasher = Sha256::new();
    serde_json::to_writer(&mut hasher, &body)
        .map_err(|e| LedgerError::Invalid(format!("the request cannot be fingerprinted: {e}")))?;
    Ok(hex_encode(&hasher.finalize()))
}
