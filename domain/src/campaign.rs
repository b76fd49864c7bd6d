//! Campaigns: one school year of one funder, with a versioned policy.
//!
//! Rules change every year (amounts, grades, dates): nothing of it is hard-coded. Each change
//! of policy is a new version, kept with its author, so a decision can be explained later with
//! the rules that applied when it was made.

mod policy;
mod service;

pub use policy::{
    DEFAULT_DECISION_DAYS, DEFAULT_TICKET_VALIDITY_DAYS, Policy, PolicyError, RequestTarget, TerritoryRule,
    WalletAmounts, end_of_day_us,
};
pub use service::{Campaign, find_campaign, get_campaign, list_campaigns, upsert_campaign};
