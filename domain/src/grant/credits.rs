//! The grant's credit operations: a base grant per pupil and, for boursiers, the top-up to
//! the boursier total, each under a deterministic idempotency key.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DatabaseTransaction, FromQueryResult, Value};
use uuid::Uuid;

use crate::campaign::Campaign;
use crate::db::{rows_per_statement, stmt};
use crate::ledger::{AccountRef, LedgerError, Leg, Operation, TransferKind, Wallet};
use crate::money::Cents;
use crate::notify::{NotificationKind, pass_event};

/// What the base grant of each of these pupils actually credited, per wallet account: the
/// boursier top-up completes *that* to the boursier total. Computed from the current policy's
/// base instead, a base lowered (or raised) after the pupil was granted would over- (or
/// under-) credit the pupil. Pupils not granted yet are absent (their base is in this page).
pub(super) async fn base_credits(
    txn: &DatabaseTransaction,
    campaign: Uuid,
    pupils: &[Uuid],
) -> Result<HashMap<Uuid, i64>, LedgerError> {
    #[derive(FromQueryResult)]
    struct Credited {
        credit_account_id: Uuid,
        amount: i64,
    }
    let backend = txn.get_database_backend();
    let mut out = HashMap::new();
    for chunk in pupils.chunks(rows_per_statement(backend, 100, 500)) {
        let marks: Vec<String> = (2..chunk.len() + 2).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT t.credit_account_id, t.amount FROM idempotency_key k JOIN ledger_transfer t ON t.op_id = k.id \
             WHERE k.scope = $1 AND k.outcome = 'succeeded' AND k.key IN ({})",
            marks.join(", ")
        );
        let mut values: Vec<Value> = vec![GRANT_SCOPE.into()];
        values.extend(chunk.iter().map(|p| Value::from(grant_key(campaign, *p, "base"))));
        for r in Credited::find_by_statement(stmt(backend, &sql, values)).all(txn).await? {
            *out.entry(r.credit_account_id).or_insert(0) += r.amount;
        }
    }
    Ok(out)
}

/// The idempotency scope of the grant's operations.
const GRANT_SCOPE: &str = "system:grant";

/// The key of a pupil's grant operation of one tier (`base`, `boursier`).
fn grant_key(campaign: Uuid, pupil: Uuid, tier: &str) -> String {
    format!("grant:{campaign}:{pupil}:{tier}")
}

/// The base grant of every pupil of the page, and the boursier top-up where it applies.
pub(super) fn credit_operations(
    campaign: &Campaign,
    budget: AccountRef,
    page: &[(Uuid, bool)],
    passes: &[(Uuid, Uuid)],
    wallets: &[AccountRef],
    base_credited: &HashMap<Uuid, i64>,
) -> Vec<Operation> {
    let per_pass = campaign.policy.wallets.len();
    let boursiers: std::collections::HashSet<Uuid> = page.iter().filter(|(_, b)| *b).map(|(p, _)| *p).collect();
    let mut ops = Vec::with_capacity(page.len() * 2);
    for (i, (pupil, pass)) in passes.iter().enumerate() {
        let boursier = boursiers.contains(pupil);
        let legs = |amount: &dyn Fn(Wallet, AccountRef) -> Cents| -> Vec<Leg> {
            campaign
                .policy
                .wallets
                .iter()
                .enumerate()
                .filter_map(|(j, w)| {
                    let credit = wallets[i * per_pass + j];
                    let a = amount(w.wallet, credit);
                    (a.0 > 0).then_some(Leg::Transfer { kind: TransferKind::Grant, debit: budget, credit, amount: a })
                })
                .collect()
        };
        let key = |tier: &str| grant_key(campaign.id, *pupil, tier);
        // The family hears of the credit once per pass, whichever of the pass's operations
        // run now (the batch writes each distinct event once; a replay writes none).
        let events = || vec![pass_event(*pass, NotificationKind::CreditGranted)];
        let base = legs(&|w, _| campaign.policy.amount(w, false));
        if !base.is_empty() {
            ops.push(Operation::new(GRANT_SCOPE, key("base"), base).with_events(events()));
        }
        if boursier {
            let top_up = legs(&|w, account| {
                let credited = base_credited.get(&account.id).copied().unwrap_or(campaign.policy.amount(w, false).0);
                Cents(campaign.policy.amount(w, true).0.saturating_sub(credited))
            });
            if !top_up.is_empty() {
                ops.push(Operation::new(GRANT_SCOPE, key("boursier"), top_up).with_events(events()));
            }
        }
    }
    ops
}
