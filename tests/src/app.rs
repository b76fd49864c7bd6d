//! `TestApp`: the real server on a random port over a fresh database, and a GraphQL client.

use std::net::SocketAddr;

use passerelle_api::{RunningServer, Settings, start};
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};

use crate::db::{TestDb, fresh_db};

pub struct TestApp {
    pub addr: SocketAddr,
    pub db: DatabaseConnection,
    pub client: reqwest::Client,
    server: Option<RunningServer>,
    pub test_db: TestDb,
}

impl TestApp {
    /// Starts the server in the `test` environment (no demo seed) over a fresh database.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    /// Same, with extra settings (`("PASSERELLE_ENV", "production")`, …).
    pub async fn spawn_with(extra: &[(&str, &str)]) -> TestApp {
        let test_db = fresh_db().await;
        let mut vars: Vec<(String, String)> = vec![
            ("PASSERELLE_ENV".into(), "test".into()),
            ("PASSERELLE_BIND".into(), "127.0.0.1:0".into()),
            ("PASSERELLE_DEMO".into(), "false".into()),
            ("DATABASE_URL".into(), test_db.url.clone()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let settings = Settings::from_vars(&vars).expect("test settings");
        let server = start(settings, test_db.db.clone(), false).await.expect("start server");
        TestApp {
            addr: server.addr,
            db: test_db.db.clone(),
            client: reqwest::Client::new(),
            server: Some(server),
            test_db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends one GraphQL operation as a mobile app would; returns the JSON body.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        self.client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("send graphql")
            .json()
            .await
            .expect("graphql answers JSON")
    }

    /// Graceful stop.
    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await.expect("graceful stop");
        }
    }
}
