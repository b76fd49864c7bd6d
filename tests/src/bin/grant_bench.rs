//! Grant benchmark: eligibility and the yearly grant for `BENCH_PUPILS` pupils (default
//! 100,000; 12 % boursiers), then the same grant again (everything already done). One JSON
//! line per phase, with the ledger audit after the grant.
//!
//! ```text
//! cargo run --release -p passerelle-tests --bin grant-bench                      # SQLite
//! TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo run --release -p passerelle-tests --bin grant-bench                    # PostgreSQL
//! ```

use std::time::Instant;

use anyhow::{Context as _, ensure};
use passerelle_domain::campaign::{Policy, upsert_campaign};
use passerelle_domain::eligibility::recompute;
use passerelle_domain::grant::run_grant;
use passerelle_domain::ledger::audit;
use passerelle_tests::school::{PupilSeed, funder, insert_pupils};
use passerelle_tests::{Backend, fresh_db_with_pool};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("BENCH_PUPILS").unwrap_or_else(|_| "100000".into()).parse().context("BENCH_PUPILS")?;
    let backend = Backend::selected();
    let tdb = fresh_db_with_pool(4).await;
    let db = &tdb.db;
    let f = funder(db, "92").await;
    let c = upsert_campaign(db, f, 2026, "Pass+ 2026-2027", &Policy::pass_plus("92", 2026), "bench").await?;
    let grades = ["6E", "5E", "4E", "3E"];
    let keys: Vec<String> = (0..n).map(|i| format!("aaf:{i}")).collect();
    let seeds: Vec<PupilSeed<'_>> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| PupilSeed { key: k, grade: grades[i % 4], uai: "0921778H", boursier: i % 25 < 3 })
        .collect();
    insert_pupils(db, f, &seeds).await;

    let line = |phase: &str, seconds: f64, extra: serde_json::Value| {
        let mut v = json!({ "bench": "grant", "phase": phase, "backend": backend.name(), "pupils": n,
            "seconds": (seconds * 1000.0).round() / 1000.0, "per_s": (n as f64 / seconds).round() });
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        println!("{v}");
    };
    let t = Instant::now();
    let e = recompute(db, c.id).await?;
    line("eligibility", t.elapsed().as_secs_f64(), json!({ "eligible": e.eligible }));
    let t = Instant::now();
    let g = run_grant(db, c.id, &|_, _| {}).await?;
    let secs = t.elapsed().as_secs_f64();
    let report = audit(db).await?;
    ensure!(report.is_clean(), "audit: {:?}", report.violations);
    line(
        "grant",
        secs,
        json!({ "passes": g.passes, "credits": g.credits, "credited_cents": g.credited_cents, "audit_clean": true }),
    );
    let t = Instant::now();
    let again = run_grant(db, c.id, &|_, _| {}).await?;
    ensure!(again.credits == 0 && again.passes_created == 0, "the second grant credited again");
    line("grant_again", t.elapsed().as_secs_f64(), json!({ "already_done": again.already_done }));
    Ok(())
}
