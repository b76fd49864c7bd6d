//! Typed configuration from the environment.
//!
//! Every setting has a `PASSERELLE_*` name (plus the conventional `DATABASE_URL`). Anything
//! malformed, and any unknown `PASSERELLE_*` name (a typo would otherwise be silently
//! ignored), stops the start-up with a message naming the variable. Production refuses the
//! development conveniences: an implicit SQLite file, the demo seed.

mod oidc;

use std::net::SocketAddr;
use std::path::PathBuf;

use passerelle_domain::Cents;
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use std::str::FromStr;

pub use oidc::OidcProviderSettings;

/// Where the service runs; production turns off every development convenience.
/// `PASSERELLE_ENV` holds its snake_case name (unset or empty: development).
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::Display, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Environment {
    Development,
    Test,
    Production,
}

/// The service's settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub environment: Environment,
    pub bind: SocketAddr,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` headers name the client
    /// (`PASSERELLE_TRUSTED_PROXIES`, CIDRs); from any other peer those headers are ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub data_dir: PathBuf,
    /// Full database URL; may hold a password, hence secret.
    pub database_url: SecretString,
    pub db_max_connections: u32,
    /// Largest amount one money-moving request may carry.
    pub max_amount: Cents,
    /// Largest amount one ledger leg may move, whoever asks (the ledger's own guard against
    /// arithmetic abuse; far above `max_amount`).
    pub ledger_max_leg: Cents,
    /// Seconds between two scheduler sweeps in `serve` and `worker` (ticket expiry, the
    /// deadline close of wallets); 0 turns the scheduler off in `serve` (tests drive it).
    pub scheduler_secs: u64,
    /// Milliseconds between two outbox dispatches (inbox, push, e-mail) in `serve` and
    /// `worker`; 0 turns the dispatcher off in `serve` (tests drive it).
    pub dispatch_ms: u64,
    /// How long a dispatcher's claim on outbox rows lasts: the rows of one that died are sent
    /// by another after this. Longer than a pass takes; short only in tests.
    pub dispatch_lease_ms: u64,
    /// FCM HTTP v1: the service account JSON file; without it no push is sent.
    pub fcm_credentials: Option<std::path::PathBuf>,
    /// FCM's base URL (a local fake in tests).
    pub fcm_endpoint: String,
    /// `enforce`: the apps' callers send registered operations only (production's default);
    /// `allow`: documents accepted from everyone (elsewhere's default).
    pub trusted_documents: passerelle_graphql::trusted::TrustedDocuments,
    /// Seed the demo funder, campaign and accounts on an empty database.
    pub demo: bool,
    pub log_json: bool,
    /// Ed25519 private key (PKCS#8 PEM) signing access tokens; required in production, generated
    /// under the data directory otherwise.
    pub jwt_key_file: Option<PathBuf>,
    /// 32 bytes in standard base64 sealing secrets at rest (staff TOTP seeds); required in
    /// production, generated under the data directory otherwise.
    pub data_key: Option<SecretString>,
    /// The service's public base URL: the access tokens' issuer and audience.
    pub public_url: String,
    /// Back-office operations without a staff account: only in the `test` environment.
    pub dev_back_office: bool,
    /// `smtp://host:port` or `smtps://user:pass@host` (lettre's URL form); without it, outside
    /// production, e-mails are written to the log.
    pub smtp_url: Option<SecretString>,
    pub mail_from: String,
    /// The ENT's CAS base URL (`…/cas`), enabling `entSignIn`; and the funder its ids belong to.
    pub ent_cas_url: Option<String>,
    /// The service URLs of Passerelle registered with the ENT's CAS (required with the CAS URL):
    /// a ticket is validated only for one of them, exactly, whatever the app says.
    pub ent_service_urls: Vec<String>,
    pub ent_funder: String,
    /// OIDC sign-in providers (`PASSERELLE_OIDC_PROVIDERS` and `PASSERELLE_OIDC_<NAME>_*`).
    pub oidc: Vec<OidcProviderSettings>,
}

/// A start-up configuration problem, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {var}: {message}")]
pub struct ConfigError {
    pub var: String,
    pub message: String,
}

const KNOWN: &[&str] = &[
    "PASSERELLE_ENV",
    "PASSERELLE_BIND",
    "PASSERELLE_TRUSTED_PROXIES",
    "PASSERELLE_DATA_DIR",
    "PASSERELLE_DB_MAX_CONNECTIONS",
    "PASSERELLE_MAX_AMOUNT",
    "PASSERELLE_LEDGER_MAX_LEG",
    "PASSERELLE_DEMO",
    "PASSERELLE_LOG_FORMAT",
    "PASSERELLE_JWT_KEY_FILE",
    "PASSERELLE_DATA_KEY",
    "PASSERELLE_PUBLIC_URL",
    "PASSERELLE_DEV_BACK_OFFICE",
    "PASSERELLE_SMTP_URL",
    "PASSERELLE_MAIL_FROM",
    "PASSERELLE_ENT_CAS_URL",
    "PASSERELLE_ENT_SERVICE_URLS",
    "PASSERELLE_ENT_FUNDER",
    "PASSERELLE_SCHEDULER_SECS",
    "PASSERELLE_TRUSTED_DOCUMENTS",
    "PASSERELLE_DISPATCH_MS",
    "PASSERELLE_DISPATCH_LEASE_MS",
    "PASSERELLE_FCM_CREDENTIALS",
    "PASSERELLE_FCM_ENDPOINT",
];

fn err(var: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { var: var.to_owned(), message: message.into() }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        Self::from_vars(&vars)
    }

    /// Reads settings from `(name, value)` pairs (the environment, or a test's list).
    pub fn from_vars(vars: &[(String, String)]) -> Result<Settings, ConfigError> {
        let get = |name: &str| vars.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_owned());
        let oidc_names = oidc::listed(get(oidc::PROVIDERS).as_deref());
        let known = |k: &str| KNOWN.contains(&k) || oidc::is_known(k, &oidc_names);
        if let Some((k, _)) = vars.iter().find(|(k, _)| k.starts_with("PASSERELLE_") && !known(k)) {
            return Err(err(k, format!("unknown setting (known: {})", KNOWN.join(", "))));
        }
        let environment = match get("PASSERELLE_ENV").as_deref() {
            None | Some("") => Environment::Development,
            Some(name) => name
                .parse()
                .map_err(|_| err("PASSERELLE_ENV", format!("{name:?} is not development, test or production")))?,
        };
        let production = environment == Environment::Production;
        let bind = match get("PASSERELLE_BIND") {
            Some(v) => {
                SocketAddr::from_str(&v).map_err(|_| err("PASSERELLE_BIND", format!("{v:?} is not host:port")))?
            }
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let trusted_proxies = trusted_proxies(get("PASSERELLE_TRUSTED_PROXIES").as_deref().unwrap_or(""))?;
        let data_dir = PathBuf::from(get("PASSERELLE_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url = match get("DATABASE_URL").filter(|v| !v.is_empty()) {
            Some(url)
                if url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://") =>
            {
                url
            }
            Some(_) => {
                return Err(err("DATABASE_URL", "must start with sqlite:, postgres:// or postgresql://"));
            }
            None if production => {
                return Err(err("DATABASE_URL", "required in production (no implicit SQLite file)"));
            }
            None => format!("sqlite://{}?mode=rwc", data_dir.join("passerelle.db").display()),
        };
        let db_max_connections =
            match get("PASSERELLE_DB_MAX_CONNECTIONS") {
                Some(v) => v.parse::<u32>().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
                    err("PASSERELLE_DB_MAX_CONNECTIONS", format!("{v:?} is not a number from 1 to 1000"))
                })?,
                None => 10,
            };
        let max_amount = match get("PASSERELLE_MAX_AMOUNT") {
            Some(v) => {
                Decimal::from_str(&v).ok().and_then(|d| Cents::from_decimal(d).ok()).filter(|c| c.0 > 0).ok_or_else(
                    || err("PASSERELLE_MAX_AMOUNT", format!("{v:?} is not a positive amount like 500.00")),
                )?
            }
            None => Cents(50_000),
        };
        let ledger_max_leg = match get("PASSERELLE_LEDGER_MAX_LEG") {
            Some(v) => {
                Decimal::from_str(&v).ok().and_then(|d| Cents::from_decimal(d).ok()).filter(|c| c.0 > 0).ok_or_else(
                    || err("PASSERELLE_LEDGER_MAX_LEG", format!("{v:?} is not a positive amount like 10000000.00")),
                )?
            }
            None => passerelle_domain::ledger::DEFAULT_MAX_LEG_AMOUNT,
        };
        let scheduler_secs = match get("PASSERELLE_SCHEDULER_SECS").filter(|v| !v.is_empty()) {
            Some(v) => v.parse::<u64>().ok().filter(|s| *s <= 86_400).ok_or_else(|| {
                err("PASSERELLE_SCHEDULER_SECS", format!("{v:?} is not a number of seconds (0 to 86400)"))
            })?,
            None => 60,
        };
        let dispatch_ms = match get("PASSERELLE_DISPATCH_MS").filter(|v| !v.is_empty()) {
            Some(v) => v.parse::<u64>().ok().filter(|s| *s <= 60_000).ok_or_else(|| {
                err("PASSERELLE_DISPATCH_MS", format!("{v:?} is not a number of milliseconds (0 to 60000)"))
            })?,
            None => 200,
        };
        let dispatch_lease_ms = match get("PASSERELLE_DISPATCH_LEASE_MS").filter(|v| !v.is_empty()) {
            Some(v) => v.parse::<u64>().ok().filter(|s| (100..=3_600_000).contains(s)).ok_or_else(|| {
                err("PASSERELLE_DISPATCH_LEASE_MS", format!("{v:?} is not a number of milliseconds (100 to 3600000)"))
            })?,
            None => 60_000,
        };
        let fcm_credentials = get("PASSERELLE_FCM_CREDENTIALS").filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
        let fcm_endpoint = get("PASSERELLE_FCM_ENDPOINT")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "https://fcm.googleapis.com".into());
        let trusted_documents = {
            use passerelle_graphql::trusted::TrustedDocuments;
            match get("PASSERELLE_TRUSTED_DOCUMENTS").as_deref() {
                None | Some("") if production => TrustedDocuments::Enforce,
                None | Some("") => TrustedDocuments::Allow,
                Some("enforce") => TrustedDocuments::Enforce,
                Some("allow") => TrustedDocuments::Allow,
                Some(v) => return Err(err("PASSERELLE_TRUSTED_DOCUMENTS", format!("{v:?}: enforce or allow"))),
            }
        };
        let demo = match get("PASSERELLE_DEMO").as_deref() {
            None | Some("") => !production,
            Some("1") | Some("true") if production => {
                return Err(err("PASSERELLE_DEMO", "the demo seed is refused in production"));
            }
            Some("1") | Some("true") => true,
            Some("0") | Some("false") => false,
            Some(other) => {
                return Err(err("PASSERELLE_DEMO", format!("{other:?} is not true or false")));
            }
        };
        let log_json = match get("PASSERELLE_LOG_FORMAT").as_deref() {
            None | Some("") | Some("json") => true,
            Some("pretty") => false,
            Some(other) => {
                return Err(err("PASSERELLE_LOG_FORMAT", format!("{other:?} is not json or pretty")));
            }
        };
        let jwt_key_file = get("PASSERELLE_JWT_KEY_FILE").filter(|v| !v.is_empty()).map(PathBuf::from);
        if production && jwt_key_file.is_none() {
            return Err(err("PASSERELLE_JWT_KEY_FILE", "required in production (no generated signing key)"));
        }
        let data_key = get("PASSERELLE_DATA_KEY").filter(|v| !v.is_empty());
        if let Some(k) = &data_key {
            passerelle_domain::identity::DataKey::from_base64(k)
                .map_err(|e| err("PASSERELLE_DATA_KEY", e.to_string()))?;
        } else if production {
            return Err(err("PASSERELLE_DATA_KEY", "required in production (no generated data key)"));
        }
        let public_url = get("PASSERELLE_PUBLIC_URL").unwrap_or_else(|| format!("http://{bind}"));
        let dev_back_office = match get("PASSERELLE_DEV_BACK_OFFICE").as_deref() {
            None | Some("") | Some("0") | Some("false") => false,
            Some("1") | Some("true") if environment == Environment::Test => true,
            Some(_) => return Err(err("PASSERELLE_DEV_BACK_OFFICE", "only `true` in the test environment")),
        };
        let smtp_url = get("PASSERELLE_SMTP_URL").filter(|v| !v.is_empty());
        if let Some(u) = &smtp_url
            && !(u.starts_with("smtp://") || u.starts_with("smtps://"))
        {
            return Err(err("PASSERELLE_SMTP_URL", "must start with smtp:// or smtps://"));
        }
        if production && smtp_url.is_none() {
            return Err(err("PASSERELLE_SMTP_URL", "required in production (e-mails would only be logged)"));
        }
        let mail_from =
            get("PASSERELLE_MAIL_FROM").unwrap_or_else(|| "Passerelle <no-reply@passerelle.localhost>".into());
        let ent_cas_url =
            get("PASSERELLE_ENT_CAS_URL").filter(|v| !v.is_empty()).map(|v| v.trim_end_matches('/').to_owned());
        if let Some(u) = &ent_cas_url
            && !(u.starts_with("https://") || (!production && u.starts_with("http://")))
        {
            return Err(err("PASSERELLE_ENT_CAS_URL", "must be an https:// URL (http:// outside production)"));
        }
        let ent_service_urls: Vec<String> = get("PASSERELLE_ENT_SERVICE_URLS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        if ent_cas_url.is_some() && ent_service_urls.is_empty() {
            return Err(err("PASSERELLE_ENT_SERVICE_URLS", "required with PASSERELLE_ENT_CAS_URL"));
        }
        let ent_funder = get("PASSERELLE_ENT_FUNDER").filter(|v| !v.is_empty()).unwrap_or_else(|| "92".into());
        let oidc = oidc::parse(&get, production)?;
        Ok(Settings {
            oidc,
            ent_cas_url,
            ent_service_urls,
            ent_funder,
            smtp_url: smtp_url.map(SecretString::from),
            mail_from,
            jwt_key_file,
            data_key: data_key.map(SecretString::from),
            public_url,
            dev_back_office,
            environment,
            bind,
            trusted_proxies,
            data_dir,
            database_url: SecretString::from(database_url),
            db_max_connections,
            max_amount,
            ledger_max_leg,
            scheduler_secs,
            dispatch_ms,
            dispatch_lease_ms,
            fcm_credentials,
            fcm_endpoint,
            trusted_documents,
            demo,
            log_json,
        })
    }

    /// How often `serve` sweeps, if it does.
    pub fn scheduler_interval(&self) -> Option<std::time::Duration> {
        (self.scheduler_secs > 0).then(|| std::time::Duration::from_secs(self.scheduler_secs))
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }

    /// `sqlite` or `postgres`.
    pub fn database_kind(&self) -> &'static str {
        if self.database_url.expose_secret().starts_with("sqlite:") { "sqlite" } else { "postgres" }
    }
}

/// `10.0.0.0/8, 192.0.2.7, 2001:db8::/32`: networks or single addresses, comma-separated.
fn trusted_proxies(list: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let parse = |item: &str| {
        item.parse::<ipnet::IpNet>()
            .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| err("PASSERELLE_TRUSTED_PROXIES", format!("{item:?} is not an address or a CIDR network")))
    };
    list.split(',').map(str::trim).filter(|i| !i.is_empty()).map(parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_to_sqlite_under_the_data_dir() {
        let s = Settings::from_vars(&vars(&[])).unwrap();
        assert_eq!(s.environment, Environment::Development);
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url.expose_secret(), "sqlite://./data/passerelle.db?mode=rwc");
        assert!(s.demo);
        assert_eq!(s.max_amount, Cents(50_000));
    }

    #[test]
    fn production_refuses_dev_defaults() {
        let e = Settings::from_vars(&vars(&[("PASSERELLE_ENV", "production")])).unwrap_err();
        assert_eq!(e.var, "DATABASE_URL");
        let e = Settings::from_vars(&vars(&[("PASSERELLE_ENV", "production"), ("DATABASE_URL", "postgres://db/p")]))
            .unwrap_err();
        assert_eq!(e.var, "PASSERELLE_JWT_KEY_FILE");
        let e = Settings::from_vars(&vars(&[
            ("PASSERELLE_ENV", "production"),
            ("DATABASE_URL", "postgres://db/passerelle"),
            ("PASSERELLE_JWT_KEY_FILE", "/k.pem"),
            ("PASSERELLE_DEMO", "true"),
        ]))
        .unwrap_err();
        assert_eq!(e.var, "PASSERELLE_DEMO");
        let ok = Settings::from_vars(&vars(&[
            ("PASSERELLE_ENV", "production"),
            ("DATABASE_URL", "postgres://db/p"),
            ("PASSERELLE_JWT_KEY_FILE", "/etc/passerelle/jwt.pem"),
            ("PASSERELLE_SMTP_URL", "smtps://mailer:secret@smtp.example.org"),
            ("PASSERELLE_DATA_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        ]));
        assert!(!ok.unwrap().demo);
        let e = Settings::from_vars(&vars(&[("PASSERELLE_DEV_BACK_OFFICE", "true")])).unwrap_err();
        assert_eq!(e.var, "PASSERELLE_DEV_BACK_OFFICE", "development mode does not open the back office");
    }

    #[test]
    fn malformed_and_unknown_settings_name_the_variable() {
        for (k, v) in [
            ("PASSERELLE_BIND", "localhost"),
            ("PASSERELLE_ENV", "prod"),
            ("PASSERELLE_DB_MAX_CONNECTIONS", "0"),
            ("PASSERELLE_MAX_AMOUNT", "12.345"),
            ("PASSERELLE_MAX_AMOUNT", "-5"),
            ("PASSERELLE_LEDGER_MAX_LEG", "0"),
            ("PASSERELLE_LEDGER_MAX_LEG", "1e40"),
            ("DATABASE_URL", "mysql://x"),
            ("PASSERELLE_BNID", "127.0.0.1:1"),
            ("PASSERELLE_DATA_KEY", "c2hvcnQ="),
        ] {
            let e = Settings::from_vars(&vars(&[(k, v)])).unwrap_err();
            assert_eq!(e.var, k, "{k}={v}");
        }
    }

    #[test]
    fn the_ent_needs_the_service_urls_it_validates_tickets_for() {
        let e = Settings::from_vars(&vars(&[("PASSERELLE_ENT_CAS_URL", "https://ent.example/cas")])).unwrap_err();
        assert_eq!(e.var, "PASSERELLE_ENT_SERVICE_URLS");
        let s = Settings::from_vars(&vars(&[
            ("PASSERELLE_ENT_CAS_URL", "https://ent.example/cas"),
            ("PASSERELLE_ENT_SERVICE_URLS", "https://pass.example/ent, fr.passerelle.app://ent"),
        ]))
        .unwrap();
        assert_eq!(s.ent_service_urls, ["https://pass.example/ent", "fr.passerelle.app://ent"]);
    }
}
