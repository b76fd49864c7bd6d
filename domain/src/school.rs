//! School data from the ENT feed: parsing (pure) and, beside it, the import service.

pub mod import;
pub mod parse;
pub mod query;
