//! atc's session with Vault: a client holding a token, logged in when
//! first needed and kept alive by renewing the token before it expires
//! (logging in again when it can no longer be renewed).

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::RwLock;
use vaultrs::api::AuthInfo;
use vaultrs::client::{Identity, VaultClient, VaultClientSettingsBuilder};
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
    client: RwLock<Option<Arc<VaultClient>>>,
}

impl Session {
    pub fn new(config: VaultConfig, endpoint: Endpoint) -> Session {
        Session { config, endpoint, client: RwLock::new(None) }
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
            keep_alive(Arc::downgrade(self), &auth);
        }
        Ok(client)
    }

    /// Forgets the token (Vault refused it): the next lookup logs in again.
    pub async fn forget(&self) {
        self.client.write().await.take();
    }

    /// A client logged in with the configured backend, and the login's
    /// token lease when it has one to renew.
    async fn log_in(&self) -> Result<(VaultClient, Option<AuthInfo>), SessionError> {
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
        let (token, auth) = tokio::time::timeout(self.config.login_timeout, login)
            .await
            .map_err(|_| SessionError::LoginTimedOut(self.config.login_timeout))?
            .map_err(SessionError::Login)?;
        vaultrs::client::Client::set_token(&mut client, &token);
        if let Some(auth) = &auth {
            tracing::info!(lease_seconds = auth.lease_duration, renewable = auth.renewable, "logged in to Vault");
        }
        Ok((client, auth.filter(|auth| auth.renewable && auth.lease_duration > 0)))
    }

    fn new_client(&self, token: &str) -> Result<VaultClient, SessionError> {
        // reqwest's rustls needs a process-wide crypto provider: ring, as the rest of atc.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut settings = VaultClientSettingsBuilder::default();
        settings
            .address(&self.config.url)
            .token(token)
            .timeout(Some(self.config.query_timeout))
            .verify(!self.config.insecure_skip_verify)
            .ca_certs(self.config.ca_cert.iter().map(|path| path.display().to_string()).collect())
            .identity(self.identity()?);
        if let Some(namespace) = &self.config.namespace {
            settings.set_namespace(namespace.clone());
        }
        let settings = settings.build().map_err(|e| SessionError::Client(e.to_string()))?;
        VaultClient::new(settings).map_err(|e| SessionError::Client(e.to_string()))
    }

    fn identity(&self) -> Result<Option<Identity>, SessionError> {
        let (Some(cert), Some(key)) = (&self.config.client_cert, &self.config.client_key) else {
            return Ok(None);
        };
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| SessionError::Client(format!("cannot read {}: {e}", path.display())))
        };
        let mut pem = read(cert)?;
        pem.push(b'\n');
        pem.extend(read(key)?);
        Identity::from_pem(&pem).map(Some).map_err(|e| SessionError::Client(format!("client certificate: {e}")))
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

fn keep_alive(session: Weak<Session>, auth: &AuthInfo) {
    let mut lease = Duration::from_secs(auth.lease_duration);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(lease / 2).await;
            let Some(session) = session.upgrade() else { return };
            let Some(client) = session.client.read().await.clone() else { return };
            match session.renew(&client).await {
                Some(renewed) => lease = Duration::from_secs(renewed.lease_duration),
                None => {
                    session.forget().await;
                    return;
                }
            }
        }
    });
}
