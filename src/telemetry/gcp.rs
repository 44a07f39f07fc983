//! Google Cloud's Application Default Credentials, for exporting to Cloud
//! Trace and Cloud Monitoring over OTLP: where the credentials are found
//! (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's well-known file, the
//! metadata server), how an access token is obtained from them, and a task
//! that keeps the token fresh. Exports read the current token; they never
//! wait for a refresh.
//!
//! The token endpoint is the credential file's own `token_uri`, and the
//! metadata server honours `GCE_METADATA_HOST`, as Google's libraries do.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use opentelemetry_http::{Bytes, HttpError, Request};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::Deserialize;
use tokio::runtime::Handle;

use super::TelemetryError;
use super::http_client::ExportHttpClient;
use super::rate_limited_warning::RateLimitedWarning;

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const METADATA_HOST: &str = "metadata.google.internal";
/// How long start-up waits for the first token.
const FIRST_TOKEN_TIMEOUT: Duration = Duration::from_secs(10);

static REFRESH_FAILED: RateLimitedWarning =
    RateLimitedWarning::new("cannot refresh the Google access token", Duration::from_secs(60));

/// Why exporting to Google Cloud cannot start.
#[derive(Debug, thiserror::Error)]
pub enum GcpError {
    #[error("credentials file {}: {problem}", .path.display())]
    CredentialsFile {
        path: PathBuf,
        #[source]
        problem: CredentialsFileProblem,
    },
    /// `from` describes the credentials ([`GoogleCredentials::source`]).
    #[error("cannot get an access token from {from}: {problem}")]
    NoAccessToken {
        from: String,
        #[source]
        problem: TokenError,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsFileProblem {
    #[error("cannot read it: {0}")]
    Unreadable(#[source] std::io::Error),
    #[error("not a credentials file: {0}")]
    NotCredentials(#[source] serde_json::Error),
    /// A field its type needs.
    #[error("has no {0}")]
    Missing(&'static str),
    #[error("private_key is not PEM")]
    KeyNotPem,
    /// (`KeyRejected` is no `std::error::Error` without ring's `std` feature.)
    #[error("private_key is not a PKCS#8 RSA key: {0}")]
    KeyNotRsa(ring::error::KeyRejected),
    #[error(
        "credentials of type '{0}' are not supported (use service_account or authorized_user, \
         or run on Google Cloud with a service account)"
    )]
    UnsupportedType(String),
}

/// Why an access token could not be had (this time: refreshes try again).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token endpoint is not a URI a request can go to.
    #[error("token endpoint '{uri}': {source}")]
    Endpoint {
        uri: String,
        #[source]
        source: axum::http::Error,
    },
    #[error("{0}")]
    Encode(#[from] serde_urlencoded::ser::Error),
    #[error("{0}")]
    Request(#[source] axum::http::Error),
    #[error("{0}")]
    Clock(#[from] std::time::SystemTimeError),
    #[error("cannot sign the token request")]
    Sign,
    /// The exchange failed: no connection, no answer in the client's timeout, ...
    #[error("{0}")]
    Send(#[source] HttpError),
    #[error("{from} answered {status}: {body}")]
    Refused { from: String, status: axum::http::StatusCode, body: String },
    #[error("unexpected token response: {0}")]
    UnexpectedResponse(#[source] serde_json::Error),
    #[error("{from} did not answer within {within:?}")]
    TimedOut { from: String, within: Duration },
}

/// Where the access token comes from.
pub enum GoogleCredentials {
    ServiceAccount { email: String, key: Arc<RsaKeyPair>, key_id: Option<String>, token_uri: String },
    AuthorizedUser { client_id: String, client_secret: String, refresh_token: String, token_uri: String },
    MetadataServer { host: String },
}

#[derive(Deserialize)]
struct CredentialsFile {
    r#type: String,
    client_email: Option<String>,
    private_key: Option<String>,
    private_key_id: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    refresh_token: Option<String>,
    token_uri: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

impl GoogleCredentials {
    /// Application Default Credentials, looked up as Google's libraries do.
    pub fn from_environment(env: impl Fn(&str) -> Option<String>) -> Result<GoogleCredentials, TelemetryError> {
        if let Some(path) = env("GOOGLE_APPLICATION_CREDENTIALS") {
            return GoogleCredentials::from_file(Path::new(&path));
        }
        let gcloud_dir = env("CLOUDSDK_CONFIG")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|home| Path::new(&home).join(".config/gcloud")));
        if let Some(well_known) = gcloud_dir.map(|dir| dir.join("application_default_credentials.json"))
            && well_known.exists()
        {
            return GoogleCredentials::from_file(&well_known);
        }
        Ok(GoogleCredentials::MetadataServer { host: env("GCE_METADATA_HOST").unwrap_or_else(|| METADATA_HOST.into()) })
    }

    pub fn from_file(path: &Path) -> Result<GoogleCredentials, TelemetryError> {
        let bad = |problem| GcpError::CredentialsFile { path: path.to_path_buf(), problem };
        let text = std::fs::read_to_string(path).map_err(|e| bad(CredentialsFileProblem::Unreadable(e)))?;
        let file: CredentialsFile =
            serde_json::from_str(&text).map_err(|e| bad(CredentialsFileProblem::NotCredentials(e)))?;
        let token_uri = file.token_uri.unwrap_or_else(|| DEFAULT_TOKEN_URI.to_string());
        let missing = |field| bad(CredentialsFileProblem::Missing(field));
        match file.r#type.as_str() {
            "service_account" => {
                let pem = file.private_key.ok_or_else(|| missing("private_key"))?;
                let key = rsa_key_from_pem(&pem).map_err(bad)?;
                Ok(GoogleCredentials::ServiceAccount {
                    email: file.client_email.ok_or_else(|| missing("client_email"))?,
                    key: Arc::new(key),
                    key_id: file.private_key_id,
                    token_uri,
                })
            }
            "authorized_user" => Ok(GoogleCredentials::AuthorizedUser {
                client_id: file.client_id.ok_or_else(|| missing("client_id"))?,
                client_secret: file.client_secret.ok_or_else(|| missing("client_secret"))?,
                refresh_token: file.refresh_token.ok_or_else(|| missing("refresh_token"))?,
                token_uri,
            }),
            other => Err(bad(CredentialsFileProblem::UnsupportedType(other.to_string())).into()),
        }
    }

    fn source(&self) -> String {
        match self {
            GoogleCredentials::ServiceAccount { email, .. } => format!("service account {email}"),
            GoogleCredentials::AuthorizedUser { .. } => "gcloud user credentials".to_string(),
            GoogleCredentials::MetadataServer { host } => format!("the metadata server at {host}"),
        }
    }

    /// A new access token and how long it lives.
    async fn fetch(&self, http: &ExportHttpClient) -> Result<(String, Duration), TokenError> {
        let request = match self {
            GoogleCredentials::ServiceAccount { email, key, key_id, token_uri } => {
                let assertion = signed_jwt(email, key, key_id.as_deref(), token_uri)?;
                form_post(
                    token_uri,
                    &[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", &assertion)],
                )
            }
            GoogleCredentials::AuthorizedUser { client_id, client_secret, refresh_token, token_uri } => form_post(
                token_uri,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", client_id),
                    ("client_secret", client_secret),
                    ("refresh_token", refresh_token),
                ],
            ),
            GoogleCredentials::MetadataServer { host } => {
                Request::get(format!("http://{host}/computeMetadata/v1/instance/service-accounts/default/token"))
                    .header("Metadata-Flavor", "Google")
                    .body(Bytes::new())
                    .map_err(TokenError::Request)
            }
        }?;
        let response = http.send(request).await.map_err(TokenError::Send)?;
        if !response.status().is_success() {
            let body = String::from_utf8_lossy(response.body()).trim().to_string();
            return Err(TokenError::Refused { from: self.source(), status: response.status(), body });
        }
        let token: TokenResponse = serde_json::from_slice(response.body()).map_err(TokenError::UnexpectedResponse)?;
        Ok((token.access_token, Duration::from_secs(token.expires_in.unwrap_or(3600))))
    }
}

fn form_post(uri: &str, fields: &[(&str, &str)]) -> Result<Request<Bytes>, TokenError> {
    let body = serde_urlencoded::to_string(fields)?;
    Request::post(uri)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(Bytes::from(body))
        .map_err(|source| TokenError::Endpoint { uri: uri.to_string(), source })
}

fn rsa_key_from_pem(pem: &str) -> Result<RsaKeyPair, CredentialsFileProblem> {
    let body: String = pem.lines().filter(|line| !line.starts_with("-----")).map(str::trim).collect();
    let der = STANDARD.decode(body).map_err(|_| CredentialsFileProblem::KeyNotPem)?;
    RsaKeyPair::from_pkcs8(&der).map_err(CredentialsFileProblem::KeyNotRsa)
}

/// The JWT a service account trades for an access token (RFC 7523).
fn signed_jwt(email: &str, key: &RsaKeyPair, key_id: Option<&str>, audience: &str) -> Result<String, TokenError> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": key_id });
    let claims = serde_json::json!({ "iss": email, "scope": SCOPE, "aud": audience, "iat": now, "exp": now + 3600 });
    let signing_input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut signature)
        .map_err(|_| TokenError::Sign)?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// The current access token, kept fresh by a task on the export runtime.
#[derive(Clone)]
pub struct AccessToken(Arc<RwLock<Arc<str>>>);

impl AccessToken {
    /// Fetches the first token (start-up fails without one), then refreshes
    /// it before it expires, for as long as `runtime` runs.
    pub async fn start(
        credentials: GoogleCredentials,
        http: ExportHttpClient,
        runtime: &Handle,
    ) -> Result<AccessToken, TelemetryError> {
        let first = tokio::time::timeout(FIRST_TOKEN_TIMEOUT, credentials.fetch(&http))
            .await
            .unwrap_or_else(|_| Err(TokenError::TimedOut { from: credentials.source(), within: FIRST_TOKEN_TIMEOUT }))
            .map_err(|problem| GcpError::NoAccessToken { from: credentials.source(), problem })?;
        let (token, lifetime) = first;
        let current = AccessToken(Arc::new(RwLock::new(token.into())));
        let refreshed = current.clone();
        runtime.spawn(async move {
            let mut wait = refresh_delay(lifetime);
            loop {
                tokio::time::sleep(wait).await;
                wait = match credentials.fetch(&http).await {
                    Ok((token, lifetime)) => {
                        if let Ok(mut slot) = refreshed.0.write() {
                            *slot = token.into();
                        }
                        refresh_delay(lifetime)
                    }
                    Err(error) => {
                        REFRESH_FAILED.warn(&error);
                        Duration::from_secs(5)
                    }
                };
            }
        });
        Ok(current)
    }

    pub fn current(&self) -> Arc<str> {
        match self.0.read() {
            Ok(token) => token.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Refresh well before expiry: five minutes early, or halfway for short-lived tokens.
fn refresh_delay(lifetime: Duration) -> Duration {
    lifetime.saturating_sub(Duration::from_secs(300).min(lifetime / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_refreshed_before_they_expire() {
        assert_eq!(refresh_delay(Duration::from_secs(3600)), Duration::from_secs(3300));
        assert_eq!(refresh_delay(Duration::from_secs(2)), Duration::from_secs(1));
    }

    #[test]
    fn credential_files_of_unknown_types_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds.json");
        std::fs::write(&path, r#"{"type": "external_account"}"#).unwrap();
        let error = GoogleCredentials::from_file(&path).err().unwrap().to_string();
        assert!(error.contains("external_account") && error.contains("creds.json"), "{error}");
        std::fs::write(&path, r#"{"type": "service_account", "client_email": "a@b", "private_key": "nope"}"#).unwrap();
        let error = GoogleCredentials::from_file(&path).err().unwrap().to_string();
        assert!(error.contains("private_key"), "{error}");
    }

    #[test]
    fn without_files_the_metadata_server_is_asked() {
        let env = |name: &str| match name {
            "HOME" => Some("/nonexistent".to_string()),
            "GCE_METADATA_HOST" => Some("127.0.0.1:1".to_string()),
            _ => None,
        };
        match GoogleCredentials::from_environment(env).unwrap() {
            GoogleCredentials::MetadataServer { host } => assert_eq!(host, "127.0.0.1:1"),
            _ => panic!("expected the metadata server"),
        }
    }
}
