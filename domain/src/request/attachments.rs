//! Proof documents (pièces justificatives): PDF, JPEG or PNG up to 10 MB, recognised by their
//! first bytes — never by a name or a declared type — and kept in an `object_store` (a local
//! directory by default, an S3-compatible bucket in production) under their id. Only the
//! uploader, the family of the request they are bound to, and that funder's staff read them.

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use sea_orm::{ConnectionTrait, FromQueryResult, Value};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::access::{HANDLERS, READERS, RequestCaller};
use super::query::load;
use crate::auth::{AccountKind, Principal};
use crate::db::{now_us, stmt};
use crate::error::{Error, Result};

/// The largest document accepted: the Pass+ forms' own limit (pass-plus-domain.md, complaint 4).
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;

/// A stored document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, FromQueryResult)]
pub struct Attachment {
    pub id: Uuid,
    pub owner_account_id: Uuid,
    pub request_id: Option<Uuid>,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub created_at_us: i64,
}

pub(super) const ATTACHMENT_COLUMNS: &str =
    "id, owner_account_id, request_id, content_type, size, sha256, created_at_us";

/// The type of a document from its first bytes, if it is one we take.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

fn object_path(id: Uuid) -> Path {
    Path::from(format!("attachments/{id}"))
}

/// Keeps a document uploaded by a parent, or by staff handling requests (at the counter).
pub async fn store_attachment<C: ConnectionTrait>(
    db: &C,
    store: &dyn ObjectStore,
    uploader: &Principal,
    bytes: Vec<u8>,
) -> Result<Attachment> {
    let may = match uploader.account.kind {
        AccountKind::Parent => true,
        AccountKind::Staff => uploader.staff_roles.iter().any(|(_, r)| HANDLERS.contains(r)),
        AccountKind::PartnerMember => false,
    };
    if !may {
        return Err(Error::Forbidden);
    }
    if bytes.is_empty() || bytes.len() > MAX_ATTACHMENT_BYTES {
        return Err(Error::bad_input("file", "a document of at most 10 MB"));
    }
    let content_type = sniff(&bytes).ok_or_else(|| Error::bad_input("file", "only PDF, JPEG or PNG documents"))?;
    let id = Uuid::now_v7();
    let size = bytes.len() as i64;
    let sha256 = crate::identity::token::hex_encode(&Sha256::digest(&bytes));
    store.put(&object_path(id), bytes.into()).await.map_err(Error::internal)?;
    let now = now_us(db).await?;
    let sql = "INSERT INTO attachment (id, owner_account_id, request_id, content_type, size, sha256, created_at_us) \
               VALUES ($1, $2, NULL, $3, $4, $5, $6)";
    let values: [Value; 6] =
        [id.into(), uploader.account.id.into(), content_type.into(), size.into(), sha256.clone().into(), now.into()];
    if let Err(e) = db.execute_raw(stmt(db.get_database_backend(), sql, values)).await {
        // No row, no document: an unreferenced object would never be read nor cleaned.
        let _ = store.delete(&object_path(id)).await;
        return Err(e.into());
    }
    Ok(Attachment {
        id,
        owner_account_id: uploader.account.id,
        request_id: None,
        content_type: content_type.to_owned(),
        size,
        sha256,
        created_at_us: now,
    })
}

/// A document the caller may read, with its bytes; `NOT_FOUND` for anyone else.
pub async fn attachment_for<C: ConnectionTrait>(
    db: &C,
    store: &dyn ObjectStore,
    caller: &RequestCaller<'_>,
    id: Uuid,
) -> Result<(Attachment, Vec<u8>)> {
    let sql = format!("SELECT {ATTACHMENT_COLUMNS} FROM attachment WHERE id = $1");
    let found = Attachment::find_by_statement(stmt(db.get_database_backend(), &sql, [id.into()])).one(db).await?;
    let found = found.ok_or(Error::NotFound("attachment"))?;
    let reaches = found.owner_account_id == caller.account()
        || match found.request_id {
            Some(request) => caller.reaches(&load(db, request).await?, READERS),
            None => false,
        };
    if !reaches {
        return Err(Error::NotFound("attachment"));
    }
    let got = store.get(&object_path(id)).await.map_err(Error::internal)?;
    let bytes = got.bytes().await.map_err(Error::internal)?;
    Ok((found, bytes.to_vec()))
}
