//! A request's whole life through HTTP, as the apps and the back office drive it: a boursier
//! bonus filed with a PDF → acknowledged → information asked → answered → approved, its top-up
//! credited in the same transaction, the family told at each staff step (through the dispatcher:
//! inbox and push), the delays counted.

use passerelle_domain::auth::{AccountKind, StaffRole};
use passerelle_domain::ledger::{Wallet, audit};
use passerelle_tests::accounts::{account, sign_in};
use passerelle_tests::fake_fcm::FakeFcm;
use passerelle_tests::requests::{FIELDS, PDF, decide, download, mutate, notices, staff_token, upload};
use passerelle_tests::spending::family;
use passerelle_tests::{TestApp, code};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_boursier_bonus_goes_from_the_app_to_its_top_up_and_the_family_hears_each_step() {
    let app = TestApp::spawn().await;
    let f = family(&app.db, 1, false).await;
    let pass = f.passes[0].id.to_string();
    let parent = sign_in(&app, &f.parent_email, None).await;
    let (_, admin) = staff_token(&app, f.funder, StaffRole::Admin).await;

    // The proof, uploaded first, checked by content and kept for its uploader.
    let (status, doc) = upload(&app, Some(&parent), PDF.to_vec()).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(doc["contentType"], "application/pdf");
    assert_eq!(doc["size"], PDF.len());
    let doc_id = doc["id"].as_str().unwrap().to_owned();

    let input = json!({ "kind": "BOURSIER_BONUS", "subjectId": pass, "message": "Mon fils est boursier.", "attachmentIds": [doc_id] });
    let body = mutate(&app, &parent, "submitRequest", "SubmitRequestInput", input).await;
    let r = &body["data"]["submitRequest"];
    assert_eq!((r["status"].as_str(), r["channel"].as_str()), (Some("SUBMITTED"), Some("APP")), "{body}");
    assert_eq!(r["passId"], pass);
    assert_eq!(r["attachments"][0]["id"], doc_id);
    let id = r["id"].as_str().unwrap().to_owned();

    // Staff take it into account, then ask for more.
    let q = format!("mutation($r: ID!) {{ acknowledgeRequest(requestId: $r) {{ {FIELDS} }} }}");
    let body = app.graphql_as(&admin, &q, json!({ "r": id })).await;
    let r = &body["data"]["acknowledgeRequest"];
    assert_eq!(r["status"], "IN_REVIEW", "{body}");
    assert!(r["acknowledgedAt"].is_string() && r["respondedAt"].is_null(), "{body}");
    assert!(r["assigneeId"].is_string(), "the one who acknowledges takes it: {body}");
    let body = decide(&app, &admin, &id, "ASK_INFO", Some("Merci de joindre l'avis de bourse 2026.")).await;
    assert_eq!(body["data"]["decideRequest"]["status"], "NEEDS_INFO", "{body}");
    let note = json!({ "requestId": id, "message": "Dossier CAF vu au téléphone.", "internal": true });
    let body = mutate(&app, &admin, "commentRequest", "CommentRequestInput", note).await;
    assert_eq!(body["data"]["commentRequest"]["status"], "NEEDS_INFO", "{body}");

    // The family answers with a second document: back to the queue.
    let (_, doc2) = upload(&app, Some(&parent), PDF.to_vec()).await;
    let answer = json!({ "requestId": id, "message": "Voici l'avis.", "attachmentIds": [doc2["id"]] });
    let body = mutate(&app, &parent, "answerRequest", "AnswerRequestInput", answer).await;
    let r = &body["data"]["answerRequest"];
    assert_eq!(r["status"], "SUBMITTED", "{body}");
    assert_eq!(r["attachments"].as_array().map(Vec::len), Some(2), "{body}");

    // The family sees the questions and answers, never the internal note; staff see it.
    let events = |b: &serde_json::Value| b["data"]["request"]["events"].as_array().cloned().unwrap_or_default();
    let q = "query($r: ID!) { request(id: $r) { events { action toStatus publicMessage internalNote } } }";
    let seen = events(&app.graphql_as(&parent, q, json!({ "r": id })).await);
    let actions: Vec<&str> = seen.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["SUBMIT", "ACKNOWLEDGE", "ASK_INFO", "ANSWER"]);
    assert!(seen.iter().all(|e| e["internalNote"].is_null()), "{seen:?}");
    let staff_seen = events(&app.graphql_as(&admin, q, json!({ "r": id })).await);
    assert!(staff_seen.iter().any(|e| e["internalNote"] == "Dossier CAF vu au téléphone."), "{staff_seen:?}");

    // Approved: the top-up to the boursier total lands with the decision.
    let before = f.balance(&app.db, 0, Wallet::Sport).await;
    assert_eq!(before.granted.0, 4000);
    let body = decide(&app, &admin, &id, "APPROVE", Some("Bonus accordé.")).await;
    let r = &body["data"]["decideRequest"];
    assert_eq!(r["status"], "APPROVED", "{body}");
    assert!(r["decidedAt"].is_string() && r["respondedAt"].is_string(), "{body}");
    for wallet in [Wallet::Sport, Wallet::Culture] {
        assert_eq!(f.balance(&app.db, 0, wallet).await.granted.0, 5000, "{wallet}");
    }
    // Closed: nothing moves it again, and the money stays as it is.
    let body = decide(&app, &admin, &id, "APPROVE", None).await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    let q = "mutation($r: ID!) { cancelRequest(requestId: $r) { status } }";
    assert_eq!(code(&app.graphql_as(&parent, q, json!({ "r": id })).await), "CONFLICT");
    assert_eq!(f.balance(&app.db, 0, Wallet::Sport).await.granted.0, 5000);

    // Told at submission and at each staff step; not of its own answer nor of the note.
    let told = notices(&app, &id, f.parent).await;
    let expected = [
        ("request_received", "submitted"),
        ("request_status_changed", "in_review"),
        ("request_status_changed", "needs_info"),
        ("request_status_changed", "approved"),
    ];
    assert_eq!(told, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    delivered_through_the_dispatcher(&app, &parent, &id).await;

    // The documents: their family and the funder's staff read them; another parent does not.
    let (status, bytes) = download(&app, &parent, &doc_id).await;
    assert_eq!((status, bytes.as_slice()), (StatusCode::OK, PDF));
    assert_eq!(download(&app, &admin, &doc_id).await.0, StatusCode::OK);
    account(&app, AccountKind::Parent, "other-parent@example.org").await;
    let other = sign_in(&app, "other-parent@example.org", None).await;
    assert_eq!(download(&app, &other, &doc_id).await.0, StatusCode::NOT_FOUND);
    let q = "query($r: ID!) { request(id: $r) { id } }";
    assert_eq!(code(&app.graphql_as(&other, q, json!({ "r": id })).await), "NOT_FOUND");

    // The delays include it: acknowledged, answered and decided once each.
    let q = "query($f: ID!) { requestStats(funderId: $f) { kind submitted open decided \
             acknowledgement { count medianHours p90Hours } firstResponse { count } decision { count } targetDays } }";
    let body = app.graphql_as(&admin, q, json!({ "f": f.funder.to_string() })).await;
    let kinds = body["data"]["requestStats"].as_array().cloned().unwrap_or_default();
    let bonus = kinds.iter().find(|k| k["kind"] == "BOURSIER_BONUS").unwrap_or_else(|| panic!("{body}"));
    assert_eq!(
        (bonus["submitted"].as_u64(), bonus["open"].as_u64(), bonus["decided"].as_u64()),
        (Some(1), Some(0), Some(1))
    );
    assert_eq!(bonus["acknowledgement"]["count"], 1);
    assert!(bonus["acknowledgement"]["medianHours"].as_f64().is_some_and(|h| h >= 0.0), "{bonus}");
    assert_eq!((bonus["firstResponse"]["count"].as_u64(), bonus["decision"]["count"].as_u64()), (Some(1), Some(1)));
    assert_eq!(bonus["targetDays"], 15);
    let lost = kinds.iter().find(|k| k["kind"] == "LOST_CARD").unwrap_or_else(|| panic!("{body}"));
    assert_eq!((lost["submitted"].as_u64(), lost["targetDays"].as_u64()), (Some(0), Some(7)));

    assert!(audit(&app.db).await.unwrap().is_clean());
    app.stop().await;
}

/// The story's notices, delivered by the dispatcher (as the worker runs it): the parent's inbox
/// holds one entry per step they were told of, each naming the request, and their phone got one
/// push each (the fake FCM).
async fn delivered_through_the_dispatcher(app: &TestApp, parent: &str, id: &str) {
    let fcm = FakeFcm::start().await;
    let q = "mutation($i: RegisterPushTokenInput!) { registerPushToken(input: $i) }";
    let body = app.graphql_as(parent, q, json!({ "i": { "token": "parent-phone", "platform": "ANDROID" } })).await;
    assert_eq!(body["data"]["registerPushToken"], true, "{body}");
    let push = fcm.sender();
    let report = passerelle_api::notifications::tick(&app.db, Some(&push), None).await.expect("dispatch");
    assert_eq!(report.failed, 0, "{report:?}");

    let q = "{ notifications(first: 50) { edges { node { eventId kind requestId passId } } } }";
    let body = app.graphql_as(parent, q, json!({})).await;
    let nodes: Vec<serde_json::Value> = body["data"]["notifications"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|e| e["node"].clone())
        .filter(|n| n["requestId"] == id)
        .collect();
    let mut kinds: Vec<&str> = nodes.iter().filter_map(|n| n["kind"].as_str()).collect();
    kinds.sort_unstable();
    let expected = ["REQUEST_RECEIVED", "REQUEST_STATUS_CHANGED", "REQUEST_STATUS_CHANGED", "REQUEST_STATUS_CHANGED"];
    assert_eq!(kinds, expected, "{body}");
    assert!(nodes.iter().all(|n| n["passId"].is_null()), "{body}");

    let pushed: Vec<serde_json::Value> = fcm.accepted().into_iter().filter(|m| m["data"]["request_id"] == id).collect();
    assert_eq!(pushed.len(), 4, "{pushed:?}");
    for node in &nodes {
        let event = &node["eventId"];
        let for_it = pushed.iter().filter(|m| &m["data"]["event_id"] == event).count();
        assert_eq!(for_it, 1, "one push for {node}");
    }
}
