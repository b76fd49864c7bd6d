//! The `passerelle` service: configuration, command line, HTTP server and (later) workers.
//!
//! `main.rs` only parses the command line; everything else is here so the end-to-end tests
//! start the very same server on a random port.

/// mimalloc rather than glibc's malloc: a GraphQL answer is built from many small allocations
/// (values, maps, strings), freed on whichever worker thread the request ends. In interleaved
/// rounds of the spending bench over four sittings it gave 10–28 % more home screens per second
/// and a lower p99, redemptions within the noise (README, spending section). The roster import
/// was 15–18 % slower with it in one sitting and the same within the noise in the next; its
/// peak RSS is about twice glibc's (63 MB against 35 MB for 100,000 pupils). Declared in the library so the tests and benches run the server as
/// `passerelle` does.
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
