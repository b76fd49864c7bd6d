//! Eligibility: who gets a Pass in a campaign.
//!
//! [`evaluate`] is a pure function of the pupil's school facts and the policy, returning a
//! decision with every reason. The service stores one decision per pupil and campaign,
//! recomputes it after each import, and keeps a staff override (with reason and author) across
//! recomputations.

mod rules;
mod service;

pub use rules::{Computed, Decision, PupilFacts, evaluate};
pub use service::{EligibilityRow, RecomputeSummary, get_eligibility, recompute, set_eligibility, set_eligibility_in};
