//! The one mapping from domain errors to GraphQL errors.
//!
//! async-graphql converts any `Display` error into a message, which would send internal text
//! (SQL, file paths) to clients. Resolvers therefore return [`ApiResult`]: every domain error
//! goes through `From<Error> for ApiError` below, where user-facing errors keep their message
//! and get a stable `extensions.code`, and internal ones are logged with their cause and reach
//! the client as "internal error" with code `INTERNAL`.

use async_graphql::ErrorExtensions;
use passerelle_domain::Error;

/// A resolver error, already mapped (hence cheap to clone, as async-graphql requires).
#[derive(Debug, Clone)]
pub struct ApiError(pub async_graphql::Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let code = e.code();
        let message = match &e {
            Error::Internal(source) => {
                tracing::error!(error = %source, "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let field = match &e {
            Error::BadInput { field, .. } => Some(field.clone()),
            _ => None,
        };
        let retry_after = match &e {
            Error::Throttled { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        ApiError(async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(field) = &field {
                ext.set("field", field.as_str());
            }
            // The HTTP layer turns the largest into a `Retry-After` header.
            if let Some(secs) = retry_after {
                ext.set("retryAfter", secs);
            }
        }))
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        ApiError::from(Error::from(e))
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        e.0
    }
}

/// Result type for resolvers.
pub type ApiResult<T> = Result<T, ApiError>;
