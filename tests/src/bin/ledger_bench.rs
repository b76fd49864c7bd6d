//! Ledger benchmark: debits/s and latency percentiles, closed loop, on distinct wallets and on
//! one hot wallet, at several concurrencies, with the audit after each case. Prints one JSON
//! line per case.
//!
//! ```text
//! cargo run --release -p passerelle-tests --bin ledger-bench                      # SQLite
//! TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo run --release -p passerelle-tests --bin ledger-bench                    # PostgreSQL
//! ```
//! Options (environment): `BENCH_SECONDS` (default 10), `BENCH_WARMUP_SECONDS` (default 2),
//! `BENCH_CONCURRENCY` (default "1,8,32"), `BENCH_WALLETS` (default 2000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use passerelle_domain::ledger::{LedgerError, audit, execute};
use passerelle_tests::ledger::{Books, books, funded_wallet, partner_of, payment};
use passerelle_tests::{Backend, fresh_db_with_pool};
use serde_json::json;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// A tiny deterministic PRNG (splitmix64): each task picks wallets and amounts without locks.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = env_or("BENCH_SECONDS", "10").parse()?;
    let warmup: u64 = env_or("BENCH_WARMUP_SECONDS", "2").parse()?;
    let wallets_n: usize = env_or("BENCH_WALLETS", "2000").parse()?;
    let levels: Vec<usize> =
        env_or("BENCH_CONCURRENCY", "1,8,32").split(',').map(|s| s.trim().parse()).collect::<Result<_, _>>()?;
    let backend = Backend::selected();

    for case in ["distinct_wallets", "hot_wallet"] {
        for &concurrency in &levels {
            let tdb = fresh_db_with_pool(concurrency as u32 + 1).await;
            let db = tdb.db.clone();
            let b = books(&db).await;
            let n = if case == "hot_wallet" { 1 } else { wallets_n };
            let mut wallets = Vec::with_capacity(n);
            for _ in 0..n {
                wallets.push(funded_wallet(&db, b, 1_000_000_000).await);
            }
            // Distinct wallets pay one of 200 partners of the funder (ledger.md W1); the hot
            // case, one partner.
            let mut partners = vec![b.partner];
            if case == "distinct_wallets" {
                for _ in 1..200 {
                    partners.push(partner_of(&db, b).await);
                }
            }
            let wallets = Arc::new(wallets);
            let partners = Arc::new(partners);
            let start = Instant::now();
            let measure_from = start + Duration::from_secs(warmup);
            let end = measure_from + Duration::from_secs(seconds);
            let tasks: Vec<_> = (0..concurrency)
                .map(|t| {
                    let db = db.clone();
                    let wallets = wallets.clone();
                    let partners = partners.clone();
                    tokio::spawn(async move {
                        let mut rng = Rng(t as u64 + 1);
                        let mut latencies = Vec::new();
                        let mut rejects = 0u64;
                        let mut i = 0u64;
                        loop {
                            let now = Instant::now();
                            if now >= end {
                                break;
                            }
                            let wallet = wallets[(rng.next() % wallets.len() as u64) as usize];
                            let amount = 500 + (rng.next() % 2501) as i64;
                            let partner = partners[(rng.next() % partners.len() as u64) as usize];
                            let op = payment(Books { partner, ..b }, wallet, amount, format!("bench-{t}-{i}"));
                            i += 1;
                            let r = execute(&db, &op).await;
                            let done = Instant::now();
                            if now >= measure_from {
                                latencies.push((done - now).as_micros() as u64);
                                match r {
                                    Ok(_) | Err(LedgerError::Rejected(_)) => {}
                                    Err(e) => return Err(e),
                                }
                                if r.is_err() {
                                    rejects += 1;
                                }
                            }
                        }
                        Ok::<_, LedgerError>((latencies, rejects))
                    })
                })
                .collect();
            let mut all = Vec::new();
            let mut rejects = 0;
            for t in tasks {
                let (l, r) = t.await??;
                all.extend(l);
                rejects += r;
            }
            all.sort_unstable();
            let report = audit(&db).await?;
            println!(
                "{}",
                json!({
                    "bench": "ledger_debit",
                    "backend": backend.name(),
                    "case": case,
                    "concurrency": concurrency,
                    "seconds": seconds,
                    "ops": all.len(),
                    "ops_per_s": (all.len() as f64 / seconds as f64).round(),
                    "p50_ms": percentile(&all, 0.50),
                    "p99_ms": percentile(&all, 0.99),
                    "rejects": rejects,
                    "audit_clean": report.is_clean(),
                    "transfers_audited": report.transfers,
                })
            );
            if !report.is_clean() {
                anyhow::bail!("audit failed: {:?}", report.violations);
            }
        }
    }
    Ok(())
}
