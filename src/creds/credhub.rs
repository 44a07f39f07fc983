//! The `credhub` credential manager: `((name))` is the current value of
//! the CredHub credential `PREFIX/TEAM/PIPELINE/name`, else
//! `PREFIX/TEAM/name`, else `PREFIX/SHARED/name`, as in Concourse. Every
//! type's value is taken as CredHub gives it: a string (value, password),
//! or fields (json; user: username, password, password_hash; certificate:
//! ca, certificate, private_key; ssh and rsa: public_key, private_key, ...).
//!
//! atc authenticates with a UAA client (client credentials grant; the UAA
//! is the one CredHub's `/info` names), with a client certificate (mutual
//! TLS), or both. Only tested against a fake CredHub in the tests, which
//! answers with the bodies of CredHub's and UAA's published API examples:
//! no CredHub server can be run here.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use opentelemetry::trace::FutureExt;
use serde_json::Value;
use tokio::sync::Mutex;

use super::endpoint::Endpoint;
use super::{CredentialManager, LookupError, LookupFuture, Secret};
use crate::config::vars::VarRef;
use crate::telemetry::spans::BackendRequest;

const NAME: &str = "credhub";
pub const DEFAULT_PATH_PREFIX: &str = "/concourse";
/// How long one lookup, retries included, may take (Concourse has no flag for it).
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// The settings as given, before they are checked.
#[derive(Debug, Clone, Default)]
pub struct CredHubSettings {
    pub url: Option<String>,
    pub path_prefix: Option<String>,
    pub shared_path: Option<String>,
    pub ca_certs: Vec<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// A setting that cannot be used, named by its flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--credhub-{setting}: {message}")]
pub struct CredHubConfigError {
    pub setting: &'static str,
    pub message: String,
}

pub struct CredHubConfig {
    url: String,
    ca_certs: Vec<PathBuf>,
    path_prefix: String,
    shared_path: Option<String>,
    uaa_client: Option<(String, String)>,
    http: reqwest13::Client,
}

impl CredHubSettings {
    /// Any CredHub setting enables the manager, as in Concourse (and then
    /// the URL must be given).
    pub fn is_configured(&self) -> bool {
        self.url.is_some()
            || self.client_id.is_some()
            || self.client_secret.is_some()
            || !self.ca_certs.is_empty()
            || self.client_cert.is_some()
            || self.client_key.is_some()
    }

    /// Checks the settings and reads the certificate files, so that a bad
    /// one stops start-up naming its flag.
    pub fn check(self) -> Result<CredHubConfig, CredHubConfigError> {
        let error = |setting, message: String| CredHubConfigError { setting, message };
        let url = self.url.ok_or_else(|| error("url", "missing".into()))?;
        match url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {}
            _ => return Err(error("url", format!("'{url}' must be an http:// or https:// URL with a host"))),
        }
        let uaa_client = match (self.client_id, self.client_secret) {
            (Some(id), Some(secret)) => Some((id, secret)),
            (None, None) => None,
            (Some(_), None) => return Err(error("client-secret", "missing: --credhub-client-id needs it".into())),
            (None, Some(_)) => return Err(error("client-id", "missing: --credhub-client-secret needs it".into())),
        };
        let read = |setting, path: &PathBuf| {
            std::fs::read(path).map_err(|e| error(setting, format!("cannot read {}: {e}", path.display())))
        };
        // reqwest's rustls needs the process-wide provider atc uses.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut http = reqwest13::Client::builder()
            .timeout(QUERY_TIMEOUT)
            .tls_danger_accept_invalid_certs(self.insecure_skip_verify);
        for path in &self.ca_certs {
            let certs = reqwest13::Certificate::from_pem_bundle(&read("ca-cert", path)?)
                .map_err(|e| error("ca-cert", format!("{}: {e}", path.display())))?;
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                let mut pem = read("client-cert", cert)?;
                pem.push(b'\n');
                pem.extend(read("client-key", key)?);
                let identity = reqwest13::Identity::from_pem(&pem).map_err(|e| error("client-cert", e.to_string()))?;
                http = http.identity(identity);
            }
            (None, None) => {}
            (Some(_), None) => return Err(error("client-key", "missing: --credhub-client-cert needs it".into())),
            (None, Some(_)) => return Err(error("client-cert", "missing: --credhub-client-key needs it".into())),
        }
        let http = http.build().map_err(|e| error("url", format!("cannot set up the HTTP client: {e}")))?;
        Ok(CredHubConfig {
            url: url.trim_end_matches('/').to_string(),
            ca_certs: self.ca_certs,
            path_prefix: self.path_prefix.unwrap_or_else(|| DEFAULT_PATH_PREFIX.into()),
            shared_path: self.shared_path.filter(|path| !path.is_empty()),
            uaa_client,
            http,
        })
    }
}

impl CredHubConfig {
    /// The credential names `secret` is looked for at, in order.
    fn names(&self, team: &str, pipeline: Option<&str>, secret: &str) -> Vec<String> {
        let join = |parts: &[&str]| {
            let joined: Vec<&str> =
                parts.iter().flat_map(|part| part.split('/')).filter(|part| !part.is_empty()).collect();
            format!("/{}", joined.join("/"))
        };
        let prefix = self.path_prefix.as_str();
        let mut names = Vec::new();
        if let Some(pipeline) = pipeline {
            names.push(join(&[prefix, team, pipeline, secret]));
        }
        names.push(join(&[prefix, team, secret]));
        if let Some(shared) = &self.shared_path {
            names.push(join(&[prefix, shared, secret]));
        }
        names
    }
}

/// A UAA access token and when to stop using it.
struct Token {
    value: String,
    renew_at: Instant,
}

pub struct CredHub {
    config: CredHubConfig,
    endpoint: Endpoint,
    token: Mutex<Option<Token>>,
}

/// Why CredHub (or its UAA) did not answer as hoped.
#[derive(Debug, thiserror::Error)]
enum CredHubError {
    #[error("{what}: {source}")]
    Unreachable {
        what: &'static str,
        #[source]
        source: reqwest13::Error,
    },
    #[error("{what}: status {status}: {message}")]
    Status { what: &'static str, status: u16, message: String },
    #[error("{what}: {message}")]
    Malformed { what: &'static str, message: String },
}

impl CredHubError {
    fn is_transient(&self) -> bool {
        match self {
            CredHubError::Unreachable { .. } => true,
            CredHubError::Status { status, .. } => super::status_is_transient(*status),
            CredHubError::Malformed { .. } => false,
        }
    }

    /// A token CredHub no longer takes (expired, revoked): log in again.
    fn is_stale_token(&self) -> bool {
        matches!(self, CredHubError::Status { status: 401, .. })
    }
}

/// An answer's status and JSON body.
async fn send(
    endpoint: &Endpoint,
    what: &'static str,
    method: &'static str,
    request: reqwest13::RequestBuilder,
) -> Result<(u16, Value), CredHubError> {
    let span = BackendRequest {
        operation: what,
        method,
        server_address: &endpoint.host,
        server_port: endpoint.port,
        rpc: None,
    }
    .start();
    let answer = async {
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok::<_, reqwest13::Error>((status, response.bytes().await?))
    }
    .with_current_context()
    .await;
    match answer {
        Ok((status, body)) => {
            let failed = (status >= 400 && status != 404).then(|| format!("status {status}"));
            span.ended(Some(status), failed.as_deref());
            Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
        }
        Err(source) => {
            span.ended(None, Some(&source.to_string()));
            Err(CredHubError::Unreachable { what, source })
        }
    }
}

/// What an error body says: CredHub's and UAA's `error` and `error_description`.
fn said(body: &Value) -> String {
    let field = |key| body.get(key).and_then(Value::as_str);
    match (field("error"), field("error_description")) {
        (Some(error), Some(description)) => format!("{error}: {description}"),
        (Some(error), None) => error.to_string(),
        _ => "no error message".into(),
    }
}

impl CredHub {
    pub fn new(config: CredHubConfig) -> CredHub {
        let endpoint = Endpoint::of(&config.url);
        CredHub { config, endpoint, token: Mutex::new(None) }
    }

    /// A UAA token, asked for when there is none or it is about to expire;
    /// `None` without a UAA client (a client certificate authenticates).
    async fn token(&self) -> Result<Option<String>, CredHubError> {
        let Some((client_id, client_secret)) = &self.config.uaa_client else {
            return Ok(None);
        };
        let mut token = self.token.lock().await;
        if let Some(current) = token.as_ref().filter(|t| t.renew_at > Instant::now()) {
            return Ok(Some(current.value.clone()));
        }
        let info = self.config.http.get(format!("{}/info", self.config.url));
        let (status, info) = send(&self.endpoint, "credhub info", "GET", info).await?;
        let Some(uaa) = info.pointer("/auth-server/url").and_then(Value::as_str).filter(|_| status == 200) else {
            return Err(CredHubError::Malformed {
                what: "credhub info",
                message: format!("status {status}, no auth-server url"),
            });
        };
        let form = serde_urlencoded::to_string([
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("response_type", "token"),
        ])
        .unwrap_or_default();
        let request = self
            .config
            .http
            .post(format!("{}/oauth/token", uaa.trim_end_matches('/')))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .body(form);
        let uaa_endpoint = Endpoint::of(uaa);
        let (status, body) = send(&uaa_endpoint, "uaa token", "POST", request).await?;
        if status != 200 {
            return Err(CredHubError::Status { what: "uaa token", status, message: said(&body) });
        }
        let Some(value) = body.get("access_token").and_then(Value::as_str) else {
            return Err(CredHubError::Malformed { what: "uaa token", message: "no access_token".into() });
        };
        let lifetime = Duration::from_secs(body.get("expires_in").and_then(Value::as_u64).unwrap_or(0));
        // Renewed a little early, so that no request carries a token about to expire.
        let renew_at = Instant::now() + lifetime.saturating_sub(lifetime / 10);
        *token = Some(Token { value: value.to_string(), renew_at });
        Ok(Some(value.to_string()))
    }

    /// The current value of credential `name`, asking for a new token once
    /// when CredHub refuses the one atc has.
    async fn current(&self, name: &str) -> Result<Option<Value>, CredHubError> {
        match self.current_once(name).await {
            Err(error) if error.is_stale_token() && self.config.uaa_client.is_some() => {
                self.token.lock().await.take();
                self.current_once(name).await
            }
            answer => answer,
        }
    }

    async fn current_once(&self, name: &str) -> Result<Option<Value>, CredHubError> {
        let token = self.token().await?;
        let query = serde_urlencoded::to_string([("name", name), ("current", "true")]).unwrap_or_default();
        let mut request = self.config.http.get(format!("{}/api/v1/data?{query}", self.config.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let (status, body) = send(&self.endpoint, "credhub get", "GET", request).await?;
        match status {
            200 => match body.pointer("/data/0/value") {
                Some(value) => Ok(Some(value.clone())),
                None => Ok(None),
            },
            404 => Ok(None),
            status => Err(CredHubError::Status { what: "credhub get", status, message: said(&body) }),
        }
    }

    async fn find(&self, team: &str, pipeline: Option<&str>, secret: &str) -> Result<Option<Secret>, LookupError> {
        for name in self.config.names(team, pipeline, secret) {
            match self.current(&name).await {
                Ok(Some(value)) => return Ok(Some(Secret::new(value))),
                Ok(None) => {}
                Err(error) => return Err(LookupError::failed(NAME, error.is_transient(), error)),
            }
        }
        Ok(None)
    }
}

impl CredentialManager for CredHub {
    fn name(&self) -> &'static str {
        NAME
    }

    fn lookup<'a>(&'a self, team: &'a str, pipeline: Option<&'a str>, var: &'a VarRef) -> LookupFuture<'a> {
        Box::pin(self.find(team, pipeline, &var.path))
    }

    fn query_timeout(&self) -> Option<Duration> {
        Some(QUERY_TIMEOUT)
    }

    /// Where CredHub is, never the client's secret.
    fn describe(&self) -> Option<Value> {
        Some(serde_json::json!({
            "url": self.config.url,
            "path_prefix": self.config.path_prefix,
            "ca_certs": self.config.ca_certs,
            "uaa_client_id": self.config.uaa_client.as_ref().map(|(id, _)| id),
            "shared_path": self.config.shared_path,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CredHubSettings {
        CredHubSettings { url: Some("https://credhub.example.com:8844".into()), ..CredHubSettings::default() }
    }

    #[test]
    fn names_are_the_pipelines_then_the_teams_then_the_shared_path() {
        let config = CredHubSettings { shared_path: Some("shared/".into()), ..settings() }.check().unwrap();
        assert_eq!(
            config.names("main", Some("p"), "token"),
            ["/concourse/main/p/token", "/concourse/main/token", "/concourse/shared/token"]
        );
        assert_eq!(config.names("main", None, "token"), ["/concourse/main/token", "/concourse/shared/token"]);
    }

    #[test]
    fn a_bad_setting_is_refused_naming_its_flag() {
        let refused = |settings: CredHubSettings| settings.check().err().unwrap().to_string();
        assert_eq!(
            refused(CredHubSettings { url: Some("credhub:8844".into()), ..settings() }),
            "--credhub-url: 'credhub:8844' must be an http:// or https:// URL with a host"
        );
        assert_eq!(
            refused(CredHubSettings { client_id: Some("atc".into()), ..settings() }),
            "--credhub-client-secret: missing: --credhub-client-id needs it"
        );
        assert!(
            refused(CredHubSettings { ca_certs: vec!["/nonexistent/ca.pem".into()], ..settings() })
                .starts_with("--credhub-ca-cert: cannot read /nonexistent/ca.pem")
        );
        assert_eq!(
            refused(CredHubSettings { client_id: Some("atc".into()), url: None, ..settings() }),
            "--credhub-url: missing"
        );
    }

    #[test]
    fn an_error_body_is_told_as_credhub_and_uaa_say_it() {
        let body = serde_json::json!({ "error": "unauthorized", "error_description": "Bad credentials" });
        assert_eq!(said(&body), "unauthorized: Bad credentials");
        assert_eq!(
            said(&serde_json::json!({ "error": "The request could not be completed" })),
            "The request could not be completed"
        );
    }
}
