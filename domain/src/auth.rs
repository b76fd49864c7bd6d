//! Accounts, sign-in and device sessions over the pure primitives of [`crate::identity`].
//!
//! * sign-in answers the same (`UNAUTHENTICATED`, same message, an Argon2 verification either
//!   way) for an unknown e-mail, a wrong password, a wrong TOTP code and a disabled account
//!   (security.md A4);
//! * attempts are throttled (GCRA, reserved before checking): refused only per (account,
//!   address), slowed down per account and per address ([`guard`], A3);
//! * a session per device holds a chain of single-use refresh tokens; presenting a used one
//!   revokes the whole session, except the device's own race within 20 s ([`refresh`]) (A9);
//!   absolute expiry 90 days (12 hours for staff);
//! * staff TOTP seeds are stored sealed with the data key ([`totp_store`]);
//! * every request re-reads the session, the account and the roles from the database, so a
//!   revocation takes effect at once (A10, Z4);
//! * partner software signs in with client credentials ([`api_clients`]) and is re-checked
//!   against the database on each request in the same way;
//! * sensitive operations want a recent proof of credentials on the session ([`reauth`]);
//! * decisions taken for others (staff links, API credentials) leave an audit row ([`audit`]).

mod accounts;
pub mod api_clients;
pub mod audit;
mod ent;
mod federated;
mod guard;
mod link_guard;
mod links;
mod membership;
mod oidc;
mod principal;
pub mod reauth;
mod refresh;
mod sessions;
mod staff_links;
mod throttle;
mod totp_store;

pub(crate) use accounts::account_kind;
pub(crate) use accounts::tokio_blocking;
pub use accounts::{
    Account, AccountKind, StaffRole, create_account, create_staff_account, find_account_by_email,
    request_password_reset, reset_password, sign_up, verify_email,
};
pub use api_clients::{
    ApiClient, ClientPrincipal, ClientToken, IssuedSecret, client_credentials_grant, create_api_client,
    list_api_clients, revoke_api_client, rotate_api_client_secret,
};
pub use audit::Actor;
pub use ent::{EntClaims, EntValidator, ent_sign_in, parse_service_response};
pub use guard::argon2_permits;
pub use link_guard::{MAX_ATTEMPTS_PER_CHILD, MAX_CHALLENGES_PER_CHILD, clear_child_link_guard};
pub use links::{LinkChallenge, confirm_child_link, linked_funders, linked_pupils, normalize_name, request_child_link};
pub use membership::{PartnerRole, membership_of};
pub use oidc::{
    AuthorizationStart, BoxFuture, FLOW_TTL_SECS, OidcClaims, OidcProvider, OidcProviders, OidcStart, PendingFlow,
    complete_oidc_sign_in, start_oidc_sign_in,
};
pub use principal::{Authenticated, Principal, authenticate};
pub use reauth::{REAUTH_WINDOW_SECS, reauthenticate, require_recent_auth};
pub use refresh::{REFRESH_GRACE_SECS, refresh};
pub use sessions::{AuthConfig, Device, Session, Tokens, list_sessions, log_in, log_out};
pub use staff_links::{LinkAction, LinkChange, LinkDecision, decide_family_link, pupil_funder};
pub use throttle::{Slot, Throttle, ip_bucket, reserve, throttle_check, throttle_fail, throttle_purge, throttle_reset};
pub use totp_store::{seal_clear_totp_secrets, totp_secret_of};
