//! The CAS client of the ENT: validates a service ticket with `/serviceValidate`.
//!
//! A CAS ticket is bound to the service it was issued for. Validating it for whatever service
//! the app names would sign in with a ticket issued to *any* service of the same CAS (another
//! site the parent uses, which then holds a ticket good for their Pass account). So the
//! service sent to CAS is always one of Passerelle's own (`PASSERELLE_ENT_SERVICE_URLS`), equal
//! to the app's value byte for byte; any other value is refused before CAS is asked.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use passerelle_domain::Error;
use passerelle_domain::auth::EntValidator;

use crate::config::Settings;

pub struct CasClient {
    base: String,
    services: Vec<String>,
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
            let Some(service) = self.services.iter().find(|s| s.as_str() == service) else {
                tracing::warn!("ENT sign-in for a service that is not Passerelle's: refused");
                return Err(Error::Unauthenticated);
            };
            let url = reqwest::Url::parse_with_params(
                &format!("{}/serviceValidate", self.base),
                &[("ticket", ticket), ("service", service.as_str())],
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
    Ok(Some(Arc::new(CasClient {
        base: base.clone(),
        services: settings.ent_service_urls.clone(),
        funder: settings.ent_funder.clone(),
        http,
    })))
}
