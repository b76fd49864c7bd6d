//! The command line: `passerelle [serve|migrate|export-schema]`.

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
    /// Print the GraphQL schema (SDL), or write it to a file.
    ExportSchema {
        #[arg(long)]
        out: Option<PathBuf>,
    },
}
