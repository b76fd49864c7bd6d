//! Requests (demandes): what a family asks of the funder — enrolment, the boursier bonus, a
//! lost card, a data correction, a redemption dispute — from the app or at the counter
//! ("guichet"), acknowledged, followed and closed within measured delays.
//!
//! - [`rules`]: the pure state machine (which party may do what from which status).
//! - [`submit`] / [`open_at_counter`]: a new request, its subject checked (a family reaches
//!   only its linked children's pupils, passes and redemptions), its proof documents bound.
//! - [`act`]: every later step — acknowledge, ask for information, answer, approve, reject,
//!   cancel, comment, assign — as one conditional update on the status (two staff members
//!   deciding at once: one wins, the other gets `CONFLICT`), an event row, the family's
//!   notification in the outbox and, for an approval, its effect: all in one transaction.
//! - [`attachments`]: proof documents through `object_store`, checked by content.
//! - [`delay_stats`]: the median and 90th percentile delays per kind, and the late ones.

mod access;
pub mod attachments;
mod effects;
mod model;
mod query;
pub mod rules;
mod stats;
mod workflow;

pub use access::{HANDLERS, READERS, RequestCaller};
pub use attachments::{Attachment, MAX_ATTACHMENT_BYTES, attachment_for, sniff, store_attachment};
pub use model::{Channel, Request, RequestEvent, Subject};
pub use query::{QueueFilter, get_request, list_for_requester, queue, request_attachments, request_events};
pub use rules::{Action, Party, RequestKind, RequestStatus};
pub use stats::{Delay, KindDelays, delay_stats, percentile};
pub(crate) use workflow::file_affiliation_in;
pub use workflow::{Act, MAX_ATTACHMENTS, MAX_MESSAGE, NewRequest, act, open_at_counter, submit};
