//! The `vault` credential manager (Vault or OpenBao through `vaultrs`):
//! `((name))` is the secret at the first of the lookup paths that has it,
//! its `value` field or, without one, all its fields. KV version 1 and 2
//! mounts both work; which one a mount is, is asked once.

mod config;
mod request;
mod session;
mod tls;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Mutex;
use vaultrs::error::ClientError;

use super::endpoint::Endpoint;
pub use config::{FLAG_NAMES, Pem, VaultConfig, VaultConfigError, VaultSettings};
use request::traced;
use session::{Session, SessionError};

use super::{CredentialManager, LookupError, LookupFuture, Secret};
use crate::config::vars::VarRef;

const NAME: &str = "vault";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KvVersion {
    V1,
    V2,
}

pub struct Vault {
    config: VaultConfig,
    endpoint: Endpoint,
    session: Arc<Session>,
    /// Each mount's KV version, once asked.
    versions: Mutex<HashMap<String, KvVersion>>,
}

/// Why a read failed, before it is told transient or permanent.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("reading {path}: {source}")]
    Request {
        path: String,
        #[source]
        source: ClientError,
    },
}

/// Vault could not be reached, answered 5xx (sealed, standby), or throttled.
fn is_transient(error: &ClientError) -> bool {
    match error {
        ClientError::APIError { code, .. } => crate::creds::status_is_transient(*code) || *code == 412,
        ClientError::RestClientError { .. } => true,
        _ => false,
    }
}

impl Vault {
    /// Checks nothing remote: the first lookup logs in.
    pub fn new(config: VaultConfig) -> Result<Vault, VaultConfigError> {
        let endpoint = Endpoint::of(&config.url);
        let http = tls::http_client(&config)?;
        let session = Arc::new(Session::new(config.clone(), endpoint.clone(), http));
        Ok(Vault { config, endpoint, session, versions: Mutex::new(HashMap::new()) })
    }

    async fn find(&self, team: &str, pipeline: Option<&str>, secret: &str) -> Result<Option<Secret>, ReadError> {
        for path in self.config.paths(team, pipeline, secret) {
            if let Some(found) = self.read(&path).await? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The secret at `path` (mount first), logging in again once when Vault
    /// no longer takes the token.
    async fn read(&self, path: &str) -> Result<Option<Secret>, ReadError> {
        match self.read_once(path).await {
            Err(ReadError::Request { source: ClientError::APIError { code: 403, .. }, .. })
                if !matches!(self.config.auth, config::VaultAuth::Token(_)) =>
            {
                self.session.forget().await;
                self.read_once(path).await
            }
            answer => answer,
        }
    }

    async fn read_once(&self, path: &str) -> Result<Option<Secret>, ReadError> {
        let client = self.session.client().await?;
        let (mount, key) = path.trim_start_matches('/').split_once('/').unwrap_or((path, ""));
        let failed = |source| ReadError::Request { path: path.to_string(), source };
        let read = match self.version(&client, mount).await {
            KvVersion::V2 => {
                traced(&self.endpoint, "vault read", "GET", vaultrs::kv2::read::<Value>(client.as_ref(), mount, key))
                    .await
                    .map(Secret::new)
            }
            KvVersion::V1 => {
                traced(&self.endpoint, "vault read", "GET", vaultrs::kv1::get_raw(client.as_ref(), mount, key))
                    .await
                    .map(|raw| {
                        let lease = u64::try_from(raw.lease_duration).unwrap_or(0);
                        let expires_at = (lease > 0).then(|| Instant::now() + Duration::from_secs(lease));
                        Secret { value: raw.data, expires_at }
                    })
            }
        };
        match read {
            Ok(secret) => Ok(Some(Secret { value: the_value(secret.value), ..secret })),
            Err(ClientError::APIError { code: 404, .. }) => Ok(None),
            Err(source) => Err(failed(source)),
        }
    }

    /// The mount's KV version, from `sys/internal/ui/mounts`, which any
    /// token may ask about the mounts it can read; version 1 when unsaid.
    async fn version(&self, client: &vaultrs::client::VaultClient, mount: &str) -> KvVersion {
        if let Some(version) = self.versions.lock().await.get(mount) {
            return *version;
        }
        let url = format!("{}/v1/sys/internal/ui/mounts/{mount}", client.http.base.trim_end_matches('/'));
        let mut request = client.http.http.get(url).header("X-Vault-Token", client.settings.token.as_str());
        if let Some(namespace) = &self.config.namespace {
            request = request.header("X-Vault-Namespace", namespace.as_str());
        }
        let span = crate::telemetry::spans::BackendRequest {
            operation: "vault mount",
            method: "GET",
            server_address: &self.endpoint.host,
            server_port: self.endpoint.port,
            rpc: None,
        }
        .start();
        let answer = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                span.ended(Some(status), None);
                response.bytes().await.ok().and_then(|body| serde_json::from_slice::<Value>(&body).ok())
            }
            Err(error) => {
                span.ended(None, Some(&error.to_string()));
                // Not remembered: the next lookup asks again.
                return KvVersion::V1;
            }
        };
        let version = match answer.as_ref().and_then(|a| a.pointer("/data/options/version")).and_then(Value::as_str) {
            Some("2") => KvVersion::V2,
            _ => KvVersion::V1,
        };
        self.versions.lock().await.insert(mount.to_string(), version);
        version
    }
}

/// A secret's `value` field, or all its fields when it has none.
fn the_value(data: Value) -> Value {
    match data {
        Value::Object(mut fields) if fields.contains_key("value") => fields.remove("value").unwrap_or(Value::Null),
        other => other,
    }
}

impl CredentialManager for Vault {
    fn name(&self) -> &'static str {
        NAME
    }

    fn lookup<'a>(&'a self, team: &'a str, pipeline: Option<&'a str>, var: &'a VarRef) -> LookupFuture<'a> {
        Box::pin(async move {
            self.find(team, pipeline, &var.path).await.map_err(|error| {
                let transient = match &error {
                    ReadError::Session(session) => session.is_transient(),
                    ReadError::Request { source, .. } => is_transient(source),
                };
                LookupError::failed(NAME, transient, error)
            })
        })
    }

    fn query_timeout(&self) -> Option<Duration> {
        Some(self.config.query_timeout)
    }

    /// Where Vault is, never how atc logs in.
    fn describe(&self) -> Option<Value> {
        Some(serde_json::json!({
            "url": self.config.url,
            "path_prefix": self.config.path_prefix,
            "lookup_templates": self.config.lookup_templates,
            "shared_path": self.config.shared_path,
            "namespace": self.config.namespace,
        }))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_an_unreachable_failing_or_throttling_vault_is_asked_again() {
        let status = |code| ClientError::APIError { code, errors: Vec::new() };
        assert!(is_transient(&status(503)) && is_transient(&status(500)) && is_transient(&status(429)));
        assert!(!is_transient(&status(403)) && !is_transient(&status(400)));
    }

    #[test]
    fn a_secret_is_its_value_field_or_all_its_fields() {
        assert_eq!(the_value(json!({ "value": "s", "other": 1 })), json!("s"));
        assert_eq!(the_value(json!({ "user": "u", "pass": "p" })), json!({ "user": "u", "pass": "p" }));
    }
}
