//! The scheduler: ticket expiry and the generation-deadline close of wallets
//! (`spending::sweep`), every minute in each `passerelle serve` and alone in `passerelle
//! worker`. Every node may run it at once: each step is an idempotent ledger operation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use passerelle_domain::spending::{SweepReport, sweep};
use sea_orm::DatabaseConnection;

/// Holds and wallets handled per page of a sweep.
pub const SWEEP_PAGE: u64 = 500;

/// One sweep, logged.
pub async fn tick(db: &DatabaseConnection) -> anyhow::Result<SweepReport> {
    let report = sweep(db, SWEEP_PAGE).await.map_err(|e| anyhow::anyhow!("sweep: {e}"))?;
    if report != SweepReport::default() {
        tracing::info!(
            holds_expired = report.holds_expired,
            wallets_closed = report.wallets_closed,
            skipped = report.skipped,
            "scheduler sweep"
        );
    }
    // Reimbursement batches fall due per funder's schedule (twice a month by default); made
    // once per period however many nodes run this, and left as drafts for staff to approve.
    let actor = passerelle_domain::auth::Actor::tool("scheduler");
    match passerelle_domain::settlement::settle_due(db, &actor).await {
        Ok(made) if !made.is_empty() => tracing::info!(batches = made.len(), "settlement batches due, created"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "settlement schedule failed"),
    }
    Ok(report)
}

/// Sweeps every `every` until `stop` is set (the server's shutdown flag).
pub fn spawn(db: DatabaseConnection, every: Duration, stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if stop.load(Ordering::SeqCst) {
                return;
            }
            if let Err(e) = tick(&db).await {
                tracing::warn!(error = %e, "scheduler sweep failed");
            }
        }
    });
}
