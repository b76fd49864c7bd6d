//! The command line: `passerelle [serve|migrate|import|grant|settle|export-schema]`.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Passerelle: ENT rosters, the Pass ledger and the mobile API of a département.
#[derive(Debug, Parser)]
#[command(name = "passerelle", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate, seed the demo (outside production) and serve HTTP (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Import roster files (AAF XML, SIECLE BEE XML or the département CSV) for a funder.
    Import {
        /// The funder's code, e.g. 92.
        #[arg(long)]
        funder: String,
        /// aaf, siecle or csv.
        #[arg(long)]
        format: String,
        /// The files are a partial update: pupils absent from them are not marked as left.
        #[arg(long)]
        partial: bool,
        /// Print the final counts as one JSON line.
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Create passes and credit every eligible pupil of a campaign (exactly once).
    Grant {
        #[arg(long)]
        funder: String,
        /// The starting year of the school year: 2026 for 2026-27.
        #[arg(long)]
        school_year: i32,
        #[arg(long)]
        json: bool,
    },
    /// Pay partners: a settlement batch of everything owed up to the cutoff, its SEPA file and
    /// one CSV statement per partner written into `--out`.
    Settle {
        #[arg(long)]
        funder: String,
        /// The last day settled (YYYY-MM-DD); by default the end of the funder's latest
        /// period over (the 15th or the end of last month, on the default schedule).
        #[arg(long)]
        cutoff: Option<String>,
        /// Approve the batch too (the books then say the partners are paid).
        #[arg(long)]
        approve: bool,
        #[arg(long)]
        out: PathBuf,
        /// Print the summary as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Run the scheduler alone (ticket expiry, the generation-deadline close of wallets).
    Worker {
        /// One sweep, its counts as one JSON line, then exit.
        #[arg(long)]
        once: bool,
    },
    /// Requests (demandes): the delay figures.
    Requests {
        #[command(subcommand)]
        command: RequestsCommand,
    },
    /// Start signing tickets with a new key; the old ones stay published while their tickets live.
    RotateTicketKey,
    /// Print the GraphQL schema (SDL), or write it to a file.
    ExportSchema {
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RequestsCommand {
    /// Per kind: median and 90th percentile delays to acknowledgement, first response and
    /// decision, and the requests past the policy's target.
    Stats {
        #[arg(long)]
        funder: String,
        /// One JSON line (an array, one object per kind).
        #[arg(long)]
        json: bool,
    },
}
