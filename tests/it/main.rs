//! The one integration-test binary (fast to link): end-to-end tests over HTTP, ledger
//! behaviour, property and race tests. Each runs on SQLite, or on PostgreSQL when
//! `TEST_DATABASE_URL` is set.

mod affiliation;
mod auth;
mod authz_matrix;
mod backend;
mod backoffice;
mod contract;
mod contract_breaking;
mod contract_operations;
mod directory;
mod ent;
mod family;
mod grant;
mod grant_guards;
mod http;
mod ledger_basic;
mod ledger_guards;
mod ledger_props;
mod ledger_races;
mod ledger_scope;
mod notifications;
mod notifications_crash;
mod notifications_settled;
mod oidc;
mod partner_clients;
mod protocols;
mod reauth;
mod requests_counter;
mod requests_inputs;
mod requests_story;
mod school_import;
mod school_import_aaf;
mod school_import_details;
mod school_import_leavers;
mod school_import_snapshots;
mod settlement;
mod settlement_http;
mod spending_home;
mod spending_inputs;
mod spending_races;
mod spending_story;
mod staff_links;
mod throttle;
mod trusted_documents;
mod uploads;
