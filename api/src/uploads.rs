//! `POST /uploads`: a roster file for `importRoster`, streamed to disk under the data directory.
//!
//! Checked by content, not by name (DESIGN.md "Files"): the first bytes must look like XML
//! (optionally after a byte-order mark) or like text (no NUL byte: CSV). Size is capped while
//! streaming, so a huge body never fills the disk. Back-office only, like `importRoster`: the
//! caller must be a staff member who may import rosters for some funder, in every environment,
//! and the file is stored under the uploader's account, so only the uploader's own
//! `importRoster` finds it (which checks the funder role).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use passerelle_graphql::Uploads;
use passerelle_graphql::access::ROSTER_IMPORTERS;
use serde_json::json;
use tokio::io::AsyncWriteExt as _;
use uuid::Uuid;

use crate::auth::Auth;
use crate::error::refuse;
use crate::state::AppState;

/// Largest roster file accepted (a whole académie's AAF Eleve chunk is ~150 MB).
pub const MAX_UPLOAD: u64 = 512 * 1024 * 1024;

/// Accepts one file as the raw request body; answers `{"id": "…", "size": n}`.
pub async fn upload(State(state): State<AppState>, auth: Auth, body: Body) -> Response {
    let uploader = match auth.staff_with_any(ROSTER_IMPORTERS) {
        Ok(p) => p.account.id,
        Err(refusal) => return refusal.into_response(),
    };
    let id = Uuid::new_v4();
    let path = Uploads { dir: state.settings.data_dir.join("uploads") }.path(uploader, id);
    if let Some(dir) = path.parent()
        && let Err(e) = tokio::fs::create_dir_all(dir).await
    {
        tracing::error!(error = %e, "cannot create the uploads directory");
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error");
    }
    match store(&path, body).await {
        Ok(size) => Json(json!({ "id": id.to_string(), "size": size })).into_response(),
        Err(r) => {
            let _ = tokio::fs::remove_file(&path).await;
            r
        }
    }
}

async fn store(path: &std::path::Path, body: Body) -> Result<u64, Response> {
    let internal = |e: std::io::Error| {
        tracing::error!(error = %e, "upload write failed");
        refuse(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error")
    };
    let mut file = tokio::fs::File::create(path).await.map_err(internal)?;
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    let mut head: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| refuse(StatusCode::BAD_REQUEST, "BAD_REQUEST", "the upload was interrupted"))?;
        size += chunk.len() as u64;
        if size > MAX_UPLOAD {
            return Err(refuse(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "the file is larger than 512 MiB"));
        }
        if head.len() < 4096 {
            head.extend_from_slice(&chunk[..chunk.len().min(4096 - head.len())]);
        }
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.flush().await.map_err(internal)?;
    if size == 0 || !looks_like_roster(&head) {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "only XML or CSV roster files",
        ));
    }
    Ok(size)
}

/// XML (after an optional UTF-8 BOM and blanks) or NUL-free text.
fn looks_like_roster(head: &[u8]) -> bool {
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    first == Some(&b'<') || !body.contains(&0)
}
