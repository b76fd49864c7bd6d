//! Passerelle's application core.
//!
//! Pure rules (money, identifiers, ledger arithmetic, parsers, eligibility) are plain functions;
//! the services beside them run those rules inside database transactions through sea-orm. This
//! crate knows nothing of HTTP or GraphQL: the `graphql` crate maps [`Error::code`] to
//! `extensions.code`, and the `api` crate wires the rest.

pub mod auth;
pub mod campaign;
pub mod db;
pub mod eligibility;
pub mod error;
pub mod funder;
pub mod grant;
pub mod identity;
pub mod ids;
pub mod ledger;
pub mod mail;
pub mod money;
pub mod notify;
pub mod partner;
pub mod request;
pub mod school;
pub mod settlement;
pub mod spending;
pub mod usecase;

pub use error::{Error, Result};
pub use money::Cents;
