//! `serverInfo`: what is running, for support and for the apps' diagnostics screen.

use async_graphql::{Context, Object, SimpleObject};

/// Build and deployment facts; no secrets.
#[derive(Clone, Debug, Default, SimpleObject)]
pub struct ServerInfo {
    /// The `passerelle` version.
    pub version: String,
    /// `development`, `test` or `production`.
    pub environment: String,
    /// `sqlite` or `postgres`.
    pub database: String,
}

#[derive(Default)]
pub struct ServerInfoQuery;

#[Object]
impl ServerInfoQuery {
    /// The running server's version, environment and database backend. Public.
    async fn server_info(&self, ctx: &Context<'_>) -> async_graphql::Result<ServerInfo> {
        Ok(ctx.data::<ServerInfo>()?.clone())
    }
}
