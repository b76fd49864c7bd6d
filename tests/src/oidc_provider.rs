//! A local OpenID Connect provider for the tests, run in-process on a random port.
//!
//! It serves discovery, a JWKS, an authorization endpoint that approves the configured test
//! user at once (answering with the redirect a browser would follow), and a token endpoint that
//! checks client authentication and the PKCE verifier before it signs a real ID token
//! (EdDSA, Ed25519). It can be told to misbehave, to prove each check of the service bites.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "passerelle-test";
pub const CLIENT_SECRET: &str = "test-client-secret";
pub const REDIRECT_URI: &str = "fr.passerelle.app://oidc";
const KEY_ID: &str = "test-key-1";

/// Who the provider signs in.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub subject: String,
    pub name: String,
    pub email: Option<String>,
    pub email_verified: bool,
    /// AAF jointure ids, sent as the `children` claim when not empty.
    pub children: Vec<String>,
    /// EduConnect's `FrEduCtPersonAffiliation`, sent when not empty.
    pub affiliation: Vec<String>,
}

impl TestUser {
    pub fn new(subject: &str) -> TestUser {
        TestUser {
            subject: subject.into(),
            name: "Camille Durand".into(),
            email: Some("camille@example.org".into()),
            email_verified: true,
            children: vec![],
            affiliation: vec![],
        }
    }
}

/// How the next ID tokens are wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    Honest,
    WrongAudience,
    /// Our client plus another audience we have no reason to trust.
    ExtraAudience,
    WrongNonce,
    WrongIssuer,
    Expired,
    /// Signed with a key that is not in the JWKS (same key id).
    BadSignature,
}

/// One approved authorization, waiting for its code to be exchanged.
#[derive(Clone)]
struct Grant {
    redirect_uri: String,
    nonce: String,
    challenge: String,
    user: TestUser,
}

/// What the token endpoint received, for tests to inspect.
#[derive(Clone, Debug, Default)]
pub struct TokenRequestSeen {
    pub code_verifier: Option<String>,
    pub client_authenticated: bool,
    pub accepted: bool,
}

struct Inner {
    issuer: String,
    key: SigningKey,
    rogue_key: SigningKey,
    user: TestUser,
    misbehaviour: Misbehaviour,
    grants: HashMap<String, Grant>,
    /// Access token → the user it was issued for (userinfo).
    access_tokens: HashMap<String, TestUser>,
    /// Names, e-mail and children only at the userinfo endpoint, as FranceConnect does.
    profile_in_userinfo: bool,
    /// Client authentication by `client_secret_post` only (else `client_secret_basic` only).
    secret_in_body: bool,
    token_requests: Vec<TokenRequestSeen>,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The running provider.
pub struct OidcTestProvider {
    pub issuer: String,
    inner: Shared,
}

fn random_key() -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    seed[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    SigningKey::from_bytes(&seed)
}

impl OidcTestProvider {
    /// Starts a provider on 127.0.0.1 (random port) that signs `user` in.
    pub async fn start(user: TestUser) -> OidcTestProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the test OIDC provider");
        let issuer = format!("http://{}", listener.local_addr().expect("provider address"));
        let inner = Arc::new(Mutex::new(Inner {
            issuer: issuer.clone(),
            key: random_key(),
            rogue_key: random_key(),
            user,
            misbehaviour: Misbehaviour::Honest,
            grants: HashMap::new(),
            access_tokens: HashMap::new(),
            profile_in_userinfo: false,
            secret_in_body: false,
            token_requests: vec![],
        }));
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        OidcTestProvider { issuer, inner }
    }

    /// The service's settings for this provider, named `name`.
    pub fn settings(&self, name: &str) -> Vec<(String, String)> {
        let var = |f: &str| format!("PASSERELLE_OIDC_{}_{f}", name.to_uppercase());
        vec![
            ("PASSERELLE_OIDC_PROVIDERS".into(), name.into()),
            (var("ISSUER"), self.issuer.clone()),
            (var("CLIENT_ID"), CLIENT_ID.into()),
            (var("CLIENT_SECRET"), CLIENT_SECRET.into()),
            (var("REDIRECT_URIS"), format!("{REDIRECT_URI},https://app.example/oidc")),
            (var("SCOPES"), "openid profile email".into()),
        ]
    }

    pub fn set_user(&self, user: TestUser) {
        lock(&self.inner).user = user;
    }

    /// Moves the profile claims from the ID token to the userinfo endpoint.
    pub fn profile_in_userinfo(&self, yes: bool) {
        lock(&self.inner).profile_in_userinfo = yes;
    }

    /// Takes the client secret in the token request's body only, and says so in discovery.
    pub fn secret_in_body(&self, yes: bool) {
        lock(&self.inner).secret_in_body = yes;
    }

    pub fn misbehave(&self, m: Misbehaviour) {
        lock(&self.inner).misbehaviour = m;
    }

    /// Every token request received so far.
    pub fn token_requests(&self) -> Vec<TokenRequestSeen> {
        lock(&self.inner).token_requests.clone()
    }

    /// Plays the browser: opens the authorization URL and returns the `code` and `state` of
    /// the redirect to the app, or the provider's refusal.
    pub async fn authorize(&self, authorization_url: &str) -> Result<(String, String), String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let response = client.get(authorization_url).send().await.map_err(|e| e.to_string())?;
        if response.status() != StatusCode::FOUND {
            return Err(format!("{}: {}", response.status(), response.text().await.unwrap_or_default()));
        }
        let location = response.headers().get(header::LOCATION).and_then(|l| l.to_str().ok()).unwrap_or("");
        let url = reqwest::Url::parse(location).map_err(|e| format!("{location}: {e}"))?;
        let param = |n: &str| url.query_pairs().find(|(k, _)| k == n).map(|(_, v)| v.into_owned());
        Ok((param("code").ok_or("no code")?, param("state").ok_or("no state")?))
    }
}

async fn discovery(State(s): State<Shared>) -> Json<Value> {
    let (issuer, body) = {
        let inner = lock(&s);
        (inner.issuer.clone(), inner.secret_in_body)
    };
    let auth_method = if body { "client_secret_post" } else { "client_secret_basic" };
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "token_endpoint_auth_methods_supported": [auth_method],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "email"],
    }))
}

async fn jwks(State(s): State<Shared>) -> Json<Value> {
    let x = URL_SAFE_NO_PAD.encode(lock(&s).key.verifying_key().as_bytes());
    Json(json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": KEY_ID, "use": "sig", "alg": "EdDSA" }] }))
}

fn refuse(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

/// Approves the test user at once; refuses requests without PKCE (S256) or for other clients.
async fn authorize(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let p = |n: &str| q.get(n).cloned().unwrap_or_default();
    let scopes = p("scope");
    if p("response_type") != "code"
        || p("client_id") != CLIENT_ID
        || !scopes.split(' ').any(|s| s == "openid")
        || p("code_challenge_method") != "S256"
        || p("code_challenge").is_empty()
        || p("state").is_empty()
        || p("nonce").is_empty()
        || !(p("redirect_uri") == REDIRECT_URI || p("redirect_uri") == "https://app.example/oidc")
    {
        return refuse(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let code = uuid::Uuid::new_v4().simple().to_string();
    let mut inner = lock(&s);
    let grant = Grant {
        redirect_uri: p("redirect_uri"),
        nonce: p("nonce"),
        challenge: p("code_challenge"),
        user: inner.user.clone(),
    };
    inner.grants.insert(code.clone(), grant);
    let mut target = match reqwest::Url::parse(&p("redirect_uri")) {
        Ok(u) => u,
        Err(_) => return refuse(StatusCode::BAD_REQUEST, "invalid_request"),
    };
    target.query_pairs_mut().append_pair("code", &code).append_pair("state", &p("state"));
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

/// `client_secret_basic`: `Authorization: Basic base64(client_id:secret)`; or, when the
/// provider takes it so, `client_secret_post`: `client_id` and `client_secret` in the form.
fn client_authenticated(headers: &HeaderMap, form: &HashMap<String, String>, in_body: bool) -> bool {
    if in_body {
        let field = |n: &str| form.get(n).map(String::as_str);
        return field("client_id") == Some(CLIENT_ID) && field("client_secret") == Some(CLIENT_SECRET);
    }
    let Some(basic) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
    let Some(encoded) = basic.strip_prefix("Basic ") else { return false };
    STANDARD.decode(encoded).ok().and_then(|d| String::from_utf8(d).ok())
        == Some(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
}

async fn token(State(s): State<Shared>, headers: HeaderMap, Form(f): Form<HashMap<String, String>>) -> Response {
    let mut inner = lock(&s);
    let mut seen = TokenRequestSeen {
        code_verifier: f.get("code_verifier").cloned(),
        client_authenticated: client_authenticated(&headers, &f, inner.secret_in_body),
        accepted: false,
    };
    // A code works once, whatever happens next.
    let grant = f.get("code").and_then(|c| inner.grants.remove(c));
    let verdict = match &grant {
        _ if !seen.client_authenticated => Err((StatusCode::UNAUTHORIZED, "invalid_client")),
        _ if f.get("grant_type").map(String::as_str) != Some("authorization_code") => {
            Err((StatusCode::BAD_REQUEST, "unsupported_grant_type"))
        }
        None => Err((StatusCode::BAD_REQUEST, "invalid_grant")),
        Some(g) if f.get("redirect_uri") != Some(&g.redirect_uri) => Err((StatusCode::BAD_REQUEST, "invalid_grant")),
        Some(g) => match &seen.code_verifier {
            Some(v) if URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes())) == g.challenge => Ok(g.clone()),
            _ => Err((StatusCode::BAD_REQUEST, "invalid_grant")),
        },
    };
    seen.accepted = verdict.is_ok();
    inner.token_requests.push(seen);
    match verdict {
        Err((status, error)) => refuse(status, error),
        Ok(g) => {
            let id_token = id_token(&inner, &g);
            let access_token = uuid::Uuid::new_v4().to_string();
            inner.access_tokens.insert(access_token.clone(), g.user);
            Json(json!({ "access_token": access_token, "token_type": "Bearer", "expires_in": 300, "id_token": id_token }))
                .into_response()
        }
    }
}

/// A compact JWS of the ID token claims, wrong in the way the provider was told.
fn id_token(inner: &Inner, g: &Grant) -> String {
    let now = chrono::Utc::now().timestamp();
    let m = inner.misbehaviour;
    let aud = match m {
        Misbehaviour::WrongAudience => json!("another-client"),
        Misbehaviour::ExtraAudience => json!([CLIENT_ID, "another-client"]),
        _ => json!(CLIENT_ID),
    };
    let issuer = if m == Misbehaviour::WrongIssuer { format!("{}/other", inner.issuer) } else { inner.issuer.clone() };
    let (iat, exp) = if m == Misbehaviour::Expired { (now - 900, now - 300) } else { (now, now + 300) };
    let nonce = if m == Misbehaviour::WrongNonce { "another-nonce".to_owned() } else { g.nonce.clone() };
    let mut claims =
        json!({ "iss": issuer, "sub": g.user.subject, "aud": aud, "iat": iat, "exp": exp, "nonce": nonce });
    if !inner.profile_in_userinfo {
        add_profile(&mut claims, &g.user);
    }
    let header = json!({ "alg": "EdDSA", "typ": "JWT", "kid": KEY_ID });
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let key = if m == Misbehaviour::BadSignature { &inner.rogue_key } else { &inner.key };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).to_bytes()))
}

/// Name, e-mail and children claims of `user`.
fn add_profile(claims: &mut Value, user: &TestUser) {
    claims["name"] = json!(user.name);
    claims["email_verified"] = json!(user.email_verified);
    if let Some(e) = &user.email {
        claims["email"] = json!(e);
    }
    if !user.affiliation.is_empty() {
        claims["FrEduCtPersonAffiliation"] = json!(user.affiliation);
    }
    if !user.children.is_empty() {
        claims["children"] = json!(user.children.iter().map(|c| json!({ "externalId": c })).collect::<Vec<_>>());
    }
}

/// `Authorization: Bearer <access token>` → the user's claims (JSON, unsigned).
async fn userinfo(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let inner = lock(&s);
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let Some(user) = bearer.and_then(|t| inner.access_tokens.get(t)) else {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_token");
    };
    let mut claims = json!({ "sub": user.subject });
    if inner.profile_in_userinfo {
        add_profile(&mut claims, user);
    }
    Json(claims).into_response()
}
