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
use opentelemetry_http::{Bytes, Request};
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
        let bad = |message: String| TelemetryError::Gcp(format!("credentials file {}: {message}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let file: CredentialsFile =
            serde_json::from_str(&text).map_err(|e| bad(format!("not a credentials file: {e}")))?;
        let token_uri = file.token_uri.unwrap_or_else(|| DEFAULT_TOKEN_URI.to_string());
        let missing = |field: &str| bad(format!("has no {field}"));
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
            other => Err(bad(format!(
                "credentials of type '{other}' are not supported (use service_account or authorized_user, \
                 or run on Google Cloud with a service account)"
            ))),
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
    async fn fetch(&self, http: &ExportHttpClient) -> Result<(String, Duration), String> {
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
                    .map_err(|e| e.to_string())
            }
        }?;
        let response = http.send(request).await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            let body = String::from_utf8_lossy(response.body());
            return Err(format!("{} answered {}: {}", self.source(), response.status(), body.trim()));
        }
        let token: TokenResponse =
            serde_json::from_slice(response.body()).map_err(|e| format!("unexpected token response: {e}"))?;
        Ok((token.access_token, Duration::from_secs(token.expires_in.unwrap_or(3600))))
    }
}

fn form_post(uri: &str, fields: &[(&str, &str)]) -> Result<Request<Bytes>, String> {
    let body = serde_urlencoded::to_string(fields).map_err(|e| e.to_string())?;
    Request::post(uri)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(Bytes::from(body))
        .map_err(|e| format!("token endpoint '{uri}': {e}"))
}

fn rsa_key_from_pem(pem: &str) -> Result<RsaKeyPair, String> {
    let body: String = pem.lines().filter(|line| !line.starts_with("-----")).map(str::trim).collect();
    let der = STANDARD.decode(body).map_err(|_| "private_key is not PEM".to_string())?;
    RsaKeyPair::from_pkcs8(&der).map_err(|e| format!("private_key is not a PKCS#8 RSA key: {e}"))
}

/// The JWT a service account trades for an access token (RFC 7523).
fn signed_jwt(email: &str, key: &RsaKeyPair, key_id: Option<&str>, audience: &str) -> Result<String, String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| e.to_string())?.as_secs();
    let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": key_id });
    let claims = serde_json::json!({ "iss": email, "scope": SCOPE, "aud": audience, "iat": now, "exp": now + 3600 });
    let signing_input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut signature)
        .map_err(|_| "cannot sign the token request".to_string())?;
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
            .unwrap_or_else(|_| Err(format!("{} did not answer within {FIRST_TOKEN_TIMEOUT:?}", credentials.source())))
            .map_err(|e| {
                TelemetryError::Gcp(format!("cannot get an access token from {}: {e}", credentials.source()))
            })?;
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
