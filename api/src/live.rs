//! Live updates: the feeder that turns committed `pass_updated` outbox rows into
//! [`PassChanged`] events for this process's subscriptions, and `GET /graphql/ws`
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
use passerelle_graphql::{Caller, PassChanged, PassEvents};
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

/// Reads new `pass_updated` rows until `stop`, sending one event per row.
pub fn spawn_feeder(db: DatabaseConnection, events: PassEvents, stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let mut seen: HashMap<Uuid, i64> = HashMap::new();
        let mut since = now_us(&db).await.unwrap_or(0);
        while !stop.load(Ordering::SeqCst) {
            match poll(&db, &events, &mut seen, since).await {
                Ok(newest) => since = since.max(newest),
                Err(e) => tracing::warn!(error = %e, "reading pass changes failed"),
            }
            seen.retain(|_, at| *at > since - LOOK_BACK_US);
            tokio::time::sleep(POLL).await;
        }
    });
}

async fn poll(
    db: &DatabaseConnection,
    events: &PassEvents,
    seen: &mut HashMap<Uuid, i64>,
    since: i64,
) -> anyhow::Result<i64> {
    let sql = "SELECT id, payload, created_at_us FROM outbox WHERE topic = 'pass_updated' AND created_at_us > $1 \
               ORDER BY created_at_us, id LIMIT 1000";
    let rows = OutboxRow::find_by_statement(stmt(db.get_database_backend(), sql, [(since - LOOK_BACK_US).into()]))
        .all(db)
        .await?;
    let mut newest = since;
    for row in rows {
        newest = newest.max(row.created_at_us);
        if seen.insert(row.id, row.created_at_us).is_some() {
            continue;
        }
        let payload: serde_json::Value = serde_json::from_str(&row.payload).unwrap_or_default();
        if let Some(pass_id) = payload["pass_id"].as_str().and_then(|s| Uuid::parse_str(s).ok()) {
            // No subscriber is fine: the event is simply not needed.
            let _ = events.0.send(PassChanged { pass_id });
        }
    }
    Ok(newest)
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
