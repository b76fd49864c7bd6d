//! `POST /attachments` and `GET /attachments/{id}`: a request's proof documents.
//!
//! Uploads come before the request that uses them (`submitRequest(attachmentIds)`), from a
//! parent or from staff handling requests (at the counter). The body is the raw file, 10 MB at
//! most, PDF, JPEG or PNG by its first bytes. Reading it back is for its uploader, the
//! request's family and the funder's staff only; anyone else gets 404, as for any object of
//! another family.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use passerelle_domain::Error;
use passerelle_domain::auth::{AccountKind, Authenticated};
use passerelle_domain::request::{self, MAX_ATTACHMENT_BYTES, READERS, RequestCaller};
use serde_json::json;
use uuid::Uuid;

use crate::auth::{Auth, AuthRejection};
use crate::error::refuse;
use crate::state::AppState;

fn domain_refusal(e: Error) -> Response {
    match e {
        Error::Unauthenticated | Error::Forbidden => AuthRejection(e).into_response(),
        Error::NotFound(_) => refuse(StatusCode::NOT_FOUND, "NOT_FOUND", "no such attachment"),
        Error::BadInput { ref message, .. } => refuse(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", message),
        other => {
            tracing::error!(error = %other, "attachment");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error")
        }
    }
}

/// Stores one document; answers `{"id", "size", "contentType", "sha256"}`.
pub async fn upload(State(state): State<AppState>, auth: Auth, body: Body) -> Response {
    let principal = match &auth.caller {
        None => return AuthRejection(Error::Unauthenticated).into_response(),
        Some(Authenticated::Account(p)) => p,
        Some(Authenticated::ApiClient(_)) => return AuthRejection(Error::Forbidden).into_response(),
    };
    // The cap is enforced while reading: a larger body is never held whole.
    let bytes = match axum::body::to_bytes(body, MAX_ATTACHMENT_BYTES).await {
        Ok(b) => b,
        Err(_) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "a document is at most 10 MB"),
    };
    if request::sniff(&bytes).is_none() {
        return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", "only PDF, JPEG or PNG documents");
    }
    match request::store_attachment(&state.db, state.attachments.as_ref(), principal, bytes.to_vec()).await {
        Ok(a) => Json(json!({ "id": a.id, "size": a.size, "contentType": a.content_type, "sha256": a.sha256 }))
            .into_response(),
        Err(e) => domain_refusal(e),
    }
}

/// The document's bytes, never rendered inline by a browser (`attachment`, `nosniff`).
pub async fn download(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> Response {
    let caller = match &auth.caller {
        None => return AuthRejection(Error::Unauthenticated).into_response(),
        Some(Authenticated::Account(p)) if p.account.kind == AccountKind::Parent => {
            RequestCaller::Family { account: p.account.id }
        }
        Some(Authenticated::Account(p))
            if p.account.kind == AccountKind::Staff && p.staff_roles.iter().any(|(_, r)| READERS.contains(r)) =>
        {
            RequestCaller::Staff { principal: p, on_behalf: false }
        }
        Some(_) => return AuthRejection(Error::Forbidden).into_response(),
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return refuse(StatusCode::NOT_FOUND, "NOT_FOUND", "no such attachment");
    };
    match request::attachment_for(&state.db, state.attachments.as_ref(), &caller, id).await {
        Ok((a, bytes)) => {
            let mut response = bytes.into_response();
            let headers = response.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&a.content_type) {
                headers.insert(header::CONTENT_TYPE, v);
            }
            headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
            response
        }
        Err(e) => domain_refusal(e),
    }
}

/// The documents' store: a directory under the data directory (created if missing).
pub fn local_store(data_dir: &std::path::Path) -> anyhow::Result<std::sync::Arc<dyn object_store::ObjectStore>> {
    let dir = data_dir.join("attachments");
    std::fs::create_dir_all(&dir)?;
    Ok(std::sync::Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir)?))
}
