//! Back-office operations of the contract: campaigns, eligibility, the grant, the roster, and
//! staff decisions on family links.

mod campaign;
mod family_links;
mod roster;

pub use campaign::{CampaignMutation, CampaignQuery, GqlGrade};
pub use family_links::FamilyLinkMutation;
pub use roster::{ImportsQuery, RosterMutation, RosterQuery, Uploads};
