//! The `passerelle` service: configuration, command line, HTTP server and (later) workers.
//!
//! `main.rs` only parses the command line; everything else is here so the end-to-end tests
//! start the very same server on a random port.

/// With the `mimalloc` feature, mimalloc rather than glibc's malloc. A GraphQL answer is built
/// from many small allocations freed on whichever worker thread the request ends: in five
/// interleaved rounds of the spending bench it gave 3–28 % more home screens per second and a
/// lower p99 in each, redemptions within the noise. But it made the PostgreSQL roster import
/// 8–14 % slower in the same sitting (and 15–18 % in an earlier one), with twice the peak RSS
/// (63 against 32–35 MB for 100,000 pupils); the import's aim is 5,000 pupils/s. So glibc stays
/// the default and an operator whose load is mostly the apps may choose it (README, spending
/// section). Declared in the library so the benches run the server as `passerelle` does.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod attachments;
mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod ent;
mod error;
pub mod fcm;
mod graphql_http;
mod http;
pub mod jobs;
pub mod keys;
mod live;
pub mod mailer;
pub mod notifications;
mod oauth;
pub mod oidc;
pub mod scheduler;
pub mod server;
mod state;
pub mod telemetry;
mod uploads;

pub use config::{Environment, Settings};
pub use server::{RunningServer, connect_and_migrate, start};
