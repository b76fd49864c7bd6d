//! The one mapping from domain errors to GraphQL errors.
//!
//! async-graphql converts any `Display` error into a message, which would send internal text
//! (SQL, file paths) to clients. Resolvers therefore return [`ApiError`]: user-facing errors
//! keep their message and get a stable `extensions.code`; internal ones are logged with their
//! cause and reach the client as "internal error" with code `INTERNAL`.

use async_graphql::ErrorExtensions;
use passerelle_domain::Error;

/// A resolver error. Build it from a domain error with `?` or `.map_err(ApiError::from)`.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        ApiError(Error::from(e))
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        let code = e.0.code();
        let message = match &e.0 {
            Error::Internal(source) => {
                tracing::error!(error = %source, "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let field = match &e.0 {
            Error::BadInput { field, .. } => Some(field.clone()),
            _ => None,
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(field) = &field {
                ext.set("field", field.as_str());
            }
        })
    }
}

/// Result type for resolvers.
pub type ApiResult<T> = Result<T, ApiError>;
