//! The live feed under bursts. The yearly grant writes one change per pass in moments, the
//! dispatcher up to 1,000 inbox entries per statement: more than one read of the feeder (1,000
//! rows) and more than a subscriber's channel holds (1,024 events).
//! - A change after a burst still reaches its subscriber (the feeder reads the whole window).
//! - A change committed seconds after its time still reaches its subscriber (most polls read
//!   one second back, one in ten the whole look-back).
//! - A change in a burst, sent before the rest, still reaches its subscriber even though the
//!   channel dropped its event: a `passUpdated` subscriber sends the pass as it stands, a
//!   `notificationAdded` subscriber reads its inbox back.
//!
//! The bursts are written in one transaction, so the feeder reads them in one poll and sends
//! them at once: the subscribers, on the test's one thread, cannot read before it is done.

use passerelle_domain::Cents;
use passerelle_domain::auth::{AccountKind, create_account};
use passerelle_domain::db::{insert_rows, now_us};
use passerelle_domain::ledger::Wallet;
use passerelle_tests::TestApp;
use passerelle_tests::accounts::{PASSWORD, sign_in};
use passerelle_tests::spending::{Family, family};
use passerelle_tests::ws::{PASS_UPDATED, Socket, next_matching, subscribe};
use sea_orm::{DatabaseConnection, TransactionTrait, Value};
use serde_json::{Value as Json, json};
use uuid::Uuid;

const NOTIFICATION_ADDED: &str = "subscription { notificationAdded { eventId kind passId } }";

/// More events than a subscriber's channel holds.
const BURST: usize = 1_100;

/// Whether a `passUpdated` event shows the sport wallet at `cents` available.
fn sport_at(data: &Json, cents: i64) -> bool {
    let expected = Cents(cents).to_decimal().to_string();
    let wallets = data["passUpdated"]["wallets"].as_array().cloned().unwrap_or_default();
    wallets.iter().any(|w| w["wallet"] == "SPORT" && w["available"] == expected.as_str())
}

/// Reads one event per change to `pass` written so far: afterwards none is left to come. (A
/// subscriber sends the pass as it stands, so an older change's event, read late, shows the
/// newest state: matching on the state cannot tell which event is read.) The family was set up
/// moments ago, well inside the feeder's 10-second look-back, so each of them comes.
async fn drain(app: &TestApp, socket: &mut Socket, pass: Uuid) {
    let sql = format!("SELECT COUNT(*) AS n FROM outbox WHERE topic = 'pass_updated' AND payload LIKE '%{pass}%'");
    for _ in 0..passerelle_tests::count(&app.db, &sql).await {
        next_matching(socket, |d| d["passUpdated"]["id"] == json!(pass.to_string())).await;
    }
}

/// Writes `rows` into `table` (`columns`) in one transaction.
async fn burst(db: &DatabaseConnection, table: &str, columns: &[&str], rows: Vec<Vec<Value>>) {
    let txn = db.begin().await.expect("begin");
    insert_rows(&txn, table, &columns.join(", "), &rows, 200, &|_, _| {}).await.expect("burst");
    txn.commit().await.expect("commit");
}

/// A `pass_updated` outbox row about `pass`, of time `at`.
fn change(pass: Uuid, at: i64) -> Vec<Value> {
    let payload = json!({ "pass_id": pass, "reason": "test" }).to_string();
    vec![Uuid::now_v7().into(), "pass_updated".into(), payload.into(), at.into(), 0i32.into(), at.into()]
}

/// `pass_updated` outbox rows: `first` at `at`, then `BURST` of `other` just after.
fn pass_changes(first: Uuid, other: Uuid, at: i64) -> Vec<Vec<Value>> {
    (0..=BURST).map(|i| if i == 0 { change(first, at) } else { change(other, at + 1) }).collect()
}

/// A family of two passes whose parent listens to the first, every event so far read.
async fn listening() -> (TestApp, Family, Socket) {
    let app = TestApp::spawn().await;
    let f = family(&app.db, 2, false).await;
    let token = sign_in(&app, &f.parent_email, None).await;
    let pass = f.passes[0].id;
    let mut socket = subscribe(app.addr, &token, PASS_UPDATED, json!({ "p": pass.to_string() })).await;
    drain(&app, &mut socket, pass).await;
    (app, f, socket)
}

const OUTBOX: &[&str] = &["id", "topic", "payload", "created_at_us", "attempts", "next_attempt_at_us"];

#[tokio::test]
async fn a_change_after_a_burst_larger_than_a_read_reaches_its_subscriber() {
    let (app, f, mut socket) = listening().await;
    // A burst about the other pass, then a ticket on this one.
    let at = now_us(&app.db).await.unwrap();
    burst(&app.db, "outbox", OUTBOX, pass_changes(f.passes[1].id, f.passes[1].id, at)).await;
    f.ticket(&app.db, 0, 1_234, None, "after-the-burst").await;
    let left = f.balance(&app.db, 0, Wallet::Sport).await.available.0;
    next_matching(&mut socket, |d| sport_at(d, left)).await;
}

/// Most of the feeder's polls read one second back; a change committed seconds after its time
/// (a transaction that waited on a lock) comes at its next full read of the look-back.
#[tokio::test]
async fn a_change_committed_seconds_after_its_time_reaches_its_subscriber() {
    let (app, f, mut socket) = listening().await;
    let pass = f.passes[0].id;
    let about_it = |d: &Json| d["passUpdated"]["id"] == json!(pass.to_string());
    // A change of now: once its event is here, the feeder has sent a change of now.
    let at = now_us(&app.db).await.unwrap();
    burst(&app.db, "outbox", OUTBOX, vec![change(pass, at)]).await;
    next_matching(&mut socket, about_it).await;
    // Then one of 3 s earlier, committed only now. No other event is left to come.
    burst(&app.db, "outbox", OUTBOX, vec![change(pass, at - 3_000_000)]).await;
    next_matching(&mut socket, about_it).await;
}

#[tokio::test]
async fn a_pass_changed_in_a_burst_reaches_its_subscriber_though_its_event_was_dropped() {
    let (app, f, mut socket) = listening().await;
    let pass = f.passes[0].id;
    // This pass's change first, then more about the other pass than the channel holds.
    let at = now_us(&app.db).await.unwrap();
    burst(&app.db, "outbox", OUTBOX, pass_changes(pass, f.passes[1].id, at)).await;
    let event = next_matching(&mut socket, |_| true).await;
    assert_eq!(event["passUpdated"]["id"], json!(pass.to_string()));
}

#[tokio::test]
async fn an_inbox_entry_in_a_burst_reaches_its_subscriber_once_though_its_event_was_dropped() {
    let app = TestApp::spawn().await;
    let f = family(&app.db, 1, false).await;
    let parent = f.parent;
    let other =
        create_account(&app.db, AccountKind::Parent, "other@example.org", PASSWORD, "O", true, &[]).await.unwrap().0.id;
    let token = sign_in(&app, &f.parent_email, None).await;
    let mut socket = subscribe(app.addr, &token, NOTIFICATION_ADDED, json!({})).await;
    let entry = |account: Uuid, event: Uuid, at: i64| -> Vec<Value> {
        let payload = json!({ "pass_id": f.passes[0].id }).to_string();
        vec![Uuid::now_v7().into(), account.into(), event.into(), "ticket_issued".into(), payload.into(), at.into()]
    };
    let columns = ["id", "account_id", "event_id", "kind", "payload", "created_at_us"];
    // One entry alone: the subscription is live once it arrives.
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    burst(&app.db, "notification", &columns, vec![entry(parent, first, now_us(&app.db).await.unwrap())]).await;
    next_matching(&mut socket, |d| d["notificationAdded"]["eventId"] == json!(first.to_string())).await;
    // The parent's second entry first, then more entries of another account than the
    // channel holds.
    let at = now_us(&app.db).await.unwrap();
    let mut rows = vec![entry(parent, second, at)];
    rows.extend((0..BURST).map(|_| entry(other, Uuid::new_v4(), at + 1)));
    burst(&app.db, "notification", &columns, rows).await;
    let got = next_matching(&mut socket, |_| true).await;
    assert_eq!(got["notificationAdded"]["eventId"], json!(second.to_string()), "sent once, in order");
    // Nothing else is owed to this parent: a third entry is the next event.
    let third = Uuid::new_v4();
    burst(&app.db, "notification", &columns, vec![entry(parent, third, now_us(&app.db).await.unwrap())]).await;
    let got = next_matching(&mut socket, |_| true).await;
    assert_eq!(got["notificationAdded"]["eventId"], json!(third.to_string()), "no entry twice");
}
