//! Long jobs on the command line: progress on stderr, counts at the end (one JSON line on
//! stdout with `--json`, for scripts).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use passerelle_domain::Error;
use passerelle_domain::campaign::find_campaign;
use passerelle_domain::funder::{Funder, find_funder_by_code};
use passerelle_domain::school::import::{ImportFile, ImportOptions, Progress, RosterFormat};
use passerelle_domain::settlement;
use passerelle_domain::usecase::{import_and_recompute, recompute_and_grant};
use sea_orm::DatabaseConnection;

use crate::config::Settings;
use crate::server::connect_and_migrate;

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    pb.set_style(style);
    pb.set_message(what.to_owned());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

async fn funder(db: &DatabaseConnection, code: &str) -> anyhow::Result<Funder> {
    find_funder_by_code(db, code).await?.with_context(|| format!("no funder with code {code:?}"))
}

/// `passerelle grant`: recompute eligibility, then credit every eligible pupil once.
pub async fn grant(settings: &Settings, funder_code: &str, school_year: i32, json: bool) -> anyhow::Result<()> {
    let db = connect_and_migrate(settings).await?;
    let funder = funder(&db, funder_code).await?;
    let Some(campaign) = find_campaign(&db, funder.id, school_year).await? else {
        bail!("funder {funder_code} has no campaign for {school_year}-{}", school_year + 1);
    };
    let pb = bar(0, "granting");
    let progress = |done: u64, total: u64| {
        pb.set_length(total);
        pb.set_position(done);
    };
    let run = recompute_and_grant(&db, campaign.id, &progress).await?;
    pb.finish_and_clear();
    let (summary, eligibility) = (run.grant, run.eligibility);
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!(
            "{}: {} passes ({} new), {} credits, {:.2} € credited, {} already done, {} refused; eligibility: {} eligible, {} ineligible, {} to review",
            run.campaign.name,
            summary.passes,
            summary.passes_created,
            summary.credits,
            summary.credited_cents as f64 / 100.0,
            summary.already_done,
            summary.refused,
            eligibility.eligible,
            eligibility.ineligible,
            eligibility.review,
        );
    }
    db.close().await?;
    Ok(())
}

/// `passerelle import`: load roster files, then recompute the eligibility of the funder's campaigns.
pub async fn import(
    settings: &Settings,
    funder_code: &str,
    format: &str,
    files: &[PathBuf],
    partial: bool,
    json: bool,
) -> anyhow::Result<()> {
    let format: RosterFormat = format.trim().parse().map_err(|_| {
        Error::bad_input("format", format!("unknown roster format {format:?}: expected aaf, siecle or csv"))
    })?;
    if files.is_empty() {
        bail!("name at least one file");
    }
    let db = connect_and_migrate(settings).await?;
    let funder = funder(&db, funder_code).await?;
    let files: Vec<ImportFile> = files.iter().map(ImportFile::from_path).collect();
    let total: u64 = files.iter().filter_map(|f| std::fs::metadata(&f.path).ok()).map(|m| m.len()).sum();
    let pb = bar(total, "importing");
    let progress = |p: &Progress| {
        pb.set_message(p.file.clone());
        pb.set_position(p.bytes_read);
    };
    let options = ImportOptions { full_snapshot: !partial, author: "cli".to_owned() };
    let summary = import_and_recompute(&db, funder.id, format, &files, &options, &progress).await?;
    pb.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    db.close().await?;
    // A rejected import (malformed file) is a failure for scripts: non-zero exit, reason on stderr.
    summary.into_result()?;
    Ok(())
}

/// `passerelle settle`: a settlement batch of the funder (approved with `--approve`), its SEPA
/// file and statements in `out`; the summary on stdout.
pub async fn settle(
    settings: &Settings,
    funder_code: &str,
    cutoff: Option<&str>,
    approve: bool,
    out: &std::path::Path,
    json: bool,
) -> anyhow::Result<()> {
    let db = connect_and_migrate(settings).await?;
    let funder = funder(&db, funder_code).await?;
    let cutoff = match cutoff {
        Some(day) => day.trim().parse().map_err(|_| Error::bad_input("cutoff", "a date like 2026-12-15"))?,
        None => settlement::due_cutoff(&db, funder.id).await?,
    };
    let pb = bar(0, "settling");
    let progress = |done: u64, total: u64| {
        pb.set_length(total);
        pb.set_position(done);
    };
    let input = settlement::CreateBatch { funder_id: funder.id, cutoff };
    let actor = passerelle_domain::auth::Actor::tool("cli");
    let run = settlement::settle_to_files(&db, &input, approve, out, &actor, &progress).await?;
    pb.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string(&run)?);
    } else {
        println!(
            "batch {} up to {cutoff}: {} partners, {} lines, {:.2} € ({}); files in {}",
            run.batch_id,
            run.partners,
            run.lines,
            run.total_cents as f64 / 100.0,
            if run.approved { "approved" } else { "draft: approve it to pay" },
            out.display()
        );
    }
    db.close().await?;
    Ok(())
}

/// `passerelle worker`: the scheduler alone, until a signal (or one sweep with `--once`).
pub async fn worker(settings: &Settings, once: bool) -> anyhow::Result<()> {
    let db = connect_and_migrate(settings).await?;
    if once {
        let report = crate::scheduler::tick(&db).await?;
        println!("{}", serde_json::to_string(&report)?);
        db.close().await?;
        return Ok(());
    }
    // The same loops as in `serve`: the scheduler, and the notification dispatcher (beside
    // any server's: rows are claimed).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    crate::scheduler::spawn(db.clone(), Duration::from_secs(settings.scheduler_secs.max(1)), stop.clone());
    let push = crate::fcm::push_sender(settings)?;
    let mail = crate::mailer::mailer(settings)?;
    let pace = Duration::from_millis(settings.dispatch_ms.max(50));
    let options = crate::notifications::options(settings);
    crate::notifications::spawn(db.clone(), pace, options, push, mail, stop.clone());
    tokio::signal::ctrl_c().await?;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    db.close().await?;
    Ok(())
}

/// `passerelle rotate-ticket-key`: new tickets are signed with a new key from now on.
pub async fn rotate_ticket_key(settings: &Settings) -> anyhow::Result<()> {
    let db = connect_and_migrate(settings).await?;
    let data_key = crate::keys::data_key(settings)?;
    let kid = passerelle_domain::spending::TicketKeys::rotate(&db, &data_key).await?;
    println!("tickets are now signed with key {kid}; earlier keys stay in the JWKS while their tickets live");
    db.close().await?;
    Ok(())
}

/// `passerelle requests stats`: how long the funder's families wait, per kind of request.
pub async fn request_stats(settings: &Settings, funder_code: &str, json: bool) -> anyhow::Result<()> {
    let db = connect_and_migrate(settings).await?;
    let funder = funder(&db, funder_code).await?;
    let stats = passerelle_domain::request::delay_stats(&db, funder.id).await?;
    if json {
        println!("{}", serde_json::to_string(&stats)?);
    } else {
        let hours = |h: Option<f64>| h.map_or_else(|| "-".to_owned(), |h| format!("{h:.1} h"));
        for k in &stats {
            println!(
                "{:<20} {:>4} filed, {:>4} open, {:>4} decided | acknowledged p50 {} p90 {} | decided p50 {} p90 {} | \
                 past the {}-day target: {} open, {} decided",
                k.kind.to_string(),
                k.submitted,
                k.open,
                k.decided,
                hours(k.acknowledgement.median_hours),
                hours(k.acknowledgement.p90_hours),
                hours(k.decision.median_hours),
                hours(k.decision.p90_hours),
                k.target_days,
                k.open_past_target,
                k.decided_past_target,
            );
        }
    }
    db.close().await?;
    Ok(())
}
