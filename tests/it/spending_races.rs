//! Spending races on the real database (SQLite in WAL mode, or PostgreSQL): concurrent
//! payments on one wallet, one ticket redeemed by two devices, redeem against cancel and
//! against the expiry sweep. Each ends with the balances the story implies and a clean audit.

use std::sync::Arc;

use futures_util::future::join_all;
use passerelle_domain::ledger::{Wallet, audit};
use passerelle_domain::spending::{self, PayPartner, RedeemTicket, TicketStatus};
use passerelle_domain::{Cents, Error};
use passerelle_tests::fresh_db;
use passerelle_tests::spending::{Family, family};
use sea_orm::DatabaseConnection;

async fn assert_clean(db: &DatabaseConnection) {
    let report = audit(db).await.unwrap();
    assert!(report.is_clean(), "audit: {:?}", report.violations);
}

fn redeem(code: &str, key: &str) -> RedeemTicket {
    RedeemTicket { code: code.into(), amount: None, activity_id: None, idempotency_key: key.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twelve_payments_of_a_bit_over_a_third_of_a_wallet_exactly_two_succeed() {
    let t = fresh_db().await;
    let f = Arc::new(family(&t.db, 1, false).await);
    let before = f.balance(&t.db, 0, Wallet::Sport).await;
    assert_eq!(before.available, Cents(4000));
    let amount = Cents(1350); // a bit over a third of 40.00
    let tasks = (0..12).map(|i| {
        let (db, f) = (t.db.clone(), f.clone());
        tokio::spawn(async move {
            let input = PayPartner {
                pass_id: f.passes[0].id,
                wallet: Wallet::Sport,
                amount,
                partner_id: f.sport,
                activity_id: None,
                idempotency_key: format!("pay-{i}"),
            };
            spending::pay_partner(&db, f.parent, &input).await
        })
    });
    let results: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let refused = results.iter().filter(|r| matches!(r, Err(Error::InsufficientFunds))).count();
    assert_eq!((ok, refused), (2, 10), "{results:?}");
    let after = f.balance(&t.db, 0, Wallet::Sport).await;
    assert_eq!((after.available, after.spent, after.granted), (Cents(1300), Cents(2700), Cents(4000)));
    assert_clean(&t.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ticket_redeemed_by_two_devices_at_once_is_redeemed_once() {
    let t = fresh_db().await;
    let f = family(&t.db, 1, false).await;
    for round in 0..4 {
        let ticket = f.ticket(&t.db, 0, 500, None, &format!("ticket-{round}")).await;
        let (first, second) =
            (redeem(&ticket.code, &format!("device-a-{round}")), redeem(&ticket.code, &format!("device-b-{round}")));
        let (a, b) = tokio::join!(
            spending::redeem_ticket(&t.db, f.sport, &first),
            spending::redeem_ticket(&t.db, f.sport, &second),
        );
        let won = [&a, &b].iter().filter(|r| r.is_ok()).count();
        let lost = [&a, &b].iter().filter(|r| matches!(r, Err(Error::TicketNotRedeemable))).count();
        assert_eq!((won, lost), (1, 1), "round {round}: {a:?} {b:?}");
    }
    let w = f.balance(&t.db, 0, Wallet::Sport).await;
    assert_eq!((w.available, w.spent, w.held), (Cents(2000), Cents(2000), Cents(0)));
    assert_clean(&t.db).await;
}

/// Runs `redeem` against `other` on fresh tickets; checks that exactly one side won each time
/// and that the wallet shows exactly the redeemed ones as spent.
async fn redeem_against(
    t: &DatabaseConnection,
    f: &Family,
    name: &str,
    other: impl AsyncFn(&spending::Ticket) -> bool,
) -> (usize, usize) {
    let (mut redeemed, mut other_won) = (0, 0);
    for round in 0..6 {
        let ticket = f.ticket(t, 0, 300, Some(f.sport), &format!("{name}-{round}")).await;
        let input = redeem(&ticket.code, &format!("{name}-redeem-{round}"));
        let (r, o) = tokio::join!(spending::redeem_ticket(t, f.sport, &input), other(&ticket));
        assert!(r.is_ok() != o, "round {round}: exactly one wins ({r:?}, other won: {o})");
        if let Err(e) = &r {
            assert!(matches!(e, Error::TicketNotRedeemable), "{e:?}");
        }
        let status = spending::list_tickets(t, f.passes[0].id, None, &spending::Page { first: 100, after: None })
            .await
            .unwrap()
            .into_iter()
            .find(|x| x.id == ticket.id)
            .unwrap()
            .status;
        if r.is_ok() {
            redeemed += 1;
            assert_eq!(status, TicketStatus::Redeemed);
        } else {
            other_won += 1;
            assert_ne!(status, TicketStatus::Redeemed);
        }
    }
    (redeemed, other_won)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redeem_racing_cancel_one_wins_and_the_money_follows() {
    let t = fresh_db().await;
    let f = family(&t.db, 1, false).await;
    let (redeemed, cancelled) = redeem_against(&t.db, &f, "cancel", async |ticket| {
        spending::cancel_ticket(&t.db, f.parent, ticket.id).await.is_ok_and(|x| x.status == TicketStatus::Cancelled)
    })
    .await;
    let w = f.balance(&t.db, 0, Wallet::Sport).await;
    assert_eq!(w.spent, Cents(300 * redeemed as i64), "{redeemed} redeemed, {cancelled} cancelled");
    assert_eq!((w.available, w.held), (Cents(4000 - 300 * redeemed as i64), Cents(0)));
    assert_clean(&t.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redeem_racing_the_expiry_sweep_one_wins() {
    let t = fresh_db().await;
    let f = family(&t.db, 1, false).await;
    let db = t.db.clone();
    let (redeemed, expired) = redeem_against(&t.db, &f, "expiry", async |ticket| {
        // The ticket's time runs out (its hold's expiry moved to now) while a club redeems it.
        // Only while it is pending: moving the expiry of a hold already posted (in the same
        // millisecond, on SQLite's clock) would write a history the ledger never makes.
        let sql = format!(
            "UPDATE ledger_hold SET expires_at_us = {} WHERE transfer_id = $1 AND state = 'pending'",
            passerelle_domain::db::now_us_sql(db.get_database_backend())
        );
        let stmt = passerelle_domain::db::stmt(db.get_database_backend(), &sql, [ticket.hold_id.into()]);
        sea_orm::ConnectionTrait::execute_raw(&db, stmt).await.unwrap();
        spending::sweep(&db, 100).await.unwrap().holds_expired == 1
    })
    .await;
    let w = f.balance(&t.db, 0, Wallet::Sport).await;
    assert_eq!(w.spent, Cents(300 * redeemed as i64), "{redeemed} redeemed, {expired} expired");
    assert_eq!((w.available, w.held), (Cents(4000 - 300 * redeemed as i64), Cents(0)));
    assert_clean(&t.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_schedulers_at_the_deadline_close_each_wallet_once() {
    let t = fresh_db().await;
    let f = family(&t.db, 5, true).await;
    f.ticket(&t.db, 0, 700, None, "held").await;
    // The generation deadline passes.
    let sql = "UPDATE campaign SET generation_deadline_us = 1";
    sea_orm::ConnectionTrait::execute_raw(&t.db, passerelle_domain::db::stmt(t.db.get_database_backend(), sql, []))
        .await
        .unwrap();
    let (a, b) = tokio::join!(spending::sweep(&t.db, 3), spending::sweep(&t.db, 3));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.wallets_closed + b.wallets_closed, 10, "five passes, two wallets each: {a:?} {b:?}");
    assert_eq!(spending::sweep(&t.db, 3).await.unwrap().wallets_closed, 0, "nothing left");
    let boursier = f.balance(&t.db, 0, Wallet::Sport).await;
    assert_eq!((boursier.available, boursier.held, boursier.expired), (Cents(0), Cents(700), Cents(4300)));
    for i in 1..5 {
        let w = f.balance(&t.db, i, Wallet::Culture).await;
        assert_eq!((w.available, w.expired), (Cents(0), Cents(4000)));
    }
    assert_clean(&t.db).await;
}

#[tokio::test]
async fn a_rotated_key_stays_published_while_its_tickets_live() {
    let t = fresh_db().await;
    let f = family(&t.db, 1, false).await;
    let old = f.ticket(&t.db, 0, 500, None, "before").await;
    let kids = |set: serde_json::Value| -> Vec<String> {
        set["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
    };
    let new_kid = spending::TicketKeys::rotate(&t.db, &f.data_key).await.unwrap();
    let young = f.ticket(&t.db, 0, 500, None, "after").await;
    assert_eq!((young.kid.as_str(), old.kid == new_kid), (new_kid.as_str(), false), "new tickets use the new key");
    let published = kids(spending::jwks(&t.db).await.unwrap());
    assert!(published.contains(&old.kid) && published.contains(&new_kid), "{published:?}");
    // The old key's last ticket is used: the key is withdrawn; the current one stays.
    spending::redeem_ticket(&t.db, f.sport, &redeem(&old.code, "use-old")).await.unwrap();
    assert_eq!(kids(spending::jwks(&t.db).await.unwrap()), vec![new_kid.clone()]);
    // Its payload still verifies by kid for whoever cached the key, and signing still works.
    let payload = old.qr_payload(&t.db, &f.keys, &f.data_key).await.unwrap();
    assert!(payload.split('.').count() == 3);
}
