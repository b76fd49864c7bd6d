//! ENT sign-in through CAS against a local CAS server that answers with the real ENT answer of
//! `shared/fixtures/ent` (a parent with two children listed by AAF jointure id).

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use passerelle_tests::school::{PupilSeed, funder, insert_pupils};
use passerelle_tests::{TestApp, code, count};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const ANSWER: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/ent/dossiersco_retour_ent_plusieurs_enfants.xml"
));
const FAILURE: &str = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationFailure code="INVALID_TICKET">unknown</cas:authenticationFailure></cas:serviceResponse>"#;
const SERVICE: &str = "fr.passerelle.app://ent";
/// Another service registered with the same CAS (a school site, a game…).
const OTHER_SERVICE: &str = "https://other-service.example/login";

/// A CAS server: `ST-parent` is valid for SERVICE, `ST-teacher` too but for a teacher;
/// `ST-elsewhere` is the same parent's ticket, issued to OTHER_SERVICE. Like a real CAS, a ticket
/// validates only for the service it was issued to — whichever that is.
async fn cas() -> String {
    cas_counting(Arc::new(AtomicUsize::new(0))).await
}

async fn cas_counting(asked: Arc<AtomicUsize>) -> String {
    let app = Router::new().route(
        "/cas/serviceValidate",
        get(move |Query(q): Query<HashMap<String, String>>| async move {
            asked.fetch_add(1, Ordering::SeqCst);
            let service = q.get("service").map(String::as_str);
            let service_ok = service == Some(SERVICE);
            match q.get("ticket").map(String::as_str) {
                Some("ST-parent") if service_ok => ANSWER.to_owned(),
                Some("ST-teacher") if service_ok => ANSWER.replace("[\"Relative\"]", "[\"Teacher\"]"),
                Some("ST-elsewhere") if service == Some(OTHER_SERVICE) => ANSWER.to_owned(),
                _ => FAILURE.to_owned(),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/cas")
}

const SIGN_IN: &str = "mutation($t: String!, $s: String!) { entSignIn(input: { ticket: $t, service: $s, \
    device: { deviceId: \"d\", platform: ANDROID, name: \"p\" } }) { accessToken account { id kind } } }";

#[tokio::test]
async fn an_ent_parent_signs_in_and_finds_the_children_the_ent_lists() {
    let cas = cas().await;
    let app = TestApp::spawn_with(&[
        ("PASSERELLE_ENT_CAS_URL", cas.as_str()),
        ("PASSERELLE_ENT_SERVICE_URLS", SERVICE),
        ("PASSERELLE_ENT_FUNDER", "92"),
    ])
    .await;
    let f = funder(&app.db, "92").await;
    insert_pupils(
        &app.db,
        f,
        &[
            PupilSeed { key: "aaf:3284894", grade: "5E", uai: "0921778H", boursier: false },
            PupilSeed { key: "aaf:3284893", grade: "3E", uai: "0921778H", boursier: false },
            PupilSeed { key: "aaf:9999999", grade: "4E", uai: "0921778H", boursier: false },
        ],
    )
    .await;
    let first = app.graphql(SIGN_IN, json!({ "t": "ST-parent", "s": SERVICE })).await;
    let token = first["data"]["entSignIn"]["accessToken"].as_str().unwrap_or_else(|| panic!("{first}")).to_owned();
    assert_eq!(first["data"]["entSignIn"]["account"]["kind"], "PARENT");
    let kids = app.graphql_as(&token, "{ children { id } }", json!({})).await;
    assert_eq!(kids["data"]["children"].as_array().map(Vec::len), Some(2), "{kids}");
    // Signing in again finds the same account (by issuer and subject) and links nothing twice.
    let again = app.graphql(SIGN_IN, json!({ "t": "ST-parent", "s": SERVICE })).await;
    assert_eq!(again["data"]["entSignIn"]["account"]["id"], first["data"]["entSignIn"]["account"]["id"]);
    let token2 = again["data"]["entSignIn"]["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(
        app.graphql_as(&token2, "{ children { id } }", json!({})).await["data"]["children"].as_array().map(Vec::len),
        Some(2)
    );

    assert_eq!(code(&app.graphql(SIGN_IN, json!({ "t": "ST-forged", "s": SERVICE })).await), "UNAUTHENTICATED");
    assert_eq!(
        code(&app.graphql(SIGN_IN, json!({ "t": "ST-parent", "s": "https://evil.example" })).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(code(&app.graphql(SIGN_IN, json!({ "t": "ST-teacher", "s": SERVICE })).await), "FORBIDDEN");
    app.stop().await;
}

#[tokio::test]
async fn a_ticket_issued_to_another_service_of_the_cas_does_not_sign_in() {
    // Any site of the ENT's CAS receives tickets of its users; it must not be able to sign in
    // as them here by naming itself as the service.
    let asked = Arc::new(AtomicUsize::new(0));
    let cas = cas_counting(asked.clone()).await;
    let ours = format!("{SERVICE}, https://pass.example/ent");
    let app = TestApp::spawn_with(&[
        ("PASSERELLE_ENT_CAS_URL", cas.as_str()),
        ("PASSERELLE_ENT_SERVICE_URLS", ours.as_str()),
    ])
    .await;
    funder(&app.db, "92").await;
    let body = app.graphql(SIGN_IN, json!({ "t": "ST-elsewhere", "s": OTHER_SERVICE })).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    assert_eq!(asked.load(Ordering::SeqCst), 0, "CAS is never asked about a service that is not ours");
    // Near misses of our own service are other services too: the match is exact.
    for near in [format!("{SERVICE}/"), SERVICE.to_uppercase(), format!(" {SERVICE}"), format!("{SERVICE}?x=1")] {
        assert_eq!(code(&app.graphql(SIGN_IN, json!({ "t": "ST-parent", "s": near })).await), "UNAUTHENTICATED");
    }
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    assert_eq!(count(&app.db, "SELECT COUNT(*) AS n FROM account").await, 0, "no account was created");
    // Our own service still signs in.
    let ok = app.graphql(SIGN_IN, json!({ "t": "ST-parent", "s": SERVICE })).await;
    assert!(ok["data"]["entSignIn"]["accessToken"].is_string(), "{ok}");
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    app.stop().await;
}
