//! Relay connections with opaque keyset cursors (base64 of the last row's id).

use async_graphql::connection::{Connection, Edge, EmptyFields};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use passerelle_domain::Error;
use passerelle_domain::spending::Page;
use uuid::Uuid;

use crate::error::ApiError;

pub const MAX_PAGE: i32 = 100;
pub const DEFAULT_PAGE: i32 = 20;

pub fn cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// `first` in 1..=100 (default 20).
fn first_of(first: Option<i32>) -> Result<u64, ApiError> {
    let first = first.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&first) {
        return Err(Error::bad_input("first", "between 1 and 100").into());
    }
    Ok(first as u64)
}

/// `first` in 1..=100 (default 20) and the decoded `after` cursor.
pub fn page(first: Option<i32>, after: Option<&str>) -> Result<(u64, Option<Uuid>), ApiError> {
    let first = first_of(first)?;
    let after = match after {
        None => None,
        Some(c) => {
            let bytes = URL_SAFE_NO_PAD.decode(c).map_err(|_| Error::bad_input("after", "not a cursor"))?;
            Some(Uuid::from_slice(&bytes).map_err(|_| Error::bad_input("after", "not a cursor"))?)
        }
    };
    Ok((first, after))
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

/// `first` ≤ 100 and the `(time, id)` cursor.
/// (One row more than asked: [`connection`] tells from it whether another page follows.)
pub(crate) fn keyset(first: Option<i32>, after: Option<&str>) -> Result<Page, ApiError> {
    Ok(Page { first: first_of(first)? + 1, after: after.map(decode_time_cursor).transpose()? })
}

/// A page of `rows` (one more than asked, to know whether another follows).
pub(crate) fn connection<T, N: async_graphql::OutputType>(
    page: &Page,
    mut rows: Vec<T>,
    key: impl Fn(&T) -> (i64, Uuid),
    node: impl Fn(T) -> N,
) -> Connection<String, N, EmptyFields, EmptyFields> {
    let has_next = rows.len() as u64 >= page.first;
    rows.truncate(page.first as usize - 1);
    let mut conn = Connection::new(page.after.is_some(), has_next);
    conn.edges.extend(rows.into_iter().map(|r| {
        let (at, id) = key(&r);
        Edge::new(time_cursor(at, id), node(r))
    }));
    conn
}

/// Cursor over `(name, id)` for lists ordered by name.
pub(crate) fn name_cursor(name: &str, id: Uuid) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{id}{name}"))
}

pub(crate) fn decode_name_cursor(cursor: &str) -> Result<(String, Uuid), ApiError> {
    use base64::Engine as _;
    let bad = || ApiError::from(Error::bad_input("after", "not a cursor"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (id, name) = (text.get(..36).ok_or_else(bad)?, text.get(36..).ok_or_else(bad)?);
    Ok((name.to_owned(), Uuid::parse_str(id).map_err(|_| bad())?))
}
