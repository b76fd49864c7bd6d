//! Roster import benchmark: a synthetic AAF set (`aaf_gen`) imported into a fresh database,
//! then imported again unchanged. Prints one JSON line per run.
//!
//! ```text
//! cargo run --release -p passerelle-tests --bin import-bench                      # SQLite
//! TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo run --release -p passerelle-tests --bin import-bench                    # PostgreSQL
//! ```
//! Options (environment): `BENCH_PUPILS` (default 100000; ~1.8 guardians per pupil),
//! `BENCH_SEED` (default 1). `peak_rss_mb` is the process's high-water mark (`VmHWM`) so far,
//! generation included. Aim: ≥ 5,000 pupils/s on PostgreSQL, peak RSS < 300 MB.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use indicatif::{ProgressBar, ProgressStyle};
use passerelle_domain::school::import::{
    ImportFile, ImportOptions, ImportStatus, ImportSummary, Progress, RosterFormat, ensure_funder, import_roster,
};
use passerelle_tests::aaf_gen::{GeneratedSet, write_aaf_set};
use passerelle_tests::{Backend, fresh_db_with_pool};
use sea_orm::DatabaseConnection;
use serde_json::json;
use uuid::Uuid;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// The process's peak resident set size in MB (Linux `VmHWM`), 0 where unknown.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Removes the generated set on the way out.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn run(
    db: &DatabaseConnection,
    funder: Uuid,
    files: &[ImportFile],
    label: &str,
) -> anyhow::Result<(ImportSummary, Duration)> {
    let total: u64 = files.iter().filter_map(|f| std::fs::metadata(&f.path).ok()).map(|m| m.len()).sum();
    let pb = ProgressBar::new(total);
    pb.set_style(ProgressStyle::with_template("{prefix} {bar:40} {bytes}/{total_bytes} {msg}")?);
    pb.set_prefix(label.to_owned());
    // Bytes of the files already done plus the current one's progress.
    let done = std::sync::Mutex::new((String::new(), 0u64, 0u64));
    let progress = |p: &Progress| {
        let mut d = done.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if d.0 != p.file {
            d.1 += d.2;
            d.0 = p.file.clone();
        }
        d.2 = p.bytes_read;
        pb.set_position(d.1 + p.bytes_read);
        pb.set_message(format!("{} records", p.records));
    };
    let options = ImportOptions { full_snapshot: true, author: "import-bench".to_owned() };
    let start = Instant::now();
    let summary = import_roster(db, funder, RosterFormat::Aaf, files, &options, &progress).await?;
    let elapsed = start.elapsed();
    pb.finish_and_clear();
    ensure!(summary.status == ImportStatus::Succeeded, "import {label} rejected: {:?}", summary.error);
    Ok((summary, elapsed))
}

fn line(run: &str, backend: Backend, set: &GeneratedSet, elapsed: Duration) -> serde_json::Value {
    let seconds = elapsed.as_secs_f64();
    json!({
        "bench": "import",
        "run": run,
        "backend": backend.name(),
        "pupils": set.pupils,
        "guardians": set.guardians,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "pupils_per_s": (set.pupils as f64 / seconds).round(),
        "peak_rss_mb": (peak_rss_mb() * 10.0).round() / 10.0,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let pupils: usize = env_or("BENCH_PUPILS", "100000").parse().context("BENCH_PUPILS")?;
    let seed: u64 = env_or("BENCH_SEED", "1").parse().context("BENCH_SEED")?;
    let backend = Backend::selected();

    let dir = TempDir(std::env::temp_dir().join(format!("passerelle-import-bench-{}", Uuid::new_v4().simple())));
    let started = Instant::now();
    let set = write_aaf_set(&dir.0, pupils, seed)?;
    eprintln!(
        "generated {} pupils, {} guardians, {} links in {:.1} s",
        set.pupils,
        set.guardians,
        set.links,
        started.elapsed().as_secs_f64()
    );
    let files: Vec<ImportFile> = set.files().map(ImportFile::from_path).collect();

    let tdb = fresh_db_with_pool(4).await;
    let funder = ensure_funder(&tdb.db, "92", "Hauts-de-Seine", "92").await?;

    let (first, elapsed) = run(&tdb.db, funder, &files, "import").await?;
    ensure!(first.created as usize == set.pupils, "created {} of {} pupils", first.created, set.pupils);
    ensure!(first.guardians.created as usize == set.guardians, "created {} guardians", first.guardians.created);
    println!("{}", line("initial", backend, &set, elapsed));

    let (again, elapsed) = run(&tdb.db, funder, &files, "re-import").await?;
    ensure!(again.unchanged as usize == set.pupils, "unchanged {} of {} pupils", again.unchanged, set.pupils);
    ensure!(again.guardians.unchanged as usize == set.guardians, "guardians changed on a re-import");
    println!("{}", line("unchanged", backend, &set, elapsed));
    Ok(())
}
