//! atc's session with Vault: a client holding a token, logged in when
//! first needed and kept alive by renewing the token before it expires
//! (logging in again when it can no longer be renewed).

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::RwLock;
use vaultrs::api::AuthInfo;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use super::config::{ServiceAccountToken, VaultAuth, VaultConfig};
use super::request::traced;
use crate::creds::endpoint::Endpoint;

/// Why no session could be had.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot set up the Vault client: {0}")]
    Client(String),
    #[error("login failed: {0}")]
    Login(#[source] ClientError),
    #[error("login did not answer within {0:?}")]
    LoginTimedOut(Duration),
}

impl SessionError {
    /// A login may succeed later when Vault was not reachable.
    pub fn is_transient(&self) -> bool {
        match self {
            SessionError::Client(_) => false,
            SessionError::Login(error) => super::is_transient(error),
            SessionError::LoginTimedOut(_) => true,
        }
    }
}

pub struct Session {
    config: VaultConfig,
    endpoint: Endpoint,
    /// The HTTP client (TLS settings applied) and the base URL it talks to.
    http: (reqwest13::Client, String),
    client: RwLock<Option<Arc<VaultClient>>>,
}

impl Session {
    pub fn new(config: VaultConfig, endpoint: Endpoint, http: (reqwest13::Client, String)) -> Session {
        Session { config, endpoint, http, client: RwLock::new(None) }
    }

    /// A client with a live token, logging in first when there is none.
    pub async fn client(self: &Arc<Self>) -> Result<Arc<VaultClient>, SessionError> {
        if let Some(client) = self.client.read().await.clone() {
            return Ok(client);
        }
        let mut slot = self.client.write().await;
        if let Some(client) = slot.clone() {
            return Ok(client);
        }
        let (client, auth) = self.log_in().await?;
        let client = Arc::new(client);
        *slot = Some(client.clone());
        if let Some(auth) = auth {
            keep_alive(Arc::downgrade(self), &client, &auth, self.config.auth_max_ttl);
        }
        Ok(client)
    }

    /// Forgets the token (Vault refused it): the next lookup logs in again.
    pub async fn forget(&self) {
        self.client.write().await.take();
    }

    /// Forgets `client`'s token unless a newer login replaced it already.
    async fn forget_if_current(&self, client: &Arc<VaultClient>) {
        let mut slot = self.client.write().await;
        if slot.as_ref().is_some_and(|current| Arc::ptr_eq(current, client)) {
            slot.take();
        }
    }

    /// Logs in, trying again while Vault cannot answer: first after
    /// `auth_retry_initial`, then twice as long each time up to
    /// `auth_retry_max`, all within the login timeout.
    async fn log_in(&self) -> Result<(VaultClient, Option<AuthInfo>), SessionError> {
        let tries = async {
            let mut wait = self.config.auth_retry_initial;
            loop {
                match self.log_in_once().await {
                    Err(error) if error.is_transient() => {
                        tracing::warn!(%error, retry_in = ?wait, "could not log in to Vault");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(self.config.auth_retry_max);
                    }
                    answer => return answer,
                }
            }
        };
        tokio::time::timeout(self.config.login_timeout, tries)
            .await
            .map_err(|_| SessionError::LoginTimedOut(self.config.login_timeout))?
    }

    /// A client logged in with the configured backend, and the login's
    /// token lease when the backend gave one.
    async fn log_in_once(&self) -> Result<(VaultClient, Option<AuthInfo>), SessionError> {
        let mut client = self.new_client("")?;
        // Read at each login: Kubernetes rotates projected tokens.
        let token_file = match &self.config.auth {
            VaultAuth::Kubernetes { jwt: ServiceAccountToken::File(path), .. } => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| SessionError::Client(format!("cannot read {}: {e}", path.display())))?,
            ),
            _ => None,
        };
        let login = async {
            match &self.config.auth {
                VaultAuth::Token(token) => Ok((token.clone(), None)),
                VaultAuth::AppRole { mount, role_id, secret_id } => {
                    let auth = traced(
                        &self.endpoint,
                        "vault login",
                        "POST",
                        vaultrs::auth::approle::login(&client, mount, role_id, secret_id),
                    )
                    .await?;
                    Ok((auth.client_token.clone(), Some(auth)))
                }
                VaultAuth::Cert { mount, name } => {
                    let auth =
                        traced(&self.endpoint, "vault login", "POST", vaultrs::auth::cert::login(&client, mount, name))
                            .await?;
                    Ok((auth.client_token.clone(), Some(auth)))
                }
                VaultAuth::Kubernetes { mount, role, jwt } => {
                    let jwt = match jwt {
                        ServiceAccountToken::Given(jwt) => jwt.as_str(),
                        ServiceAccountToken::File(_) => token_file.as_deref().unwrap_or_default(),
                    };
                    let login = vaultrs::auth::kubernetes::login(&client, mount, role, jwt.trim());
                    let auth = traced(&self.endpoint, "vault login", "POST", login).await?;
                    Ok((auth.client_token.clone(), Some(auth)))
                }
            }
        };
        let (token, auth) = login.await.map_err(SessionError::Login)?;
        vaultrs::client::Client::set_token(&mut client, &token);
        if let Some(auth) = &auth {
            tracing::info!(lease_seconds = auth.lease_duration, renewable = auth.renewable, "logged in to Vault");
        }
        Ok((client, auth))
    }

    /// A vaultrs client on atc's own HTTP client (see `tls.rs`).
    fn new_client(&self, token: &str) -> Result<VaultClient, SessionError> {
        let (http, base) = &self.http;
        let mut settings = VaultClientSettingsBuilder::default();
        settings.address(base).token(token).timeout(Some(self.config.query_timeout)).ca_certs(Vec::new());
        if let Some(namespace) = &self.config.namespace {
            settings.set_namespace(namespace.clone());
        }
        let settings = settings.build().map_err(|e| SessionError::Client(e.to_string()))?;
        let mut client = VaultClient::new(settings).map_err(|e| SessionError::Client(e.to_string()))?;
        client.http.http = http.clone();
        client.http.base = base.clone();
        Ok(client)
    }

    /// Renews the token at half its lease; once it cannot be renewed, the
    /// next lookup logs in again. Ends with the session.
    async fn renew(&self, client: &VaultClient) -> Option<AuthInfo> {
        match traced(&self.endpoint, "vault renew", "PUT", vaultrs::token::renew_self(client, None)).await {
            Ok(auth) if auth.lease_duration > 0 => {
                tracing::info!(lease_seconds = auth.lease_duration, "renewed the Vault token");
                Some(auth)
            }
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(%error, "could not renew the Vault token; logging in again when next needed");
                None
            }
        }
    }
}

/// Renews `client`'s token at half its lease while it can be renewed, and
/// forgets it (the next lookup logs in again) once it cannot, or once
/// `max_ttl` has passed since the login. Ends with the session or when
/// another login replaced this one.
fn keep_alive(session: Weak<Session>, client: &Arc<VaultClient>, auth: &AuthInfo, max_ttl: Option<Duration>) {
    let logged_in = tokio::time::Instant::now();
    let mut lease = (auth.renewable && auth.lease_duration > 0).then(|| Duration::from_secs(auth.lease_duration));
    let client = Arc::downgrade(client);
    tokio::spawn(async move {
        loop {
            let until_max = max_ttl.map(|ttl| ttl.saturating_sub(logged_in.elapsed()));
            let wait = match (lease.map(|lease| lease / 2), until_max) {
                (Some(half), Some(until_max)) => half.min(until_max),
                (Some(half), None) => half,
                (None, Some(until_max)) => until_max,
                (None, None) => return,
            };
            tokio::time::sleep(wait).await;
            let (Some(session), Some(client)) = (session.upgrade(), client.upgrade()) else { return };
            if max_ttl.is_some_and(|ttl| logged_in.elapsed() >= ttl) {
                tracing::info!(
                    "the Vault login reached --vault-auth-backend-max-ttl; logging in again when next needed"
                );
                session.forget_if_current(&client).await;
                return;
            }
            match session.renew(&client).await {
                Some(renewed) => lease = Some(Duration::from_secs(renewed.lease_duration)),
                None => {
                    session.forget_if_current(&client).await;
                    return;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Instant;

    use axum::http::StatusCode;
    use axum::routing::post;

    use super::*;
    use crate::creds::vault::{FLAG_NAMES, VaultSettings};

    /// A Vault whose approle login is unavailable (503) `failures` times, then succeeds.
    async fn flaky_vault(failures: u32) -> (String, Arc<AtomicU32>) {
        let tries = Arc::new(AtomicU32::new(0));
        let counted = tries.clone();
        let login = move || {
            let tries = counted.clone();
            async move {
                if tries.fetch_add(1, Ordering::SeqCst) < failures {
                    return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({ "errors": ["sealed"] })));
                }
                let auth = serde_json::json!({
                    "client_token": "t", "accessor": "a", "policies": [], "token_policies": [], "metadata": null,
                    "lease_duration": 0, "renewable": false, "entity_id": "", "token_type": "service", "orphan": true,
                });
                let body = serde_json::json!({
                    "request_id": "r", "lease_id": "", "lease_duration": 0, "renewable": false, "auth": auth,
                });
                (StatusCode::OK, axum::Json(body))
            }
        };
        let app = axum::Router::new().route("/v1/auth/approle/login", post(login));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, tries)
    }

    fn session(url: &str, login_timeout: Duration) -> Arc<Session> {
        let settings = VaultSettings {
            url: Some(url.to_string()),
            auth_backend: Some("approle".into()),
            auth_params: [("role_id".to_string(), "r".to_string()), ("secret_id".to_string(), "s".to_string())].into(),
            auth_retry_initial: Some(Duration::from_millis(100)),
            auth_retry_max: Some(Duration::from_millis(150)),
            login_timeout: Some(login_timeout),
            ..VaultSettings::default()
        };
        let config = settings.check(&FLAG_NAMES).unwrap();
        let http = super::super::tls::http_client(&config).unwrap();
        Arc::new(Session::new(config.clone(), Endpoint::of(&config.url), http))
    }

    #[tokio::test]
    async fn a_login_vault_cannot_answer_is_tried_again_after_growing_waits_up_to_the_longest() {
        let (url, tries) = flaky_vault(3).await;
        let started = Instant::now();
        session(&url, Duration::from_secs(10)).client().await.unwrap();
        assert_eq!(tries.load(Ordering::SeqCst), 4);
        // 100 ms, then 150 (not 200: the longest wait), then 150.
        assert!(started.elapsed() >= Duration::from_millis(400), "waited {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn login_retries_end_with_the_login_timeout() {
        let (url, _) = flaky_vault(u32::MAX).await;
        let error = session(&url, Duration::from_millis(500)).client().await.err().unwrap();
        assert_eq!(error.to_string(), "login did not answer within 500ms");
    }
}
