//! The outbox dispatcher's loop (`notify::dispatch`): every `PASSERELLE_DISPATCH_MS` in each
//! `passerelle serve`, and in `passerelle worker`. Several at once are fine: rows are claimed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use passerelle_domain::mail::Mailer;
use passerelle_domain::notify::{DispatchReport, PushSender, dispatch, prune_push_tokens};
use sea_orm::DatabaseConnection;

/// Rows claimed per pass.
const BATCH: u64 = 200;

/// Dispatches until nothing is due (or a pass fails); the counts of the last pass.
pub async fn tick(
    db: &DatabaseConnection,
    push: Option<&Arc<dyn PushSender>>,
    mail: Option<&Arc<dyn Mailer>>,
) -> anyhow::Result<DispatchReport> {
    let mut total = DispatchReport::default();
    loop {
        let r = dispatch(db, push, mail, BATCH).await.map_err(|e| anyhow::anyhow!("dispatch: {e}"))?;
        total.events += r.events;
        total.inbox += r.inbox;
        total.pushes += r.pushes;
        total.emails += r.emails;
        total.tokens_removed += r.tokens_removed;
        total.retried += r.retried;
        total.failed += r.failed;
        if r.events < BATCH {
            return Ok(total);
        }
    }
}

/// The loop, until `stop`.
pub fn spawn(
    db: DatabaseConnection,
    every: Duration,
    push: Option<Arc<dyn PushSender>>,
    mail: Arc<dyn Mailer>,
    stop: Arc<AtomicBool>,
) {
    tokio::spawn(async move {
        let mut passes: u64 = 0;
        while !stop.load(Ordering::SeqCst) {
            if let Err(e) = tick(&db, push.as_ref(), Some(&mail)).await {
                tracing::warn!(error = %e, "notification dispatch failed");
            }
            passes += 1;
            // About once a day at the default pace: stale device tokens.
            if passes % 400_000 == 1
                && let Err(e) = prune_push_tokens(&db).await
            {
                tracing::warn!(error = %e, "pruning push tokens failed");
            }
            tokio::time::sleep(every).await;
        }
    });
}
