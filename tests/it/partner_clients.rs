//! Partner API clients end to end: an owner creates credentials (secret shown once, stored
//! hashed), club software trades them at `POST /oauth/token` (RFC 6749 §4.4) for a token scoped
//! to its partner; rotation and revocation apply at once; failures are throttled.

use passerelle_domain::auth::AccountKind;
use passerelle_domain::db::stmt;
use passerelle_domain::identity::TokenHash;
use passerelle_domain::partner::{PartnerRole, add_partner_member, create_partner};
use passerelle_tests::accounts::{account, sign_in};
use passerelle_tests::{TestApp, code};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use uuid::Uuid;

const CREATE: &str = "mutation($n: String!) { createApiClient(input: { name: $n }) { apiClient { id clientId name revokedAt } clientSecret } }";
const ROTATE: &str = "mutation($c: ID!) { rotateApiClientSecret(input: { apiClientId: $c }) { apiClient { id clientId rotatedAt } clientSecret } }";
const REVOKE: &str = "mutation($c: ID!) { revokeApiClient(input: { apiClientId: $c }) { id revokedAt } }";
const LIST: &str = "{ apiClients { id clientId name createdAt lastUsedAt revokedAt } }";
const PROFILE: &str = "{ partnerProfile { id name } }";

/// A partner with a member account of `role`, signed in; the partner id and the token.
async fn member(app: &TestApp, partner_name: &str, email: &str, role: PartnerRole) -> (Uuid, String) {
    let partner = create_partner(&app.db, partner_name).await.unwrap();
    let id = account(app, AccountKind::PartnerMember, email).await;
    add_partner_member(&app.db, partner.id, id, role).await.unwrap();
    (partner.id, sign_in(app, email, None).await)
}

/// Creates a client as `owner`: (row id, client id, secret).
async fn new_client(app: &TestApp, owner: &str, name: &str) -> (String, String, String) {
    let body = app.graphql_as(owner, CREATE, json!({ "n": name })).await;
    let p = &body["data"]["createApiClient"];
    let text = |v: &Value| v.as_str().unwrap_or_else(|| panic!("{body}")).to_owned();
    (text(&p["apiClient"]["id"]), text(&p["apiClient"]["clientId"]), text(&p["clientSecret"]))
}

/// Trades credentials over HTTP Basic; the access token, or the error answer.
async fn exchange(app: &TestApp, id: &str, secret: &str) -> Result<String, (StatusCode, Value)> {
    let (status, _, body) = app.oauth_token(Some((id, secret)), "grant_type=client_credentials").await;
    match body["access_token"].as_str() {
        Some(t) if status == StatusCode::OK => Ok(t.to_owned()),
        _ => Err((status, body)),
    }
}

#[tokio::test]
async fn an_owner_gets_the_secret_once_and_only_its_hash_is_stored() {
    let app = TestApp::spawn().await;
    let (partner, owner) = member(&app, "Club de judo", "owner@example.org", PartnerRole::Owner).await;
    let (id, client_id, secret) = new_client(&app, &owner, "Logiciel du club").await;
    assert!(secret.starts_with(&format!("psk_{client_id}_")), "{secret}");
    let listed = app.graphql_as(&owner, LIST, json!({})).await;
    assert_eq!(listed["data"]["apiClients"][0]["clientId"], client_id.as_str(), "{listed}");
    assert_eq!(listed["data"]["apiClients"][0]["name"], "Logiciel du club");
    assert!(!listed.to_string().contains(&secret), "listings never carry the secret");

    let sql = "SELECT * FROM api_client WHERE id = $1";
    let row = app.db.query_one_raw(stmt(app.db.get_database_backend(), sql, [Uuid::parse_str(&id).unwrap().into()]));
    let row = row.await.unwrap().expect("client row");
    assert_eq!(row.try_get::<Uuid>("", "partner_id").unwrap(), partner);
    assert_eq!(row.try_get::<String>("", "secret_hash").unwrap(), TokenHash::of(&secret).to_hex());
    let sql = "SELECT action, actor, partner_id FROM audit_event";
    let audit = app.db.query_one_raw(stmt(app.db.get_database_backend(), sql, [])).await.unwrap().expect("audit row");
    assert_eq!(audit.try_get::<String>("", "action").unwrap(), "create_api_client");
    assert_eq!(audit.try_get::<String>("", "actor").unwrap(), "owner@example.org");
    app.stop().await;
}

#[tokio::test]
async fn a_client_token_acts_for_its_partner_and_manages_nothing() {
    let app = TestApp::spawn().await;
    let (partner, owner) = member(&app, "Conservatoire", "owner@example.org", PartnerRole::Owner).await;
    let (_, client_id, secret) = new_client(&app, &owner, "Billetterie").await;

    let (status, headers, body) = app.oauth_token(Some((&client_id, &secret)), "grant_type=client_credentials").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    let token = body["access_token"].as_str().unwrap().to_owned();
    // Form fields are the other way to authenticate (RFC 6749 §2.3.1).
    let form = format!("grant_type=client_credentials&client_id={client_id}&client_secret={secret}");
    let (status, _, body) = app.oauth_token(None, &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let profile = app.graphql_as(&token, PROFILE, json!({})).await;
    assert_eq!(profile["data"]["partnerProfile"], json!({ "id": partner.to_string(), "name": "Conservatoire" }));
    assert_eq!(app.graphql_as(&token, "{ viewer { id } }", json!({})).await["data"]["viewer"], Value::Null);
    for q in [LIST, "{ sessions { id } }", "{ children { id } }", "mutation { logOut }"] {
        assert_eq!(code(&app.graphql_as(&token, q, json!({})).await), "FORBIDDEN", "{q}");
    }
    let create = app.graphql_as(&token, CREATE, json!({ "n": "clone" })).await;
    assert_eq!(code(&create), "FORBIDDEN", "an API client makes no API clients");
    let listed = app.graphql_as(&owner, LIST, json!({})).await;
    assert!(listed["data"]["apiClients"][0]["lastUsedAt"].is_string(), "{listed}");
    app.stop().await;
}

#[tokio::test]
async fn rotation_and_revocation_cut_off_secrets_and_their_tokens_at_once() {
    let app = TestApp::spawn().await;
    let (_, owner) = member(&app, "Club de tennis", "owner@example.org", PartnerRole::Owner).await;
    let (id, client_id, old_secret) = new_client(&app, &owner, "Logiciel").await;
    let old_token = exchange(&app, &client_id, &old_secret).await.unwrap();
    assert!(app.graphql_as(&old_token, PROFILE, json!({})).await["data"]["partnerProfile"].is_object());

    let rotated = app.graphql_as(&owner, ROTATE, json!({ "c": id })).await;
    let p = &rotated["data"]["rotateApiClientSecret"];
    assert_eq!(p["apiClient"]["clientId"], client_id.as_str(), "rotation keeps the client id: {rotated}");
    let new_secret = p["clientSecret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    assert_eq!(code(&app.graphql_as(&old_token, PROFILE, json!({})).await), "UNAUTHENTICATED");
    let (status, refused) = exchange(&app, &client_id, &old_secret).await.unwrap_err();
    assert_eq!((status, refused["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    let new_token = exchange(&app, &client_id, &new_secret).await.unwrap();
    assert!(app.graphql_as(&new_token, PROFILE, json!({})).await["data"]["partnerProfile"].is_object());

    let revoked = app.graphql_as(&owner, REVOKE, json!({ "c": id })).await;
    assert!(revoked["data"]["revokeApiClient"]["revokedAt"].is_string(), "{revoked}");
    assert_eq!(code(&app.graphql_as(&new_token, PROFILE, json!({})).await), "UNAUTHENTICATED");
    assert_eq!(exchange(&app, &client_id, &new_secret).await.unwrap_err().0, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&app.graphql_as(&owner, ROTATE, json!({ "c": id })).await), "CONFLICT");
    assert_eq!(code(&app.graphql_as(&owner, REVOKE, json!({ "c": id })).await), "CONFLICT");
    app.stop().await;
}

#[tokio::test]
async fn clients_belong_to_one_partner_and_only_its_owners_manage_them() {
    let app = TestApp::spawn().await;
    let (_, owner_a) = member(&app, "Club A", "a@example.org", PartnerRole::Owner).await;
    let (_, owner_b) = member(&app, "Club B", "b@example.org", PartnerRole::Owner).await;
    let (partner_c, plain) = member(&app, "Club C", "c@example.org", PartnerRole::Member).await;
    account(&app, AccountKind::PartnerMember, "nobody@example.org").await;
    let loner = sign_in(&app, "nobody@example.org", None).await;
    let (id_a, ..) = new_client(&app, &owner_a, "A's software").await;

    for q in [ROTATE, REVOKE] {
        let body = app.graphql_as(&owner_b, q, json!({ "c": id_a })).await;
        assert_eq!(code(&body), "NOT_FOUND", "another partner's client does not exist for B: {body}");
        let body = app.graphql_as(&owner_b, q, json!({ "c": Uuid::new_v4().to_string() })).await;
        assert_eq!(code(&body), "NOT_FOUND");
    }
    assert_eq!(app.graphql_as(&owner_b, LIST, json!({})).await["data"]["apiClients"], json!([]));
    for q in [LIST, CREATE] {
        let body = app.graphql_as(&plain, q, json!({ "n": "x" })).await;
        assert_eq!(code(&body), "FORBIDDEN", "a plain member manages no clients: {body}");
    }
    let profile = app.graphql_as(&plain, PROFILE, json!({})).await;
    assert_eq!(profile["data"]["partnerProfile"]["id"], partner_c.to_string().as_str(), "{profile}");
    assert_eq!(code(&app.graphql_as(&loner, PROFILE, json!({})).await), "FORBIDDEN", "no partner, no profile");
    let blank = app.graphql_as(&owner_a, CREATE, json!({ "n": "  " })).await;
    assert_eq!(code(&blank), "BAD_USER_INPUT");
    app.stop().await;
}

/// What a token request sends and what it must get: (what, Basic credentials, form body,
/// status, `error`).
type Case<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a str, StatusCode, &'a str);

#[tokio::test]
async fn the_token_endpoint_answers_as_rfc_6749_says() {
    let app = TestApp::spawn().await;
    let (_, owner) = member(&app, "Club", "owner@example.org", PartnerRole::Owner).await;
    let (_, client_id, secret) = new_client(&app, &owner, "Logiciel").await;
    let good = Some((client_id.as_str(), secret.as_str()));
    let secret_field = format!("grant_type=client_credentials&client_secret={secret}");
    let twice = "grant_type=client_credentials&grant_type=client_credentials";
    let cases: Vec<Case<'_>> = vec![
        ("no grant_type", good, "", StatusCode::BAD_REQUEST, "invalid_request"),
        ("empty grant_type", good, "grant_type=", StatusCode::BAD_REQUEST, "invalid_request"),
        ("password grant", good, "grant_type=password", StatusCode::BAD_REQUEST, "unsupported_grant_type"),
        ("repeated parameter", good, twice, StatusCode::BAD_REQUEST, "invalid_request"),
        ("two methods", good, &secret_field, StatusCode::BAD_REQUEST, "invalid_request"),
        ("secret without id", None, &secret_field, StatusCode::BAD_REQUEST, "invalid_request"),
        ("no credentials", None, "grant_type=client_credentials", StatusCode::UNAUTHORIZED, "invalid_client"),
        (
            "unknown client",
            Some(("0123456789abcdef", &secret)),
            "grant_type=client_credentials",
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
    ];
    for (what, basic, form, status, error) in cases {
        let (got, headers, body) = app.oauth_token(basic, form).await;
        assert_eq!((got, body["error"].as_str()), (status, Some(error)), "{what}: {body}");
        assert_eq!(headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"), "{what}");
        if status == StatusCode::UNAUTHORIZED {
            assert!(headers.contains_key("www-authenticate"), "{what}");
        }
    }
    let json_body = app.client.post(app.url("/oauth/token")).json(&json!({ "grant_type": "client_credentials" }));
    let response = json_body.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "form bodies only");
    assert_eq!(app.client.get(app.url("/oauth/token")).send().await.unwrap().status(), StatusCode::METHOD_NOT_ALLOWED);
    let token = exchange(&app, &client_id, &secret).await.expect("the right credentials still work");
    assert_eq!(app.graphql_as(&token, PROFILE, json!({})).await["data"]["partnerProfile"]["name"], "Club");
    app.stop().await;
}

#[tokio::test]
async fn failed_client_authentications_are_throttled_like_sign_in() {
    let app = TestApp::spawn().await;
    let (_, owner) = member(&app, "Club", "owner@example.org", PartnerRole::Owner).await;
    let (_, client_id, secret) = new_client(&app, &owner, "Logiciel").await;
    let (_, other_id, other_secret) = new_client(&app, &owner, "Autre logiciel").await;
    let last = if secret.ends_with('x') { 'y' } else { 'x' };
    let wrong = format!("{}{last}", &secret[..secret.len() - 1]);
    for _ in 0..5 {
        assert_eq!(exchange(&app, &client_id, &wrong).await.unwrap_err().0, StatusCode::UNAUTHORIZED);
    }
    // Five attempts for this client id from this address: the sixth waits, even the right one.
    let basic = Some((client_id.as_str(), secret.as_str()));
    let (status, headers, body) = app.oauth_token(basic, "grant_type=client_credentials").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("temporarily_unavailable")));
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=180).contains(&retry), "{retry}");
    let token = exchange(&app, &other_id, &other_secret).await.expect("the throttle is per client id");
    assert_eq!(app.graphql_as(&token, PROFILE, json!({})).await["data"]["partnerProfile"]["name"], "Club");
    app.stop().await;
}
