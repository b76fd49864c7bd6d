//! ENT sign-in through CAS against a local CAS server that answers with the real ENT answer of
//! `shared/fixtures/ent` (a parent with two children listed by AAF jointure id).

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use passerelle_tests::school::{PupilSeed, funder, insert_pupils};
use passerelle_tests::{TestApp, code};
use serde_json::json;
use std::collections::HashMap;

const ANSWER: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/ent/dossiersco_retour_ent_plusieurs_enfants.xml"
));
const FAILURE: &str = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationFailure code="INVALID_TICKET">unknown</cas:authenticationFailure></cas:serviceResponse>"#;
const SERVICE: &str = "fr.passerelle.app://ent";

/// A CAS server: `ST-parent` is valid for SERVICE, `ST-teacher` too but for a teacher.
async fn cas() -> String {
    let app = Router::new().route(
        "/cas/serviceValidate",
        get(|Query(q): Query<HashMap<String, String>>| async move {
            let service_ok = q.get("service").map(String::as_str) == Some(SERVICE);
            match q.get("ticket").map(String::as_str) {
                Some("ST-parent") if service_ok => ANSWER.to_owned(),
                Some("ST-teacher") if service_ok => ANSWER.replace("[\"Relative\"]", "[\"Teacher\"]"),
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
    let app = TestApp::spawn_with(&[("PASSERELLE_ENT_CAS_URL", cas.as_str()), ("PASSERELLE_ENT_FUNDER", "92")]).await;
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
