//! Back-office operations of the contract: campaigns, eligibility, the grant, the roster.

mod campaign;
mod roster;

pub use campaign::{CampaignMutation, CampaignQuery};
pub use roster::{RosterMutation, RosterQuery, Uploads};
