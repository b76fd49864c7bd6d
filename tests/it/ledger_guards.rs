//! The money path's guards (issue "the money path before money flows"): amounts that could
//! overflow, a sweep that one bad hold must not stop, batches that must not hide a refusal or
//! net one operation against another, and an audit that sees corruption.

use passerelle_domain::Cents;
use passerelle_domain::db::stmt;
use passerelle_domain::ledger::*;
use passerelle_tests::TestApp;
use passerelle_tests::code;
use passerelle_tests::fresh_db;
use passerelle_tests::ledger::{Books, books, funded_wallet, payment, wallet};
use passerelle_tests::school::funder;
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};
use serde_json::json;
use uuid::Uuid;

async fn counters(db: &DatabaseConnection, account: AccountRef) -> Counters {
    get_account(db, account.id).await.unwrap().unwrap().counters
}

async fn assert_clean(db: &DatabaseConnection) {
    let report = audit(db).await.unwrap();
    assert!(report.is_clean(), "audit: {:?}", report.violations);
}

/// Writes behind the ledger's back (what a bug or a manual edit would do).
async fn tamper(db: &DatabaseConnection, text: &str, values: Vec<sea_orm::Value>) {
    db.execute_raw(stmt(db.get_database_backend(), text, values)).await.unwrap();
}

async fn hold_state(db: &DatabaseConnection, hold: Uuid) -> String {
    #[derive(sea_orm::FromQueryResult)]
    struct State {
        state: String,
    }
    let sql = "SELECT state FROM ledger_hold WHERE transfer_id = $1";
    State::find_by_statement(stmt(db.get_database_backend(), sql, [hold.into()])).one(db).await.unwrap().unwrap().state
}

#[tokio::test]
async fn legs_of_i64_max_are_refused_and_move_nothing() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let wallet = funded_wallet(&t.db, b, 1000).await;
    // Two legs of i64::MAX: summed in release builds they wrap the wallet's debit total
    // negative, the conditional update passes and the wallet gains money.
    let leg = Leg::Transfer { kind: TransferKind::Payment, debit: wallet, credit: b.partner, amount: Cents(i64::MAX) };
    let op = Operation::new("parent:test", "overflow", vec![leg.clone(), leg]);
    assert!(matches!(execute(&t.db, &op).await, Err(LedgerError::Invalid(_))));
    // One leg just above the default cap is refused too; one at the cap is an ordinary overdraft.
    let above = Cents(DEFAULT_MAX_LEG_AMOUNT.0 + 1);
    let op = Operation::new(
        "system:test",
        "above-cap",
        vec![Leg::Transfer { kind: TransferKind::Grant, debit: b.budget, credit: wallet, amount: above }],
    );
    assert!(matches!(execute(&t.db, &op).await, Err(LedgerError::Invalid(_))));
    let at_cap = payment(b, wallet, DEFAULT_MAX_LEG_AMOUNT.0, "at-cap");
    assert!(matches!(execute(&t.db, &at_cap).await, Err(LedgerError::Rejected(Rejection::InsufficientFunds { .. }))));
    let c = counters(&t.db, wallet).await;
    assert_eq!((c.credits_posted, c.debits_posted, c.available()), (1000, 0, 1000));
    assert_clean(&t.db).await;
}

#[tokio::test]
async fn a_hold_longer_than_a_school_year_is_refused() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let wallet = funded_wallet(&t.db, b, 1000).await;
    let leg = Leg::Hold {
        kind: TransferKind::Ticket,
        debit: wallet,
        credit: b.partner,
        amount: Cents(100),
        timeout_ms: MAX_HOLD_TIMEOUT_MS + 1,
    };
    let op = Operation::new("parent:test", "forever", vec![leg]);
    assert!(matches!(execute(&t.db, &op).await, Err(LedgerError::Invalid(_))));
    assert_eq!(counters(&t.db, wallet).await.debits_pending, 0);
}

#[tokio::test]
async fn a_huge_amount_through_graphql_is_bad_user_input_not_a_crash() {
    let app = TestApp::spawn_back_office().await;
    let f = funder(&app.db, "92").await;
    let q = "mutation($input: CampaignInput!) { upsertCampaign(input: $input) { id } }";
    for huge in ["79228162514264337593543950335", "-79228162514264337593543950335", "10000000.01", "1e27"] {
        let input = json!({ "input": {
            "funderId": f.to_string(), "schoolYear": 2026, "name": "Pass+",
            "wallets": [{ "wallet": "SPORT", "base": huge, "boursier": huge }],
            "eligibleGrades": ["SIXIEME"], "territory": "SCHOOL", "departement": "92",
            "opensOn": "2026-09-01", "generationDeadline": "2027-06-30", "validationDeadline": "2028-06-30"
        }});
        let body = app.graphql(q, input).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{huge}: {body}");
    }
    // The server is still there.
    let ok = app.graphql("{ serverInfo { version } }", json!({})).await;
    assert_eq!(ok["data"]["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
    app.stop().await;
}

/// A ticket hold of 1 € on `wallet` for the partner; its id.
async fn hold_of(db: &DatabaseConnection, b: Books, wallet: AccountRef, timeout_ms: i64, key: &str) -> Uuid {
    let leg =
        Leg::Hold { kind: TransferKind::Ticket, debit: wallet, credit: b.partner, amount: Cents(100), timeout_ms };
    execute(db, &Operation::new("parent:test", key, vec![leg])).await.unwrap().transfers[0].id
}

/// A hold that expires at once (timeout 0).
async fn due_hold(db: &DatabaseConnection, b: Books, wallet: AccountRef, key: &str) -> Uuid {
    hold_of(db, b, wallet, 0, key).await
}

#[tokio::test]
async fn a_sweep_with_one_stuck_hold_still_expires_the_others() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let wallet = funded_wallet(&t.db, b, 1000).await;
    let stuck = due_hold(&t.db, b, wallet, "h0").await;
    let others = [due_hold(&t.db, b, wallet, "h1").await, due_hold(&t.db, b, wallet, "h2").await];
    // The stuck hold's expiry key is already taken by another request: expiring it is an
    // idempotency conflict, an error that once aborted the whole sweep.
    let squatter = payment(b, wallet, 1, format!("expire:{stuck}"));
    let squatter = Operation { scope: "system:scheduler".into(), ..squatter };
    execute(&t.db, &squatter).await.unwrap();
    // It is the oldest: with one hold per page, a head-of-line block would expire nothing.
    assert_eq!(expire_due_holds(&t.db, 2).await.unwrap(), 2);
    let c = counters(&t.db, wallet).await;
    assert_eq!((c.debits_pending, c.debits_posted, c.available()), (100, 1, 899), "only the stuck hold is left");
    assert_eq!(expire_due_holds(&t.db, 10).await.unwrap(), 0, "the stuck one stays skipped, nothing twice");
    for h in others {
        assert_eq!(hold_state(&t.db, h).await, "expired");
    }
    assert_eq!(hold_state(&t.db, stuck).await, "pending");
    assert_clean(&t.db).await;
}

#[tokio::test]
async fn an_expiry_refusal_is_not_stored_on_its_key() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let wallet = funded_wallet(&t.db, b, 1000).await;
    let hold = hold_of(&t.db, b, wallet, 3_600_000, "later").await;
    let expire = Operation::new("system:scheduler", format!("expire:{hold}"), vec![Leg::Expire { hold }]);
    // Not due yet (as after the database clock stepped back): refused, and not remembered.
    assert!(matches!(execute(&t.db, &expire).await, Err(LedgerError::Rejected(Rejection::HoldNotExpired))));
    tamper(&t.db, "UPDATE ledger_hold SET expires_at_us = 0 WHERE transfer_id = $1", vec![hold.into()]).await;
    let out = execute(&t.db, &expire).await.expect("expired once due");
    assert!(!out.replayed);
    assert_eq!(counters(&t.db, wallet).await.debits_pending, 0);
}

fn grant_op(b: Books, wallet: AccountRef, cents: i64, key: &str) -> Operation {
    Operation::new(
        "system:test",
        key,
        vec![Leg::Transfer { kind: TransferKind::Grant, debit: b.budget, credit: wallet, amount: Cents(cents) }],
    )
}

#[tokio::test]
async fn a_batch_reports_a_key_refused_earlier_as_failed_not_done() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let empty = wallet(&t.db, b, Wallet::Sport).await;
    let full = funded_wallet(&t.db, b, 500).await;
    // Refused alone (an empty wallet), the refusal recorded on its key.
    let refused = payment(b, empty, 300, "pay-1");
    assert!(matches!(execute(&t.db, &refused).await, Err(LedgerError::Rejected(_))));
    let ok = payment(b, full, 200, "pay-2");
    let out = execute_batch(&t.db, &[refused, ok]).await.unwrap();
    assert_eq!((out.executed, out.replayed, out.failed), (1, 0, 1), "{out:?}");
    assert_eq!(counters(&t.db, full).await.available(), 300);
    assert_eq!(counters(&t.db, empty).await.available(), 0);
    assert_clean(&t.db).await;
}

#[tokio::test]
async fn a_batch_does_not_let_a_later_operation_fund_an_earlier_one() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let wallet = wallet(&t.db, b, Wallet::Sport).await;
    // Alone, the payment would be refused; netted with the grant after it, it would pass.
    let ops = [payment(b, wallet, 300, "pay"), grant_op(b, wallet, 500, "grant")];
    let refused = execute_batch(&t.db, &ops).await;
    assert!(
        matches!(refused, Err(LedgerError::Rejected(Rejection::InsufficientFunds { account })) if account == wallet.id),
        "{refused:?}"
    );
    let c = counters(&t.db, wallet).await;
    assert_eq!((c.credits_posted, c.debits_posted), (0, 0), "nothing written");
    // Funded before the batch, the same shape goes through.
    execute(&t.db, &grant_op(b, wallet, 500, "grant-first")).await.unwrap();
    let out = execute_batch(&t.db, &[payment(b, wallet, 300, "pay-again"), grant_op(b, wallet, 100, "more")]).await;
    assert_eq!(out.unwrap().executed, 2);
    assert_eq!(counters(&t.db, wallet).await.available(), 300);
    assert_clean(&t.db).await;
}

#[tokio::test]
async fn the_audit_sees_orphans_unflagged_wallets_and_holds_posted_late() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let wallet = funded_wallet(&t.db, b, 1000).await;
    let hold = hold_of(&t.db, b, wallet, 3_600_000, "h").await;
    execute(&t.db, &Operation::new("partner:test", "post", vec![Leg::Post { hold, amount: None }])).await.unwrap();
    assert_clean(&t.db).await;

    let violations = |db: &DatabaseConnection| {
        let db = db.clone();
        async move { audit(&db).await.unwrap().violations.join("\n") }
    };
    // Posted after its expiry.
    tamper(&t.db, "UPDATE ledger_hold SET expires_at_us = 0 WHERE transfer_id = $1", vec![hold.into()]).await;
    assert!(violations(&t.db).await.contains("posted at or after their expiry"));
    // A pass wallet that may overdraw.
    tamper(&t.db, "UPDATE ledger_account SET must_not_overdraw = FALSE WHERE id = $1", vec![wallet.id.into()]).await;
    assert!(violations(&t.db).await.contains("pass wallets allowed to overdraw"));
    // A transfer to an account that does not exist (no foreign keys on the hot tables).
    let nowhere = Uuid::new_v4();
    tamper(&t.db, "UPDATE ledger_transfer SET credit_account_id = $1 WHERE id = $2", vec![nowhere.into(), hold.into()])
        .await;
    assert!(violations(&t.db).await.contains("transfers naming an account that does not exist"));
}

/// A shared account's changes ride in the statement that writes the operation's rows on
/// PostgreSQL. One whose shard rows are gone (a restore, a manual edit) still takes every
/// change, through the insert of the shard it needs; one claimed under another funder's scope
/// refuses the whole operation and keeps nothing of it, wallet included.
#[tokio::test]
async fn a_shared_account_takes_its_changes_without_its_shards_and_refuses_a_wrong_scope() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    tamper(&t.db, "DELETE FROM ledger_account_shard WHERE account_id = $1", vec![b.partner.id.into()]).await;
    let wallet = funded_wallet(&t.db, b, 1_000).await;
    for i in 0..20 {
        execute(&t.db, &payment(b, wallet, 10, format!("no-shard-{i}"))).await.expect("payment");
    }
    assert_eq!(counters(&t.db, b.partner).await.credits_posted, 200);
    assert_eq!(counters(&t.db, wallet).await.debits_posted, 200);

    // The partner's book belongs to the funder, not to a campaign: claimed in the campaign's
    // scope (same funder, so the operation itself is well formed), it names no account we hold.
    let claimed = AccountRef { scope: b.scope, ..b.partner };
    let op = Operation::new(
        "parent:test",
        "wrong-scope",
        vec![Leg::Transfer { kind: TransferKind::Payment, debit: wallet, credit: claimed, amount: Cents(10) }],
    );
    let refused = execute(&t.db, &op).await;
    assert!(
        matches!(refused, Err(LedgerError::Rejected(Rejection::AccountNotFound { account })) if account == b.partner.id),
        "{refused:?}"
    );
    assert_eq!(counters(&t.db, b.partner).await.credits_posted, 200);
    assert_eq!(counters(&t.db, wallet).await.debits_posted, 200, "the wallet's debit went back with the refusal");
    assert_clean(&t.db).await;
}
