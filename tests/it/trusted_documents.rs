//! Trusted documents enforced: the apps' callers run registered operations by hash only;
//! staff and partner software may send documents.

use passerelle_domain::auth::{AccountKind, Actor, StaffRole, create_account, create_api_client};
use passerelle_domain::partner::create_partner;
use passerelle_tests::accounts::{PASSWORD, sign_in, staff, totp};
use passerelle_tests::app::contract_operation;
use passerelle_tests::school::funder;
use passerelle_tests::{TestApp, code};
use serde_json::json;

#[tokio::test]
async fn apps_send_registered_hashes_staff_and_club_software_may_send_documents() {
    let app = TestApp::spawn_with(&[("PASSERELLE_ENV", "production")]).await;
    create_account(&app.db, AccountKind::Parent, "p@example.org", PASSWORD, "P", true, &[]).await.unwrap();
    let parent = sign_in(&app, "p@example.org", None).await;

    // A parent: the registered home query by hash works; its text alone is refused.
    let home = app.persisted(Some(&parent), "parent/Home.graphql", json!({})).await;
    assert_eq!(home["data"]["children"], json!([]), "{home}");
    let text = contract_operation("parent/Home.graphql");
    assert_eq!(code(&app.graphql_as(&parent, &text, json!({})).await), "TRUSTED_DOCUMENT_REQUIRED");
    assert_eq!(code(&app.graphql_as(&parent, "{ viewer { id } }", json!({})).await), "TRUSTED_DOCUMENT_REQUIRED");
    // Anonymous: the same.
    assert_eq!(code(&app.graphql("{ serverInfo { version } }", json!({})).await), "TRUSTED_DOCUMENT_REQUIRED");
    // An unknown hash, or a text that is not the hash's document.
    let unknown =
        json!({ "query": "", "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "00".repeat(32) } } });
    let body: serde_json::Value = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&parent)
        .json(&unknown)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");
    let hash = passerelle_graphql::trusted::document_hash(&text);
    let swapped = json!({ "query": "{ viewer { id email } }", "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } });
    let body: serde_json::Value = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&parent)
        .json(&swapped)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");

    // Staff tools and club software send their own documents.
    let f = funder(&app.db, "92").await;
    let (_, secret) = staff(&app, "s@example.org", &[(f, StaffRole::Admin)]).await;
    let s = sign_in(&app, "s@example.org", Some(&totp(&secret, 0))).await;
    let q = "query($f: ID!) { campaigns(funderId: $f) { id } }";
    assert_eq!(app.graphql_as(&s, q, json!({ "f": f.to_string() })).await["data"]["campaigns"], json!([]));
    let club = create_partner(&app.db, "Club").await.unwrap().id;
    let issued = create_api_client(&app.db, &Actor::tool("t"), club, "caisse").await.unwrap();
    let (_, _, token) =
        app.oauth_token(Some((&issued.client.client_id, &issued.secret)), "grant_type=client_credentials").await;
    let software = token["access_token"].as_str().unwrap().to_owned();
    let body = app.graphql_as(&software, "{ partnerProfile { name } }", json!({})).await;
    assert_eq!(body["data"]["partnerProfile"]["name"], "Club", "{body}");
    app.stop().await;
}
