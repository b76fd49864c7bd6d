//! `TestApp`: the real server on a random port over a fresh database, and a GraphQL client.

use std::net::SocketAddr;

use passerelle_api::{RunningServer, Settings, start};
use reqwest::StatusCode;
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};

use crate::db::{TestDb, fresh_db};

/// `errors[0].extensions.code` of a GraphQL answer (or of a route's error body, which has the
/// same shape), or "" when there is none.
pub fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// The service's data directory (uploads, keys), removed on drop.
    pub data_dir: std::path::PathBuf,
    pub db: DatabaseConnection,
    /// The server's data key: what staff accounts created straight in the database seal their
    /// TOTP seed with.
    pub data_key: passerelle_domain::identity::DataKey,
    pub client: reqwest::Client,
    server: Option<RunningServer>,
    settings: Settings,
    pub test_db: TestDb,
}

impl TestApp {
    /// Starts the server in the `test` environment (no demo seed) over a fresh database.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    /// Same, with extra settings (`("PASSERELLE_ENV", "production")`, …).
    pub async fn spawn_with(extra: &[(&str, &str)]) -> TestApp {
        Self::spawn_adjusted(extra, |_| {}).await
    }

    /// Same, then `adjust` changes the parsed settings before the server starts: a test can
    /// reach a combination `Settings::from_vars` refuses, to check the next guard holds.
    pub async fn spawn_adjusted(extra: &[(&str, &str)], adjust: impl FnOnce(&mut Settings)) -> TestApp {
        Self::spawn_observed(extra, adjust, |_| {}).await
    }

    /// A server whose every SQL statement is counted in `statements` (the test's own `db`
    /// handle is not counted): for tests of how many statements a request costs.
    pub async fn spawn_counting(statements: std::sync::Arc<std::sync::atomic::AtomicUsize>) -> TestApp {
        Self::spawn_observed(
            &[],
            |_| {},
            move |db| {
                // The background readers (the subscriptions' feeder of the outbox and the
                // inbox, the dispatcher) poll on their own clock; an operation that writes an
                // outbox row is counted.
                db.set_metric_callback(move |info| {
                    let sql = &info.statement.sql;
                    let background = (sql.contains("outbox") && !sql.contains("INSERT INTO outbox"))
                        || sql.contains("FROM notification WHERE created_at_us");
                    if !background {
                        statements.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                })
            },
        )
        .await
    }

    async fn spawn_observed(
        extra: &[(&str, &str)],
        adjust: impl FnOnce(&mut Settings),
        observe: impl FnOnce(&mut DatabaseConnection),
    ) -> TestApp {
        let test_db = fresh_db().await;
        let data_dir = std::env::temp_dir().join(format!("passerelle-app-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data_dir).expect("data dir");
        let mut vars: Vec<(String, String)> = vec![
            ("PASSERELLE_ENV".into(), "test".into()),
            ("PASSERELLE_BIND".into(), "127.0.0.1:0".into()),
            ("PASSERELLE_DEMO".into(), "false".into()),
            // Tests drive the scheduler themselves (`passerelle_api::scheduler::tick`).
            ("PASSERELLE_SCHEDULER_SECS".into(), "0".into()),
            ("PASSERELLE_DISPATCH_MS".into(), "0".into()),
            ("PASSERELLE_DATA_DIR".into(), data_dir.display().to_string()),
            ("DATABASE_URL".into(), test_db.url.clone()),
        ];
        if extra.iter().any(|(k, v)| *k == "PASSERELLE_ENV" && *v == "production") {
            // Production refuses generated keys: give it a key file, as an operator would.
            let keys = passerelle_domain::identity::AccessTokenKeys::generate();
            let path = data_dir.join("prod-key.pem");
            std::fs::write(&path, keys.to_pkcs8_pem().expect("pem").as_bytes()).expect("key file");
            vars.push(("PASSERELLE_JWT_KEY_FILE".into(), path.display().to_string()));
            // Nothing listens there: production tests send no mail.
            vars.push(("PASSERELLE_SMTP_URL".into(), "smtp://127.0.0.1:9".into()));
            let data_key = passerelle_domain::identity::DataKey::generate().to_base64();
            vars.push(("PASSERELLE_DATA_KEY".into(), data_key));
        }
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut settings = Settings::from_vars(&vars).expect("test settings");
        adjust(&mut settings);
        let data_key = passerelle_api::keys::data_key(&settings).expect("data key");
        let mut server_db = test_db.db.clone();
        observe(&mut server_db);
        let server = start(settings.clone(), server_db, false).await.expect("start server");
        TestApp {
            addr: server.addr,
            data_dir,
            db: test_db.db.clone(),
            data_key,
            client: reqwest::Client::new(),
            server: Some(server),
            settings,
            test_db,
        }
    }

    /// A server that delivers e-mail over SMTP to `sink`, its outbox dispatcher running every
    /// 20 ms (every mail goes through the outbox).
    pub async fn spawn_with_smtp(sink: &crate::smtp::SmtpSink) -> TestApp {
        let (url, from) = (sink.url(), format!("Passerelle <{}>", sink.from));
        let vars = [("PASSERELLE_SMTP_URL", url.as_str()), ("PASSERELLE_MAIL_FROM", from.as_str())];
        Self::spawn_with(&[vars[0], vars[1], ("PASSERELLE_DISPATCH_MS", "20")]).await
    }

    /// A server whose OIDC sign-in goes to `provider`, configured under the name `name`.
    pub async fn spawn_with_oidc(
        provider: &crate::oidc_provider::OidcTestProvider,
        name: &str,
        extra: &[(&str, &str)],
    ) -> TestApp {
        let settings = provider.settings(name);
        let mut vars: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        vars.extend_from_slice(extra);
        Self::spawn_with(&vars).await
    }

    /// A server whose back office answers without a staff account (test environment only).
    pub async fn spawn_back_office() -> TestApp {
        Self::spawn_with(&[("PASSERELLE_DEV_BACK_OFFICE", "true")]).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends one GraphQL operation as a mobile app would; returns the JSON body.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        self.post_graphql(None, query, variables).await
    }

    /// Sends one GraphQL operation with a bearer token.
    pub async fn graphql_as(&self, token: &str, query: &str, variables: Value) -> Value {
        self.post_graphql(Some(token), query, variables).await
    }

    /// Same, with the HTTP status: for tests that compare two whole answers.
    pub async fn graphql_answer(&self, token: Option<&str>, query: &str, variables: Value) -> (StatusCode, Value) {
        let mut request =
            self.client.post(self.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.expect("send graphql");
        (response.status(), response.json().await.expect("graphql answers JSON"))
    }

    /// Sends a contract operation (`parent/Home.graphql`) by its registered hash only, as the
    /// apps do under trusted documents.
    pub async fn persisted(&self, token: Option<&str>, file: &str, variables: Value) -> Value {
        let document = contract_operation(file);
        let hash = passerelle_graphql::trusted::document_hash(&document);
        let body =
            json!({ "variables": variables, "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } });
        let mut request = self.client.post(self.url("/graphql")).json(&body);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        request.send().await.expect("send graphql").json().await.expect("graphql answers JSON")
    }

    async fn post_graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.graphql_answer(token, query, variables).await.1
    }

    /// A client whose connections come from `ip` (a loopback address such as `127.0.0.2`):
    /// to the server, a distinct client address.
    pub fn client_from(ip: &str) -> reqwest::Client {
        let ip: std::net::IpAddr = ip.parse().expect("client address");
        reqwest::Client::builder().local_address(ip).build().expect("client")
    }

    /// Sends one GraphQL operation through `client` (optionally with a bearer token and extra
    /// headers); returns the answer's headers and JSON body.
    pub async fn graphql_via(
        &self,
        client: &reqwest::Client,
        token: Option<&str>,
        headers: &[(&str, &str)],
        query: &str,
        variables: Value,
    ) -> (reqwest::header::HeaderMap, Value) {
        let mut request = client.post(self.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.expect("send graphql");
        let headers = response.headers().clone();
        (headers, response.json().await.expect("graphql answers JSON"))
    }

    /// `POST /oauth/token` as club software sends it: a form body (given encoded), and HTTP
    /// Basic credentials if any. Returns the status, the headers and the JSON body.
    pub async fn oauth_token(
        &self,
        basic: Option<(&str, &str)>,
        form: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self
            .client
            .post(self.url("/oauth/token"))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form.to_owned());
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        let response = request.send().await.expect("send token request");
        let (status, headers) = (response.status(), response.headers().clone());
        (status, headers, response.json().await.expect("the token endpoint answers JSON"))
    }

    /// Stops the server and starts it again over the same database and data directory (what an
    /// upgrade does); the new address is in `addr`.
    pub async fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await.expect("graceful stop");
        }
        let db = passerelle_domain::db::connect(&self.test_db.url, 5).await.expect("reconnect");
        let server = start(self.settings.clone(), db.clone(), false).await.expect("restart server");
        (self.addr, self.db) = (server.addr, db);
        self.server = Some(server);
    }

    /// Another server process over the same database (a second node), with its outbox
    /// dispatcher running every 20 ms; stop it with `RunningServer::stop`.
    pub async fn another_node(&self, adjust: impl FnOnce(&mut Settings)) -> RunningServer {
        let mut settings = self.settings.clone();
        settings.bind = "127.0.0.1:0".parse().expect("address");
        settings.dispatch_ms = 20;
        adjust(&mut settings);
        let db = passerelle_domain::db::connect(&self.test_db.url, 5).await.expect("second node's pool");
        start(settings, db, false).await.expect("start a second node")
    }

    /// Graceful stop.
    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await.expect("graceful stop");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// The text of a contract operation, `parent/Home.graphql`.
pub fn contract_operation(file: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../mobile-contract/operations/");
    std::fs::read_to_string(format!("{path}{file}")).unwrap_or_else(|e| panic!("{file}: {e}"))
}
