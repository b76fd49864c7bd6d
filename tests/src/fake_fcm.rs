//! A local fake of FCM HTTP v1, run in-process on a random port: the service account's token
//! endpoint (checks the RS256 grant against the test key's public half and issues bearer
//! tokens) and `POST /v1/projects/{project}/messages:send` (checks the bearer token and the
//! message shape: exactly one `token` target, string `data` values, `android` and `apns`
//! blocks). It records what it accepted (and when), and can be told to answer a device token
//! with an error (`UNREGISTERED`, `UNAVAILABLE` with `Retry-After`, …) a number of times, or to
//! hold its answers until the test releases them (a sender stuck mid-batch, for crash tests:
//! the test sees the messages arrive, kills the sender, then releases).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

pub const PROJECT: &str = "passerelle-test";
const PRIVATE_KEY: &str = include_str!("../fixtures/fcm/key.pem");
const PUBLIC_KEY: &[u8] = include_bytes!("../fixtures/fcm/public-rsa.der");

/// An error to answer for a device token, `times` times.
#[derive(Clone, Debug)]
pub struct Scripted {
    pub status: u16,
    pub error_code: &'static str,
    pub retry_after: Option<u64>,
    pub times: usize,
}

#[derive(Default)]
struct Inner {
    tokens_issued: Vec<String>,
    accepted: Vec<Value>,
    /// When each accepted message was accepted (Unix µs), in the same order.
    accepted_at_us: Vec<i64>,
    /// Well-formed messages that arrived, held or not.
    arrived: usize,
    /// Messages after this many arrivals wait for the gate to open (none held when `None`).
    hold_after: Option<usize>,
    refused: Vec<(String, &'static str)>,
    scripts: HashMap<String, Scripted>,
    grants: usize,
}

struct Fake {
    inner: Mutex<Inner>,
    /// `true` while answers are held.
    gate: tokio::sync::watch::Sender<bool>,
}

type Shared = Arc<Fake>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    s.inner.lock().unwrap_or_else(PoisonError::into_inner)
}

pub struct FakeFcm {
    pub base_url: String,
    inner: Shared,
    /// The service account JSON file pointing at this server.
    pub credentials: std::path::PathBuf,
}

impl FakeFcm {
    pub async fn start() -> FakeFcm {
        let inner: Shared = Arc::new(Fake { inner: Mutex::default(), gate: tokio::sync::watch::channel(false).0 });
        let app = Router::new()
            .route("/token", post(token))
            .route("/v1/projects/{project}/messages:send", post(send))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake FCM");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let credentials = std::env::temp_dir().join(format!("fcm-{}.json", uuid::Uuid::new_v4().simple()));
        let account = json!({
            "type": "service_account", "project_id": PROJECT, "private_key_id": "test",
            "private_key": PRIVATE_KEY, "client_email": "push@passerelle-test.iam.gserviceaccount.com",
            "token_uri": format!("{base_url}/token"),
        });
        std::fs::write(&credentials, account.to_string()).expect("write service account");
        FakeFcm { base_url, inner, credentials }
    }

    /// The settings pointing the service at this server.
    pub fn settings(&self) -> Vec<(String, String)> {
        vec![
            ("PASSERELLE_FCM_CREDENTIALS".into(), self.credentials.display().to_string()),
            ("PASSERELLE_FCM_ENDPOINT".into(), self.base_url.clone()),
        ]
    }

    pub fn script(&self, device_token: &str, scripted: Scripted) {
        lock(&self.inner).scripts.insert(device_token.to_owned(), scripted);
    }

    /// The service's FCM HTTP v1 client, pointed at this fake: what a test hands the dispatcher.
    pub fn sender(&self) -> std::sync::Arc<dyn passerelle_domain::notify::PushSender> {
        let credentials = std::fs::read_to_string(&self.credentials).expect("the fake's credentials");
        std::sync::Arc::new(passerelle_api::fcm::FcmClient::new(&credentials, &self.base_url).expect("FCM client"))
    }

    /// The messages accepted so far (the `message` objects).
    pub fn accepted(&self) -> Vec<Value> {
        lock(&self.inner).accepted.clone()
    }

    /// The messages accepted so far, each with the time it was accepted (Unix µs).
    pub fn accepted_at(&self) -> Vec<(Value, i64)> {
        let inner = lock(&self.inner);
        inner.accepted.iter().cloned().zip(inner.accepted_at_us.iter().copied()).collect()
    }

    /// How many well-formed messages arrived so far, answered or held.
    pub fn arrived(&self) -> usize {
        lock(&self.inner).arrived
    }

    /// Answers the next `answered` messages, then holds every later answer (the sender waits)
    /// until [`FakeFcm::release`].
    pub fn hold_after(&self, answered: usize) {
        let mut inner = lock(&self.inner);
        inner.hold_after = Some(inner.arrived + answered);
        self.inner.gate.send_replace(true);
    }

    /// Answers the held messages (those whose sender is still there) and stops holding.
    pub fn release(&self) {
        lock(&self.inner).hold_after = None;
        self.inner.gate.send_replace(false);
    }

    /// Waits (at most 30 s, then panics) until `done` holds of this fake: the sender runs on
    /// its own clock, perhaps in another process.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&FakeFcm) -> bool) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while !done(self) {
            assert!(tokio::time::Instant::now() < deadline, "{what} did not happen");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// (device token, error code) of the refusals scripted so far.
    pub fn refused(&self) -> Vec<(String, &'static str)> {
        lock(&self.inner).refused.clone()
    }

    /// How many access tokens were granted (the client caches them).
    pub fn grants(&self) -> usize {
        lock(&self.inner).grants
    }
}

fn error(status: StatusCode, code: &str) -> Response {
    let body = json!({ "error": { "code": status.as_u16(), "message": code, "status": code,
        "details": [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code }] } });
    (status, Json(body)).into_response()
}

async fn token(State(s): State<Shared>, body: String) -> Response {
    let form: HashMap<String, String> =
        form_urlencoded::parse(body.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    if form.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "unsupported_grant_type" }))).into_response();
    }
    let assertion = form.get("assertion").cloned().unwrap_or_default();
    let parts: Vec<&str> = assertion.split('.').collect();
    let valid = parts.len() == 3 && {
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap_or_default();
        let key = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, PUBLIC_KEY);
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap_or_default()).unwrap_or_default();
        key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature).is_ok()
            && claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
            && claims["aud"].as_str().is_some_and(|a| a.ends_with("/token"))
    };
    if !valid {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "invalid_grant" }))).into_response();
    }
    let mut inner = lock(&s);
    inner.grants += 1;
    let issued = format!("ya29.fake-{}", uuid::Uuid::new_v4().simple());
    inner.tokens_issued.push(issued.clone());
    Json(json!({ "access_token": issued, "expires_in": 3599, "token_type": "Bearer" })).into_response()
}

async fn send(State(s): State<Shared>, Path(project): Path<String>, headers: HeaderMap, body: String) -> Response {
    let (m, held) = match admit(&s, &project, &headers, &body) {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };
    if held {
        // The sender may die meanwhile (the crash test): its message is then never accepted.
        let _ = s.gate.subscribe().wait_for(|held| !*held).await;
    }
    let mut inner = lock(&s);
    inner.accepted.push(m);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
    inner.accepted_at_us.push(now);
    Json(json!({ "name": format!("projects/{PROJECT}/messages/{}", inner.accepted.len()) })).into_response()
}

/// Checks a message; returns it and whether its answer is held, or the refusal to answer.
fn admit(s: &Shared, project: &str, headers: &HeaderMap, body: &str) -> Result<(Value, bool), Box<Response>> {
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let mut inner = lock(s);
    if !bearer.is_some_and(|b| inner.tokens_issued.iter().any(|t| t == b)) {
        return Err(Box::new(error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")));
    }
    if project != PROJECT {
        return Err(Box::new(error(StatusCode::FORBIDDEN, "SENDER_ID_MISMATCH")));
    }
    let body: Value = serde_json::from_str(body).unwrap_or_default();
    let m = &body["message"];
    let targets = ["token", "topic", "condition"].iter().filter(|k| !m[**k].is_null()).count();
    let data_ok = m["data"].as_object().is_some_and(|d| d.values().all(Value::is_string));
    if targets != 1 || !m["token"].is_string() || !data_ok || !m["android"].is_object() || !m["apns"].is_object() {
        return Err(Box::new(error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT")));
    }
    let device = m["token"].as_str().unwrap_or_default().to_owned();
    if let Some(script) = inner.scripts.get_mut(&device).filter(|sc| sc.times > 0) {
        script.times -= 1;
        let (status, code, after) = (script.status, script.error_code, script.retry_after);
        inner.refused.push((device, code));
        let mut response = error(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), code);
        if let Some(a) = after {
            response.headers_mut().insert(header::RETRY_AFTER, a.into());
        }
        return Err(Box::new(response));
    }
    inner.arrived += 1;
    let held = inner.hold_after.is_some_and(|after| inner.arrived > after);
    Ok((m.clone(), held))
}
