//! The statement budgets of the two busiest requests. The parent app's home query runs a
//! bounded number of SQL statements, whatever the number of children: each level (children
//! with their schools and passes; wallets, last transactions, open tickets) is loaded for all
//! children at once. A club's redemption reads what it needs in one statement before its one
//! ledger operation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use passerelle_domain::auth::{Actor, create_api_client};
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
    // The scheduler and the dispatcher run on their own clock and may land in the window:
    // they only add, so the least of three is the query's own cost.
    let mut used = usize::MAX;
    let mut body = json!({});
    for _ in 0..3 {
        statements.store(0, Ordering::SeqCst);
        body = app.graphql_as(&token, HOME, json!({})).await;
        used = used.min(statements.load(Ordering::SeqCst));
    }
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
    // Authentication, children with their schools and passes, wallets, history, tickets.
    assert!(six <= 5, "{six} statements");
}

/// Authentication (the API client), the ticket with its hold and the caller's terms and book,
/// then the operation: its key, the hold, the wallet, the transfers, the outbox, the redemption
/// and the two shared books — one statement on PostgreSQL, with no `BEGIN` nor `COMMIT`
/// (`ledger::one_statement`); on SQLite the key, the hold, then one call of several statements.
/// A second read of anything is a regression of the hot path.
#[tokio::test]
async fn a_redemption_reads_once_before_its_operation() {
    let statements = Arc::new(AtomicUsize::new(0));
    let app = TestApp::spawn_counting(statements.clone()).await;
    let f = family(&app.db, 1, true).await;
    let ticket = f.ticket(&app.db, 0, 300, Some(f.sport), "t0").await;
    let issued = create_api_client(&app.db, &Actor::tool("test"), f.sport, "desk").await.expect("client");
    let (_, _, body) =
        app.oauth_token(Some((&issued.client.client_id, &issued.secret)), "grant_type=client_credentials").await;
    let token = body["access_token"].as_str().expect("token").to_owned();
    let redeem =
        "mutation($i: RedeemTicketInput!) { redeemTicket(input: $i) { redemption { id amount partner { name } } } }";
    for (key, replay) in [("k1", false), ("k1", true)] {
        statements.store(0, Ordering::SeqCst);
        let vars = json!({ "i": { "code": ticket.code, "amount": "2.00", "idempotencyKey": key } });
        let body = app.graphql_as(&token, redeem, vars).await;
        let used = statements.load(Ordering::SeqCst);
        let redemption = &body["data"]["redeemTicket"]["redemption"];
        assert_eq!(redemption["amount"], "2.00", "{body}");
        assert!(redemption["partner"]["name"].is_string(), "{body}");
        if !replay {
            // The club's first redemption opens its book (one more read, one insert).
            assert!(used <= 11, "{used} statements");
        }
    }
    // Background tasks only add statements: the least of three redemptions is one's own cost.
    let mut used = usize::MAX;
    for i in 1..4 {
        let next = f.ticket(&app.db, 0, 300, Some(f.sport), &format!("t{i}")).await;
        statements.store(0, Ordering::SeqCst);
        let vars = json!({ "i": { "code": next.code, "idempotencyKey": format!("k{}", i + 1) } });
        let body = app.graphql_as(&token, redeem, vars).await;
        used = used.min(statements.load(Ordering::SeqCst));
        assert!(body["data"]["redeemTicket"]["redemption"]["id"].is_string(), "{body}");
    }
    // The wallet's and the shared books' updates and the redemption row ride in the statement
    // that writes the operation's transfers and outbox row; on PostgreSQL that statement also
    // claims the key and posts the hold.
    let budget = if app.test_db.backend == passerelle_tests::Backend::Postgres { 3 } else { 5 };
    assert!(used <= budget, "{used} statements");
    app.stop().await;
}

/// The home query's loader is shared by the schema's requests: parents who open the app at the
/// same moment share its statements (children, passes, wallets, history, tickets), and each
/// still sees their own children and passes only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parents_at_the_same_moment_each_see_their_own_children() {
    use passerelle_domain::auth::{AccountKind, create_account};
    use passerelle_tests::accounts::PASSWORD;
    use passerelle_tests::spending::link;
    let app = Arc::new(TestApp::spawn().await);
    let f = family(&app.db, 12, false).await;
    let mut parents = vec![];
    for i in 0..6 {
        let email = format!("same-moment-{i}@example.org");
        let account = create_account(&app.db, AccountKind::Parent, &email, PASSWORD, "P", true, &[]).await;
        let account = account.expect("parent").0.id;
        let mine: Vec<usize> = (0..=i % 2).map(|k| 2 * i + k).collect();
        for &child in &mine {
            link(&app.db, account, f.passes[child].pupil_id).await;
        }
        parents.push((sign_in(&app, &email, None).await, mine));
    }
    for _ in 0..5 {
        let asks = parents.iter().map(|(token, mine)| {
            let (app, token) = (app.clone(), token.clone());
            async move { (app.graphql_as(&token, HOME, json!({})).await, mine) }
        });
        for (body, mine) in futures_util::future::join_all(asks).await {
            let kids = body["data"]["children"].as_array().unwrap_or_else(|| panic!("{body}"));
            let passes: Vec<&str> = kids.iter().map(|k| k["pass"]["id"].as_str().expect("pass")).collect();
            let expected: Vec<String> = mine.iter().map(|&c| f.passes[c].id.to_string()).collect();
            assert_eq!(passes, expected, "{body}");
        }
    }
}

/// The home screen's tickets of several passes in one read: per pass the newest `first`, of the
/// status asked only, none of another pass. (On PostgreSQL the read goes pass by pass, so
/// each level stays an index lookup whatever the planner guesses of the list.)
#[tokio::test]
async fn the_latest_tickets_of_several_passes_are_each_passs_newest_of_the_status_asked() {
    use passerelle_domain::spending::{TicketStatus, cancel_ticket, latest_tickets};
    let test_db = passerelle_tests::fresh_db().await;
    let db = &test_db.db;
    let f = family(db, 3, false).await;
    // Pass 0: four tickets, the second one cancelled; pass 1: one; pass 2: none.
    let mut issued = vec![];
    for n in 0..4 {
        issued.push(f.ticket(db, 0, 100 + n, None, &format!("latest-0-{n}")).await);
    }
    cancel_ticket(db, f.parent, issued[1].id).await.expect("cancel");
    let other = f.ticket(db, 1, 50, None, "latest-1").await;
    let passes: Vec<uuid::Uuid> = f.passes.iter().map(|p| p.id).collect();

    let open = latest_tickets(db, &passes, Some(TicketStatus::Issued), 2).await.expect("latest");
    let of = |pass: usize| -> Vec<uuid::Uuid> {
        open.iter().filter(|t| t.pass_id == f.passes[pass].id).map(|t| t.id).collect()
    };
    assert_eq!(of(0), vec![issued[3].id, issued[2].id], "pass 0: the two newest issued, newest first");
    assert_eq!(of(1), vec![other.id]);
    assert!(of(2).is_empty());

    let cancelled = latest_tickets(db, &passes, Some(TicketStatus::Cancelled), 10).await.expect("latest");
    assert_eq!(cancelled.iter().map(|t| t.id).collect::<Vec<_>>(), vec![issued[1].id]);
    let all = latest_tickets(db, &passes[..1], None, 10).await.expect("latest");
    let all: Vec<uuid::Uuid> = all.iter().map(|t| t.id).collect();
    assert_eq!(all, issued.iter().rev().map(|t| t.id).collect::<Vec<_>>(), "every status, newest first");
}

/// A pass's history, paged through its cursor, is its whole history once, newest first; the
/// home screen's read of several passes gives each pass its own newest lines. Both sides of a
/// wallet count (the grant credits it; tickets and their release debit and credit it), and on
/// PostgreSQL each side of each wallet is read newest first and stopped at the page's length.
#[tokio::test]
async fn a_passs_history_pages_without_gaps_or_repeats_and_each_pass_gets_its_newest_lines() {
    use passerelle_domain::spending::{Page, PassTransaction, cancel_ticket, latest_transactions, transactions};
    let test_db = passerelle_tests::fresh_db().await;
    let db = &test_db.db;
    let f = family(db, 3, false).await;
    // Pass 0: five tickets, the second one cancelled (its hold released); pass 1: one ticket;
    // pass 2: the grants alone.
    let mut issued = vec![];
    for n in 0..5 {
        issued.push(f.ticket(db, 0, 100 + n, None, &format!("history-0-{n}")).await);
    }
    cancel_ticket(db, f.parent, issued[1].id).await.expect("cancel");
    f.ticket(db, 1, 50, None, "history-1").await;
    let ids = |lines: &[PassTransaction]| lines.iter().map(|l| l.id).collect::<Vec<_>>();

    let all = transactions(db, f.passes[0].id, &Page { first: 100, after: None }).await.expect("history");
    // Two grants (sport and culture, one operation: the same time), five holds, one release.
    assert_eq!(all.len(), 8, "{all:?}");
    assert!(all.windows(2).all(|w| (w[0].created_at_us, w[0].id) > (w[1].created_at_us, w[1].id)), "{all:?}");
    assert!(all.iter().any(|l| l.amount.0 > 0) && all.iter().any(|l| l.amount.0 < 0), "both sides: {all:?}");
    // Pages of one cut between the two grants of the same time; pages of three do not.
    for size in [1, 3] {
        let mut paged = vec![];
        let mut after = None;
        loop {
            let page = transactions(db, f.passes[0].id, &Page { first: size, after }).await.expect("page");
            let Some(last) = page.last() else { break };
            after = Some((last.created_at_us, last.id));
            paged.extend(page);
        }
        assert_eq!(ids(&paged), ids(&all), "pages of {size}, in order, each line once");
    }

    let passes: Vec<uuid::Uuid> = f.passes.iter().map(|p| p.id).collect();
    let latest = latest_transactions(db, &passes, 3).await.expect("latest");
    for (i, pass) in passes.iter().enumerate() {
        let mine: Vec<PassTransaction> = latest.iter().filter(|(p, _)| p == pass).map(|(_, l)| l.clone()).collect();
        let whole = transactions(db, *pass, &Page { first: 100, after: None }).await.expect("history");
        assert_eq!(ids(&mine), ids(&whole[..whole.len().min(3)]), "pass {i}: its three newest lines");
    }
}

/// The home screen's first level in one read: each parent's children in link order, each with
/// its collège and every pass, newest campaign first; a child with no pass yet has none; a
/// child linked to two parents comes to each; a revoked link brings nothing.
#[tokio::test]
async fn linked_children_come_with_their_collège_and_passes_newest_campaign_first() {
    use passerelle_domain::auth::{AccountKind, create_account};
    use passerelle_domain::campaign::{Policy, upsert_campaign};
    use passerelle_domain::db::stmt;
    use passerelle_domain::school::query::linked_children_of;
    use passerelle_domain::usecase::recompute_and_grant;
    use passerelle_tests::accounts::PASSWORD;
    use passerelle_tests::school::{PupilSeed, insert_pupils};
    use passerelle_tests::spending::link;
    use sea_orm::ConnectionTrait as _;
    use uuid::Uuid;
    let test_db = passerelle_tests::fresh_db().await;
    let db = &test_db.db;
    let f = family(db, 2, false).await;
    // The next school year's campaign: both pupils get a second pass.
    let policy = Policy::pass_plus("92", 2027);
    let next = upsert_campaign(db, f.funder, 2027, "Pass+ 2027-2028", &policy, "test").await.expect("campaign").id;
    recompute_and_grant(db, next, &|_, _| {}).await.expect("grant");
    // A pupil entered after the grants: linked, no pass.
    let seed = PupilSeed { key: "late", grade: "6E", uai: "0921778H", boursier: false };
    let late = insert_pupils(db, f.funder, &[seed]).await[0];
    link(db, f.parent, late).await;
    // Another parent: pupil 1 linked, pupil 0 linked then revoked.
    let other = create_account(db, AccountKind::Parent, "other@example.org", PASSWORD, "O", true, &[]).await;
    let other = other.expect("other parent").0.id;
    link(db, other, f.passes[0].pupil_id).await;
    link(db, other, f.passes[1].pupil_id).await;
    let backend = db.get_database_backend();
    let school = "INSERT INTO school (id, funder_id, source_key, uai, uai_valid, name, city, fingerprint, \
                  created_at_us, updated_at_us) VALUES ($1, $2, 'c1', '0921778H', TRUE, 'Collège Romain Rolland', \
                  'Bagneux', 'fp', 1, 1)";
    db.execute_raw(stmt(backend, school, [Uuid::now_v7().into(), f.funder.into()])).await.expect("school");
    let revoke = "UPDATE family_link SET revoked_at_us = 1 WHERE account_id = $1 AND pupil_id = $2";
    db.execute_raw(stmt(backend, revoke, [other.into(), f.passes[0].pupil_id.into()])).await.expect("revoke");

    let got = linked_children_of(db, &[other, f.parent]).await.expect("children");
    let seen: Vec<(Uuid, Uuid, Vec<i32>)> = got
        .iter()
        .map(|(account, c)| (*account, c.pupil.id, c.passes.iter().map(|p| p.school_year).collect()))
        .collect();
    let (p0, p1) = (f.passes[0].pupil_id, f.passes[1].pupil_id);
    let expected = vec![
        (f.parent, p0, vec![2027, 2026]),
        (f.parent, p1, vec![2027, 2026]),
        (f.parent, late, vec![]),
        (other, p1, vec![2027, 2026]),
    ];
    // Links in creation order: the parent's three came before the other's.
    assert_eq!(seen, expected);
    for (_, c) in &got {
        assert!(c.passes.iter().all(|p| p.pupil_id == c.pupil.id), "{c:?}");
        let school = c.school.as_ref().map(|s| (s.uai.as_str(), s.name.as_str(), s.commune.as_deref()));
        assert_eq!(school, Some(("0921778H", "Collège Romain Rolland", Some("Bagneux"))), "{c:?}");
    }
    assert_eq!(got[0].1.passes[1], f.passes[0], "the 2026 pass as the pass reads give it");
}
