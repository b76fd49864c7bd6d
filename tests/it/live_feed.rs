//! The feeder behind `passUpdated` under a burst: the yearly grant writes one change per pass
//! in moments, more than one read of the outbox returns (1,000 rows). An event after the
//! burst must still reach its subscriber.

use passerelle_domain::ledger::Wallet;
use passerelle_tests::TestApp;
use passerelle_tests::spending::family;
use passerelle_tests::ws::{next_matching, subscribe};
use serde_json::{Value, json};

const PASS_UPDATED: &str = "subscription($p: ID!) { passUpdated(passId: $p) { id wallets { wallet available } } }";

#[tokio::test]
async fn a_change_after_a_burst_larger_than_a_read_reaches_its_subscriber() {
    let app = TestApp::spawn().await;
    // 1,100 passes granted at once: 1,100 `pass_updated` rows inside the feeder's look-back.
    let f = family(&app.db, 1_100, false).await;
    let last = f.passes.len() - 1;
    let token = passerelle_tests::accounts::sign_in(&app, &f.parent_email, None).await;
    let pass = f.passes[last].id.to_string();
    let mut socket = subscribe(app.addr, &token, PASS_UPDATED, json!({ "p": pass })).await;

    f.ticket(&app.db, last, 1_234, None, "after-the-burst").await;
    let left = f.balance(&app.db, last, Wallet::Sport).await.available.0;
    let expected = format!("{}.{:02}", left / 100, left % 100);
    let event = next_matching(&mut socket, |d: &Value| {
        let wallets = d["passUpdated"]["wallets"].as_array().cloned().unwrap_or_default();
        wallets.iter().any(|w| w["wallet"] == "SPORT" && w["available"] == expected.as_str())
    })
    .await;
    assert_eq!(event["passUpdated"]["id"], json!(pass));
}
