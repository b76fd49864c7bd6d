//! The outbox dispatcher's loop (`notify::dispatch`): every `PASSERELLE_DISPATCH_MS` in each
//! `passerelle serve`, and in `passerelle worker`. Several at once are fine: rows are claimed
//! for `PASSERELLE_DISPATCH_LEASE_MS`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use passerelle_domain::mail::Mailer;
use passerelle_domain::notify::{DispatchOptions, DispatchReport, PushSender, dispatch, prune_push_tokens};
use sea_orm::DatabaseConnection;

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

/// The loop, every `every`, until `stop`.
///
/// A pass polls (one indexed read of the due rows): the default 200 ms keeps commit-to-push
/// p99 near half a second (`dispatch-bench`). Being woken by `NOTIFY` at each commit was tried
/// and dropped (migration m0022): PostgreSQL serialises the commits of notifying transactions,
/// which slowed every redemption.
pub fn spawn(
    db: DatabaseConnection,
    every: Duration,
    options: DispatchOptions,
    push: Option<Arc<dyn PushSender>>,
    mail: Arc<dyn Mailer>,
    stop: Arc<AtomicBool>,
) {
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
            tokio::time::sleep_until(started + every).await;
        }
    });
}
