//! OIDC sign-in (EduConnect, FranceConnect, the ENT) against a local provider that signs real
//! ID tokens (`passerelle_tests::oidc_provider`), through GraphQL over HTTP as the app does it:
//! `startOidcSignIn`, the browser at the provider, `completeOidcSignIn`.

use passerelle_domain::auth::{AccountKind, create_account};
use passerelle_domain::db::stmt;
use passerelle_tests::oidc_provider::{
    CLIENT_ID, CLIENT_SECRET, Misbehaviour, OidcTestProvider, REDIRECT_URI, TestUser,
};
use passerelle_tests::school::{PupilSeed, funder, insert_pupils};
use passerelle_tests::{TestApp, code};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

const START: &str = "mutation($p: String!, $r: String) { startOidcSignIn(input: { provider: $p, redirectUri: $r }) \
    { authorizationUrl state flowSecret expiresAt } }";
const COMPLETE: &str = "mutation($s: String!, $f: String!, $c: String!) { completeOidcSignIn(input: { state: $s, flowSecret: $f, code: $c, \
    device: { deviceId: \"phone-1\", platform: IOS, name: \"iPhone\" } }) { accessToken refreshToken account { id email kind } } }";

async fn setup(user: TestUser, extra: &[(&str, &str)]) -> (OidcTestProvider, TestApp) {
    let provider = OidcTestProvider::start(user).await;
    let app = TestApp::spawn_with_oidc(&provider, "educonnect", extra).await;
    (provider, app)
}

/// `startOidcSignIn` → (authorization URL, state, flow secret).
async fn start(app: &TestApp) -> (String, String, String) {
    let body = app.graphql(START, json!({ "p": "educonnect" })).await;
    let s = &body["data"]["startOidcSignIn"];
    let url = s["authorizationUrl"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned();
    let secret = s["flowSecret"].as_str().unwrap_or_default().to_owned();
    (url, s["state"].as_str().unwrap_or_default().to_owned(), secret)
}

async fn complete(app: &TestApp, state: &str, flow_secret: &str, auth_code: &str) -> Value {
    app.graphql(COMPLETE, json!({ "s": state, "f": flow_secret, "c": auth_code })).await
}

/// The whole flow; returns `completeOidcSignIn`'s answer.
async fn sign_in(app: &TestApp, provider: &OidcTestProvider) -> Value {
    let (url, state, secret) = start(app).await;
    let (auth_code, returned_state) = provider.authorize(&url).await.unwrap_or_else(|e| panic!("authorize: {e}"));
    assert_eq!(returned_state, state, "the provider hands the state back");
    complete(app, &state, &secret, &auth_code).await
}

fn account_id(body: &Value) -> String {
    body["data"]["completeOidcSignIn"]["account"]["id"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned()
}

async fn identities(app: &TestApp) -> i64 {
    let backend = app.db.get_database_backend();
    let row = app.db.query_one_raw(stmt(backend, "SELECT COUNT(*) AS n FROM account_identity", [])).await.unwrap();
    row.unwrap().try_get("", "n").unwrap()
}

#[tokio::test]
async fn a_parent_signs_in_with_oidc_and_is_the_viewer() {
    let (provider, app) = setup(TestUser::new("sub-camille"), &[]).await;
    let listed = app.graphql("{ oidcProviders }", json!({})).await;
    assert_eq!(listed["data"]["oidcProviders"], json!(["educonnect"]));

    let (url, state, secret) = start(&app).await;
    let auth_url = reqwest::Url::parse(&url).unwrap();
    let param = |n: &str| auth_url.query_pairs().find(|(k, _)| k == n).map(|(_, v)| v.into_owned());
    assert!(url.starts_with(&format!("{}/authorize?", provider.issuer)), "{url}");
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(param("client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(param("redirect_uri").as_deref(), Some(REDIRECT_URI));
    assert_eq!(param("state").as_deref(), Some(state.as_str()));
    assert!(param("nonce").is_some_and(|n| n.len() >= 22) && state.len() >= 22, "fresh random nonce and state");

    let (auth_code, _) = provider.authorize(&url).await.unwrap();
    let body = complete(&app, &state, &secret, &auth_code).await;
    let signed_in = &body["data"]["completeOidcSignIn"];
    assert_eq!(signed_in["account"]["kind"], "PARENT", "{body}");
    assert_eq!(signed_in["account"]["email"], "camille@example.org", "the provider vouched for it");
    let token = signed_in["accessToken"].as_str().unwrap();
    let viewer = app
        .graphql_as(token, "{ viewer { id kind displayName emailVerified } sessions { deviceId } }", json!({}))
        .await;
    assert_eq!(viewer["data"]["viewer"]["id"], signed_in["account"]["id"], "{viewer}");
    assert_eq!(viewer["data"]["viewer"]["displayName"], "Camille Durand");
    assert_eq!(viewer["data"]["sessions"], json!([{ "deviceId": "phone-1" }]));

    // The code went to the token endpoint with the client's credentials and the PKCE verifier
    // that matches the challenge (the provider accepts nothing else).
    let seen = provider.token_requests();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].client_authenticated && seen[0].accepted, "{seen:?}");
    assert!(seen[0].code_verifier.as_ref().is_some_and(|v| v.len() >= 43), "{seen:?}");
    let refreshed = app
        .graphql(
            "mutation($r: String!) { refreshSession(refreshToken: $r) { accessToken } }",
            json!({ "r": signed_in["refreshToken"] }),
        )
        .await;
    assert!(refreshed["data"]["refreshSession"]["accessToken"].is_string(), "{refreshed}");
    app.stop().await;
}

#[tokio::test]
async fn the_provider_refuses_a_code_without_the_pkce_verifier() {
    // The provider's PKCE check is what makes the previous test's `accepted` meaningful.
    let (provider, app) = setup(TestUser::new("sub-pkce"), &[]).await;
    let (url, _, _) = start(&app).await;
    let (auth_code, _) = provider.authorize(&url).await.unwrap();
    let mut form = reqwest::Url::parse("form:").unwrap();
    form.query_pairs_mut()
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", &auth_code)
        .append_pair("redirect_uri", REDIRECT_URI);
    let answer = reqwest::Client::new()
        .post(format!("{}/token", provider.issuer))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.query().unwrap_or_default().to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    assert_eq!(answer.json::<Value>().await.unwrap()["error"], "invalid_grant");
    app.stop().await;
}

#[tokio::test]
async fn the_same_subject_signs_in_to_the_same_account() {
    let (provider, app) = setup(TestUser::new("sub-same"), &[]).await;
    let first = account_id(&sign_in(&app, &provider).await);
    let second = account_id(&sign_in(&app, &provider).await);
    assert_eq!(first, second);
    assert_eq!(identities(&app).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn the_same_email_under_another_subject_is_another_account() {
    let (provider, app) = setup(TestUser::new("sub-one"), &[]).await;
    // Someone already has a password account with that address: it is never taken over.
    create_account(&app.db, AccountKind::Parent, "camille@example.org", "a long passphrase here", "C", true, &[])
        .await
        .unwrap();
    let one = sign_in(&app, &provider).await;
    provider.set_user(TestUser::new("sub-two"));
    let two = sign_in(&app, &provider).await;
    let (one_id, two_id) = (account_id(&one), account_id(&two));
    assert_ne!(one_id, two_id);
    for body in [&one, &two] {
        let email = body["data"]["completeOidcSignIn"]["account"]["email"].as_str().unwrap();
        assert!(email.ends_with("@accounts.invalid"), "the address is taken, so a placeholder: {email}");
    }
    // An address the provider did not verify is not used either.
    provider.set_user(TestUser {
        email: Some("unverified@example.org".into()),
        email_verified: false,
        ..TestUser::new("sub-three")
    });
    let three = sign_in(&app, &provider).await;
    assert!(three["data"]["completeOidcSignIn"]["account"]["email"].as_str().unwrap().ends_with("@accounts.invalid"));
    assert_eq!(identities(&app).await, 3);
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_state_is_refused() {
    let (provider, app) = setup(TestUser::new("sub-state"), &[]).await;
    let (url, state, secret) = start(&app).await;
    let (auth_code, _) = provider.authorize(&url).await.unwrap();
    let body = complete(&app, "a-state-we-never-issued", &secret, &auth_code).await;
    assert_eq!(code_of(&body), ("BAD_USER_INPUT", "state"), "{body}");
    assert!(body["data"].is_null(), "{body}");
    // The real flow was left alone and still completes.
    assert!(complete(&app, &state, &secret, &auth_code).await["data"]["completeOidcSignIn"]["accessToken"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn an_app_that_reads_the_redirect_cannot_complete_without_the_flow_secret() {
    // Another app claiming the redirect scheme sees `code` and `state`, never the flow secret
    // the starting app got in the GraphQL answer.
    let (provider, app) = setup(TestUser::new("sub-intercepted"), &[]).await;
    let (url, state, secret) = start(&app).await;
    assert!(secret.len() >= 43 && secret != state, "a separate 256-bit secret: {secret:?}");
    let (auth_code, _) = provider.authorize(&url).await.unwrap();
    for wrong in ["", "not-the-secret", state.as_str()] {
        let body = complete(&app, &state, wrong, &auth_code).await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{wrong:?}: {body}");
    }
    let without = "mutation($s: String!, $c: String!) { completeOidcSignIn(input: { state: $s, code: $c, \
        device: { deviceId: \"x\", platform: IOS, name: \"x\" } }) { accessToken } }";
    let body = app.graphql(without, json!({ "s": state, "c": auth_code })).await;
    assert!(body["data"].is_null() && body["errors"][0]["message"].as_str().is_some_and(|m| m.contains("flowSecret")));
    assert!(provider.token_requests().is_empty(), "the code was never exchanged");
    assert_eq!(identities(&app).await, 0);
    // The wrong secrets spent nothing: the app that started the flow completes it.
    let body = complete(&app, &state, &secret, &auth_code).await;
    assert!(body["data"]["completeOidcSignIn"]["accessToken"].is_string(), "{body}");
    app.stop().await;
}

fn code_of(body: &Value) -> (&str, &str) {
    (code(body), body["errors"][0]["extensions"]["field"].as_str().unwrap_or(""))
}

#[tokio::test]
async fn a_code_from_another_flow_is_refused() {
    // State of flow A with the code of flow B: PKCE ties each code to its own flow.
    let (provider, app) = setup(TestUser::new("sub-swap"), &[]).await;
    let (_, state_a, secret) = start(&app).await;
    let (url_b, _, _) = start(&app).await;
    let (code_b, _) = provider.authorize(&url_b).await.unwrap();
    assert_eq!(code(&complete(&app, &state_a, &secret, &code_b).await), "UNAUTHENTICATED");
    assert_eq!(identities(&app).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_state_works_once() {
    let (provider, app) = setup(TestUser::new("sub-replay"), &[]).await;
    let (url, state, secret) = start(&app).await;
    let (auth_code, _) = provider.authorize(&url).await.unwrap();
    assert!(complete(&app, &state, &secret, &auth_code).await["data"]["completeOidcSignIn"]["accessToken"].is_string());
    assert_eq!(code_of(&complete(&app, &state, &secret, &auth_code).await), ("BAD_USER_INPUT", "state"));
    // A failed completion spends the state too: no second try with another code.
    let (url, state, secret) = start(&app).await;
    provider.misbehave(Misbehaviour::WrongNonce);
    let (auth_code, _) = provider.authorize(&url).await.unwrap();
    assert_eq!(code(&complete(&app, &state, &secret, &auth_code).await), "UNAUTHENTICATED");
    provider.misbehave(Misbehaviour::Honest);
    assert_eq!(code_of(&complete(&app, &state, &secret, &auth_code).await), ("BAD_USER_INPUT", "state"));
    app.stop().await;
}

#[tokio::test]
async fn two_completions_racing_on_one_state_sign_in_once() {
    let (provider, app) = setup(TestUser::new("sub-race"), &[]).await;
    let (url, state, secret) = start(&app).await;
    let (auth_code, _) = provider.authorize(&url).await.unwrap();
    let (a, b) = tokio::join!(complete(&app, &state, &secret, &auth_code), complete(&app, &state, &secret, &auth_code));
    let won = [&a, &b].iter().filter(|r| r["data"]["completeOidcSignIn"]["accessToken"].is_string()).count();
    assert_eq!(won, 1, "{a} {b}");
    let lost = if code(&a).is_empty() { &b } else { &a };
    assert_eq!(code_of(lost), ("BAD_USER_INPUT", "state"));
    assert_eq!(provider.token_requests().len(), 1, "the code is exchanged once");
    app.stop().await;
}

#[tokio::test]
async fn an_expired_flow_is_refused() {
    let (provider, app) = setup(TestUser::new("sub-late"), &[]).await;
    let (url, state, secret) = start(&app).await;
    let (auth_code, _) = provider.authorize(&url).await.unwrap();
    // Ten minutes pass (the flow's clock is the database's).
    let backend = app.db.get_database_backend();
    app.db.execute_raw(stmt(backend, "UPDATE oidc_flow SET expires_at_us = created_at_us - 1", [])).await.unwrap();
    assert_eq!(code_of(&complete(&app, &state, &secret, &auth_code).await), ("BAD_USER_INPUT", "state"));
    assert!(provider.token_requests().is_empty(), "the auth_code is not even exchanged");
    app.stop().await;
}

/// Signs in while the provider misbehaves as told: refused, and nothing written.
async fn refused_when(m: Misbehaviour) {
    let (provider, app) = setup(TestUser::new("sub-bad"), &[]).await;
    provider.misbehave(m);
    let body = sign_in(&app, &provider).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{m:?}: {body}");
    assert!(body["data"].is_null(), "{m:?}: {body}");
    assert_eq!(identities(&app).await, 0, "{m:?}");
    // The same provider behaving again signs in: the refusal was about the token.
    provider.misbehave(Misbehaviour::Honest);
    assert!(sign_in(&app, &provider).await["data"]["completeOidcSignIn"]["accessToken"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn a_nonce_mismatch_is_refused() {
    refused_when(Misbehaviour::WrongNonce).await;
}

#[tokio::test]
async fn an_id_token_for_another_audience_is_refused() {
    refused_when(Misbehaviour::WrongAudience).await;
}

#[tokio::test]
async fn an_id_token_with_an_untrusted_extra_audience_is_refused() {
    refused_when(Misbehaviour::ExtraAudience).await;
}

#[tokio::test]
async fn an_id_token_from_another_issuer_is_refused() {
    refused_when(Misbehaviour::WrongIssuer).await;
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    refused_when(Misbehaviour::Expired).await;
}

#[tokio::test]
async fn an_id_token_with_a_bad_signature_is_refused() {
    refused_when(Misbehaviour::BadSignature).await;
}

#[tokio::test]
async fn children_listed_by_a_provider_trusted_for_the_roster_are_linked() {
    let user = TestUser { children: vec!["3284894".into(), "3284893".into()], ..TestUser::new("sub-ent-parent") };
    let (provider, app) = setup(user, &[("PASSERELLE_OIDC_EDUCONNECT_CHILDREN_FUNDER", "92")]).await;
    let f = funder(&app.db, "92").await;
    let seeds = ["aaf:3284894", "aaf:3284893", "aaf:9999999"].map(|key| PupilSeed {
        key,
        grade: "5E",
        uai: "0921778H",
        boursier: false,
    });
    insert_pupils(&app.db, f, &seeds).await;
    for _ in 0..2 {
        let body = sign_in(&app, &provider).await;
        let token = body["data"]["completeOidcSignIn"]["accessToken"].as_str().unwrap_or_else(|| panic!("{body}"));
        let kids = app.graphql_as(token, "{ children { id } }", json!({})).await;
        assert_eq!(kids["data"]["children"].as_array().map(Vec::len), Some(2), "linked once, not twice: {kids}");
    }
    app.stop().await;
}

#[tokio::test]
async fn children_claims_of_a_provider_not_trusted_for_a_roster_are_ignored() {
    let user = TestUser { children: vec!["3284894".into()], ..TestUser::new("sub-fc-parent") };
    let (provider, app) = setup(user, &[]).await;
    let f = funder(&app.db, "92").await;
    insert_pupils(&app.db, f, &[PupilSeed { key: "aaf:3284894", grade: "5E", uai: "0921778H", boursier: false }]).await;
    let body = sign_in(&app, &provider).await;
    let token = body["data"]["completeOidcSignIn"]["accessToken"].as_str().unwrap_or_else(|| panic!("{body}"));
    assert_eq!(app.graphql_as(token, "{ children { id } }", json!({})).await["data"]["children"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn unknown_providers_and_unregistered_redirects_are_bad_input() {
    let (_provider, app) = setup(TestUser::new("sub-input"), &[]).await;
    let body = app.graphql(START, json!({ "p": "facebook" })).await;
    assert_eq!(code_of(&body), ("BAD_USER_INPUT", "provider"));
    let body = app.graphql(START, json!({ "p": "educonnect", "r": "https://evil.example/cb" })).await;
    assert_eq!(code_of(&body), ("BAD_USER_INPUT", "redirectUri"));
    let body = app.graphql(START, json!({ "p": "educonnect", "r": "https://app.example/oidc" })).await;
    let url = body["data"]["startOidcSignIn"]["authorizationUrl"].as_str().unwrap_or_else(|| panic!("{body}"));
    assert!(url.contains("redirect_uri=https%3A%2F%2Fapp.example%2Foidc"), "{url}");
    // A bad device is refused before the state is spent.
    let (_, state, secret) = start(&app).await;
    let bad_device = "mutation($s: String!, $f: String!) { completeOidcSignIn(input: { state: $s, flowSecret: $f, \
        code: \"c\", device: { deviceId: \"\", platform: IOS, name: \"x\" } }) { accessToken } }";
    let body = app.graphql(bad_device, json!({ "s": state, "f": secret })).await;
    assert_eq!(code_of(&body), ("BAD_USER_INPUT", "device"));
    assert_eq!(
        code(&complete(&app, &state, &secret, "not-a-code").await),
        "UNAUTHENTICATED",
        "the flow was still there"
    );
    app.stop().await;
}

#[tokio::test]
async fn names_email_and_children_can_come_from_userinfo() {
    // FranceConnect-style: the ID token carries the identity, userinfo the rest.
    let user = TestUser { children: vec!["3284894".into()], ..TestUser::new("sub-userinfo") };
    let (provider, app) = setup(user, &[("PASSERELLE_OIDC_EDUCONNECT_CHILDREN_FUNDER", "92")]).await;
    provider.profile_in_userinfo(true);
    let f = funder(&app.db, "92").await;
    insert_pupils(&app.db, f, &[PupilSeed { key: "aaf:3284894", grade: "5E", uai: "0921778H", boursier: false }]).await;
    let body = sign_in(&app, &provider).await;
    let signed_in = &body["data"]["completeOidcSignIn"];
    assert_eq!(signed_in["account"]["email"], "camille@example.org", "{body}");
    let token = signed_in["accessToken"].as_str().unwrap();
    let me = app.graphql_as(token, "{ viewer { displayName } children { id } }", json!({})).await;
    assert_eq!(me["data"]["viewer"]["displayName"], "Camille Durand", "{me}");
    assert_eq!(me["data"]["children"].as_array().map(Vec::len), Some(1), "{me}");
    app.stop().await;
}

#[tokio::test]
async fn a_provider_that_takes_the_secret_in_the_body_gets_it_there() {
    let (provider, app) = setup(TestUser::new("sub-post"), &[]).await;
    provider.secret_in_body(true);
    let body = sign_in(&app, &provider).await;
    assert!(body["data"]["completeOidcSignIn"]["accessToken"].is_string(), "{body}");
    assert!(provider.token_requests()[0].client_authenticated);
    app.stop().await;
}

#[tokio::test]
async fn a_provider_limited_to_guardians_refuses_pupils_and_people_without_an_affiliation() {
    let guardians = [("PASSERELLE_OIDC_EDUCONNECT_AFFILIATIONS", "resp1d,resp2d")];
    let pupil = TestUser { affiliation: vec!["eleve2d".into()], ..TestUser::new("sub-pupil") };
    let (provider, app) = setup(pupil, &guardians).await;
    assert_eq!(code(&sign_in(&app, &provider).await), "FORBIDDEN");
    provider.set_user(TestUser::new("sub-nobody"));
    assert_eq!(code(&sign_in(&app, &provider).await), "FORBIDDEN");
    assert_eq!(identities(&app).await, 0, "a refused sign-in creates nothing");
    // Compared case-blind, and read from the userinfo endpoint too (where EduConnect gives them).
    provider.set_user(TestUser { affiliation: vec!["RESP2D".into()], ..TestUser::new("sub-parent") });
    provider.profile_in_userinfo(true);
    let body = sign_in(&app, &provider).await;
    assert!(body["data"]["completeOidcSignIn"]["accessToken"].is_string(), "{body}");
    assert_eq!(identities(&app).await, 1);
    app.stop().await;
}
