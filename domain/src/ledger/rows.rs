//! How ledger rows become values.

use sea_orm::{DbErr, FromQueryResult};

use super::model::*;
use crate::money::Cents;

pub(crate) const TRANSFER_COLUMNS: &str =
    "id, kind, phase, debit_account_id, credit_account_id, amount, pending_id, expires_at_us, created_at_us";

/// `ledger_transfer` as [`TRANSFER_COLUMNS`] select it.
#[derive(FromQueryResult)]
pub(crate) struct TransferRow {
    id: TransferId,
    /// A [`TransferKind`], or `resolution` for the post/void/expire of a hold (kind `None`).
    kind: String,
    phase: Phase,
    debit_account_id: AccountId,
    credit_account_id: AccountId,
    amount: Cents,
    pending_id: Option<TransferId>,
    expires_at_us: Option<i64>,
    created_at_us: i64,
}

/// Stored `kind` of a transfer that resolves a hold rather than moving money of its own.
pub(super) const RESOLUTION: &str = "resolution";

impl TryFrom<TransferRow> for TransferRecord {
    type Error = DbErr;

    fn try_from(r: TransferRow) -> Result<TransferRecord, DbErr> {
        let kind = match r.kind.as_str() {
            RESOLUTION => None,
            k => Some(k.parse().map_err(|_| DbErr::Type(format!("unknown transfer kind {k:?}")))?),
        };
        Ok(TransferRecord {
            id: r.id,
            kind,
            phase: r.phase,
            debit: r.debit_account_id,
            credit: r.credit_account_id,
            amount: r.amount,
            pending_id: r.pending_id,
            expires_at_us: r.expires_at_us,
            created_at_us: r.created_at_us,
        })
    }
}
