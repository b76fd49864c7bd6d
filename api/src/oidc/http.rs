//! `openidconnect`'s HTTP client trait over our reqwest client (reqwest 0.13, rustls), so the
//! crate's own reqwest integration (another reqwest major version) stays out of the build.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

/// Discovery documents, key sets and token answers are a few KiB.
const MAX_BODY: usize = 512 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("request to the provider failed: {0}")]
    Reqwest(#[from] reqwest::Error),
    #[error("the provider's answer exceeds {MAX_BODY} bytes")]
    TooLarge,
    #[error("the provider's answer cannot be represented: {0}")]
    Http(#[from] openidconnect::http::Error),
}

/// Talks to OIDC providers: short timeouts and no redirects (a provider endpoint that
/// redirects elsewhere is refused rather than followed, so no request is steered to a host
/// the configuration did not name).
#[derive(Clone)]
pub struct ProviderHttp(reqwest::Client);

impl ProviderHttp {
    pub fn new() -> reqwest::Result<ProviderHttp> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(ProviderHttp(client))
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let mut response = self.0.execute(reqwest::Request::try_from(request)?).await?;
        let mut builder = openidconnect::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(builder.body(body)?)
    }
}

impl<'c> AsyncHttpClient<'c> for ProviderHttp {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}
