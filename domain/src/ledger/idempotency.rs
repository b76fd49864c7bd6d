//! Idempotency keys: the stored answer of an operation, replayed to a retry with the same
//! request, and refused (`IdempotencyConflict`) to the same key with another request.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, Value};
use uuid::Uuid;

use super::model::*;
use super::rows::{TRANSFER_COLUMNS, TransferRow};
use crate::db::{begin_write, now_us_sql, stmt};

/// Stores a refusal on the key (unless another request took the key meanwhile) and returns it.
pub(super) async fn record_rejection(
    db: &DatabaseConnection,
    op: &Operation,
    fingerprint: &str,
    rejection: Rejection,
) -> Result<Outcome, LedgerError> {
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    let sql = format!(
        "INSERT INTO idempotency_key (id, scope, key, fingerprint, outcome, result, error_code, created_at_us) \
         VALUES ($1, $2, $3, $4, 'failed', $5, $6, {}) ON CONFLICT (scope, key) DO NOTHING RETURNING id",
        now_us_sql(backend)
    );
    let result = serde_json::to_string(&rejection).map_err(|e| DbErr::Custom(e.to_string()))?;
    let values: [Value; 6] = [
        Uuid::now_v7().into(),
        op.scope.clone().into(),
        op.key.clone().into(),
        fingerprint.to_owned().into(),
        result.into(),
        rejection.code().into(),
    ];
    if txn.query_one_raw(stmt(backend, &sql, values)).await?.is_some() {
        txn.commit().await?;
        return Err(rejection.into());
    }
    let prior = load_key(&txn, &op.scope, &op.key).await;
    txn.commit().await?;
    prior?.replay(db, fingerprint).await
}

/// The claim's answer: the database clock for the whole operation.
#[derive(FromQueryResult)]
pub(super) struct Clock {
    pub(super) created_at_us: i64,
}

/// A committed idempotency row.
#[derive(FromQueryResult)]
pub(super) struct StoredKey {
    id: Uuid,
    fingerprint: String,
    outcome: KeyOutcome,
    result: Option<String>,
    created_at_us: i64,
}

impl StoredKey {
    /// The original answer: the same transfers for a success, the same refusal for a failure.
    pub(super) async fn replay<C: ConnectionTrait>(self, db: &C, fingerprint: &str) -> Result<Outcome, LedgerError> {
        if self.fingerprint != fingerprint {
            return Err(LedgerError::IdempotencyConflict);
        }
        match self.outcome {
            KeyOutcome::Succeeded => {
                let sql = format!("SELECT {TRANSFER_COLUMNS} FROM ledger_transfer WHERE op_id = $1 ORDER BY leg");
                let rows = TransferRow::find_by_statement(stmt(db.get_database_backend(), &sql, [self.id.into()]))
                    .all(db)
                    .await?;
                let transfers = rows.into_iter().map(TransferRecord::try_from).collect::<Result<Vec<_>, DbErr>>()?;
                Ok(Outcome { op_id: self.id, transfers, created_at_us: self.created_at_us, replayed: true })
            }
            KeyOutcome::Failed => {
                let body = self.result.unwrap_or_default();
                let rejection = serde_json::from_str(&body)
                    .map_err(|e| LedgerError::Db(DbErr::Custom(format!("stored refusal: {e}"))))?;
                Err(LedgerError::Rejected(rejection))
            }
        }
    }
}

pub(super) async fn load_key<C: ConnectionTrait>(db: &C, scope: &str, key: &str) -> Result<StoredKey, LedgerError> {
    let sql =
        "SELECT id, fingerprint, outcome, result, created_at_us FROM idempotency_key WHERE scope = $1 AND key = $2";
    StoredKey::find_by_statement(stmt(db.get_database_backend(), sql, [scope.into(), key.into()]))
        .one(db)
        .await?
        .ok_or_else(|| LedgerError::Db(DbErr::RecordNotFound("idempotency key".into())))
}
