//! The parent app's home query runs a bounded number of SQL statements, whatever the number
//! of children: each level (passes, wallets, last transactions, open tickets, schools) is
//! loaded for all children at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use passerelle_tests::TestApp;
use passerelle_tests::accounts::sign_in;
use passerelle_tests::spending::family;
use serde_json::json;

const HOME: &str = "query { children { id givenName school { uai name commune } pass { id number status \
    wallets { wallet granted available held spent expired } \
    transactions(first: 10) { edges { node { id kind amount status partner { name } } } } \
    tickets(first: 10, status: ISSUED) { edges { node { id code amount validUntil } } } } } }";

/// Statements the home query costs for a family of `children`, with a ticket and a payment
/// on each pass (so every level has rows).
async fn home_statements(children: usize) -> usize {
    let statements = Arc::new(AtomicUsize::new(0));
    let app = TestApp::spawn_counting(statements.clone()).await;
    let f = family(&app.db, children, true).await;
    for i in 0..children {
        f.ticket(&app.db, i, 300, Some(f.sport), &format!("t{i}")).await;
    }
    let token = sign_in(&app, &f.parent_email, None).await;
    statements.store(0, Ordering::SeqCst);
    let body = app.graphql_as(&token, HOME, json!({})).await;
    let used = statements.load(Ordering::SeqCst);
    let kids = body["data"]["children"].as_array().unwrap_or_else(|| panic!("{body}"));
    assert_eq!(kids.len(), children);
    for kid in kids {
        assert_eq!(kid["pass"]["wallets"].as_array().map(Vec::len), Some(2), "{body}");
        assert_eq!(kid["pass"]["tickets"]["edges"].as_array().map(Vec::len), Some(1), "{body}");
        assert!(!kid["pass"]["transactions"]["edges"].as_array().unwrap().is_empty(), "{body}");
    }
    app.stop().await;
    used
}

#[tokio::test]
async fn the_home_query_costs_the_same_statements_for_one_child_or_six() {
    let one = home_statements(1).await;
    let six = home_statements(6).await;
    assert_eq!(one, six, "statements grow with the children: {one} for one, {six} for six");
    assert!(six <= 15, "{six} statements");
}
