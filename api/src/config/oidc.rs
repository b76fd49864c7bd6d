//! OIDC providers from the environment.
//!
//! `PASSERELLE_OIDC_PROVIDERS=educonnect,franceconnect` names the providers; each then has its
//! `PASSERELLE_OIDC_<NAME>_*` settings (see [`FIELDS`]). A setting for a provider that is not
//! listed is an unknown setting, like any other typo.

use secrecy::SecretString;

use super::{ConfigError, err};

/// One OIDC provider.
#[derive(Clone, Debug)]
pub struct OidcProviderSettings {
    /// What apps pass as `provider` (lower-case letters and digits).
    pub name: String,
    /// The issuer URL; `<issuer>/.well-known/openid-configuration` is read for the endpoints.
    pub issuer: String,
    pub client_id: String,
    /// `None` for a public client (PKCE alone).
    pub client_secret: Option<SecretString>,
    /// The redirect URIs registered with the provider; the first is the default.
    pub redirect_uris: Vec<String>,
    /// Scopes beyond `openid`.
    pub scopes: Vec<String>,
    /// The funder whose roster the `children` claim (AAF jointure ids) refers to. Unset: the
    /// provider's children claims are ignored.
    pub children_funder: Option<String>,
    /// `FrEduCtPersonAffiliation` values allowed to sign in (EduConnect: `resp1d,resp2d`, the
    /// legal guardians). Empty: no such check. Set, a person without one of them is refused,
    /// so a pupil signing in through EduConnect never gets a parent account.
    pub affiliations: Vec<String>,
}

pub const PROVIDERS: &str = "PASSERELLE_OIDC_PROVIDERS";

/// The per-provider settings, after `PASSERELLE_OIDC_<NAME>_`.
pub const FIELDS: &[&str] =
    &["ISSUER", "CLIENT_ID", "CLIENT_SECRET", "REDIRECT_URIS", "SCOPES", "CHILDREN_FUNDER", "AFFILIATIONS"];

fn var(name: &str, field: &str) -> String {
    format!("PASSERELLE_OIDC_{}_{field}", name.to_uppercase())
}

/// The provider names listed in `PASSERELLE_OIDC_PROVIDERS` (not yet checked).
pub fn listed(providers: Option<&str>) -> Vec<String> {
    providers.unwrap_or("").split(',').map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect()
}

/// True for `PASSERELLE_OIDC_PROVIDERS` and the settings of a listed provider.
pub fn is_known(var_name: &str, names: &[String]) -> bool {
    var_name == PROVIDERS || names.iter().any(|n| FIELDS.iter().any(|f| var(n, f) == var_name))
}

/// Reads every listed provider; `get` returns a trimmed variable.
pub fn parse(get: &dyn Fn(&str) -> Option<String>, production: bool) -> Result<Vec<OidcProviderSettings>, ConfigError> {
    let names = listed(get(PROVIDERS).as_deref());
    let mut out: Vec<OidcProviderSettings> = vec![];
    for name in names {
        let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !valid || out.iter().any(|p| p.name == name) {
            return Err(err(PROVIDERS, format!("{name:?}: names are distinct, lower-case letters and digits")));
        }
        let required = |field: &str| {
            get(&var(&name, field)).filter(|v| !v.is_empty()).ok_or_else(|| err(&var(&name, field), "required"))
        };
        // Exactly as the provider writes it: discovery and ID tokens must carry this very string
        // (some issuers end with a slash).
        let issuer = required("ISSUER")?;
        if !(issuer.starts_with("https://") || (!production && issuer.starts_with("http://"))) {
            return Err(err(&var(&name, "ISSUER"), "must be an https:// URL (http:// outside production)"));
        }
        let list = |field: &str| -> Vec<String> {
            get(&var(&name, field))
                .unwrap_or_default()
                .split([',', ' '])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let redirect_uris = list("REDIRECT_URIS");
        if redirect_uris.is_empty() {
            return Err(err(&var(&name, "REDIRECT_URIS"), "required: the app's redirect URI(s), comma-separated"));
        }
        if let Some(bad) = redirect_uris.iter().find(|u| reqwest::Url::parse(u).is_err()) {
            return Err(err(&var(&name, "REDIRECT_URIS"), format!("{bad:?} is not a URI")));
        }
        out.push(OidcProviderSettings {
            issuer,
            client_id: required("CLIENT_ID")?,
            client_secret: get(&var(&name, "CLIENT_SECRET")).filter(|v| !v.is_empty()).map(SecretString::from),
            redirect_uris,
            scopes: list("SCOPES").into_iter().filter(|s| s != "openid").collect(),
            children_funder: get(&var(&name, "CHILDREN_FUNDER")).filter(|v| !v.is_empty()),
            affiliations: list("AFFILIATIONS").into_iter().map(|a| a.to_lowercase()).collect(),
            name,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_pairs(pairs: &[(&str, &str)], production: bool) -> Result<Vec<OidcProviderSettings>, ConfigError> {
        let get = |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.trim().to_owned());
        parse(&get, production)
    }

    #[test]
    fn reads_each_listed_provider() {
        let p = parse_pairs(
            &[
                (PROVIDERS, "ent, franceconnect"),
                ("PASSERELLE_OIDC_ENT_ISSUER", "https://ent.example/oidc/"),
                ("PASSERELLE_OIDC_ENT_CLIENT_ID", "pass"),
                ("PASSERELLE_OIDC_ENT_CLIENT_SECRET", "s3cret"),
                ("PASSERELLE_OIDC_ENT_REDIRECT_URIS", "fr.passerelle.app://oidc, https://app.example/oidc"),
                ("PASSERELLE_OIDC_ENT_SCOPES", "openid profile email"),
                ("PASSERELLE_OIDC_ENT_CHILDREN_FUNDER", "92"),
                ("PASSERELLE_OIDC_FRANCECONNECT_ISSUER", "https://fc.example"),
                ("PASSERELLE_OIDC_FRANCECONNECT_CLIENT_ID", "fc"),
                ("PASSERELLE_OIDC_FRANCECONNECT_REDIRECT_URIS", "fr.passerelle.app://oidc"),
            ],
            true,
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].issuer, "https://ent.example/oidc/", "kept as written: `iss` must match it exactly");
        assert_eq!(p[0].redirect_uris, ["fr.passerelle.app://oidc", "https://app.example/oidc"]);
        assert_eq!(p[0].scopes, ["profile", "email"]);
        assert_eq!(p[0].children_funder.as_deref(), Some("92"));
        assert!(p[1].client_secret.is_none() && p[1].children_funder.is_none());
    }

    #[test]
    fn problems_name_the_variable() {
        let base = [
            (PROVIDERS, "ent"),
            ("PASSERELLE_OIDC_ENT_CLIENT_ID", "c"),
            ("PASSERELLE_OIDC_ENT_REDIRECT_URIS", "app://cb"),
        ];
        let with = |extra: (&'static str, &'static str), production| {
            let mut v = base.to_vec();
            v.push(extra);
            parse_pairs(&v, production).unwrap_err().var
        };
        assert_eq!(with(("PASSERELLE_OIDC_ENT_ISSUER", "http://ent.example"), true), "PASSERELLE_OIDC_ENT_ISSUER");
        assert_eq!(with(("PASSERELLE_OIDC_ENT_ISSUER", "ftp://x"), false), "PASSERELLE_OIDC_ENT_ISSUER");
        assert_eq!(with(("X", "y"), false), "PASSERELLE_OIDC_ENT_ISSUER", "issuer is required");
        let e = parse_pairs(&[(PROVIDERS, "Ent_1")], false).unwrap_err();
        assert_eq!(e.var, PROVIDERS);
        let e = parse_pairs(
            &[
                (PROVIDERS, "ent"),
                ("PASSERELLE_OIDC_ENT_ISSUER", "https://ent.example"),
                ("PASSERELLE_OIDC_ENT_CLIENT_ID", "c"),
                ("PASSERELLE_OIDC_ENT_REDIRECT_URIS", "not a uri"),
            ],
            false,
        )
        .unwrap_err();
        assert_eq!(e.var, "PASSERELLE_OIDC_ENT_REDIRECT_URIS");
    }

    #[test]
    fn only_listed_providers_have_settings() {
        let names = listed(Some("ent"));
        assert!(is_known("PASSERELLE_OIDC_ENT_ISSUER", &names));
        assert!(!is_known("PASSERELLE_OIDC_FC_ISSUER", &names));
        assert!(!is_known("PASSERELLE_OIDC_ENT_ISSUR", &names));
    }
}
