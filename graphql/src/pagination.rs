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

/// Cursor over `(time, id)` for lists ordered by time.
pub fn time_cursor(at_us: i64, id: Uuid) -> String {
    let mut bytes = at_us.to_be_bytes().to_vec();
    bytes.extend_from_slice(id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn decode_time_cursor(cursor: &str) -> Result<(i64, Uuid), ApiError> {
    let bad = || ApiError::from(Error::bad_input("after", "not a cursor"));
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    if bytes.len() != 24 {
        return Err(bad());
    }
    let at = i64::from_be_bytes(bytes[..8].try_into().map_err(|_| bad())?);
    Ok((at, Uuid::from_slice(&bytes[8..]).map_err(|_| bad())?))
}
