//! The GraphQL schema served at `POST /graphql`.
//!
//! Resolvers are thin: parse the input, make one domain call, map the result. Errors go
//! through [`error::ApiError`], the one mapping from domain errors to `extensions.code`.
//! Limits (depth, complexity, directives, recursion) are set here so every transport that
//! executes the schema gets them.

pub mod access;
mod account;
mod affiliation;
mod backoffice;
mod directory;
pub mod documents;
pub mod error;
mod family;
mod gateway;
mod live;
mod loaders;
mod notifications;
mod oidc;
mod pagination;
mod partner;
mod redeem;
mod requests;
mod requests_staff;
mod scalars;
mod server_info;
mod settlement;
pub mod trusted;
pub use gateway::Gateway;
mod wallet;

use async_graphql::{Enum, ID, MergedObject, SDLExportOptions, Schema};
use passerelle_domain::Error;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

pub use access::{Access, Caller, ClientIp};
pub use backoffice::Uploads;
pub use error::ApiError;
pub use live::{LOOK_BACK_US, NotificationAdded, NotificationEvents, PassChanged, PassEvents, SentOnce};
pub use scalars::Money;
pub use server_info::ServerInfo;

/// Root query: one object per feature, merged.
#[derive(MergedObject, Default)]
pub struct Query(
    server_info::ServerInfoQuery,
    account::AccountQuery,
    oidc::OidcQuery,
    family::FamilyQuery,
    backoffice::CampaignQuery,
    backoffice::RosterQuery,
    backoffice::ImportsQuery,
    partner::PartnerQuery,
    redeem::RedeemQuery,
    notifications::NotificationQuery,
    requests::RequestQuery,
    requests_staff::RequestStaffQuery,
    directory::DirectoryQueryRoot,
    settlement::SettlementQuery,
);

/// Root mutation: one object per feature, merged.
#[derive(MergedObject, Default)]
pub struct Mutation(
    account::AccountMutation,
    oidc::OidcMutation,
    family::FamilyMutation,
    backoffice::CampaignMutation,
    backoffice::RosterMutation,
    backoffice::FamilyLinkMutation,
    partner::PartnerMutation,
    wallet::WalletMutation,
    redeem::RedeemMutation,
    notifications::NotificationMutation,
    requests::RequestMutation,
    requests_staff::RequestStaffMutation,
    directory::DirectoryMutation,
    settlement::SettlementMutation,
    affiliation::AffiliationMutation,
);

pub type AppSchema = Schema<Query, Mutation, live::Subscription>;

/// The Pass wallets (also a partner's categories).
// Mirrors the domain enum: `remote` derives the conversions both ways, so a new domain variant
// fails to compile here until it is exposed.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "Wallet", remote = "passerelle_domain::ledger::Wallet")]
pub enum GqlWallet {
    Sport,
    Culture,
}

/// Parses an `ID` argument; a malformed one is `BAD_USER_INPUT` naming the field.
pub(crate) fn parse_id(id: &ID, field: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id.as_str()).map_err(|_| ApiError::from(Error::bad_input(field, "not an id")))
}

/// What the schema needs from the running service.
#[derive(Clone)]
pub struct SchemaConfig {
    pub server_info: ServerInfo,
    /// Production hides introspection and "did you mean" suggestions (security.md G9/G10) and
    /// refuses the development-only back office.
    pub production: bool,
    pub uploads: Option<Uploads>,
    pub auth: Option<std::sync::Arc<passerelle_domain::auth::AuthConfig>>,
    pub ent: Option<std::sync::Arc<dyn passerelle_domain::auth::EntValidator>>,
    /// The OIDC sign-in providers (none: `oidcProviders` is empty).
    pub oidc: passerelle_domain::auth::OidcProviders,
    /// Tests of the back office without staff accounts (never in production).
    pub dev_back_office: bool,
    /// Committed pass changes, for `passUpdated`.
    pub pass_events: PassEvents,
    /// Inbox entries written, for `notificationAdded`.
    pub notification_events: NotificationEvents,
    /// Whether the apps' callers must send registered operations (`PASSERELLE_TRUSTED_DOCUMENTS`).
    pub trusted_documents: trusted::TrustedDocuments,
    /// The keys signing tickets' `qrPayload` (none: tickets cannot be issued).
    pub tickets: Option<std::sync::Arc<passerelle_domain::spending::TicketKeys>>,
    /// Parsed documents kept by their text ([`documents`]).
    pub documents: documents::DocumentCache,
}

/// Builds the schema with its limits and shared data.
pub fn build_schema(db: Option<DatabaseConnection>, config: SchemaConfig) -> AppSchema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), live::Subscription)
        .limit_depth(12)
        .limit_complexity(500)
        .limit_directives(8)
        .limit_recursive_depth(32)
        .data(Access { dev_back_office: config.dev_back_office && !config.production })
        .data(config.server_info.clone());
    if let Some(uploads) = config.uploads.clone() {
        builder = builder.data(uploads);
    }
    if let Some(auth) = config.auth.clone() {
        builder = builder.data(auth);
    }
    if let Some(ent) = config.ent.clone() {
        builder = builder.data(ent);
    }
    if let Some(tickets) = config.tickets.clone() {
        builder = builder.data(tickets);
    }
    builder = builder.data(config.pass_events.clone());
    builder = builder.data(config.notification_events.clone());
    builder = builder.data(config.oidc.clone());
    if let Some(db) = db {
        builder = builder.data(loaders::loaders(db.clone()));
        builder = builder.data(db);
    }
    if config.production {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
}

/// The schema behind its [`Gateway`] (trusted documents, kept parses): what the server runs.
pub fn build_gateway(db: Option<DatabaseConnection>, config: SchemaConfig) -> Gateway {
    let (trusted, documents) = (config.trusted_documents, config.documents.clone());
    Gateway::new(build_schema(db, config), trusted, documents)
}

/// The schema with no database and no services: for the SDL and for validating documents.
pub fn offline_schema() -> AppSchema {
    build_schema(None, offline_config(documents::DocumentCache::default()))
}

/// The same behind its gateway, with `documents` as its cache (tests of the cache).
#[cfg(test)]
fn offline_gateway(documents: documents::DocumentCache) -> Gateway {
    build_gateway(None, offline_config(documents))
}

fn offline_config(documents: documents::DocumentCache) -> SchemaConfig {
    SchemaConfig {
        server_info: ServerInfo::default(),
        production: false,
        uploads: None,
        auth: None,
        ent: None,
        oidc: Default::default(),
        dev_back_office: false,
        tickets: None,
        pass_events: PassEvents::new(),
        notification_events: NotificationEvents::default(),
        trusted_documents: trusted::TrustedDocuments::Allow,
        documents,
    }
}

/// The SDL committed as `mobile-contract/schema.graphql`: sorted, so diffs show real changes.
pub fn export_sdl() -> String {
    offline_schema().sdl_with_options(SDLExportOptions::new().sorted_fields().sorted_arguments().sorted_enum_items())
}
