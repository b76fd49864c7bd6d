//! Live updates: the feeder that turns committed `pass_updated` outbox rows into
//! [`PassChanged`] events and new inbox entries into [`NotificationAdded`] events for this
//! process's subscriptions (whichever process wrote them), and `GET /graphql/ws`
//! (`graphql-transport-ws`, the token in `connection_init`: `{"authorization": "Bearer …"}`).
//!
//! The feeder polls (every 200 ms, indexed range reads) rather than using PostgreSQL's
//! LISTEN: the same code serves SQLite, and a missed notification cannot lose an event. Rows
//! are read with a 10-second look-back, since a transaction that started earlier may commit
//! after a later one; ids already sent are remembered over that window.
//!
//! The window is read in pages, by keyset on (time, id), to its end. Read as one page of 1,000,
//! a burst (the yearly grant writes a change per pass at once) filled the page with rows
//! already sent, the window never moved past them, and no later event reached anyone. A node
//! with no subscriber reads nothing, and picks up from the database's clock (less the
//! look-back) when one comes.
//!
//! Most polls read back one second behind the newest change sent; every tenth (2 s) reads the
//! whole 10 seconds. Read in full at every poll, the window was every change of the last 10
//! seconds five times a second (50,000 rows a second at 1,000 redemptions a second) while
//! anyone on the node listened, which in production is always: with one subscriber, the
//! spending bench's reads went from 2.7 to 0.6 million rows (README). A change committed more
//! than a second after its time (a transaction that waited on a lock, a grant's long batch)
//! still comes, at the next full read: within 2 s rather than 200 ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::response::Response;
use passerelle_domain::auth::authenticate;
use passerelle_domain::db::{now_us, stmt};
use passerelle_graphql::{
    Caller, LOOK_BACK_US, NotificationAdded, NotificationEvents, PassChanged, PassEvents, SentOnce,
};
use sea_orm::{DatabaseConnection, FromQueryResult};
use uuid::Uuid;

use crate::state::AppState;

const POLL: Duration = Duration::from_millis(200);

/// How far behind the newest change sent most polls read back.
const SHORT_LOOK_BACK_US: i64 = 1_000_000;

/// One poll in this many reads the whole look-back ([`LOOK_BACK_US`]).
const FULL_READ_EVERY: u32 = 10;

#[derive(FromQueryResult)]
struct OutboxRow {
    id: Uuid,
    payload: String,
    created_at_us: i64,
}

/// Rows of a followed table read at once; the window goes on in further pages.
const PAGE: usize = 1000;

/// Every row of a followed table not sent yet from `look_back` behind the newest sent, oldest
/// first; `sent` is empty while no one on this node listens, and then starts from the
/// database's clock less the whole look-back. `sql` takes the keyset (time, id) as `$1`, `$2`
/// and returns the rows after it, ordered by it (read [`PAGE`] at a time).
async fn read<R: FromQueryResult + Keyed>(
    sent: &mut SentOnce,
    db: &DatabaseConnection,
    sql: &str,
    look_back: i64,
) -> anyhow::Result<Vec<R>> {
    let start = match sent.since(look_back) {
        Some(start) => start,
        None => {
            let now = now_us(db).await?;
            *sent = SentOnce::starting_at(now);
            now - LOOK_BACK_US
        }
    };
    // Rows at the window's very start were forgotten (`forget_old`): after them.
    let (mut at, mut id) = (start, Uuid::max());
    let sql = format!("{sql} LIMIT {PAGE}");
    let mut fresh = vec![];
    loop {
        let keyset = [at.into(), id.into()];
        let page = R::find_by_statement(stmt(db.get_database_backend(), &sql, keyset)).all(db).await?;
        let full = page.len() == PAGE;
        for row in page {
            (at, id) = row.key();
            if sent.first_time(id, at) {
                fresh.push(row);
            }
        }
        if !full {
            return Ok(fresh);
        }
    }
}

/// A followed row's place in its table: (time, id).
trait Keyed {
    fn key(&self) -> (i64, Uuid);
}

impl Keyed for OutboxRow {
    fn key(&self) -> (i64, Uuid) {
        (self.created_at_us, self.id)
    }
}

impl Keyed for InboxRow {
    fn key(&self) -> (i64, Uuid) {
        (self.created_at_us, self.id)
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
        let (mut passes, mut entries) = (SentOnce::default(), SentOnce::default());
        let mut polls = 0u32;
        while !stop.load(Ordering::SeqCst) {
            let back = if polls.is_multiple_of(FULL_READ_EVERY) { LOOK_BACK_US } else { SHORT_LOOK_BACK_US };
            polls = polls.wrapping_add(1);
            if events.0.receiver_count() == 0 {
                // No one listens: nothing to read, and nothing to remember.
                passes = SentOnce::default();
            } else if let Err(e) = poll_passes(&db, &events, &mut passes, back).await {
                tracing::warn!(error = %e, "reading pass changes failed");
            }
            if inbox.0.receiver_count() == 0 {
                entries = SentOnce::default();
            } else if let Err(e) = poll_inbox(&db, &inbox, &mut entries, back).await {
                tracing::warn!(error = %e, "reading inbox entries failed");
            }
            passes.forget_old();
            entries.forget_old();
            tokio::time::sleep(POLL).await;
        }
    });
}

async fn poll_passes(
    db: &DatabaseConnection,
    events: &PassEvents,
    sent: &mut SentOnce,
    back: i64,
) -> anyhow::Result<()> {
    let sql = "SELECT id, payload, created_at_us FROM outbox WHERE topic = 'pass_updated' AND created_at_us >= $1 \
               AND (created_at_us > $1 OR id > $2) ORDER BY created_at_us, id";
    for row in read::<OutboxRow>(sent, db, sql, back).await? {
        let payload: serde_json::Value = serde_json::from_str(&row.payload).unwrap_or_default();
        if let Some(pass_id) = payload["pass_id"].as_str().and_then(|s| Uuid::parse_str(s).ok()) {
            // No subscriber is fine: the event is simply not needed.
            let _ = events.0.send(PassChanged { pass_id });
        }
    }
    Ok(())
}

async fn poll_inbox(
    db: &DatabaseConnection,
    events: &NotificationEvents,
    sent: &mut SentOnce,
    back: i64,
) -> anyhow::Result<()> {
    let sql = "SELECT id, account_id, created_at_us FROM notification WHERE created_at_us >= $1 \
               AND (created_at_us > $1 OR id > $2) ORDER BY created_at_us, id";
    for row in read::<InboxRow>(sent, db, sql, back).await? {
        let _ = events.0.send(NotificationAdded { account_id: row.account_id, notification_id: row.id });
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
