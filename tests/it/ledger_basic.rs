//! Ledger behaviour through the real database: posting, holds, expiry by the database
//! clock, idempotency, atomicity of several legs, outbox, audit.

use passerelle_domain::Cents;
use passerelle_domain::ledger::*;
use passerelle_tests::ledger::{books, funded_wallet, payment};
use passerelle_tests::{count, fresh_db};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

async fn counters(db: &DatabaseConnection, account: AccountRef) -> Counters {
    get_account(db, account.id).await.unwrap().expect("the account exists").counters
}

async fn available(db: &DatabaseConnection, account: AccountRef) -> i64 {
    counters(db, account).await.available()
}

async fn assert_clean(db: &DatabaseConnection) {
    let report = audit(db).await.unwrap();
    assert!(report.is_clean(), "audit: {:?}", report.violations);
}

fn hold(wallet: AccountRef, partner: AccountRef, cents: i64, timeout_ms: i64, key: &str) -> Operation {
    Operation::new(
        "parent:test",
        key,
        vec![Leg::Hold {
            kind: TransferKind::Ticket,
            debit: wallet,
            credit: partner,
            amount: Cents(cents),
            timeout_ms,
        }],
    )
}

/// A refusal for lack of funds on `account` (not another refusal, not another account).
fn is_short_of_funds(r: &Result<Outcome, LedgerError>, account: AccountRef) -> bool {
    matches!(r, Err(LedgerError::Rejected(Rejection::InsufficientFunds { account: a })) if *a == account.id)
}

fn single(key: &str, leg: Leg) -> Operation {
    Operation::new("partner:test", key, vec![leg])
}

#[tokio::test]
async fn a_payment_moves_money_and_an_overdraft_is_refused() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let wallet = funded_wallet(&t.db, b, 8000).await;
    let out = execute(&t.db, &payment(b, wallet, 3000, "p1")).await.unwrap();
    assert!(!out.replayed);
    assert_eq!(out.transfers.len(), 1);
    assert_eq!(available(&t.db, wallet).await, 5000);
    let before = (counters(&t.db, wallet).await, counters(&t.db, b.partner).await);
    assert_eq!(before.1.credits_posted, 3000);
    let refused = execute(&t.db, &payment(b, wallet, 5001, "p2")).await;
    assert!(is_short_of_funds(&refused, wallet), "{refused:?}");
    let after = (counters(&t.db, wallet).await, counters(&t.db, b.partner).await);
    assert_eq!(after, before, "a refusal moves nothing");
    assert_clean(&t.db).await;
}

#[tokio::test]
async fn holds_count_against_the_balance_and_post_partially() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let wallet = funded_wallet(&t.db, b, 10_000).await;
    let h = execute(&t.db, &hold(wallet, b.partner, 6000, 3_600_000, "h1")).await.unwrap();
    let hold_id = h.transfers[0].id;
    assert_eq!(available(&t.db, wallet).await, 4000);
    // A second hold larger than what is left is refused: pending debits count.
    let refused = execute(&t.db, &hold(wallet, b.partner, 4001, 3_600_000, "h2")).await;
    assert!(is_short_of_funds(&refused, wallet), "{refused:?}");
    assert_eq!(available(&t.db, wallet).await, 4000, "a refused hold holds nothing");
    let posted =
        execute(&t.db, &single("post1", Leg::Post { hold: hold_id, amount: Some(Cents(2500)) })).await.unwrap();
    assert_eq!(posted.transfers[0].amount, Cents(2500));
    assert_eq!(available(&t.db, wallet).await, 7500, "the remainder of the hold is released");
    let again = execute(&t.db, &single("post2", Leg::Void { hold: hold_id })).await;
    assert!(matches!(again, Err(LedgerError::Rejected(Rejection::HoldNotPending))));
    assert_clean(&t.db).await;
}

#[tokio::test]
async fn posting_more_than_held_is_refused_and_void_releases_all() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let wallet = funded_wallet(&t.db, b, 5000).await;
    let hold_id = execute(&t.db, &hold(wallet, b.partner, 3000, 3_600_000, "h")).await.unwrap().transfers[0].id;
    let over = execute(&t.db, &single("over", Leg::Post { hold: hold_id, amount: Some(Cents(3001)) })).await;
    assert!(matches!(over, Err(LedgerError::Rejected(Rejection::AmountExceedsHold))));
    execute(&t.db, &single("void", Leg::Void { hold: hold_id })).await.unwrap();
    assert_eq!(available(&t.db, wallet).await, 5000);
    assert_clean(&t.db).await;
}

#[tokio::test]
async fn expiry_follows_the_database_clock() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let wallet = funded_wallet(&t.db, b, 5000).await;
    let live = execute(&t.db, &hold(wallet, b.partner, 1000, 3_600_000, "live")).await.unwrap().transfers[0].id;
    let dead = execute(&t.db, &hold(wallet, b.partner, 2000, 0, "dead")).await.unwrap().transfers[0].id;
    let early = execute(&t.db, &single("expire-live", Leg::Expire { hold: live })).await;
    assert!(matches!(early, Err(LedgerError::Rejected(Rejection::HoldNotExpired))));
    let late = execute(&t.db, &single("post-dead", Leg::Post { hold: dead, amount: None })).await;
    assert!(matches!(late, Err(LedgerError::Rejected(Rejection::HoldExpired))));
    assert_eq!(expire_due_holds(&t.db, 100).await.unwrap(), 1, "the scheduler expires the due hold");
    assert_eq!(expire_due_holds(&t.db, 100).await.unwrap(), 0, "and only once");
    assert_eq!(available(&t.db, wallet).await, 4000);
    assert_clean(&t.db).await;
}

#[tokio::test]
async fn a_replayed_key_returns_the_original_and_a_changed_request_conflicts() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let wallet = funded_wallet(&t.db, b, 5000).await;
    let first = execute(&t.db, &payment(b, wallet, 1000, "k")).await.unwrap();
    let replay = execute(&t.db, &payment(b, wallet, 1000, "k")).await.unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.transfers, first.transfers);
    assert_eq!(replay.op_id, first.op_id);
    assert_eq!(available(&t.db, wallet).await, 4000, "the replay moved nothing");
    let conflict = execute(&t.db, &payment(b, wallet, 1001, "k")).await;
    assert!(matches!(conflict, Err(LedgerError::IdempotencyConflict)));
    // Keys are scoped: another caller may use the same key.
    let mut other = payment(b, wallet, 1000, "k");
    other.scope = "parent:someone-else".into();
    assert!(!execute(&t.db, &other).await.unwrap().replayed);
    assert_clean(&t.db).await;
}

#[tokio::test]
async fn a_key_refused_for_funds_keeps_being_refused() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let wallet = funded_wallet(&t.db, b, 1000).await;
    let refused = execute(&t.db, &payment(b, wallet, 1500, "k")).await;
    assert!(is_short_of_funds(&refused, wallet), "{refused:?}");
    assert_eq!(available(&t.db, wallet).await, 1000);
    // Money arrives; the same key still fails the same way (TigerBeetle's id_already_failed).
    let top_up = Operation::new(
        "system:test",
        "top-up",
        vec![Leg::Transfer { kind: TransferKind::TopUp, debit: b.budget, credit: wallet, amount: Cents(5000) }],
    );
    execute(&t.db, &top_up).await.unwrap();
    let retry = execute(&t.db, &payment(b, wallet, 1500, "k")).await;
    assert!(is_short_of_funds(&retry, wallet), "{retry:?}");
    assert_eq!(available(&t.db, wallet).await, 6000);
    assert_clean(&t.db).await;
}

#[tokio::test]
async fn legs_apply_all_or_none_and_events_only_on_success() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let rich = funded_wallet(&t.db, b, 5000).await;
    let poor = funded_wallet(&t.db, b, 100).await;
    let event =
        OutboxEvent { topic: "balance_changed".into(), account_id: None, payload: serde_json::json!({"pass": "x"}) };
    let legs = |second: i64| {
        vec![
            Leg::Transfer { kind: TransferKind::Payment, debit: rich, credit: b.partner, amount: Cents(1000) },
            Leg::Transfer { kind: TransferKind::Payment, debit: poor, credit: b.partner, amount: Cents(second) },
        ]
    };
    let failing = Operation::new("parent:test", "pair-1", legs(101)).with_events(vec![event.clone()]);
    let refused = execute(&t.db, &failing).await;
    assert!(is_short_of_funds(&refused, poor), "the second leg overdraws: {refused:?}");
    assert_eq!(
        (available(&t.db, rich).await, available(&t.db, poor).await),
        (5000, 100),
        "the first leg was rolled back"
    );
    assert_eq!(outbox_rows(&t.db).await, 0);
    let ok = Operation::new("parent:test", "pair-2", legs(100)).with_events(vec![event]);
    execute(&t.db, &ok).await.unwrap();
    assert_eq!((available(&t.db, rich).await, available(&t.db, poor).await), (4000, 0));
    assert_eq!(outbox_rows(&t.db).await, 1);
    assert_clean(&t.db).await;
}

async fn outbox_rows(db: &DatabaseConnection) -> i64 {
    count(db, "SELECT COUNT(*) AS n FROM outbox").await
}

#[tokio::test]
async fn malformed_operations_are_refused_before_touching_the_database() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let w = funded_wallet(&t.db, b, 100).await;
    let bad = [
        payment(b, w, 0, "zero"),
        payment(b, w, -5, "negative"),
        payment(b, w, 1, ""),
        payment(b, w, 1, "x".repeat(256)),
        Operation::new(
            "p",
            "self",
            vec![Leg::Transfer { kind: TransferKind::Payment, debit: w, credit: w, amount: Cents(1) }],
        ),
        Operation::new("p", "none", vec![]),
    ];
    for op in bad {
        assert!(matches!(execute(&t.db, &op).await, Err(LedgerError::Invalid(_))), "{op:?}");
    }
    let missing = payment(b, AccountRef { id: Uuid::new_v4(), limited: true, scope: b.scope }, 1, "missing");
    assert!(matches!(execute(&t.db, &missing).await, Err(LedgerError::Rejected(Rejection::AccountNotFound { .. }))));
    assert_clean(&t.db).await;
}

#[tokio::test]
async fn the_audit_catches_a_tampered_balance() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let w = funded_wallet(&t.db, b, 100).await;
    assert_clean(&t.db).await;
    let sql = "UPDATE ledger_account SET credits_posted = credits_posted + 1 WHERE id = $1";
    t.db.execute_raw(passerelle_domain::db::stmt(t.db.get_database_backend(), sql, [w.id.into()])).await.unwrap();
    let report = audit(&t.db).await.unwrap();
    assert!(report.violations.iter().any(|v| v.contains("cached")), "{:?}", report.violations);
    assert!(report.violations.iter().any(|v| v.contains("differ overall")), "{:?}", report.violations);
}

#[tokio::test]
async fn a_batch_credits_many_wallets_at_once_and_refuses_an_unknown_one_whole() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let mut wallets = vec![];
    for _ in 0..250 {
        wallets.push(passerelle_tests::ledger::wallet(&t.db, b, Wallet::Sport).await);
    }
    let ops: Vec<Operation> = wallets
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let leg =
                Leg::Transfer { kind: TransferKind::Grant, debit: b.budget, credit: *w, amount: Cents(100 + i as i64) };
            Operation::new("system:test", format!("g{i}"), vec![leg])
        })
        .collect();
    let out = execute_batch(&t.db, &ops).await.unwrap();
    assert_eq!((out.executed, out.replayed), (250, 0));
    for (i, w) in wallets.iter().enumerate() {
        assert_eq!(available(&t.db, *w).await, 100 + i as i64);
    }
    let again = execute_batch(&t.db, &ops).await.unwrap();
    assert_eq!((again.executed, again.replayed, again.moved_cents), (0, 250, 0));
    let ghost = AccountRef { id: Uuid::new_v4(), limited: true, scope: b.scope };
    let mut bad = vec![Operation::new(
        "system:test",
        "x1",
        vec![Leg::Transfer { kind: TransferKind::Grant, debit: b.budget, credit: wallets[0], amount: Cents(5) }],
    )];
    bad.push(Operation::new(
        "system:test",
        "x2",
        vec![Leg::Transfer { kind: TransferKind::Grant, debit: b.budget, credit: ghost, amount: Cents(5) }],
    ));
    assert!(matches!(execute_batch(&t.db, &bad).await, Err(LedgerError::Rejected(Rejection::AccountNotFound { .. }))));
    assert_eq!(available(&t.db, wallets[0]).await, 100, "nothing of a refused batch is kept");
    assert_clean(&t.db).await;
}

/// `ensure_accounts` with some accounts already there and some new, one asked twice: the
/// existing keep their ids, the new get one each (the same for both asks), a second call
/// returns the same references, and a new shared account has its shard rows on PostgreSQL.
#[tokio::test]
async fn ensuring_accounts_mixes_existing_and_new_and_asks_twice_for_the_same() {
    let test_db = fresh_db().await;
    let db = &test_db.db;
    let b = books(db).await;
    let (pass_a, pass_b, partner) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let wallet =
        |pass| AccountSpec::pass_wallet(b.scope.funder, b.scope.campaign.expect("campaign"), pass, Wallet::Sport);
    let existing = ensure_accounts(db, &[wallet(pass_a)]).await.expect("first");
    let payable = AccountSpec::of(AccountKind::PartnerPayable, partner, b.scope);
    let specs = [wallet(pass_a), wallet(pass_b), payable, wallet(pass_b)];
    let refs = ensure_accounts(db, &specs).await.expect("mixed");
    assert_eq!(refs[0], existing[0], "an existing account keeps its id");
    assert_eq!(refs[1], refs[3], "the same account asked twice is one account");
    assert!(refs[1].limited && !refs[2].limited, "{refs:?}");
    assert_ne!(refs[1].id, refs[2].id);
    assert_eq!(ensure_accounts(db, &specs).await.expect("again"), refs, "a second call finds the same accounts");
    let (pass_c, pass_d) = (Uuid::new_v4(), Uuid::new_v4());
    let all_new = ensure_accounts(db, &[wallet(pass_c), wallet(pass_d)]).await.expect("new");
    let owners = [pass_c, pass_d, pass_a, pass_b, partner, pass_b];
    for (r, owner) in all_new.iter().chain(&refs).zip(owners) {
        let stored = get_account(db, r.id).await.expect("read").expect("the returned id is the stored account");
        assert_eq!((stored.reference(), stored.owner_id), (Some(*r), owner));
    }
    if test_db.backend == passerelle_tests::Backend::Postgres {
        let sql = format!("SELECT COUNT(*) AS n FROM ledger_account_shard WHERE account_id = '{}'", refs[2].id);
        assert!(count(db, &sql).await > 0, "the new shared account has its shards");
    }
}

/// A post whose caller read the hold's terms goes as one statement on PostgreSQL: the times it
/// writes are the key's clock (a replay reads back what the first call returned), and terms
/// that are stale or forged never stretch the hold — the hold's own row decides.
#[tokio::test]
async fn a_post_with_known_terms_writes_the_same_rows_and_the_hold_decides() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let wallet = funded_wallet(&t.db, b, 10_000).await;
    let made = execute(&t.db, &hold(wallet, b.partner, 6000, 3_600_000, "h1")).await.unwrap();
    let h = &made.transfers[0];
    assert_eq!(h.expires_at_us, Some(made.created_at_us + 3_600_000_000));
    let replay = execute(&t.db, &hold(wallet, b.partner, 6000, 3_600_000, "h1")).await.unwrap();
    assert_eq!((replay.replayed, &replay.transfers, replay.created_at_us), (true, &made.transfers, made.created_at_us));
    let terms = HoldTerms {
        hold: h.id,
        debit: wallet.id,
        debit_limited: true,
        credit: b.partner.id,
        credit_limited: false,
        amount: Cents(6000),
    };
    let post = |key: &str, cents: i64, terms: HoldTerms| {
        single(key, Leg::Post { hold: h.id, amount: Some(Cents(cents)) }).with_known_holds(vec![terms])
    };
    // Forged: the hold said to be larger than it is. The post above the real hold is refused.
    let forged = HoldTerms { amount: Cents(9000), ..terms };
    let over = execute(&t.db, &post("over", 7000, forged)).await;
    assert!(matches!(over, Err(LedgerError::Rejected(Rejection::AmountExceedsHold))), "{over:?}");
    assert_eq!(available(&t.db, wallet).await, 4000, "a refusal moves nothing");
    // Stale terms (another account) still post what the hold says, where it says.
    let stale = HoldTerms { credit: b.budget.id, ..terms };
    let posted = execute(&t.db, &post("post", 2500, stale)).await.unwrap();
    assert_eq!((posted.transfers[0].credit, posted.transfers[0].amount), (b.partner.id, Cents(2500)));
    assert_eq!(available(&t.db, wallet).await, 7500, "the remainder of the hold is released");
    let again = execute(&t.db, &post("post", 2500, stale)).await.unwrap();
    assert_eq!((again.replayed, &again.transfers), (true, &posted.transfers));
    // The right terms, once the hold is posted: refused, and the refusal is kept on the key.
    let twice = execute(&t.db, &post("twice", 100, terms)).await;
    assert!(matches!(twice, Err(LedgerError::Rejected(Rejection::HoldNotPending))), "{twice:?}");
    let twice = execute(&t.db, &post("twice", 100, terms)).await;
    assert!(matches!(twice, Err(LedgerError::Rejected(Rejection::HoldNotPending))), "{twice:?}");
    // A second hold, posted with its right terms: the rows read back are those returned.
    let second = execute(&t.db, &hold(wallet, b.partner, 1000, 3_600_000, "h2")).await.unwrap().transfers[0].clone();
    let terms = HoldTerms { hold: second.id, amount: Cents(1000), ..terms };
    let op = single("post2", Leg::Post { hold: second.id, amount: None }).with_known_holds(vec![terms]);
    let posted = execute(&t.db, &op).await.unwrap();
    assert!(posted.created_at_us >= second.created_at_us);
    assert_eq!(posted.transfers[0].created_at_us, posted.created_at_us);
    let replay = execute(&t.db, &op).await.unwrap();
    assert_eq!((replay.transfers, replay.created_at_us), (posted.transfers, posted.created_at_us));
    assert_eq!(available(&t.db, wallet).await, 6500);
    assert_clean(&t.db).await;
}
