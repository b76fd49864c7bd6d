//! Starting and stopping the HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use passerelle_graphql::{SchemaConfig, ServerInfo, build_gateway};
use passerelle_migrations::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::http;
use crate::state::AppState;

/// Opens the database (creating the data directory for the SQLite default) and applies
/// pending migrations. Every command that touches the database starts here, so this is also
/// where the ledger's process-wide per-leg cap is set.
pub async fn connect_and_migrate(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    passerelle_domain::ledger::set_max_leg_amount(settings.ledger_max_leg);
    if settings.database_kind() == "sqlite" {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
    }
    let url = settings.database_url.expose_secret();
    // Migrate over a connection of its own, then open the pool: on SQLite a pooled connection
    // that read before the schema changed can keep that old snapshot (and not see a new index).
    let once = passerelle_domain::db::connect(url, 1).await.context("connecting to the database")?;
    Migrator::up(&once, None).await.context("applying migrations")?;
    once.close().await?;
    passerelle_domain::db::connect(url, settings.db_max_connections).await.context("connecting to the database")
}

/// A server running in the background (tests, and `serve` until a signal arrives).
pub struct RunningServer {
    pub addr: SocketAddr,
    pub db: DatabaseConnection,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Graceful stop: in-flight requests finish, then the pool closes.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.context("server task")??;
        self.db.close_by_ref().await?;
        Ok(())
    }

    /// Waits until the server stops by itself (signal handled inside).
    pub async fn wait(self) -> anyhow::Result<()> {
        let RunningServer { db, task, stop, .. } = self;
        task.await.context("server task")??;
        drop(stop);
        db.close().await?;
        Ok(())
    }
}

/// Binds `settings.bind` and serves `db` until `stop` is triggered or, when
/// `handle_signals`, SIGINT/SIGTERM arrive.
pub async fn start(settings: Settings, db: DatabaseConnection, handle_signals: bool) -> anyhow::Result<RunningServer> {
    let server_info = ServerInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        environment: settings.environment.to_string(),
        database: settings.database_kind().to_owned(),
    };
    let uploads = passerelle_graphql::Uploads { dir: settings.data_dir.join("uploads") };
    let auth = crate::keys::auth_config(&settings)?;
    // Staff TOTP seeds from before sealing: sealed before the first request is served.
    passerelle_domain::auth::seal_clear_totp_secrets(&db, &auth.data_key).await.context("sealing TOTP secrets")?;
    let mailer = crate::mailer::mailer(&settings)?;
    let pass_events = passerelle_graphql::PassEvents::new();
    let notification_events = passerelle_graphql::NotificationEvents::default();
    // A ticket key exists before the first ticket: partner apps can fetch the JWKS ahead.
    let tickets = Arc::new(passerelle_domain::spending::TicketKeys::new(settings.public_url.clone()));
    tickets.current(&db, &auth.data_key).await.map_err(|e| anyhow::anyhow!("ticket signing key: {e}"))?;
    let config = SchemaConfig {
        server_info,
        production: settings.is_production(),
        uploads: Some(uploads),
        auth: Some(auth.clone()),
        ent: crate::ent::validator(&settings)?,
        oidc: crate::oidc::providers(&settings)?,
        dev_back_office: settings.dev_back_office,
        pass_events: pass_events.clone(),
        notification_events: notification_events.clone(),
        trusted_documents: settings.trusted_documents,
        tickets: Some(tickets),
        documents: Default::default(),
    };
    let schema = build_gateway(Some(db.clone()), config);
    let listener = TcpListener::bind(settings.bind).await.with_context(|| format!("binding {}", settings.bind))?;
    let addr = listener.local_addr()?;
    let shutting_down = Arc::new(AtomicBool::new(false));
    let attachments = crate::attachments::local_store(&settings.data_dir)?;
    let state = AppState {
        db: db.clone(),
        schema,
        auth,
        attachments,
        settings: Arc::new(settings),
        shutting_down: shutting_down.clone(),
    };
    let router = http::router(state.clone());
    purge_throttle_keys(db.clone(), shutting_down.clone());
    crate::live::spawn_feeder(db.clone(), pass_events, notification_events, shutting_down.clone());
    if state.settings.dispatch_ms > 0 {
        let every = std::time::Duration::from_millis(state.settings.dispatch_ms);
        let push = crate::fcm::push_sender(&state.settings)?;
        let options = crate::notifications::options(&state.settings);
        crate::notifications::spawn(db.clone(), every, options, push, mailer, shutting_down.clone());
    }
    if let Some(every) = state.settings.scheduler_interval() {
        crate::scheduler::spawn(db.clone(), every, shutting_down.clone());
    }
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let shutdown = async move {
        if handle_signals {
            tokio::select! {
                _ = stop_rx => {}
                _ = termination_signal() => {}
            }
        } else {
            let _ = stop_rx.await;
        }
        tracing::info!("shutting down: finishing in-flight requests");
        shutting_down.store(true, Ordering::SeqCst);
    };
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move { axum::serve(listener, service).with_graceful_shutdown(shutdown).await });
    Ok(RunningServer { addr, db, stop: Some(stop_tx), task })
}

/// Every 10 minutes, drops the throttling keys that decayed back to a full allowance (they
/// hold nothing); stops with the server.
fn purge_throttle_keys(db: DatabaseConnection, shutting_down: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            every.tick().await;
            if shutting_down.load(Ordering::SeqCst) {
                return;
            }
            if let Err(e) = passerelle_domain::auth::throttle_purge(&db).await {
                tracing::warn!(error = %e, "purging throttle keys failed");
            }
        }
    });
}

async fn termination_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
