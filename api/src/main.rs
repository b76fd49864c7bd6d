//! `passerelle`: see `passerelle --help`.

use anyhow::Context as _;
use clap::Parser;
use passerelle_api::cli::{Cli, Command, RequestsCommand};
use passerelle_api::{Settings, connect_and_migrate, jobs, start, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::ExportSchema { out }) = &cli.command {
        let sdl = passerelle_graphql::export_sdl();
        return match out {
            Some(path) => std::fs::write(path, sdl).with_context(|| format!("writing {}", path.display())),
            None => {
                print!("{sdl}");
                Ok(())
            }
        };
    }
    let settings = Settings::from_env()?;
    telemetry::init(settings.log_json);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            connect_and_migrate(&settings).await?;
            println!("migrations applied ({})", settings.database_kind());
            Ok(())
        }
        Command::Import { funder, format, partial, json, files } => {
            jobs::import(&settings, &funder, &format, &files, partial, json).await
        }
        Command::Grant { funder, school_year, json } => jobs::grant(&settings, &funder, school_year, json).await,
        Command::Settle { funder, cutoff, approve, out, json } => {
            jobs::settle(&settings, &funder, cutoff.as_deref(), approve, &out, json).await
        }
        Command::Worker { once } => jobs::worker(&settings, once).await,
        Command::RotateTicketKey => jobs::rotate_ticket_key(&settings).await,
        Command::Requests { command: RequestsCommand::Stats { funder, json } } => {
            jobs::request_stats(&settings, &funder, json).await
        }
        Command::Serve | Command::ExportSchema { .. } => serve(settings).await,
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let db = connect_and_migrate(&settings).await?;
    let demo = if settings.demo { passerelle_api::demo::seed(&db, &settings).await? } else { None };
    let totp = if settings.demo { passerelle_api::demo::staff_totp_secret(&db, &settings).await? } else { None };
    let production = settings.is_production();
    let kind = settings.database_kind();
    let server = start(settings, db, true).await?;
    println!("Passerelle is listening on http://{} ({kind})", server.addr);
    println!("  GraphQL:  POST http://{}/graphql", server.addr);
    if !production {
        println!("  GraphiQL: http://{}/graphiql", server.addr);
    }
    println!("  Health:   http://{0}/healthz  Ready: http://{0}/readyz", server.addr);
    if let Some(d) = demo {
        println!(
            "Demo data seeded: funder 92 (Hauts-de-Seine), campaign Pass+ 2026-2027, {} pupils, {} passes",
            d.pupils, d.passes
        );
    }
    if let Some(secret) = totp {
        println!("Demo accounts (password {}):", passerelle_api::demo::DEMO_PASSWORD);
        println!("  parent@example.org   parent, linked to Léa and Hugo Martin (passes, a ticket, a payment)");
        println!("  partner@example.org  owner of the Club de judo de Bagneux (sport; redeems tickets)");
        println!("  staff@example.org    admin of funder 92 (sign-in needs a TOTP code)");
        println!("staff TOTP secret: {secret}");
    }
    server.wait().await
}
