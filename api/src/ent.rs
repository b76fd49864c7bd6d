//! The CAS client of the ENT: validates a service ticket with `/serviceValidate`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use passerelle_domain::Error;
use passerelle_domain::auth::EntValidator;

use crate::config::Settings;

pub struct CasClient {
    base: String,
    funder: String,
    http: reqwest::Client,
}

impl EntValidator for CasClient {
    fn issuer(&self) -> &str {
        &self.base
    }

    fn funder_code(&self) -> &str {
        &self.funder
    }

    fn validate<'a>(
        &'a self,
        ticket: &'a str,
        service: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, Error>> + Send + 'a>> {
        Box::pin(async move {
            let url = reqwest::Url::parse_with_params(
                &format!("{}/serviceValidate", self.base),
                &[("ticket", ticket), ("service", service)],
            )
            .map_err(|_| Error::bad_input("service", "not a URL"))?;
            let response = self.http.get(url).send().await.map_err(Error::internal)?;
            if !response.status().is_success() {
                tracing::warn!(status = %response.status(), "ENT CAS answered with an error");
                return Err(Error::Unauthenticated);
            }
            // A CAS answer is a few KiB; refuse anything absurd.
            let body = response.text().await.map_err(Error::internal)?;
            if body.len() > 256 * 1024 {
                return Err(Error::Unauthenticated);
            }
            Ok(body)
        })
    }
}

/// The ENT client when `PASSERELLE_ENT_CAS_URL` is set.
pub fn validator(settings: &Settings) -> anyhow::Result<Option<Arc<dyn EntValidator>>> {
    let Some(base) = &settings.ent_cas_url else { return Ok(None) };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    Ok(Some(Arc::new(CasClient { base: base.clone(), funder: settings.ent_funder.clone(), http })))
}
