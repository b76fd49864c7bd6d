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
pub use server::{RunningServer, connect_and_migrate, start};
