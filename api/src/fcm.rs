//! Push over FCM HTTP v1 (the legacy API of the `fcm` crate was shut down in 2024).
//!
//! - OAuth2 access token from the service account (`PASSERELLE_FCM_CREDENTIALS`, the JSON file
//!   Google issues): a JWT signed RS256 with its private key, exchanged at its `token_uri`
//!   (RFC 7523 bearer grant), cached until a minute before it expires.
//! - `POST {endpoint}/v1/projects/{project_id}/messages:send`, one device token per message,
//!   `data` values as strings, android and apns blocks.
//! - Errors by `errorCode` (`shared/reference/stack.md` §4): UNREGISTERED, INVALID_ARGUMENT
//!   about the token, SENDER_ID_MISMATCH → the token is dropped; QUOTA_EXCEEDED, UNAVAILABLE,
//!   INTERNAL → retried, after `Retry-After` when given; THIRD_PARTY_AUTH_ERROR and other
//!   refusals → configuration errors, logged.
//!
//! Why not `gcp_auth`: it brings a second HTTP stack (its own hyper client) beside reqwest for
//! one form POST, and the grant is a few lines with `ring`, which is already here.

use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use passerelle_domain::notify::{Push, PushError, PushFuture, PushSender};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

#[derive(Deserialize)]
struct ServiceAccount {
    project_id: String,
    client_email: String,
    private_key: String,
    token_uri: String,
}

struct CachedToken {
    token: String,
    valid_until: std::time::Instant,
}

pub struct FcmClient {
    http: reqwest::Client,
    endpoint: String,
    project: String,
    client_email: String,
    token_uri: String,
    key: RsaKeyPair,
    token: Mutex<Option<CachedToken>>,
}

/// The client for these settings, if push is configured.
pub fn push_sender(settings: &crate::config::Settings) -> anyhow::Result<Option<Arc<dyn PushSender>>> {
    let Some(path) = &settings.fcm_credentials else { return Ok(None) };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(Arc::new(FcmClient::new(&text, &settings.fcm_endpoint)?)))
}

impl FcmClient {
    pub fn new(service_account_json: &str, endpoint: &str) -> anyhow::Result<FcmClient> {
        let sa: ServiceAccount = serde_json::from_str(service_account_json).context("PASSERELLE_FCM_CREDENTIALS")?;
        let der: String = sa.private_key.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(der.trim()).context("the service account's private_key is not PEM")?;
        let key =
            RsaKeyPair::from_pkcs8(&der).map_err(|e| anyhow::anyhow!("the service account's private_key: {e}"))?;
        // A pass sends up to `DispatchOptions::concurrency` messages at once over HTTP/1.1: keep
        // that many connections, and keep them across quiet minutes (a new TLS handshake to
        // Google costs more than the send) instead of reqwest's 90 s.
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .pool_max_idle_per_host(passerelle_domain::notify::DispatchOptions::default().concurrency)
            .pool_idle_timeout(std::time::Duration::from_secs(300))
            .tcp_keepalive(std::time::Duration::from_secs(60))
            .build()?;
        Ok(FcmClient {
            http,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            project: sa.project_id,
            client_email: sa.client_email,
            token_uri: sa.token_uri,
            key,
            token: Mutex::new(None),
        })
    }

    /// A valid access token, from the cache or a new grant.
    async fn access_token(&self) -> Result<String, PushError> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| t.valid_until > std::time::Instant::now()) {
            return Ok(t.token.clone());
        }
        let now = chrono::Utc::now().timestamp();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
        let claims =
            json!({ "iss": self.client_email, "scope": SCOPE, "aud": self.token_uri, "iat": now, "exp": now + 3600 });
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut signature = vec![0; self.key.public().modulus_len()];
        let rng = ring::rand::SystemRandom::new();
        self.key
            .sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut signature)
            .map_err(|_| PushError::Config("signing the token request failed".into()))?;
        let assertion = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish();
        let response = self
            .http
            .post(&self.token_uri)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(retry)?;
        if response.status().is_server_error() {
            return Err(PushError::Retry { retry_after_secs: retry_after(&response), reason: "token endpoint".into() });
        }
        if !response.status().is_success() {
            return Err(PushError::Config(format!("token endpoint answered {}", response.status())));
        }
        #[derive(Deserialize)]
        struct Granted {
            access_token: String,
            expires_in: u64,
        }
        let granted: Granted = response.json().await.map_err(|e| PushError::Config(format!("token answer: {e}")))?;
        let valid = std::time::Duration::from_secs(granted.expires_in.saturating_sub(60));
        *cached =
            Some(CachedToken { token: granted.access_token.clone(), valid_until: std::time::Instant::now() + valid });
        Ok(granted.access_token)
    }

    async fn send_one(&self, push: Push) -> Result<(), PushError> {
        let token = self.access_token().await?;
        let body = json!({ "message": {
            "token": push.token,
            "notification": { "title": push.title, "body": push.body },
            "data": push.data,
            "android": { "priority": "HIGH", "ttl": "86400s" },
            "apns": { "headers": { "apns-priority": "10", "apns-push-type": "alert" },
                      "payload": { "aps": { "sound": "default" } } },
        }});
        let url = format!("{}/v1/projects/{}/messages:send", self.endpoint, self.project);
        let response = self.http.post(url).bearer_auth(&token).json(&body).send().await.map_err(retry)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            // The cached token was refused: the next attempt gets a new one.
            *self.token.lock().await = None;
        }
        let after = retry_after(&response);
        let error: Value = response.json().await.unwrap_or_default();
        let code = error["error"]["details"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|d| d["errorCode"].as_str())
            .unwrap_or_else(|| error["error"]["status"].as_str().unwrap_or(""))
            .to_owned();
        let message = error["error"]["message"].as_str().unwrap_or("").to_owned();
        Err(match code.as_str() {
            "UNREGISTERED" | "SENDER_ID_MISMATCH" => PushError::InvalidToken,
            "INVALID_ARGUMENT" if message.to_lowercase().contains("registration token") => PushError::InvalidToken,
            "QUOTA_EXCEEDED" | "UNAVAILABLE" | "INTERNAL" => {
                PushError::Retry { retry_after_secs: after, reason: format!("{code}: {message}") }
            }
            _ if status.is_server_error() => {
                PushError::Retry { retry_after_secs: after, reason: format!("HTTP {status}") }
            }
            _ => PushError::Config(format!("{status} {code}: {message}")),
        })
    }
}

fn retry(e: reqwest::Error) -> PushError {
    PushError::Retry { retry_after_secs: None, reason: e.to_string() }
}

fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

impl PushSender for FcmClient {
    fn send(&self, push: Push) -> PushFuture<'_> {
        Box::pin(self.send_one(push))
    }
}
