//! A settlement batch approved reaches the club through the dispatcher: each member of the
//! partner gets one inbox entry, one push per device (the fake FCM) and one e-mail (a real
//! SMTP server), all naming the batch and nothing else.

use passerelle_api::notifications::tick;
use passerelle_domain::Cents;
use passerelle_domain::auth::{AccountKind, Actor, PartnerRole};
use passerelle_domain::ledger::Wallet;
use passerelle_domain::notify::{NotificationKind, list_notifications, register_push_token};
use passerelle_domain::partner::add_partner_member;
use passerelle_domain::settlement::{CreateBatch, approve_settlement_batch, create_settlement_batch};
use passerelle_domain::spending::{self, Page, PayPartner};
use passerelle_tests::TestApp;
use passerelle_tests::accounts::account;
use passerelle_tests::fake_fcm::FakeFcm;
use passerelle_tests::settlement::{bank_ready, today, treasury};
use passerelle_tests::smtp::{SmtpSink, parts};
use passerelle_tests::spending::family;
use serde_json::json;

#[tokio::test]
async fn an_approved_settlement_batch_tells_each_club_member_in_the_inbox_on_each_device_and_by_mail() {
    let (sink, fcm) = (SmtpSink::start().await, FakeFcm::start().await);
    let app = TestApp::spawn().await;
    let db = &app.db;
    let f = family(db, 1, false).await;
    treasury(db, f.funder).await;
    bank_ready(db, f.sport, "Club de judo de Bagneux", 1, None).await;
    let member = account(&app, AccountKind::PartnerMember, "tresorier@judo.example.org").await;
    add_partner_member(db, f.sport, member, PartnerRole::Member).await.expect("member");
    for (token, platform) in [("club-phone", "android"), ("club-tablet", "ios")] {
        register_push_token(db, member, token, platform).await.expect("device");
    }
    let pay = PayPartner {
        pass_id: f.passes[0].id,
        wallet: Wallet::Sport,
        amount: Cents(1500),
        partner_id: f.sport,
        activity_id: None,
        idempotency_key: "judo-1".into(),
    };
    spending::pay_partner(db, f.parent, &pay).await.expect("pay");
    // The family's events so far are delivered first: this test counts the batch's own.
    tick(db, None, None).await.expect("first pass");

    let staff = Actor::tool("finance");
    let batch = create_settlement_batch(db, &CreateBatch { funder_id: f.funder, cutoff: today() }, &staff, &|_, _| {})
        .await
        .expect("batch");
    approve_settlement_batch(db, batch.id, &staff).await.expect("approve");
    let (push, mailer) = (fcm.sender(), sink.mailer());
    let report = tick(db, Some(&push), Some(&mailer)).await.expect("dispatch");
    assert_eq!((report.events, report.inbox, report.pushes, report.emails), (1, 1, 2, 1), "{report:?}");

    // The inbox: one entry, about the batch.
    let inbox = list_notifications(db, member, false, &Page { first: 10, after: None }).await.expect("inbox");
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].kind, NotificationKind::SettlementPaid);
    let payload: serde_json::Value = serde_json::from_str(&inbox[0].payload).expect("payload");
    assert_eq!(payload, json!({ "batch_id": batch.id.to_string() }));
    // One push per device: the kind, the event and the batch, nothing more.
    let pushed = fcm.accepted();
    assert_eq!(pushed.len(), 2, "{pushed:?}");
    let event = inbox[0].event_id.to_string();
    for message in &pushed {
        let data = &message["data"];
        assert_eq!(data, &json!({ "kind": "settlement_paid", "event_id": event, "batch_id": batch.id.to_string() }));
        assert_eq!(message["notification"]["title"], "Remboursement en route");
    }
    let mut tokens: Vec<&str> = pushed.iter().filter_map(|m| m["token"].as_str()).collect();
    tokens.sort_unstable();
    assert_eq!(tokens, ["club-phone", "club-tablet"]);
    // One e-mail, text and HTML, saying the transfer is ordered, with the batch as reference.
    let mails = sink.wait_for("tresorier@judo.example.org", 1).await;
    let sent = parts(&mails[0].data);
    assert_eq!(sent.len(), 2, "{}", mails[0].data);
    for (_, body) in &sent {
        assert!(body.contains("ordonné le virement") && body.contains(&batch.id.to_string()), "{body}");
    }
    // The parent heard nothing of it; a second pass sends nothing more.
    let theirs = list_notifications(db, f.parent, false, &Page { first: 50, after: None }).await.expect("inbox");
    assert!(theirs.iter().all(|n| n.kind != NotificationKind::SettlementPaid));
    assert_eq!(tick(db, Some(&push), Some(&mailer)).await.expect("again").events, 0);
    assert_eq!((fcm.accepted().len(), sink.messages_to("tresorier@judo.example.org").len()), (2, 1));
    app.stop().await;
}
