//! Notifications end to end: a redemption reaches the family once in the inbox, once per
//! device by push (to a local fake of FCM HTTP v1) and once by e-mail (a real SMTP server);
//! FCM's UNREGISTERED drops the token, and a 503 with `Retry-After` is retried after it and
//! delivered once.

use passerelle_domain::Cents;
use passerelle_domain::ledger::Wallet;
use passerelle_domain::spending::{self, RedeemTicket};
use passerelle_tests::accounts::sign_in;
use passerelle_tests::fake_fcm::{FakeFcm, Scripted};
use passerelle_tests::smtp::SmtpSink;
use passerelle_tests::spending::family;
use passerelle_tests::{TestApp, count};
use serde_json::json;

const REGISTER: &str = "mutation($i: RegisterPushTokenInput!) { registerPushToken(input: $i) }";
const INBOX: &str = "{ unreadNotificationCount notifications(first: 10) { edges { node { eventId kind passId } } } }";

/// A received message's body as text (lettre sends French text base64-encoded).
fn body_text(data: &str) -> String {
    use base64::Engine as _;
    let (headers, body) = data.split_once("\n\n").unwrap_or((data, ""));
    if headers.to_ascii_lowercase().contains("content-transfer-encoding: base64") {
        let compact: String = body.split_whitespace().collect();
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(compact).unwrap_or_default())
            .unwrap_or_default()
    } else {
        body.to_owned()
    }
}

/// Waits (at most 20 s, then panics) until `done` holds: the dispatcher runs on its own clock.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what} did not happen");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A server pushing to `fcm` and mailing to `sink`, with `extra` settings.
async fn app_with(sink: &SmtpSink, fcm: &FakeFcm, extra: &[(&str, &str)]) -> TestApp {
    let mut vars: Vec<(String, String)> = fcm.settings();
    vars.extend(sink.settings());
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestApp::spawn_with(&vars).await
}

#[tokio::test]
async fn a_redemption_reaches_the_family_once_in_the_inbox_on_each_device_and_by_mail() {
    let (sink, fcm) = (SmtpSink::start().await, FakeFcm::start().await);
    let app = app_with(&sink, &fcm, &[]).await;
    let f = family(&app.db, 1, false).await;
    // The grant's event (written before the family was linked) reaches the inbox only here: no
    // device yet, no mailer. Then a node whose dispatcher runs on its own clock takes over.
    passerelle_api::notifications::tick(&app.db, None, None).await.unwrap();
    let node = app.another_node(|_| {}).await;
    let parent = sign_in(&app, &f.parent_email, None).await;
    for (token, platform) in [("device-android-1", "ANDROID"), ("device-ios-1", "IOS")] {
        let body = app.graphql_as(&parent, REGISTER, json!({ "i": { "token": token, "platform": platform } })).await;
        assert_eq!(body["data"]["registerPushToken"], true, "{body}");
    }
    // By default: e-mail for what a club did, not for the ticket the parent just issued.
    let prefs = app.graphql_as(&parent, "{ notificationPreferences { kind push email } }", json!({})).await;
    let pref = |kind: &str| {
        prefs["data"]["notificationPreferences"].as_array().unwrap().iter().find(|p| p["kind"] == kind).unwrap().clone()
    };
    assert_eq!(pref("TICKET_ISSUED"), json!({ "kind": "TICKET_ISSUED", "push": true, "email": false }), "{prefs}");
    assert_eq!(pref("TICKET_REDEEMED"), json!({ "kind": "TICKET_REDEEMED", "push": true, "email": true }));
    // A choice is kept per kind (refunds: nothing by e-mail nor push here, not used below).
    let q = "mutation { setNotificationPreference(input: { kind: REFUND, push: false, email: false }) { kind } }";
    assert!(app.graphql_as(&parent, q, json!({})).await["errors"].is_null());
    let prefs = app.graphql_as(&parent, "{ notificationPreferences { kind push email } }", json!({})).await;
    let refund =
        prefs["data"]["notificationPreferences"].as_array().unwrap().iter().find(|p| p["kind"] == "REFUND").cloned();
    assert_eq!(refund, Some(json!({ "kind": "REFUND", "push": false, "email": false })));

    let ticket = f.ticket(&app.db, 0, 3000, Some(f.sport), "t").await;
    let redeem =
        RedeemTicket { code: ticket.code, amount: Some(Cents(2500)), activity_id: None, idempotency_key: "r".into() };
    spending::redeem_ticket(&app.db, f.sport, &redeem).await.unwrap();

    // Two events (issued, redeemed) × two devices; one e-mail (the redemption).
    eventually("four pushes", || fcm.accepted().len() >= 4).await;
    let mails = sink.wait_for(&f.parent_email, 1).await;
    let body = app.graphql_as(&parent, INBOX, json!({})).await;
    assert_eq!(body["data"]["unreadNotificationCount"], 3, "{body}");
    let edges = body["data"]["notifications"]["edges"].as_array().unwrap();
    // Newest first by delivery: events claimed together (issued and redeemed, when the
    // dispatcher was slower than the test) are delivered in no set order.
    let mut kinds: Vec<&str> = edges.iter().map(|e| e["node"]["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.last(), Some(&"CREDIT_GRANTED"), "delivered before the others: {body}");
    kinds.sort_unstable();
    assert_eq!(kinds, ["CREDIT_GRANTED", "TICKET_ISSUED", "TICKET_REDEEMED"]);
    let redeemed = edges.iter().find(|e| e["node"]["kind"] == "TICKET_REDEEMED").unwrap();
    let redeemed_event = redeemed["node"]["eventId"].as_str().unwrap().to_owned();
    assert!(body_text(&mails[0].data).contains(&redeemed_event), "the redemption's e-mail: {}", mails[0].data);

    // Each push: kind and ids only, string values, one per device for the redemption.
    let pushes = fcm.accepted();
    let of_redemption: Vec<_> = pushes.iter().filter(|m| m["data"]["event_id"] == redeemed_event.as_str()).collect();
    let mut devices: Vec<&str> = of_redemption.iter().map(|m| m["token"].as_str().unwrap()).collect();
    devices.sort_unstable();
    assert_eq!(devices, ["device-android-1", "device-ios-1"]);
    for m in &pushes {
        let data = m["data"].as_object().unwrap();
        assert_eq!(data.keys().collect::<Vec<_>>(), ["event_id", "kind", "pass_id"]);
        assert!(!m.to_string().contains("25.00") && !m.to_string().contains("Given"), "no amount, no name: {m}");
    }
    // Delivered once: nothing is left to send, and the counts stay as they are.
    let again = passerelle_api::notifications::tick(&app.db, None, None).await.unwrap();
    assert_eq!(again.events, 0);
    assert_eq!(fcm.accepted().len(), 4);
    assert_eq!(sink.messages_to(&f.parent_email).len(), 1);
    assert_eq!(count(&app.db, "SELECT COUNT(*) AS n FROM notification").await, 3);
    assert_eq!(fcm.grants(), 1, "the access token is cached");

    let read = app.graphql_as(&parent, "mutation { markNotificationsRead }", json!({})).await;
    assert_eq!(read["data"]["markNotificationsRead"], 3, "{read}");
    assert_eq!(app.graphql_as(&parent, INBOX, json!({})).await["data"]["unreadNotificationCount"], 0);
    let _ = Wallet::Sport;
    node.stop().await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn unregistered_tokens_are_dropped_and_a_503_is_retried_after_retry_after_then_sent_once() {
    let fcm = FakeFcm::start().await;
    let app = TestApp::spawn().await;
    let f = family(&app.db, 1, false).await;
    // The grant's event goes out before any device is known.
    passerelle_api::notifications::tick(&app.db, None, None).await.unwrap();
    for token in ["gone", "busy", "fine"] {
        passerelle_domain::notify::register_push_token(&app.db, f.parent, token, "ANDROID").await.unwrap();
    }
    fcm.script("gone", Scripted { status: 404, error_code: "UNREGISTERED", retry_after: None, times: 1 });
    fcm.script("busy", Scripted { status: 503, error_code: "UNAVAILABLE", retry_after: Some(120), times: 1 });
    let push = fcm.sender();
    f.ticket(&app.db, 0, 500, None, "t").await;

    let first = passerelle_api::notifications::tick(&app.db, Some(&push), None).await.unwrap();
    assert_eq!((first.pushes, first.tokens_removed, first.retried), (1, 1, 1), "{first:?}");
    assert_eq!(count(&app.db, "SELECT COUNT(*) AS n FROM push_token WHERE token = 'gone'").await, 0);
    // Retry-After (120 s) is honoured: nothing is due now.
    let waiting = count(
        &app.db,
        "SELECT COUNT(*) AS n FROM outbox WHERE dispatched_at_us IS NULL AND next_attempt_at_us >= created_at_us + 110000000",
    )
    .await;
    assert_eq!(waiting, 1);
    assert_eq!(passerelle_api::notifications::tick(&app.db, Some(&push), None).await.unwrap().events, 0);
    // Time passes (the retry becomes due): "busy" gets it, "fine" is not sent again.
    let sql = "UPDATE outbox SET next_attempt_at_us = 0 WHERE dispatched_at_us IS NULL";
    sea_orm::ConnectionTrait::execute_raw(&app.db, passerelle_domain::db::stmt(app.db.get_database_backend(), sql, []))
        .await
        .unwrap();
    let second = passerelle_api::notifications::tick(&app.db, Some(&push), None).await.unwrap();
    assert_eq!((second.events, second.pushes, second.retried), (1, 1, 0), "{second:?}");
    let mut sent: Vec<String> = fcm.accepted().iter().map(|m| m["token"].as_str().unwrap().to_owned()).collect();
    sent.sort_unstable();
    assert_eq!(sent, ["busy", "fine"], "each device once");
    assert_eq!(fcm.refused(), [("gone".to_owned(), "UNREGISTERED"), ("busy".to_owned(), "UNAVAILABLE")]);
    app.stop().await;
}

#[tokio::test]
async fn a_subscriber_on_one_node_hears_of_an_inbox_entry_written_by_another() {
    let app = TestApp::spawn().await; // node A: no dispatcher of its own
    let f = family(&app.db, 1, false).await;
    // The grant's event, delivered before node B starts: B's only work is the ticket's.
    passerelle_api::notifications::tick(&app.db, None, None).await.unwrap();
    let node_b = app.another_node(|_| {}).await;
    let parent = sign_in(&app, &f.parent_email, None).await;
    let query = "subscription { notificationAdded { eventId kind passId } }";
    let mut socket = passerelle_tests::ws::subscribe(app.addr, &parent, query, json!({})).await;
    // The money moves; node B's dispatcher writes the inbox entry; node A's subscriber hears it.
    f.ticket(&app.db, 0, 500, None, "t").await;
    let data =
        passerelle_tests::ws::next_matching(&mut socket, |d| d["notificationAdded"]["kind"] == "TICKET_ISSUED").await;
    assert_eq!(data["notificationAdded"]["passId"], f.passes[0].id.to_string());
    let sql = "SELECT COUNT(*) AS n FROM notification WHERE kind = 'ticket_issued'";
    assert_eq!(count(&app.db, sql).await, 1);
    assert_eq!(count(&app.db, "SELECT COUNT(*) AS n FROM notification").await, 2, "the grant's and the ticket's");
    node_b.stop().await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn families_holding_credit_are_reminded_30_then_7_days_before_the_deadline_once_each() {
    let app = TestApp::spawn().await;
    let f = family(&app.db, 2, false).await;
    // The second child spent everything: no reminder for that pass.
    for wallet in [Wallet::Sport, Wallet::Culture] {
        let pay = spending::PayPartner {
            pass_id: f.passes[1].id,
            wallet,
            amount: Cents(4000),
            partner_id: if wallet == Wallet::Sport { f.sport } else { f.culture },
            activity_id: None,
            idempotency_key: format!("all-{wallet}"),
        };
        spending::pay_partner(&app.db, f.parent, &pay).await.unwrap();
    }
    let db = &app.db;
    let set_deadline_in_days = |days: i64| {
        let sql = format!(
            "UPDATE campaign SET generation_deadline_us = {} + {}",
            passerelle_domain::db::now_us_sql(db.get_database_backend()),
            days * 86_400_000_000
        );
        let stmt = passerelle_domain::db::stmt(db.get_database_backend(), &sql, []);
        async move { sea_orm::ConnectionTrait::execute_raw(db, stmt).await.unwrap() }
    };
    let sweep = || async { spending::sweep(db, 100).await.unwrap().reminders };
    set_deadline_in_days(45).await;
    assert_eq!(sweep().await, 0, "too early");
    set_deadline_in_days(20).await;
    let (a, b) = tokio::join!(sweep(), sweep());
    assert_eq!(a + b, 1, "one pass holds credit: one reminder, whoever sweeps");
    assert_eq!(sweep().await, 0);
    set_deadline_in_days(3).await;
    assert_eq!(sweep().await, 1, "the 7-day reminder");
    assert_eq!(sweep().await, 0);
    passerelle_api::notifications::tick(&app.db, None, None).await.unwrap();
    let kinds = count(&app.db, "SELECT COUNT(*) AS n FROM notification WHERE kind = 'credit_expiring'").await;
    assert_eq!(kinds, 2, "30 and 7 days, in the inbox");
    app.stop().await;
}

const REQUEST_INBOX: &str = "{ notifications(first: 10) { edges { node { eventId kind requestId passId title } } } }";

#[tokio::test]
async fn a_request_event_reaches_its_account_in_the_inbox_on_each_device_and_by_multipart_mail() {
    use passerelle_domain::notify::{NotificationKind, request_event};
    use passerelle_domain::request::RequestStatus;
    use sea_orm::TransactionTrait;
    let (sink, fcm) = (SmtpSink::start().await, FakeFcm::start().await);
    let app = app_with(&sink, &fcm, &[]).await;
    let f = family(&app.db, 1, false).await;
    let parent = sign_in(&app, &f.parent_email, None).await;
    let body = app.graphql_as(&parent, REGISTER, json!({ "i": { "token": "device-1", "platform": "IOS" } })).await;
    assert_eq!(body["data"]["registerPushToken"], true, "{body}");
    // Whatever the grant wrote so far is delivered first: this test counts the request's own.
    passerelle_api::notifications::tick(&app.db, None, None).await.unwrap();
    let before = count(&app.db, "SELECT COUNT(*) AS n FROM notification").await;

    // The request workflow's transaction: the request is filed, then approved.
    let request = uuid::Uuid::now_v7();
    let txn = app.db.begin().await.unwrap();
    let received = request_event(&txn, NotificationKind::RequestReceived, request, f.parent, RequestStatus::Submitted)
        .await
        .unwrap();
    let changed =
        request_event(&txn, NotificationKind::RequestStatusChanged, request, f.parent, RequestStatus::Approved)
            .await
            .unwrap();
    // A kind that is not a request's: refused.
    let bad =
        request_event(&txn, NotificationKind::Refund, request, f.parent, RequestStatus::Approved).await.unwrap_err();
    assert_eq!(bad.code(), "BAD_USER_INPUT");
    txn.commit().await.unwrap();
    let sql = "SELECT payload FROM outbox WHERE id = $1";
    let row = passerelle_domain::db::stmt(app.db.get_database_backend(), sql, [received.into()]);
    let row = sea_orm::ConnectionTrait::query_one_raw(&app.db, row).await.unwrap().expect("the outbox row");
    let payload: String = row.try_get("", "payload").unwrap();
    let expected = json!({ "reason": "request_received", "request_id": request.to_string(),
                            "account_id": f.parent.to_string(), "status": "submitted" });
    assert_eq!(serde_json::from_str::<serde_json::Value>(&payload).unwrap(), expected);

    let (push, mailer) = (fcm.sender(), sink.mailer());
    let report = passerelle_api::notifications::tick(&app.db, Some(&push), Some(&mailer)).await.unwrap();
    assert_eq!((report.events, report.inbox, report.pushes, report.emails), (2, 2, 2, 2), "{report:?}");

    // The inbox: both, with the request's id and no pass.
    let inbox = app.graphql_as(&parent, REQUEST_INBOX, json!({})).await;
    let nodes: Vec<serde_json::Value> =
        inbox["data"]["notifications"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect();
    assert_eq!(nodes.len() as i64, before + 2, "{inbox}");
    // Both, whichever was dispatched first (a claim returns its rows in no set order).
    for (event, kind) in [(changed, "REQUEST_STATUS_CHANGED"), (received, "REQUEST_RECEIVED")] {
        let node = nodes.iter().find(|n| n["eventId"] == event.to_string().as_str()).expect("the event's entry");
        assert_eq!(node["kind"], kind, "{node}");
        assert_eq!(node["requestId"], request.to_string());
        assert!(node["passId"].is_null());
    }
    // The pushes: kind, event and request ids only, as strings.
    let pushes = fcm.accepted();
    let data: Vec<&serde_json::Value> = pushes.iter().map(|m| &m["data"]).collect();
    assert_eq!(data.len(), 2, "{pushes:?}");
    assert!(data.contains(
        &&json!({ "kind": "request_received", "event_id": received.to_string(), "request_id": request.to_string() })
    ));
    assert!(data.contains(&&json!({ "kind": "request_status_changed", "event_id": changed.to_string(), "request_id": request.to_string() })));
    // The e-mails: multipart, text then HTML, each saying what happened.
    let mails = sink.wait_for(&f.parent_email, 2).await;
    for mail in &mails {
        let sent = passerelle_tests::smtp::parts(&mail.data);
        let kinds: Vec<&str> = sent.iter().map(|(k, _)| k.split(';').next().unwrap_or_default()).collect();
        assert_eq!(kinds, ["text/plain", "text/html"], "{}", mail.data);
        assert!(sent.iter().all(|(_, body)| body.contains(&request.to_string())), "{}", mail.data);
    }
    let saying = |needle: &str| {
        let in_both = |m: &&passerelle_tests::smtp::Received| {
            passerelle_tests::smtp::parts(&m.data).iter().all(|(_, body)| body.contains(needle))
        };
        mails.iter().filter(in_both).count()
    };
    assert_eq!((saying("bien reçu votre demande"), saying("acceptée.")), (1, 1));
    // Once: nothing is left, and a second pass sends nothing more.
    assert_eq!(passerelle_api::notifications::tick(&app.db, Some(&push), Some(&mailer)).await.unwrap().events, 0);
    assert_eq!((fcm.accepted().len(), sink.messages_to(&f.parent_email).len()), (2, 2));
    app.stop().await;
}

#[tokio::test]
async fn the_grant_tells_the_family_once_per_pass_credited_and_a_rerun_tells_nothing() {
    let (sink, fcm) = (SmtpSink::start().await, FakeFcm::start().await);
    let app = app_with(&sink, &fcm, &[]).await;
    // Two pupils, the first boursier: a base grant for each and a top-up for the first, in one page.
    let f = family(&app.db, 2, true).await;
    let granted = "SELECT COUNT(*) AS n FROM outbox WHERE topic = 'pass_updated' AND payload LIKE '%credit_granted%'";
    assert_eq!(count(&app.db, granted).await, 2, "one event per pass credited");
    let sql = "SELECT payload FROM outbox WHERE topic = 'pass_updated'";
    let rows = sea_orm::ConnectionTrait::query_all_raw(
        &app.db,
        passerelle_domain::db::stmt(app.db.get_database_backend(), sql, []),
    )
    .await
    .unwrap();
    let mut passes: Vec<String> = rows
        .iter()
        .map(|r| serde_json::from_str::<serde_json::Value>(&r.try_get::<String>("", "payload").unwrap()).unwrap())
        .map(|p| {
            assert_eq!(p["reason"], "credit_granted", "{p}");
            p["pass_id"].as_str().unwrap().to_owned()
        })
        .collect();
    passes.sort_unstable();
    let mut expected: Vec<String> = f.passes.iter().map(|p| p.id.to_string()).collect();
    expected.sort_unstable();
    assert_eq!(passes, expected);
    // Everything is already granted: nothing is credited, nobody is told again.
    let again = passerelle_domain::grant::run_grant(&app.db, f.campaign, &|_, _| {}).await.unwrap();
    assert_eq!((again.credits, again.already_done), (0, 3), "{again:?}");
    assert_eq!(count(&app.db, granted).await, 2);

    // The family hears of it once per child, by e-mail too (by default), the child by given name.
    let mailer = sink.mailer();
    let report = passerelle_api::notifications::tick(&app.db, None, Some(&mailer)).await.unwrap();
    assert_eq!((report.events, report.inbox, report.emails), (2, 2, 2), "{report:?}");
    for mail in sink.wait_for(&f.parent_email, 2).await {
        let sent = passerelle_tests::smtp::parts(&mail.data);
        assert_eq!(sent.len(), 2, "{}", mail.data);
        assert!(sent.iter().all(|(_, body)| body.contains("Pass de Given") && body.contains("crédité")), "{sent:?}");
        assert!(!mail.data.contains('€') && !mail.data.contains("40.00"), "no amount: {}", mail.data);
    }
    let sql = "SELECT COUNT(*) AS n FROM notification WHERE kind = 'credit_granted'";
    assert_eq!(count(&app.db, sql).await, 2);
    app.stop().await;
}
