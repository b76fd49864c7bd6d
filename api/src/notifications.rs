//! The outbox dispatcher's loop (`notify::dispatch`): every `PASSERELLE_DISPATCH_MS` in each
//! `passerelle serve`, and in `passerelle worker`. Several at once are fine: rows are claimed
//! for `PASSERELLE_DISPATCH_LEASE_MS`. On PostgreSQL a pass also starts as soon as a
//! transaction that wrote outbox rows commits (`LISTEN outbox`, migration m0017): the poll
//! stays as the fallback (a lost listener connection) and is all there is on SQLite.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use passerelle_domain::mail::Mailer;
use passerelle_domain::notify::{DispatchOptions, DispatchReport, PushSender, dispatch, prune_push_tokens};
use sea_orm::{DatabaseConnection, DbBackend};
use tokio::sync::Notify;

/// The dispatcher's options for these settings (the lease; the claim size and concurrency
/// are the domain's defaults).
pub fn options(settings: &crate::Settings) -> DispatchOptions {
    DispatchOptions { lease: Duration::from_millis(settings.dispatch_lease_ms), ..DispatchOptions::default() }
}

/// Dispatches until nothing is due (or a pass fails), with the default options; the counts.
pub async fn tick(
    db: &DatabaseConnection,
    push: Option<&Arc<dyn PushSender>>,
    mail: Option<&Arc<dyn Mailer>>,
) -> anyhow::Result<DispatchReport> {
    tick_with(db, push, mail, &DispatchOptions::default()).await
}

/// Dispatches until nothing is due (or a pass fails); the counts of every pass.
pub async fn tick_with(
    db: &DatabaseConnection,
    push: Option<&Arc<dyn PushSender>>,
    mail: Option<&Arc<dyn Mailer>>,
    options: &DispatchOptions,
) -> anyhow::Result<DispatchReport> {
    let mut total = DispatchReport::default();
    loop {
        let r = dispatch(db, push, mail, options).await.map_err(|e| anyhow::anyhow!("dispatch: {e}"))?;
        total += r;
        if r.events < options.limit {
            return Ok(total);
        }
    }
}

/// The shortest time between the starts of two passes woken by `NOTIFY`: under load, a pass
/// per commit (a few events each, two commits of its own) slowed the redemptions themselves
/// by a third on 2 cores (`dispatch-bench`); waiting this long gathers the events of several
/// commits in one pass.
const WOKEN_GAP: Duration = Duration::from_millis(50);

/// The loop, every `every` or when woken by `NOTIFY outbox`, until `stop`.
pub fn spawn(
    db: DatabaseConnection,
    every: Duration,
    options: DispatchOptions,
    push: Option<Arc<dyn PushSender>>,
    mail: Arc<dyn Mailer>,
    stop: Arc<AtomicBool>,
) {
    let wake = Arc::new(Notify::new());
    if db.get_database_backend() == DbBackend::Postgres {
        listen(db.clone(), every, wake.clone(), stop.clone());
    }
    tokio::spawn(async move {
        let mut passes: u64 = 0;
        while !stop.load(Ordering::SeqCst) {
            let started = tokio::time::Instant::now();
            if let Err(e) = tick_with(&db, push.as_ref(), Some(&mail), &options).await {
                tracing::warn!(error = %e, "notification dispatch failed");
            }
            passes += 1;
            // About once a day at the default pace: stale device tokens.
            if passes % 400_000 == 1
                && let Err(e) = prune_push_tokens(&db).await
            {
                tracing::warn!(error = %e, "pruning push tokens failed");
            }
            // A commit during the pass left a permit: the next pass starts at once, but not
            // sooner than WOKEN_GAP after this one began.
            let _ = tokio::time::timeout(every, wake.notified()).await;
            tokio::time::sleep_until(started + WOKEN_GAP.min(every)).await;
        }
    });
}

/// Wakes the loop at each `NOTIFY outbox` (one permit however many arrive during a pass),
/// and once when listening starts (for what was committed before). The listener holds one
/// connection of the pool and reconnects after a failure; while it cannot, the poll does the
/// work.
fn listen(db: DatabaseConnection, every: Duration, wake: Arc<Notify>, stop: Arc<AtomicBool>) {
    use sea_orm::sqlx::postgres::PgListener;
    tokio::spawn(async move {
        let mut listener: Option<PgListener> = None;
        while !stop.load(Ordering::SeqCst) {
            let heard = match listener.as_mut() {
                Some(l) => l.recv().await.map(|_| ()),
                None => match PgListener::connect_with(db.get_postgres_connection_pool()).await {
                    Ok(mut l) => l.listen("outbox").await.map(|()| listener = Some(l)),
                    Err(e) => Err(e),
                },
            };
            match heard {
                Ok(()) => wake.notify_one(),
                Err(e) => {
                    if !stop.load(Ordering::SeqCst) {
                        tracing::warn!(error = %e, "listening for outbox notifications failed; polling");
                    }
                    listener = None;
                    tokio::time::sleep(every.max(Duration::from_secs(1))).await;
                }
            }
        }
    });
}
