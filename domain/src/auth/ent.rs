//! ENT sign-in through CAS (`/cas/serviceValidate`), as in the Hauts-de-Seine: one login for the
//! ENT and the Pass. The ENT's answer for a parent lists the children by AAF jointure id, the
//! same ids our roster holds, so the children are linked at once (DESIGN.md "Identity").
//!
//! Parsing is pure; fetching the answer is the caller's (an HTTP client in `api`).

use std::future::Future;
use std::pin::Pin;

use quick_xml::Reader;
use quick_xml::events::Event;
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use super::federated::{Identity, federated_sign_in};
use super::sessions::{AuthConfig, Device, Tokens};
use crate::error::{Error, Result};

/// What the ENT says about the person who signed in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntClaims {
    /// The ENT's stable id of the person (attribute `id`, else the CAS user name).
    pub subject: String,
    pub kinds: Vec<String>,
    pub display_name: String,
    pub email: Option<String>,
    /// AAF jointure ids of the children (`children[].externalId`).
    pub children: Vec<String>,
}

#[derive(Deserialize)]
struct ChildClaim {
    #[serde(rename = "externalId")]
    external_id: Option<String>,
}

/// Reads a CAS 2.0/3.0 `serviceResponse`. An `authenticationFailure` (or anything else) is
/// `UNAUTHENTICATED`: the ticket is not valid for this service.
pub fn parse_service_response(xml: &str) -> Result<EntClaims> {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = vec![];
    let mut user = None;
    let mut attrs: Vec<(String, String)> = vec![];
    let mut success = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if name == "authenticationSuccess" {
                    success = true;
                }
                path.push(name);
            }
            Ok(Event::End(_)) => {
                path.pop();
            }
            Ok(Event::Text(t)) => {
                let text = t.decode().map(|c| c.into_owned()).unwrap_or_default();
                let text = quick_xml::escape::unescape(&text).map(|c| c.into_owned()).unwrap_or(text);
                match path.last().map(String::as_str) {
                    Some("user") if path.iter().any(|p| p == "authenticationSuccess") => {
                        user = Some(text.trim().to_owned())
                    }
                    Some(name) if path.iter().any(|p| p == "userAttributes" || p == "attributes") => {
                        attrs.push((name.to_owned(), text.trim().to_owned()))
                    }
                    _ => {}
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(_) => return Err(Error::Unauthenticated),
        }
    }
    let Some(user) = user.filter(|u| success && !u.is_empty()) else { return Err(Error::Unauthenticated) };
    let attr = |n: &str| attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let kinds: Vec<String> = attr("type").and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    let children: Vec<ChildClaim> = attr("children").and_then(|c| serde_json::from_str(&c).ok()).unwrap_or_default();
    let display_name = attr("displayName")
        .or_else(|| Some(format!("{} {}", attr("firstName").unwrap_or_default(), attr("lastName").unwrap_or_default())))
        .map(|n| n.trim().to_owned())
        .unwrap_or_default();
    Ok(EntClaims {
        subject: attr("id").unwrap_or(user),
        kinds,
        display_name,
        email: attr("email"),
        children: children.into_iter().filter_map(|c| c.external_id).filter(|e| !e.is_empty()).collect(),
    })
}

/// Validates a CAS ticket against the ENT and returns its answer (implemented in `api`).
pub trait EntValidator: Send + Sync {
    /// The CAS server's base URL: the `issuer` of identities it vouches for.
    fn issuer(&self) -> &str;
    /// The code of the funder whose roster the ENT's jointure ids refer to ("92").
    fn funder_code(&self) -> &str;
    fn validate<'a>(
        &'a self,
        ticket: &'a str,
        service: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String>> + Send + 'a>>;
}

/// Signs a parent in from the ENT's claims: the account is found by (issuer, subject) — never by
/// e-mail — or created; the children the ENT lists are linked (see [`super::federated`]).
pub async fn ent_sign_in(
    db: &DatabaseConnection,
    auth: &AuthConfig,
    ent: &dyn EntValidator,
    claims: &EntClaims,
    device: &Device,
) -> Result<Tokens> {
    if !claims.kinds.iter().any(|k| k == "Relative") {
        return Err(Error::Forbidden);
    }
    let identity = Identity {
        issuer: ent.issuer(),
        subject: &claims.subject,
        display_name: &claims.display_name,
        email: claims.email.as_deref(),
        children: &claims.children,
        funder_code: Some(ent.funder_code()),
        via: "ent",
    };
    federated_sign_in(db, auth, &identity, device).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/ent/dossiersco_retour_ent_plusieurs_enfants.xml"
    ));

    #[test]
    fn the_ent_answer_for_a_parent_lists_the_children_by_jointure() {
        let c = parse_service_response(FIXTURE).unwrap();
        assert_eq!(c.subject, "aab0c73b-fbc2-4857-97fa-97f58e686215");
        assert_eq!(c.kinds, vec!["Relative"]);
        assert_eq!(c.display_name, "Henri FORD");
        assert_eq!(c.email.as_deref(), Some("henri@ford.com"));
        assert_eq!(c.children, vec!["3284894", "3284893"]);
    }

    #[test]
    fn failures_and_garbage_are_unauthenticated() {
        let failure = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationFailure code="INVALID_TICKET">Ticket ST-1 not recognized</cas:authenticationFailure></cas:serviceResponse>"#;
        for xml in [failure, "", "<html>oops", "<cas:serviceResponse/>"] {
            assert!(matches!(parse_service_response(xml), Err(Error::Unauthenticated)), "{xml}");
        }
    }
}
