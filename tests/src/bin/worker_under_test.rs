//! `passerelle worker` as a separate process for the crash test (`tests/it/notifications_crash.rs`),
//! which kills it with SIGKILL mid-batch: the same entry point, the settings from the
//! environment. A bin of this package because Cargo gives its tests only their own package's
//! binaries' paths (`CARGO_BIN_EXE_*`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = passerelle_api::Settings::from_env()?;
    passerelle_api::jobs::worker(&settings, false).await
}
