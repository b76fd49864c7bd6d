//! What we read from a provider's claims besides the identity: a display name, a verified
//! e-mail address, and (ENT) the children's AAF jointure ids.

use openidconnect::core::CoreGenderClaim;
use openidconnect::{AdditionalClaims, EndUserEmail, IdTokenClaims, LocalizedClaim, UserInfoClaims};
use passerelle_domain::auth::OidcClaims;
use serde::{Deserialize, Serialize};

/// Claims beyond the standard ones. `children` is kept as raw JSON so that an odd shape is
/// ignored rather than failing the sign-in.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    children: Option<serde_json::Value>,
    /// EduConnect's profile of the person (`eleve1d`, `eleve2d`, `resp1d`, `resp2d`), a list
    /// or a single value (ent-formats.md §4.1).
    #[serde(rename = "FrEduCtPersonAffiliation", default, skip_serializing_if = "Option::is_none")]
    affiliation: Option<serde_json::Value>,
}

impl AdditionalClaims for ExtraClaims {}

/// The profile part of an ID token or a userinfo answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    name: Option<String>,
    verified_email: Option<String>,
    children: Vec<String>,
    /// Lower-cased `FrEduCtPersonAffiliation` values.
    pub affiliations: Vec<String>,
}

impl Profile {
    pub fn of(c: &IdTokenClaims<ExtraClaims, CoreGenderClaim>) -> Profile {
        let names = [untagged(c.name()), untagged(c.given_name()), untagged(c.family_name())];
        Profile::from_parts(names, c.email(), c.email_verified(), c.additional_claims())
    }

    pub fn of_userinfo(c: &UserInfoClaims<ExtraClaims, CoreGenderClaim>) -> Profile {
        let names = [untagged(c.name()), untagged(c.given_name()), untagged(c.family_name())];
        Profile::from_parts(names, c.email(), c.email_verified(), c.additional_claims())
    }

    /// `[name, given_name, family_name]`: `name`, else the other two.
    fn from_parts(
        [name, given, family]: [Option<&str>; 3],
        email: Option<&EndUserEmail>,
        email_verified: Option<bool>,
        extra: &ExtraClaims,
    ) -> Profile {
        let name = match name {
            Some(n) => n.trim().to_owned(),
            None => format!("{} {}", given.unwrap_or_default(), family.unwrap_or_default()).trim().to_owned(),
        };
        Profile {
            name: Some(name.chars().take(100).collect()).filter(|n: &String| !n.is_empty()),
            verified_email: email.filter(|_| email_verified == Some(true)).map(|e| e.as_str().trim().to_lowercase()),
            children: children(extra.children.as_ref()),
            affiliations: strings(extra.affiliation.as_ref()).map(|a| a.trim().to_lowercase()).collect(),
        }
    }

    /// This profile, completed from `other` where it says nothing.
    pub fn or(self, other: Profile) -> Profile {
        Profile {
            name: self.name.or(other.name),
            verified_email: self.verified_email.or(other.verified_email),
            children: if self.children.is_empty() { other.children } else { self.children },
            affiliations: if self.affiliations.is_empty() { other.affiliations } else { self.affiliations },
        }
    }

    /// The claims for the domain; issuer and subject are the caller's to set.
    pub fn into_claims(self) -> OidcClaims {
        OidcClaims {
            issuer: String::new(),
            subject: String::new(),
            display_name: self.name.unwrap_or_default(),
            verified_email: self.verified_email,
            children: self.children,
        }
    }
}

/// A claim's string values: an array of strings, or one string.
fn strings(claim: Option<&serde_json::Value>) -> impl Iterator<Item = &str> {
    let (one, many) = match claim {
        Some(serde_json::Value::String(s)) => (Some(s.as_str()), None),
        Some(serde_json::Value::Array(a)) => (None, Some(a.iter().filter_map(serde_json::Value::as_str))),
        _ => (None, None),
    };
    one.into_iter().chain(many.into_iter().flatten())
}

/// The value of a localized claim without a language tag.
fn untagged<T: std::ops::Deref<Target = String>>(claim: Option<&LocalizedClaim<T>>) -> Option<&str> {
    claim.and_then(|c| c.get(None)).map(|v| v.as_str())
}

/// `children`: jointure ids as strings, or objects with `externalId` as the ENT's CAS answer
/// has them; anything else is skipped.
fn children(claim: Option<&serde_json::Value>) -> Vec<String> {
    let Some(serde_json::Value::Array(items)) = claim else { return vec![] };
    items
        .iter()
        .filter_map(|i| match i {
            serde_json::Value::String(s) => Some(s.as_str()),
            serde_json::Value::Object(o) => o.get("externalId").and_then(|v| v.as_str()),
            _ => None,
        })
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= 64)
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn affiliations_are_read_from_a_list_or_a_single_value() {
        let list = json!(["resp2d", 3, "eleve2d"]);
        assert_eq!(strings(Some(&list)).collect::<Vec<_>>(), ["resp2d", "eleve2d"]);
        assert_eq!(strings(Some(&json!("resp1d"))).collect::<Vec<_>>(), ["resp1d"]);
        assert_eq!(strings(Some(&json!({ "a": 1 }))).count(), 0);
        assert_eq!(strings(None).count(), 0);
    }

    #[test]
    fn children_are_read_from_strings_or_ent_entries() {
        let claim = json!(["3284894", { "externalId": "3284893", "displayName": "x" }, 12, { "id": "u" }, " "]);
        assert_eq!(children(Some(&claim)), ["3284894", "3284893"]);
        assert!(children(Some(&json!("3284894"))).is_empty());
        assert!(children(None).is_empty());
    }

    #[test]
    fn the_id_token_wins_and_userinfo_fills_the_gaps() {
        let token = Profile {
            name: None,
            verified_email: Some("a@example.org".into()),
            children: vec![],
            affiliations: vec![],
        };
        let info = Profile {
            name: Some("Camille".into()),
            verified_email: Some("b@example.org".into()),
            children: vec!["1".into()],
            affiliations: vec!["resp1d".into()],
        };
        assert_eq!(
            token.or(info),
            Profile {
                name: Some("Camille".into()),
                verified_email: Some("a@example.org".into()),
                children: vec!["1".into()],
                affiliations: vec!["resp1d".into()],
            }
        );
    }
}
