//! Live updates: the feeder that turns committed `pass_updated` outbox rows into
//! [`PassChanged`] events and new inbox entries into [`NotificationAdded`] events for this
//! process's subscriptions (whichever process wrote them), and `GET /graphql/ws`
//! (`graphql-transport-ws`, the token in `connection_init`: `{"authorization": "Bearer …"}`).
//!
//! The feeder polls (every 200 ms, one indexed range read) rather than using PostgreSQL's
//! LISTEN: the same code serves SQLite, and a missed notification cannot lose an event. Rows
//! are read with a 10-second look-back, since a transaction that started earlier may commit
//! after a later one; ids already sent are remembered over that window.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::response::Response;
use passerelle_domain::auth::authenticate;
use passerelle_domain::db::{now_us, stmt};
use passerelle_graphql::{Caller, NotificationAdded, NotificationEvents, PassChanged, PassEvents};
use sea_orm::{DatabaseConnection, FromQueryResult};
use uuid::Uuid;

use crate::state::AppState;

const POLL: Duration = Duration::from_millis(200);
const LOOK_BACK_US: i64 = 10_000_000;

#[derive(FromQueryResult)]
struct OutboxRow {
    id: Uuid,
    payload: String,
    created_at_us: i64,
}

/// A table followed by the feeder: new rows by time, each sent once.
#[derive(Default)]
struct Follow {
    seen: HashMap<Uuid, i64>,
    since: i64,
}

impl Follow {
    fn fresh(&mut self, id: Uuid, at: i64) -> bool {
        self.since = self.since.max(at);
        self.seen.insert(id, at).is_none()
    }

    fn forget_old(&mut self) {
        let horizon = self.since - LOOK_BACK_US;
        self.seen.retain(|_, at| *at > horizon);
    }

    fn from(&self) -> i64 {
        self.since - LOOK_BACK_US
    }
}

#[derive(FromQueryResult)]
struct InboxRow {
    id: Uuid,
    account_id: Uuid,
    created_at_us: i64,
}

/// Follows committed `pass_updated` outbox rows and new inbox entries until `stop` — written
/// by any process on the database, so a subscriber on one node hears of what another did.
pub fn spawn_feeder(db: DatabaseConnection, events: PassEvents, inbox: NotificationEvents, stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let start = now_us(&db).await.unwrap_or(0);
        let (mut passes, mut entries) =
            (Follow { since: start, ..Follow::default() }, Follow { since: start, ..Follow::default() });
        while !stop.load(Ordering::SeqCst) {
            if let Err(e) = poll_passes(&db, &events, &mut passes).await {
                tracing::warn!(error = %e, "reading pass changes failed");
            }
            if let Err(e) = poll_inbox(&db, &inbox, &mut entries).await {
                tracing::warn!(error = %e, "reading inbox entries failed");
            }
            passes.forget_old();
            entries.forget_old();
            tokio::time::sleep(POLL).await;
        }
    });
}

async fn poll_passes(db: &DatabaseConnection, events: &PassEvents, follow: &mut Follow) -> anyhow::Result<()> {
    let sql = "SELECT id, payload, created_at_us FROM outbox WHERE topic = 'pass_updated' AND created_at_us > $1 \
               ORDER BY created_at_us, id LIMIT 1000";
    let rows =
        OutboxRow::find_by_statement(stmt(db.get_database_backend(), sql, [follow.from().into()])).all(db).await?;
    for row in rows {
        if !follow.fresh(row.id, row.created_at_us) {
            continue;
        }
        let payload: serde_json::Value = serde_json::from_str(&row.payload).unwrap_or_default();
        if let Some(pass_id) = payload["pass_id"].as_str().and_then(|s| Uuid::parse_str(s).ok()) {
            // No subscriber is fine: the event is simply not needed.
            let _ = events.0.send(PassChanged { pass_id });
        }
    }
    Ok(())
}

async fn poll_inbox(db: &DatabaseConnection, events: &NotificationEvents, follow: &mut Follow) -> anyhow::Result<()> {
    let sql = "SELECT id, account_id, created_at_us FROM notification WHERE created_at_us > $1 \
               ORDER BY created_at_us, id LIMIT 1000";
    let rows =
        InboxRow::find_by_statement(stmt(db.get_database_backend(), sql, [follow.from().into()])).all(db).await?;
    for row in rows {
        if follow.fresh(row.id, row.created_at_us) {
            let _ = events.0.send(NotificationAdded { account_id: row.account_id, notification_id: row.id });
        }
    }
    Ok(())
}

/// `GET /graphql/ws`: subscriptions. The caller is authenticated once, from `connection_init`,
/// through the same domain check as every HTTP request.
pub async fn graphql_ws(
    State(state): State<AppState>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let schema = state.schema.clone();
    upgrade.protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS).on_upgrade(move |stream| {
        GraphQLWebSocket::new(stream, schema, protocol)
            .on_connection_init(move |payload| async move {
                let token = payload["authorization"]
                    .as_str()
                    .and_then(|v| v.trim().strip_prefix("Bearer "))
                    .map(str::trim)
                    .unwrap_or("");
                let caller = authenticate(&state.db, &state.auth, token)
                    .await
                    .map_err(|e| async_graphql::Error::new(e.code()))?;
                let mut data = Data::default();
                data.insert(Caller(Some(caller)));
                Ok(data)
            })
            .serve()
    })
}
