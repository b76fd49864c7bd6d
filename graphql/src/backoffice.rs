//! Back-office operations of the contract: campaigns, eligibility, the grant, the roster.

mod campaign;
mod roster;

pub use campaign::{CampaignMutation, CampaignQuery, GqlGrade};
pub use roster::{ImportsQuery, RosterMutation, RosterQuery, Uploads};
