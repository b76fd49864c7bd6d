//! Outbox dispatcher benchmark, to the local fake of FCM HTTP v1 over real HTTP (the service's
//! own FCM client): `BENCH_PARENTS` parents (default 1000), one child each, two devices each.
//!
//! 1. `drain`: the outbox pre-filled with `BENCH_EVENTS` events (default 4000) plus the
//!    `ticket_issued` events of the tickets used in 2; the dispatcher empties it: pushes/s.
//! 2. `redeem`: `BENCH_CLIENTS` (default 8) closed-loop clients redeem those tickets through
//!    the domain (`BENCH_REDEMPTIONS` in all, default 2000) while the dispatcher runs as in the
//!    service: polling every `BENCH_DISPATCH_MS` (default 200, the service's default).
//!    Commit-to-push latency p50/p99,
//!    from the outbox row's `created_at_us` (stamped in the transaction, so a little before
//!    its commit: an upper bound) to the time the fake accepted the push.
//!
//! One JSON line per run, with the 1-minute load average beside the figures:
//! ```text
//! TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo run --release -p passerelle-tests --bin dispatch-bench
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use passerelle_domain::db::stmt;
use passerelle_domain::ledger::{OutboxEvent, write_outbox};
use passerelle_domain::notify::{PushSender, register_push_token};
use passerelle_domain::spending::{self, RedeemTicket};
use passerelle_tests::fake_fcm::FakeFcm;
use passerelle_tests::spending::{family, link};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};
use serde_json::json;
use uuid::Uuid;

fn env_or(name: &str, default: usize) -> anyhow::Result<usize> {
    std::env::var(name).map_or(Ok(default), |v| v.parse().with_context(|| format!("{name}={v:?}")))
}

fn percentile_ms(sorted: &[i64], p: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else { return 0.0 };
    sorted[((last as f64) * p).round() as usize] as f64 / 1000.0
}

fn load1() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().next().unwrap_or("").to_owned()
}

async fn execute(db: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) -> anyhow::Result<()> {
    db.execute_raw(stmt(db.get_database_backend(), sql, values)).await?;
    Ok(())
}

#[derive(FromQueryResult)]
struct Event {
    id: Uuid,
    created_at_us: i64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let parents = env_or("BENCH_PARENTS", 1000)?;
    let events = env_or("BENCH_EVENTS", 4000)?;
    let redemptions = env_or("BENCH_REDEMPTIONS", 2000)?;
    let clients = env_or("BENCH_CLIENTS", 8)?.max(1);
    let pace = Duration::from_millis(env_or("BENCH_DISPATCH_MS", 200)? as u64);
    let test_db = passerelle_tests::fresh_db_with_pool(32).await;
    let db = &test_db.db;
    let backend = test_db.backend.name();
    let fcm = FakeFcm::start().await;
    let credentials = std::fs::read_to_string(&fcm.credentials)?;
    let push: Arc<dyn PushSender> = Arc::new(passerelle_api::fcm::FcmClient::new(&credentials, &fcm.base_url)?);

    // The tickets of run 2, issued by the family's parent; then each child gets a parent of
    // its own (the first one lets go), with two devices.
    let f = family(db, parents, false).await;
    let keys = spending::TicketKeys::new("http://bench");
    let mut codes = Vec::with_capacity(redemptions);
    for n in 0..redemptions {
        let input = spending::IssueTicket {
            pass_id: f.passes[n % parents].id,
            wallet: passerelle_domain::ledger::Wallet::Sport,
            amount: passerelle_domain::Cents(1),
            partner_id: None,
            idempotency_key: format!("bench-{n}"),
        };
        codes.push(spending::issue_ticket(db, &keys, &f.data_key, f.parent, &input).await?.0.code);
    }
    execute(db, "UPDATE family_link SET revoked_at_us = 1 WHERE account_id = $1", vec![f.parent.into()]).await?;
    for (i, pass) in f.passes.iter().enumerate() {
        let parent = Uuid::now_v7();
        let sql = "INSERT INTO account (id, kind, email, email_verified_at_us, password_hash, display_name, status, \
                   created_at_us) SELECT $1, kind, $2, email_verified_at_us, password_hash, display_name, status, \
                   created_at_us FROM account WHERE id = $3";
        execute(db, sql, vec![parent.into(), format!("bench-{i}@example.org").into(), f.parent.into()]).await?;
        link(db, parent, pass.pupil_id).await;
        register_push_token(db, parent, &format!("android-{i}"), "ANDROID").await?;
        register_push_token(db, parent, &format!("ios-{i}"), "IOS").await?;
    }
    for chunk in (0..events).collect::<Vec<_>>().chunks(500) {
        let batch: Vec<OutboxEvent> = chunk
            .iter()
            .map(|n| OutboxEvent {
                topic: "pass_updated".into(),
                account_id: None,
                payload: json!({ "pass_id": f.passes[n % parents].id, "reason": "payment" }),
            })
            .collect();
        write_outbox(db, &batch).await?;
    }
    db.execute_unprepared("ANALYZE").await?;

    // 1. Drain the pre-filled outbox.
    let started = Instant::now();
    let report = passerelle_api::notifications::tick(db, Some(&push), None).await?;
    let secs = started.elapsed().as_secs_f64();
    let pushes = fcm.accepted().len();
    anyhow::ensure!(pushes == 2 * (events + redemptions), "{pushes} pushes for {} events", events + redemptions);
    println!(
        "{}",
        json!({ "bench": "dispatch", "run": "drain", "backend": backend, "events": report.events, "pushes": pushes,
            "seconds": (secs * 1000.0).round() / 1000.0, "pushes_per_s": (pushes as f64 / secs).round(), "load1": load1() })
    );

    // 2. Redemptions while the dispatcher runs as in the service.
    let stop = Arc::new(AtomicBool::new(false));
    let options = passerelle_domain::notify::DispatchOptions::default();
    let mail: Arc<dyn passerelle_domain::mail::Mailer> = Arc::new(passerelle_domain::mail::LogMailer);
    passerelle_api::notifications::spawn(db.clone(), pace, options, Some(push.clone()), mail, stop.clone());
    let started = Instant::now();
    let per_client = codes.len().div_ceil(clients);
    let tasks = codes.chunks(per_client).map(|chunk| {
        let (db, chunk, sport) = (db.clone(), chunk.to_vec(), f.sport);
        tokio::spawn(async move {
            for code in chunk {
                let input =
                    RedeemTicket { code, amount: None, activity_id: None, idempotency_key: Uuid::new_v4().to_string() };
                spending::redeem_ticket(&db, sport, &input).await?;
            }
            anyhow::Ok(())
        })
    });
    for t in futures_util::future::join_all(tasks).await {
        t??;
    }
    let load_secs = started.elapsed().as_secs_f64();
    let expected = pushes + 2 * redemptions;
    let deadline = Instant::now() + Duration::from_secs(120);
    while fcm.accepted().len() < expected {
        anyhow::ensure!(Instant::now() < deadline, "{} of {expected} pushes after 120 s", fcm.accepted().len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let sql = "SELECT id, created_at_us FROM outbox WHERE payload LIKE '%ticket_redeemed%'";
    let committed: HashMap<Uuid, i64> = Event::find_by_statement(stmt(db.get_database_backend(), sql, []))
        .all(db)
        .await?
        .into_iter()
        .map(|e| (e.id, e.created_at_us))
        .collect();
    let mut latencies: Vec<i64> = fcm
        .accepted_at()
        .iter()
        .filter_map(|(m, at)| {
            let event = m["data"]["event_id"].as_str().and_then(|e| Uuid::parse_str(e).ok())?;
            committed.get(&event).map(|created| at - created)
        })
        .collect();
    latencies.sort_unstable();
    anyhow::ensure!(latencies.len() == 2 * redemptions, "{} latencies", latencies.len());
    println!(
        "{}",
        json!({ "bench": "dispatch", "run": "redeem", "backend": backend, "clients": clients,
            "redemptions": redemptions, "redemptions_per_s": (redemptions as f64 / load_secs).round(),
            "pushes": latencies.len(), "dispatch_ms": pace.as_millis() as u64,
            "p50_ms": percentile_ms(&latencies, 0.50), "p99_ms": percentile_ms(&latencies, 0.99),
            "max_ms": percentile_ms(&latencies, 1.0), "load1": load1() })
    );
    Ok(())
}
