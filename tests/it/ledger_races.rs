//! Concurrency on the real database (SQLite file in WAL mode, or PostgreSQL): many tasks
//! fight over one wallet, one key, one hold. Each test ends with the audit.

use std::sync::Arc;

use futures_util::future::join_all;
use passerelle_domain::Cents;
use passerelle_domain::ledger::*;
use passerelle_tests::fresh_db;
use passerelle_tests::ledger::{books, funded_wallet, payment};
use sea_orm::DatabaseConnection;

/// Posted counters only (no pending amount left): (credits, debits).
fn posted(credits: i64, debits: i64) -> Counters {
    Counters { credits_posted: credits, debits_posted: debits, credits_pending: 0, debits_pending: 0 }
}

async fn counters(db: &DatabaseConnection, account: AccountRef) -> Counters {
    get_account(db, account.id).await.unwrap().expect("the account exists").counters
}

/// Every account of the test against its expected counters, by name.
async fn assert_counters(db: &DatabaseConnection, expected: &[(&str, AccountRef, Counters)]) {
    for (name, account, want) in expected {
        assert_eq!(counters(db, *account).await, *want, "{name}");
    }
}

async fn assert_clean(db: &DatabaseConnection) {
    let report = audit(db).await.unwrap();
    assert!(report.is_clean(), "audit: {:?}", report.violations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_debits_of_more_than_a_third_exactly_floor_succeed() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let balance = 10_000;
    let amount = 3_400; // more than a third: ⌊10000 / 3400⌋ = 2 may pass
    let wallet = funded_wallet(&t.db, b, balance).await;
    let db = Arc::new(t.db.clone());
    let tasks = (0..64).map(|i| {
        let db = db.clone();
        tokio::spawn(async move { execute(&db, &payment(b, wallet, amount, format!("race-{i}"))).await })
    });
    let results: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    let ok = results.iter().filter(|r| matches!(r, Ok(o) if !o.replayed)).count();
    let refused =
        results.iter().filter(|r| matches!(r, Err(LedgerError::Rejected(Rejection::InsufficientFunds { .. })))).count();
    assert_eq!(ok as i64, balance / amount);
    assert_eq!(refused, 64 - ok, "every other task is refused for funds: {results:?}");
    let spent = amount * (balance / amount);
    let expected = [
        ("budget", b.budget, posted(0, balance)),
        ("wallet", wallet, posted(balance, spent)),
        ("partner", b.partner, posted(spent, 0)),
    ];
    assert_counters(&t.db, &expected).await;
    assert_clean(&t.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_replays_of_one_key_make_one_transfer_with_identical_results() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let wallet = funded_wallet(&t.db, b, 5_000).await;
    let db = Arc::new(t.db.clone());
    let tasks = (0..32).map(|_| {
        let db = db.clone();
        tokio::spawn(async move { execute(&db, &payment(b, wallet, 1_500, "one-key")).await })
    });
    let outcomes: Vec<Outcome> = join_all(tasks).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| !o.replayed).count(), 1, "exactly one execution");
    let first = &outcomes[0];
    assert!(outcomes.iter().all(|o| o.op_id == first.op_id && o.transfers == first.transfers));
    let expected = [
        ("budget", b.budget, posted(0, 5_000)),
        ("wallet", wallet, posted(5_000, 1_500)),
        ("partner", b.partner, posted(1_500, 0)),
    ];
    assert_counters(&t.db, &expected).await;
    let report = audit(&t.db).await.unwrap();
    assert_eq!(report.transfers, 2, "the grant and one payment");
    assert!(report.is_clean(), "{:?}", report.violations);
}

/// Post and expire race on a hold whose timeout falls during the race: whichever runs first
/// by the database clock wins; exactly one resolution ever succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn post_racing_expire_on_one_hold_has_exactly_one_winner() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let mut paid = 0;
    for round in 0..10 {
        let wallet = funded_wallet(&t.db, b, 5_000).await;
        let hold = Operation::new(
            "parent:test",
            format!("hold-{round}"),
            vec![Leg::Hold {
                kind: TransferKind::Ticket,
                debit: wallet,
                credit: b.partner,
                amount: Cents(2_000),
                timeout_ms: 15,
            }],
        );
        let hold_id = execute(&t.db, &hold).await.unwrap().transfers[0].id;
        let db = Arc::new(t.db.clone());
        let tasks = (0..8).map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                // Each task retries until the hold is no longer pending; none sleeps.
                for attempt in 0.. {
                    let leg = if i % 2 == 0 {
                        Leg::Post { hold: hold_id, amount: None }
                    } else {
                        Leg::Expire { hold: hold_id }
                    };
                    let op = Operation::new("race", format!("{hold_id}-{i}-{attempt}"), vec![leg]);
                    match execute(&db, &op).await {
                        Ok(o) => return Some(o.transfers[0].phase),
                        Err(LedgerError::Rejected(Rejection::HoldNotPending)) => return None,
                        Err(LedgerError::Rejected(Rejection::HoldExpired | Rejection::HoldNotExpired)) => {
                            tokio::task::yield_now().await
                        }
                        Err(e) => panic!("unexpected: {e}"),
                    }
                }
                None
            })
        });
        let winners: Vec<Phase> = join_all(tasks).await.into_iter().filter_map(|r| r.unwrap()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let posted_now = if winners[0] == Phase::PostPending { 2_000 } else { 0 };
        paid += posted_now;
        let expected = [
            ("wallet", wallet, posted(5_000, posted_now)),
            ("partner", b.partner, posted(paid, 0)),
            ("budget", b.budget, posted(0, 5_000 * (round + 1))),
        ];
        assert_counters(&t.db, &expected).await;
    }
    assert_clean(&t.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_posts_and_voids_resolve_a_hold_once() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let wallet = funded_wallet(&t.db, b, 5_000).await;
    let hold = Operation::new(
        "parent:test",
        "hold",
        vec![Leg::Hold {
            kind: TransferKind::Ticket,
            debit: wallet,
            credit: b.partner,
            amount: Cents(4_000),
            timeout_ms: 3_600_000,
        }],
    );
    let hold_id = execute(&t.db, &hold).await.unwrap().transfers[0].id;
    let db = Arc::new(t.db.clone());
    let tasks = (0..32).map(|i| {
        let db = db.clone();
        tokio::spawn(async move {
            let leg = if i % 2 == 0 {
                Leg::Post { hold: hold_id, amount: Some(Cents(1_000)) }
            } else {
                Leg::Void { hold: hold_id }
            };
            execute(&db, &Operation::new("race", format!("r{i}"), vec![leg])).await
        })
    });
    let results: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    let won: Vec<&Outcome> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    let refused = results.iter().filter(|r| matches!(r, Err(LedgerError::Rejected(Rejection::HoldNotPending))));
    assert_eq!(refused.count(), 31, "every other resolution finds the hold resolved: {results:?}");
    let moved = if won[0].transfers[0].phase == Phase::PostPending { 1_000 } else { 0 };
    let expected = [
        ("budget", b.budget, posted(0, 5_000)),
        ("wallet", wallet, posted(5_000, moved)),
        ("partner", b.partner, posted(moved, 0)),
    ];
    assert_counters(&t.db, &expected).await;
    assert_clean(&t.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opposite_transfers_between_two_wallets_do_not_deadlock() {
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let a = funded_wallet(&t.db, b, 100_000).await;
    let c = funded_wallet(&t.db, b, 100_000).await;
    let db = Arc::new(t.db.clone());
    let tasks = (0..40).map(|i| {
        let db = db.clone();
        let (from, to) = if i % 2 == 0 { (a, c) } else { (c, a) };
        tokio::spawn(async move {
            let legs = vec![
                Leg::Transfer { kind: TransferKind::Correction, debit: from, credit: to, amount: Cents(100) },
                Leg::Transfer { kind: TransferKind::Payment, debit: to, credit: b.partner, amount: Cents(10) },
            ];
            execute(&db, &Operation::new("race", format!("x{i}"), legs)).await
        })
    });
    for r in join_all(tasks).await {
        r.unwrap().unwrap();
    }
    // Each wallet sends 20 corrections and receives 20, and pays 10 after each it receives.
    let each = posted(100_000 + 20 * 100, 20 * 100 + 20 * 10);
    let expected = [
        ("budget", b.budget, posted(0, 200_000)),
        ("a", a, each),
        ("c", c, each),
        ("partner", b.partner, posted(40 * 10, 0)),
    ];
    assert_counters(&t.db, &expected).await;
    assert_clean(&t.db).await;
}

/// Forty payments from distinct wallets to one partner, all at once: the partner's book and
/// the budget (shared accounts) read whole, whichever shard rows the operations wrote. On
/// PostgreSQL they did spread over several rows (what lets them commit side by side).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shared_account_reads_whole_across_its_shards() {
    use passerelle_tests::Backend;
    let t = fresh_db().await;
    let b = books(&t.db).await;
    let mut wallets = vec![];
    for _ in 0..40 {
        wallets.push(funded_wallet(&t.db, b, 1_000).await);
    }
    let db = Arc::new(t.db.clone());
    let tasks = wallets.iter().enumerate().map(|(i, w)| {
        let (db, op) = (db.clone(), payment(b, *w, 10 + i as i64, format!("shard-{i}")));
        tokio::spawn(async move { execute(&db, &op).await })
    });
    for r in join_all(tasks).await {
        r.expect("task").expect("payment");
    }
    let paid: i64 = (0..40).map(|i| 10 + i).sum();
    assert_counters(&t.db, &[("partner", b.partner, posted(paid, 0)), ("budget", b.budget, posted(0, 40_000))]).await;
    if t.backend == Backend::Postgres {
        let shards = passerelle_tests::db::count(
            &t.db,
            &format!(
                "SELECT COUNT(*) AS n FROM ledger_account_shard WHERE account_id = '{}' AND credits_posted > 0",
                b.partner.id
            ),
        )
        .await;
        assert!(shards > 1, "the partner's payments went to {shards} shard row(s)");
        let all = passerelle_tests::db::count(
            &t.db,
            &format!("SELECT COUNT(*) AS n FROM ledger_account_shard WHERE account_id = '{}'", b.partner.id),
        )
        .await;
        assert_eq!(all, 16, "an unlimited account's shards are made with it");
    }
    assert_clean(&t.db).await;
}
