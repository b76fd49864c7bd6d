//! The `passerelle` service: configuration, command line, HTTP server and (later) workers.
//!
//! `main.rs` only parses the command line; everything else is here so the end-to-end tests
//! start the very same server on a random port.

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

/// mimalloc instead of the system allocator, for every binary that runs the service (the
/// server, the worker, the benchmarks). A request allocates and frees thousands of small
/// values (the GraphQL document, rows, JSON); glibc's malloc and free were 15 % of the
/// server's time on the parent home query (`perf` during `spending-bench`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
pub use server::{RunningServer, connect_and_migrate, start};
