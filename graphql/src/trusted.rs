//! Trusted documents: the operations of `mobile-contract/operations/` are registered by the
//! SHA-256 of their text (`mobile-contract/trusted-documents.json`, built into the server).
//!
//! With [`TrustedDocuments::Enforce`] (production's default), the apps' callers — parents,
//! partner members and anonymous callers — send `extensions.persistedQuery.sha256Hash` and
//! the server runs the registered document: an arbitrary query from a stolen token or a
//! scripted client is refused before parsing (`TRUSTED_DOCUMENT_REQUIRED`, or
//! `PERSISTED_QUERY_NOT_FOUND` for an unknown hash). Staff tools and partner API clients (club
//! software writes its own queries) may send documents. With [`TrustedDocuments::Allow`],
//! hashes are resolved and documents accepted from everyone.
//!
//! The [`crate::gateway::Gateway`] applies it before the schema, so both transports (HTTP and
//! the WebSocket of subscriptions) go through it.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_graphql::{ErrorExtensions as _, Request, ServerError, ServerResult, Value};
use passerelle_domain::auth::{AccountKind, Authenticated};
use sha2::{Digest, Sha256};

use crate::access::Caller;

/// The registry: SHA-256 (hex) → document.
static REGISTRY: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
    let text = include_str!("../../mobile-contract/trusted-documents.json");
    let entries: HashMap<String, TrustedDocument> = serde_json::from_str(text).unwrap_or_default();
    entries.into_iter().map(|(hash, d)| (hash, d.document)).collect()
});

/// One entry of `trusted-documents.json`.
#[derive(serde::Deserialize, serde::Serialize)]
pub struct TrustedDocument {
    /// Where it comes from: `parent/Home.graphql`.
    pub file: String,
    pub document: String,
}

/// The SHA-256 of a document's text, as clients send it.
pub fn document_hash(document: &str) -> String {
    passerelle_domain::identity::token::hex_encode(&Sha256::digest(document.as_bytes()))
}

/// Whether the apps' callers must send registered hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustedDocuments {
    Enforce,
    Allow,
}

fn refuse(code: &str, message: &str) -> ServerError {
    let e = async_graphql::Error::new(message).extend_with(|_, ext| ext.set("code", code));
    e.into_server_error(Default::default())
}

/// Callers that run the apps' registered operations only.
pub(crate) fn app_caller(caller: Option<&Caller>) -> bool {
    match caller.and_then(|c| c.0.as_ref()) {
        None => true,
        Some(Authenticated::ApiClient(_)) => false,
        Some(Authenticated::Account(p)) => p.account.kind != AccountKind::Staff,
    }
}

/// Puts the registered document of `request`'s `persistedQuery` hash in its place, or refuses
/// the request: an unknown hash, a document that does not match its hash, or (enforced) an
/// app's caller sending a document of its own.
pub(crate) fn resolve(mode: TrustedDocuments, request: &mut Request, app_caller: bool) -> ServerResult<()> {
    let hash = match request.extensions.0.get("persistedQuery") {
        Some(Value::Object(pq)) => match pq.get("sha256Hash") {
            Some(Value::String(h)) => Some(h.to_ascii_lowercase()),
            _ => return Err(refuse("BAD_USER_INPUT", "persistedQuery needs a sha256Hash")),
        },
        Some(_) => return Err(refuse("BAD_USER_INPUT", "persistedQuery must be an object")),
        None => None,
    };
    match hash {
        Some(hash) => {
            let Some(document) = REGISTRY.get(&hash) else {
                return Err(refuse("PERSISTED_QUERY_NOT_FOUND", "unknown persisted query"));
            };
            if !request.query.is_empty() && document_hash(&request.query) != hash {
                return Err(refuse("BAD_USER_INPUT", "the query does not match its sha256Hash"));
            }
            request.query = document.clone();
        }
        None if mode == TrustedDocuments::Enforce && app_caller => {
            return Err(refuse(
                "TRUSTED_DOCUMENT_REQUIRED",
                "send a registered operation: extensions.persistedQuery.sha256Hash",
            ));
        }
        None => {}
    }
    Ok(())
}

/// The number of registered documents (start-up log, tests).
pub fn registered() -> usize {
    REGISTRY.len()
}
