//! Staff sign-in by OpenID Connect: authorization code with PKCE, provider found by discovery
//! (Keycloak, Entra ID, Google, Authentik…), roles from a groups claim.

use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::RwLock;

use super::sessions::SignedIn;
use super::RoleGroups;
use crate::error::{Error, Result};

/// Where the provider sends people back, under `access.public_url`.
pub const CALLBACK_PATH: &str = "/api/v1/auth/oidc/callback";

/// How long someone has to finish signing in at the provider.
const PENDING_FOR: chrono::Duration = chrono::Duration::minutes(10);

/// `[access.oidc]`
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer, e.g. `https://login.example.com/realms/corp`; its
    /// `/.well-known/openid-configuration` is read at the first sign-in.
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Read the client secret from this file (trailing newline ignored).
    pub client_secret_file: Option<PathBuf>,
    /// Scopes asked for besides `openid` (default: email, profile).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The ID token claim that lists the person's groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Which groups give which role.
    #[serde(default)]
    pub roles: RoleGroups,
}

fn default_scopes() -> Vec<String> {
    vec!["email".into(), "profile".into()]
}

fn default_groups_claim() -> String {
    "groups".into()
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer_url", &self.issuer_url)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("client_secret_file", &self.client_secret_file)
            .field("scopes", &self.scopes)
            .field("groups_claim", &self.groups_claim)
            .finish_non_exhaustive()
    }
}

pub struct Oidc {
    config: OidcConfig,
    issuer: IssuerUrl,
    redirect: RedirectUrl,
    http: reqwest::Client,
    metadata: RwLock<Option<CoreProviderMetadata>>,
}

impl Oidc {
    pub fn new(config: &OidcConfig, public_url: Option<&str>) -> Result<Oidc> {
        let bad = |why: String| Error::Config(format!("access.oidc: {why}"));
        let issuer = IssuerUrl::new(config.issuer_url.clone())
            .map_err(|e| bad(format!("issuer_url: {e}")))?;
        let public_url = public_url.ok_or_else(|| {
            bad("access.public_url is needed to tell the provider where to send people back".into())
        })?;
        let redirect = RedirectUrl::new(format!(
            "{}{CALLBACK_PATH}",
            public_url.trim_end_matches('/')
        ))
        .map_err(|e| bad(format!("access.public_url: {e}")))?;
        let http = reqwest::Client::builder()
            // Following redirects from the provider would open the server to SSRF.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| bad(format!("HTTP client: {e}")))?;
        Ok(Oidc {
            config: config.clone(),
            issuer,
            redirect,
            http,
            metadata: RwLock::new(None),
        })
    }

    fn secret(&self) -> Result<Option<ClientSecret>> {
        let secret = match &self.config.client_secret_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| {
                        Error::Config(format!(
                            "access.oidc: cannot read client_secret_file {}: {e}",
                            path.display()
                        ))
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
            ),
            None => self.config.client_secret.clone(),
        };
        Ok(secret.map(ClientSecret::new))
    }

    /// The provider's metadata, discovered once (again after a failure).
    async fn client(
        &self,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
    > {
        let known = self.metadata.read().await.clone();
        let metadata = match known {
            Some(m) => m,
            None => {
                let found = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
                    .await
                    .map_err(|e| {
                        Error::Unavailable(format!(
                            "the sign-in provider {} cannot be reached: {e}",
                            self.issuer.as_str()
                        ))
                    })?;
                *self.metadata.write().await = Some(found.clone());
                found
            }
        };
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            self.secret()?,
        )
        .set_redirect_uri(self.redirect.clone()))
    }

    /// Starts a sign-in: remembers the state, PKCE verifier and nonce, and returns the
    /// provider's URL to send the browser to, with the state (to bind to the browser by cookie).
    pub async fn begin(
        &self,
        pool: &PgPool,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(String, String)> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        sqlx::query("DELETE FROM oidc_pending WHERE created_at < $1")
            .bind(now - PENDING_FOR)
            .execute(pool)
            .await?;
        sqlx::query(
            "INSERT INTO oidc_pending (state, pkce_verifier, nonce, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(state.secret())
        .bind(verifier.secret())
        .bind(nonce.secret())
        .bind(now)
        .execute(pool)
        .await?;
        Ok((url.to_string(), state.secret().clone()))
    }

    /// Finishes a sign-in: the state must be one we issued (once, recently), the code is
    /// exchanged with the PKCE verifier, the ID token's signature, audience, expiry and nonce
    /// are checked, and the groups claim gives the role.
    pub async fn finish(
        &self,
        pool: &PgPool,
        code: &str,
        state: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<SignedIn> {
        let refused = |why: String| Error::Unauthorized(format!("single sign-on failed: {why}"));
        let pending: Option<(String, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
            "DELETE FROM oidc_pending WHERE state = $1 RETURNING pkce_verifier, nonce, created_at",
        )
        .bind(state)
        .fetch_optional(pool)
        .await?;
        let (verifier, nonce, created) =
            pending.ok_or_else(|| refused("unknown or already used sign-in state".into()))?;
        if now - created > PENDING_FOR {
            return Err(refused("the sign-in took too long; start again".into()));
        }
        let client = self.client().await?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| Error::Config(format!("access.oidc: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| refused(format!("the provider refused the code: {e}")))?;
        let _ = response.access_token();
        let id_token = openidconnect::TokenResponse::id_token(&response)
            .ok_or_else(|| refused("the provider sent no ID token".into()))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(nonce))
            .map_err(|e| refused(format!("the ID token is not valid: {e}")))?;
        // The signature is checked: its payload can be read for the groups claim, which the
        // standard claims do not carry.
        let payload = id_token
            .to_string()
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
            .unwrap_or_default();
        let groups: Vec<String> = match &payload[&self.config.groups_claim] {
            serde_json::Value::Array(items) => items
                .iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect(),
            serde_json::Value::String(one) => vec![one.clone()],
            _ => Vec::new(),
        };
        let email = claims.email().map(|e| e.as_str().to_lowercase());
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_string())
            .or_else(|| email.clone())
            .unwrap_or_else(|| claims.subject().as_str().to_string());
        let role =
            self.config.roles.role_of(&groups).ok_or_else(|| {
                refused(format!("{name} is in no group that may use Switchboard"))
            })?;
        Ok(SignedIn {
            subject: format!(
                "oidc:{}#{}",
                claims.issuer().as_str(),
                claims.subject().as_str()
            ),
            display_name: name,
            role,
            method: "oidc",
            email,
        })
    }
}
