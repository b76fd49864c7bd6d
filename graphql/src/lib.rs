//! The GraphQL schema served at `POST /graphql`.
//!
//! Resolvers are thin: parse the input, make one domain call, map the result. Errors go
//! through [`error::ApiError`], the one mapping from domain errors to `extensions.code`.
//! Limits (depth, complexity, directives, recursion) are set here so every transport that
//! executes the schema gets them.

pub mod error;
mod scalars;
mod server_info;

use async_graphql::{EmptyMutation, EmptySubscription, MergedObject, SDLExportOptions, Schema};
use sea_orm::DatabaseConnection;

pub use error::ApiError;
pub use scalars::Money;
pub use server_info::ServerInfo;

/// Root query: one object per feature, merged.
#[derive(MergedObject, Default)]
pub struct Query(server_info::ServerInfoQuery);

pub type AppSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// What the schema needs from the running service.
#[derive(Clone)]
pub struct SchemaConfig {
    pub server_info: ServerInfo,
    /// Production hides introspection and "did you mean" suggestions (security.md G9/G10).
    pub production: bool,
}

/// Builds the schema with its limits and shared data.
pub fn build_schema(db: Option<DatabaseConnection>, config: SchemaConfig) -> AppSchema {
    let mut builder = Schema::build(Query::default(), EmptyMutation, EmptySubscription)
        .limit_depth(12)
        .limit_complexity(500)
        .limit_directives(8)
        .limit_recursive_depth(32)
        .data(config.server_info.clone());
    if let Some(db) = db {
        builder = builder.data(db);
    }
    if config.production {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
}

/// The SDL committed as `mobile-contract/schema.graphql`: sorted, so diffs show real changes.
pub fn export_sdl() -> String {
    let schema = build_schema(None, SchemaConfig { server_info: ServerInfo::default(), production: false });
    schema.sdl_with_options(SDLExportOptions::new().sorted_fields().sorted_arguments().sorted_enum_items())
}
