//! The access-token signing key (`PASSERELLE_JWT_KEY_FILE`) and the data key sealing secrets at
//! rest (`PASSERELLE_DATA_KEY`): from the configuration, or — outside production — generated
//! once under the data directory so tokens and sealed secrets survive restarts.

use std::sync::Arc;

use anyhow::Context as _;
use passerelle_domain::auth::AuthConfig;
use passerelle_domain::identity::{AccessTokenKeys, DataKey};
use secrecy::ExposeSecret;

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
        data_key: data_key(settings)?,
    }))
}

/// The data key: `PASSERELLE_DATA_KEY`, else `<data dir>/data-key` (created on first start).
/// Losing a generated key loses the staff TOTP enrolments sealed with it.
pub fn data_key(settings: &Settings) -> anyhow::Result<DataKey> {
    if let Some(k) = &settings.data_key {
        return DataKey::from_base64(k.expose_secret()).map_err(|e| anyhow::anyhow!("PASSERELLE_DATA_KEY: {e}"));
    }
    let path = settings.data_dir.join("data-key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return DataKey::from_base64(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
    }
    let key = DataKey::generate();
    std::fs::create_dir_all(&settings.data_dir)?;
    write_private(&path, &key.to_base64()).with_context(|| format!("writing {}", path.display()))?;
    tracing::warn!(path = %path.display(), "generated a development data key");
    Ok(key)
}

/// Creates `path` readable by its owner only (where the platform has modes).
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}
