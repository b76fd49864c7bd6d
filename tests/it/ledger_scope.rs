//! The ledger's boundaries: money never crosses a funder or a campaign, a blocked card spends
//! nothing, and the campaign's deadlines close spending, then redemption; a ticket released
//! after the generation deadline sends its credit to the campaign's expired credit.

use passerelle_domain::Cents;
use passerelle_domain::db::stmt;
use passerelle_domain::ledger::*;
use passerelle_tests::fresh_db;
use passerelle_tests::ledger::{books, campaign_books, funded_wallet, pass_wallet, payment};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

const HOUR_US: i64 = 3_600_000_000;

async fn counters(db: &DatabaseConnection, account: AccountRef) -> Counters {
    get_account(db, account.id).await.unwrap().unwrap().counters
}

async fn assert_clean(db: &DatabaseConnection) {
    let report = audit(db).await.unwrap();
    assert!(report.is_clean(), "audit: {:?}", report.violations);
}

async fn set(db: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) {
    db.execute_raw(stmt(db.get_database_backend(), sql, values)).await.unwrap();
}

fn ticket(wallet: AccountRef, partner: AccountRef, cents: i64, key: &str) -> Operation {
    let leg = Leg::Hold {
        kind: TransferKind::Ticket,
        debit: wallet,
        credit: partner,
        amount: Cents(cents),
        timeout_ms: 3_600_000,
    };
    Operation::new("parent:test", key, vec![leg])
}

fn rejection(r: Result<Outcome, LedgerError>) -> Rejection {
    match r {
        Err(LedgerError::Rejected(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn money_never_crosses_a_funder_or_a_campaign() {
    let t = fresh_db().await;
    let (a, b) = (books(&t.db).await, books(&t.db).await);
    let wallet = funded_wallet(&t.db, a, 1000).await;
    // Paying another funder's partner.
    assert!(matches!(execute(&t.db, &payment(b, wallet, 100, "cross-funder")).await, Err(LedgerError::Invalid(_))));
    // Another campaign of the same funder: its budget cannot credit this campaign's wallet.
    let same_funder = passerelle_tests::ledger::books_in(&t.db, Scope::campaign(a.scope.funder, Uuid::new_v4())).await;
    let leg = Leg::Transfer { kind: TransferKind::Grant, debit: same_funder.budget, credit: wallet, amount: Cents(5) };
    let op = Operation::new("system:test", "cross-campaign", vec![leg]);
    assert!(matches!(execute(&t.db, &op).await, Err(LedgerError::Invalid(_))));
    // A reference that lies about its account's scope names no account we hold.
    let forged = AccountRef { scope: b.scope, ..wallet };
    let leg = Leg::Transfer { kind: TransferKind::Payment, debit: forged, credit: b.partner, amount: Cents(100) };
    let refused = execute(&t.db, &Operation::new("parent:test", "forged", vec![leg])).await;
    assert_eq!(rejection(refused), Rejection::AccountNotFound { account: wallet.id });
    // The partner's books span the funder's campaigns: paying it from this campaign is fine.
    execute(&t.db, &payment(a, wallet, 100, "fine")).await.unwrap();
    assert_eq!(counters(&t.db, wallet).await.available(), 900);
    assert_eq!(counters(&t.db, b.partner).await.credits_posted, 0);
    assert_clean(&t.db).await;
}

#[tokio::test]
async fn a_blocked_card_spends_nothing_but_its_tickets_can_be_cancelled() {
    let t = fresh_db().await;
    let b = campaign_books(&t.db, i64::MAX, i64::MAX).await;
    let (pass, wallet) = pass_wallet(&t.db, b, 5000).await;
    let first = execute(&t.db, &ticket(wallet, b.partner, 1000, "t1")).await.unwrap().transfers[0].id;
    let second = execute(&t.db, &ticket(wallet, b.partner, 500, "t2")).await.unwrap().transfers[0].id;
    set(&t.db, "UPDATE pass SET status = 'blocked' WHERE id = $1", vec![pass.into()]).await;

    let blocked = Rejection::CardBlocked { account: wallet.id };
    let post = Operation::new("partner:test", "post", vec![Leg::Post { hold: first, amount: None }]);
    assert_eq!(rejection(execute(&t.db, &post).await), blocked, "a ticket of a blocked card is not redeemed");
    assert_eq!(rejection(execute(&t.db, &payment(b, wallet, 10, "pay")).await), blocked);
    assert_eq!(rejection(execute(&t.db, &ticket(wallet, b.partner, 10, "t3")).await), blocked);
    let void = Operation::new("parent:test", "void", vec![Leg::Void { hold: second }]);
    execute(&t.db, &void).await.expect("cancelling gives the money back");
    let c = counters(&t.db, wallet).await;
    assert_eq!((c.debits_posted, c.debits_pending, c.available()), (0, 1000, 4000));
    assert_eq!(counters(&t.db, b.partner).await.credits_posted, 0);
    assert_clean(&t.db).await;
}

#[tokio::test]
async fn deadlines_close_spending_then_redemption_and_late_releases_go_to_expired_credit() {
    let t = fresh_db().await;
    let b = campaign_books(&t.db, i64::MAX, i64::MAX).await;
    let campaign = b.scope.campaign.unwrap();
    let (_, wallet) = pass_wallet(&t.db, b, 5000).await;
    let tickets: Vec<TransferId> = {
        let mut v = vec![];
        for key in ["a", "b", "c"] {
            v.push(execute(&t.db, &ticket(wallet, b.partner, 1000, key)).await.unwrap().transfers[0].id);
        }
        v
    };
    // 30 June has passed; the partners' deadline (30 June N+1) has not.
    let past = passerelle_domain::db::now_us(&t.db).await.unwrap() - HOUR_US;
    set(&t.db, "UPDATE campaign SET generation_deadline_us = $1 WHERE id = $2", vec![past.into(), campaign.into()])
        .await;
    let closed = Rejection::CampaignClosed { account: wallet.id };
    assert_eq!(rejection(execute(&t.db, &payment(b, wallet, 10, "late-pay")).await), closed);
    assert_eq!(rejection(execute(&t.db, &ticket(wallet, b.partner, 10, "late-ticket")).await), closed);
    // A ticket issued before the deadline is still redeemed.
    let post = Operation::new("partner:test", "post-a", vec![Leg::Post { hold: tickets[0], amount: Some(Cents(600)) }]);
    execute(&t.db, &post).await.expect("redeemed before the partners' deadline");
    // Cancelled after the deadline: the credit is lost, to the campaign's expired credit.
    let void = execute(&t.db, &Operation::new("parent:test", "void-b", vec![Leg::Void { hold: tickets[1] }])).await;
    let transfers = void.unwrap().transfers;
    assert_eq!(transfers.len(), 2, "{transfers:?}");
    let lost = &transfers[1];
    assert_eq!(
        (lost.kind, lost.phase, lost.debit, lost.amount),
        (Some(TransferKind::Expiry), Phase::Posted, wallet.id, Cents(1000))
    );
    let expired = get_account(&t.db, lost.credit).await.unwrap().unwrap();
    assert_eq!(
        (expired.kind, expired.owner_id, expired.counters.credits_posted),
        (AccountKind::ExpiredCredit, campaign, 1000)
    );
    let c = counters(&t.db, wallet).await;
    // 5000 − 600 redeemed − 1000 lost; 1000 still held by the third ticket.
    assert_eq!((c.debits_posted, c.debits_pending, c.available()), (1600, 1000, 2400));

    // Past the partners' deadline nothing is redeemed any more.
    set(&t.db, "UPDATE campaign SET validation_deadline_us = $1 WHERE id = $2", vec![past.into(), campaign.into()])
        .await;
    let post = Operation::new("partner:test", "post-c", vec![Leg::Post { hold: tickets[2], amount: None }]);
    assert_eq!(rejection(execute(&t.db, &post).await), closed);
    assert_eq!(counters(&t.db, b.partner).await.credits_posted, 600);
    assert_clean(&t.db).await;
}
