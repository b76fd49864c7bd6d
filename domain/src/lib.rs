//! Passerelle's application core.
//!
//! Pure rules (money, identifiers, ledger arithmetic, parsers, eligibility) are plain functions;
//! the services beside them run those rules inside database transactions through sea-orm. This
//! crate knows nothing of HTTP or GraphQL: the `graphql` crate maps [`Error::code`] to
//! `extensions.code`, and the `api` crate wires the rest.

/// The one pattern of every enum stored as text or exposed (CONTRIBUTING.md): `Display` /
/// `FromStr` in snake_case (strum) give the stored text, `DeriveValueType` binds and reads it
/// (an unknown stored value is an error, never a default), serde writes the same spelling,
/// `VariantArray` lists the variants. Written once here rather than repeated on each enum;
/// extra derives (`PartialOrd`, `Ord`) go as an attribute inside.
#[macro_export]
macro_rules! stored_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Clone,
            Copy,
            Debug,
            PartialEq,
            Eq,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
            ::strum::Display,
            ::strum::EnumString,
            ::strum::IntoStaticStr,
            ::strum::VariantArray,
            ::sea_orm::DeriveValueType,
        )]
        #[serde(rename_all = "snake_case")]
        #[strum(serialize_all = "snake_case")]
        #[sea_orm(value_type = "String")]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }
    };
}

pub mod auth;
pub mod campaign;
pub mod db;
pub mod eligibility;
pub mod error;
pub mod funder;
pub mod grant;
pub mod identity;
pub mod ids;
pub mod ledger;
pub mod mail;
pub mod money;
pub mod notify;
pub mod partner;
pub mod request;
pub mod school;
pub mod settlement;
pub mod spending;
pub mod usecase;

pub use error::{Error, Result};
pub use money::Cents;
