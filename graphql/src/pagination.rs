//! Relay connections with opaque keyset cursors (base64 of the last row's id).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use passerelle_domain::Error;
use uuid::Uuid;

use crate::error::ApiError;

pub const MAX_PAGE: i32 = 100;
pub const DEFAULT_PAGE: i32 = 20;

pub fn cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// `first` in 1..=100 (default 20) and the decoded `after` cursor.
pub fn page(first: Option<i32>, after: Option<&str>) -> Result<(u64, Option<Uuid>), ApiError> {
    let first = first.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&first) {
        return Err(Error::bad_input("first", "between 1 and 100").into());
    }
    let after = match after {
        None => None,
        Some(c) => {
            let bytes = URL_SAFE_NO_PAD.decode(c).map_err(|_| Error::bad_input("after", "not a cursor"))?;
            Some(Uuid::from_slice(&bytes).map_err(|_| Error::bad_input("after", "not a cursor"))?)
        }
    };
    Ok((first as u64, after))
}
