//! OIDC providers over the `openidconnect` crate: discovery, authorization URL with PKCE,
//! state and nonce, code exchange and ID token checks (security.md A7). The flow's bookkeeping
//! and the sign-in itself are the domain's (`passerelle_domain::auth::oidc`).

mod claims;
mod http;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClientAuthMethod, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessToken, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IdTokenVerifier, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    SignatureVerificationError, StandardErrorResponse, StandardTokenResponse, SubjectIdentifier, TokenResponse,
    UserInfoClaims,
};
use passerelle_domain::Error;
use passerelle_domain::auth::{AuthorizationStart, BoxFuture, OidcClaims, OidcProvider, OidcProviders, PendingFlow};
use secrecy::ExposeSecret;
use tokio::sync::RwLock;

use crate::config::{OidcProviderSettings, Settings};
use claims::{ExtraClaims, Profile};
use http::ProviderHttp;

/// Discovery and keys are read again after this long (providers rotate keys; an unknown key
/// id triggers an earlier refresh).
const METADATA_TTL: Duration = Duration::from_secs(3600);

/// Asymmetric algorithms only: never `none`, and no HMAC, whose key would be our client secret.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

type Fields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Client = openidconnect::Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    StandardTokenResponse<Fields, CoreTokenType>,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// One configured provider, with its discovery document and keys cached.
pub struct OidcClient {
    settings: OidcProviderSettings,
    http: ProviderHttp,
    metadata: RwLock<Option<(Instant, CoreProviderMetadata)>>,
}

impl OidcClient {
    pub fn new(settings: OidcProviderSettings) -> anyhow::Result<OidcClient> {
        Ok(OidcClient { settings, http: ProviderHttp::new()?, metadata: RwLock::new(None) })
    }

    /// The discovery document with its key set; fetched again when older than the TTL or when
    /// `refresh` (a key id we do not know).
    async fn metadata(&self, refresh: bool) -> Result<CoreProviderMetadata, Error> {
        if !refresh
            && let Some((at, m)) = self.metadata.read().await.as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(m.clone());
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone()).map_err(Error::internal)?;
        let m = CoreProviderMetadata::discover_async(issuer, &self.http).await.map_err(|e| {
            tracing::warn!(provider = %self.settings.name, error = %e, "OIDC discovery failed");
            Error::internal(e)
        })?;
        *self.metadata.write().await = Some((Instant::now(), m.clone()));
        Ok(m)
    }

    /// A client over `metadata`. The secret goes in the Basic header, the default of the
    /// specification, unless the provider says it only takes it in the request body.
    fn client(&self, metadata: CoreProviderMetadata) -> Client {
        let methods = metadata.token_endpoint_auth_methods_supported().cloned().unwrap_or_default();
        let body_only = methods.contains(&CoreClientAuthMethod::ClientSecretPost)
            && !methods.contains(&CoreClientAuthMethod::ClientSecretBasic);
        let secret = self.settings.client_secret.as_ref().map(|s| ClientSecret::new(s.expose_secret().to_owned()));
        let client = Client::from_provider_metadata(metadata, ClientId::new(self.settings.client_id.clone()), secret);
        if body_only { client.set_auth_type(AuthType::RequestBody) } else { client }
    }

    async fn authorization(&self, redirect_uri: Option<&str>) -> Result<AuthorizationStart, Error> {
        let redirect = match redirect_uri {
            None => self.settings.redirect_uris.first(),
            Some(r) => self.settings.redirect_uris.iter().find(|u| *u == r),
        }
        .ok_or_else(|| Error::bad_input("redirectUri", "not a redirect URI registered for this provider"))?;
        let url = RedirectUrl::new(redirect.clone()).map_err(Error::internal)?;
        let client = self.client(self.metadata(false).await?).set_redirect_uri(url);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request =
            client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random);
        for scope in &self.settings.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(AuthorizationStart {
            authorization_url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            redirect_uri: redirect.clone(),
        })
    }

    async fn exchange(&self, code: &str, flow: &PendingFlow) -> Result<OidcClaims, Error> {
        let refused = |what: &str, e: &dyn std::fmt::Display| {
            tracing::warn!(provider = %self.settings.name, error = %e, "OIDC sign-in refused: {what}");
            Error::Unauthenticated
        };
        let client = self.client(self.metadata(false).await?);
        let redirect = RedirectUrl::new(flow.redirect_uri.clone()).map_err(Error::internal)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(Error::internal)?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()))
            .set_redirect_uri(Cow::Owned(redirect))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::Request(e) => Error::internal(e),
                e => refused("token request", &e),
            })?;
        let id_token = response.id_token().ok_or_else(|| refused("token answer", &"no ID token"))?;
        let nonce = Nonce::new(flow.nonce.clone());
        let claims = match id_token.claims(&verifier(&client), &nonce) {
            Ok(c) => c.clone(),
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
                // The provider may have rotated its keys since we read them.
                let client = self.client(self.metadata(true).await?);
                id_token.claims(&verifier(&client), &nonce).map_err(|e| refused("ID token", &e))?.clone()
            }
            Err(e) => return Err(refused("ID token", &e)),
        };
        let from_token = Profile::of(&claims);
        let userinfo = self.userinfo(&client, response.access_token(), claims.subject()).await;
        let profile = from_token.or(userinfo);
        let allowed = &self.settings.affiliations;
        if !allowed.is_empty() && !profile.affiliations.iter().any(|a| allowed.contains(a)) {
            tracing::warn!(provider = %self.settings.name, affiliations = ?profile.affiliations,
                "OIDC sign-in refused: affiliation not allowed");
            return Err(Error::Forbidden);
        }
        Ok(OidcClaims {
            issuer: claims.issuer().as_str().to_owned(),
            subject: claims.subject().as_str().to_owned(),
            ..profile.into_claims()
        })
    }

    /// FranceConnect and EduConnect give the person's names at the userinfo endpoint rather
    /// than in the ID token. The answer must be about the ID token's subject (checked; a
    /// signed answer is checked like the ID token). It only adds to the profile: the identity
    /// is the ID token's, so a userinfo failure is logged and the sign-in goes on.
    async fn userinfo(&self, client: &Client, access: &AccessToken, subject: &SubjectIdentifier) -> Profile {
        let Ok(request) = client.user_info(access.clone(), Some(subject.clone())) else {
            return Profile::default();
        };
        let answer: Result<UserInfoClaims<ExtraClaims, CoreGenderClaim>, _> = request.request_async(&self.http).await;
        match answer {
            Ok(info) => Profile::of_userinfo(&info),
            Err(e) => {
                tracing::warn!(provider = %self.settings.name, error = %e, "OIDC userinfo failed; signing in without it");
                Profile::default()
            }
        }
    }
}

/// The library's checks (signature against the provider's keys, `iss`, `aud` = our client id
/// and no untrusted other audience, `exp`, `nonce`), with our algorithm list, plus an `iat`
/// not in the future (5 minutes of clock skew).
fn verifier(client: &Client) -> IdTokenVerifier<'_, CoreJsonWebKey> {
    client.id_token_verifier().set_allowed_algs(ALLOWED_ALGS).set_issue_time_verifier_fn(|iat| {
        if iat > chrono::Utc::now() + chrono::Duration::minutes(5) {
            Err("issued in the future".into())
        } else {
            Ok(())
        }
    })
}

impl OidcProvider for OidcClient {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn children_funder(&self) -> Option<&str> {
        self.settings.children_funder.as_deref()
    }

    fn begin<'a>(&'a self, redirect_uri: Option<&'a str>) -> BoxFuture<'a, Result<AuthorizationStart, Error>> {
        Box::pin(self.authorization(redirect_uri))
    }

    fn finish<'a>(&'a self, code: &'a str, flow: &'a PendingFlow) -> BoxFuture<'a, Result<OidcClaims, Error>> {
        Box::pin(self.exchange(code, flow))
    }
}

/// The configured providers (none when `PASSERELLE_OIDC_PROVIDERS` is unset). Nothing is
/// fetched here: a provider that is down must not stop the service from starting.
pub fn providers(settings: &Settings) -> anyhow::Result<OidcProviders> {
    let mut list: Vec<Arc<dyn OidcProvider>> = vec![];
    for p in &settings.oidc {
        list.push(Arc::new(OidcClient::new(p.clone())?));
    }
    Ok(OidcProviders(list))
}
