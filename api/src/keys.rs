//! The access-token signing key: from `PASSERELLE_JWT_KEY_FILE`, or — outside production —
//! generated once under the data directory so tokens survive restarts.

use std::sync::Arc;

use anyhow::Context as _;
use passerelle_domain::auth::AuthConfig;
use passerelle_domain::identity::AccessTokenKeys;

use crate::config::Settings;

pub fn auth_config(settings: &Settings) -> anyhow::Result<Arc<AuthConfig>> {
    let keys = match &settings.jwt_key_file {
        Some(path) => {
            let pem = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            AccessTokenKeys::from_pkcs8_pem(&pem).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => {
            let path = settings.data_dir.join("jwt-ed25519.pem");
            if let Ok(pem) = std::fs::read_to_string(&path) {
                AccessTokenKeys::from_pkcs8_pem(&pem).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            } else {
                let keys = AccessTokenKeys::generate();
                let pem = keys.to_pkcs8_pem().map_err(|e| anyhow::anyhow!("{e}"))?;
                std::fs::create_dir_all(&settings.data_dir)?;
                std::fs::write(&path, pem.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
                tracing::warn!(path = %path.display(), "generated a development signing key");
                keys
            }
        }
    };
    Ok(Arc::new(AuthConfig {
        keys,
        issuer: settings.public_url.clone(),
        audience: settings.public_url.clone(),
        access_ttl_secs: 15 * 60,
    }))
}
