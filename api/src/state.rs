//! What every request handler shares. Its own module, so handlers depend on it and on nothing
//! of the server's start-up code (no import circle between `server` and the routes).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use passerelle_graphql::Gateway;
use sea_orm::DatabaseConnection;

use crate::config::Settings;

/// Shared by every request handler.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    /// The schema behind its gateway (trusted documents, kept parses), for both transports.
    pub schema: Gateway,
    pub auth: Arc<passerelle_domain::auth::AuthConfig>,
    pub settings: Arc<Settings>,
    /// Where requests' proof documents are kept (`object_store`: a local directory by default).
    pub attachments: Arc<dyn object_store::ObjectStore>,
    /// Set when a shutdown begins: `/readyz` answers 503 so load balancers drain us.
    pub shutting_down: Arc<AtomicBool>,
}
