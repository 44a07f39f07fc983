//! The AWS credential managers, `ssm` (SSM Parameter Store) and
//! `secretsmanager` (Secrets Manager), through the AWS SDK for Rust. Both
//! are set up alike (a region, optional static keys, secret name
//! templates); what they share lives here, each store's reads beside it.
//!
//! Without `access_key`, the SDK's default chain finds credentials
//! (environment, profile, web identity, container or instance role), as
//! Concourse's `LoadDefaultConfig` does. The SDK's own retries are off:
//! atc retries transient failures by kind (`--secret-retry-*`).

mod secretsmanager;
mod ssm;

use std::future::Future;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ssm::config::http::HttpResponse;
use aws_sdk_ssm::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use opentelemetry::trace::FutureExt;
use serde_json::Value;

pub use secretsmanager::SecretsManager;
pub use ssm::Ssm;

use super::LookupError;
use super::endpoint::Endpoint;
use super::template::SecretTemplate;
use crate::telemetry::spans::{BackendRequest, Rpc};

pub const DEFAULT_PIPELINE_SECRET_TEMPLATE: &str = "/concourse/{{.Team}}/{{.Pipeline}}/{{.Secret}}";
pub const DEFAULT_TEAM_SECRET_TEMPLATE: &str = "/concourse/{{.Team}}/{{.Secret}}";
/// Secrets Manager's third template, for secrets every team may use.
pub const DEFAULT_SHARED_SECRET_TEMPLATE: &str = "/concourse/{{.Secret}}";
/// How long one lookup, retries included, may take (Concourse has no flag for it).
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Which of the two stores: the flags' and the spans' names differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsService {
    Ssm,
    SecretsManager,
}

impl AwsService {
    /// The manager's name (`concourse.creds.manager`, var source type).
    pub const fn name(self) -> &'static str {
        match self {
            AwsService::Ssm => "ssm",
            AwsService::SecretsManager => "secretsmanager",
        }
    }

    /// The flag of a setting, e.g. `--aws-ssm-region`.
    pub fn flag(self, key: &str) -> String {
        format!("--aws-{}-{}", self.name(), key.replace('_', "-"))
    }

    /// The SDK's service id, for `rpc.service` and span names.
    fn rpc_service(self) -> &'static str {
        match self {
            AwsService::Ssm => "SSM",
            AwsService::SecretsManager => "Secrets Manager",
        }
    }

    /// The endpoint's host when no endpoint is configured.
    fn default_host(self, region: &str) -> String {
        format!("{}.{region}.amazonaws.com", self.name())
    }
}

/// The settings as given (flags or a var source's config), before they are checked.
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub session_token: Option<String>,
    pub pipeline_secret_template: Option<String>,
    pub team_secret_template: Option<String>,
    /// SSM: `shared_path`, a path whose `<path>/<secret>` is tried last.
    /// Secrets Manager: `shared_secret_template`.
    pub shared: Option<String>,
}

/// Where the SDK sends every request instead of AWS, in this process.
static TEST_ENDPOINT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sends the requests of every AWS manager of this process to `url` (a
/// `moto_server`). Only the in-process tests call this: no flag or var
/// source key offers it. (The real binary honours the SDK's own
/// `AWS_ENDPOINT_URL` environment variable, which its tests use.)
#[doc(hidden)]
pub fn use_test_endpoint(url: &str) {
    let _ = TEST_ENDPOINT.set(url.to_string());
}

/// A setting that cannot be used, named by its flag or var source key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct AwsConfigError {
    pub setting: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct AwsConfig {
    pub service: AwsService,
    pub region: String,
    keys: Option<(String, String, Option<String>)>,
    /// Tried in order: pipeline, team, then the shared one.
    templates: Vec<SecretTemplate>,
    /// SSM's shared path as given, for `describe`.
    shared_path: Option<String>,
}

impl AwsSettings {
    /// Without a region, the store is not configured (as in Concourse).
    pub fn is_configured(&self) -> bool {
        self.region.as_deref().is_some_and(|region| !region.is_empty())
    }

    /// Checks the settings; `name` turns a setting's key into what the
    /// operator wrote (a flag or a var source key).
    pub fn check(self, service: AwsService, name: &dyn Fn(&str) -> String) -> Result<AwsConfig, AwsConfigError> {
        let error = |key: &str, message: String| AwsConfigError { setting: name(key), message };
        let given = |value: Option<String>| value.filter(|v| !v.is_empty());
        let region = given(self.region).ok_or_else(|| error("region", "missing".into()))?;
        let keys = match (given(self.access_key), given(self.secret_key), given(self.session_token)) {
            (None, None, None) => None,
            (None, _, _) => {
                return Err(error("access_key", "missing: the secret key or session token needs it".into()));
            }
            (Some(_), None, _) => return Err(error("secret_key", "missing: the access key needs it".into())),
            (Some(access), Some(secret), token) => Some((access, secret, token)),
        };
        let template = |key: &str, value: Option<String>, default: &str| {
            SecretTemplate::parse(value.as_deref().unwrap_or(default)).map_err(|message| error(key, message))
        };
        let mut templates = vec![
            template("pipeline_secret_template", self.pipeline_secret_template, DEFAULT_PIPELINE_SECRET_TEMPLATE)?,
            template("team_secret_template", self.team_secret_template, DEFAULT_TEAM_SECRET_TEMPLATE)?,
        ];
        let shared = given(self.shared);
        let mut shared_path = None;
        match service {
            AwsService::Ssm => {
                if let Some(shared) = shared {
                    let text = format!("{}/{{{{.Secret}}}}", shared.trim_end_matches('/'));
                    templates.push(SecretTemplate::parse(&text).map_err(|message| error("shared_path", message))?);
                    shared_path = Some(shared);
                }
            }
            AwsService::SecretsManager => {
                templates.push(template("shared_secret_template", shared, DEFAULT_SHARED_SECRET_TEMPLATE)?);
            }
        }
        Ok(AwsConfig { service, region, keys, templates, shared_path })
    }

    /// A `type: ssm` or `type: secretsmanager` var source's config, with Concourse's keys.
    pub fn from_var_source(service: AwsService, config: &Value) -> Result<AwsConfig, AwsConfigError> {
        let text = |key: &str| -> Result<Option<String>, AwsConfigError> {
            match config.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) => Ok(Some(text.clone())),
                Some(_) => Err(AwsConfigError { setting: key.into(), message: "must be a string".into() }),
            }
        };
        let shared_key = match service {
            AwsService::Ssm => "shared_path",
            AwsService::SecretsManager => "shared_secret_template",
        };
        if let Some(map) = config.as_object() {
            let known = [
                "region",
                "access_key",
                "secret_key",
                "session_token",
                "pipeline_secret_template",
                "team_secret_template",
                shared_key,
            ];
            if let Some(unknown) = map.keys().find(|key| !known.contains(&key.as_str())) {
                return Err(AwsConfigError {
                    setting: unknown.clone(),
                    message: format!("unknown key (expected one of {})", known.join(", ")),
                });
            }
        } else if !config.is_null() {
            return Err(AwsConfigError { setting: "config".into(), message: "must be a map".into() });
        }
        AwsSettings {
            region: text("region")?,
            access_key: text("access_key")?,
            secret_key: text("secret_key")?,
            session_token: text("session_token")?,
            pipeline_secret_template: text("pipeline_secret_template")?,
            team_secret_template: text("team_secret_template")?,
            shared: text(shared_key)?,
        }
        .check(service, &|key| key.to_string())
    }
}

impl AwsConfig {
    /// The names `secret` is looked for at, in order.
    pub fn names(&self, team: &str, pipeline: Option<&str>, secret: &str) -> Vec<String> {
        self.templates.iter().filter_map(|template| template.expand(team, pipeline, secret)).collect()
    }

    /// For `GET /api/v1/info/creds`, with Concourse's keys: never the AWS keys.
    pub fn describe(&self) -> Value {
        let template = |index: usize| self.templates.get(index).map(SecretTemplate::as_str);
        let mut description = serde_json::json!({
            "aws_region": self.region,
            "pipeline_secret_template": template(0),
            "team_secret_template": template(1),
        });
        match self.service {
            AwsService::Ssm => description["shared_path"] = self.shared_path.clone().unwrap_or_default().into(),
            AwsService::SecretsManager => description["shared_secret_template"] = template(2).into(),
        }
        description
    }

    /// The SDK's configuration: region, keys or the default chain, atc's
    /// rustls with ring (no second crypto library), no SDK retries.
    async fn sdk_config(&self) -> SdkConfig {
        // The SDK's rustls needs the process-wide provider atc uses.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(10))
            .operation_attempt_timeout(Duration::from_secs(30))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .http_client(http)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(timeouts);
        if let Some((access, secret, token)) = &self.keys {
            let keys = aws_sdk_ssm::config::Credentials::new(access, secret, token.clone(), None, "atc-flags");
            loader = loader.credentials_provider(keys);
        }
        if let Some(url) = TEST_ENDPOINT.get() {
            loader = loader.endpoint_url(url);
        }
        loader.load().await
    }

    /// Where the requests go, for spans: the configured endpoint or AWS's.
    fn endpoint(&self, sdk: &SdkConfig) -> Endpoint {
        match sdk.endpoint_url() {
            Some(url) => Endpoint::of(url),
            None => Endpoint { host: self.service.default_host(&self.region), port: None },
        }
    }
}

/// Runs one SDK call in a CLIENT span (`SSM.GetParameter`) under the
/// current lookup; `absent` tells an answer meaning "no such secret",
/// which is no failure of the request.
async fn traced<T, E>(
    service: AwsService,
    endpoint: &Endpoint,
    method: &str,
    absent: impl Fn(&E) -> bool,
    call: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
) -> Result<T, SdkError<E, HttpResponse>>
where
    E: std::error::Error + 'static,
{
    let rpc = Rpc { system: "aws-api", service: service.rpc_service(), method };
    let operation = format!("{}.{method}", service.rpc_service().replace(' ', ""));
    let span = BackendRequest {
        operation: &operation,
        method: "POST",
        server_address: &endpoint.host,
        server_port: endpoint.port,
        rpc: Some(rpc),
    }
    .start();
    let answer = call.with_current_context().await;
    match &answer {
        Ok(_) => span.ended(Some(200), None),
        Err(error) => {
            let status = error.raw_response().map(|response| response.status().as_u16());
            let failed = error.as_service_error().is_none_or(|service_error| !absent(service_error));
            let message = DisplayErrorContext(error).to_string();
            span.ended(status, failed.then_some(message.as_str()));
        }
    }
    answer
}

/// A failed call as a lookup error: transient when AWS could not be
/// reached, timed out, failed on its side or throttled.
fn lookup_error<E>(manager: &'static str, error: SdkError<E, HttpResponse>) -> LookupError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let transient = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or_default();
            crate::creds::status_is_transient(status) || code.contains("Throttl")
        }
        _ => false,
    };
    LookupError::failed(manager, transient, DisplayErrorContext(&error).to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings() -> AwsSettings {
        AwsSettings { region: Some("eu-west-1".into()), ..AwsSettings::default() }
    }

    #[test]
    fn names_are_tried_pipeline_then_team_then_shared() {
        let flag = |key: &str| AwsService::Ssm.flag(key);
        let ssm = AwsSettings { shared: Some("/concourse/shared/".into()), ..settings() }
            .check(AwsService::Ssm, &flag)
            .unwrap();
        assert_eq!(
            ssm.names("main", Some("p"), "token"),
            ["/concourse/main/p/token", "/concourse/main/token", "/concourse/shared/token"]
        );
        assert_eq!(ssm.names("main", None, "token"), ["/concourse/main/token", "/concourse/shared/token"]);
        let secrets = settings().check(AwsService::SecretsManager, &|key| AwsService::SecretsManager.flag(key));
        assert_eq!(
            secrets.unwrap().names("main", Some("p"), "token"),
            ["/concourse/main/p/token", "/concourse/main/token", "/concourse/token"]
        );
    }

    #[test]
    fn a_bad_setting_is_refused_naming_its_flag_or_key() {
        let refused = |settings: AwsSettings| {
            settings.check(AwsService::Ssm, &|key| AwsService::Ssm.flag(key)).unwrap_err().to_string()
        };
        assert_eq!(refused(AwsSettings { region: None, ..settings() }), "--aws-ssm-region: missing");
        assert_eq!(
            refused(AwsSettings { access_key: Some("a".into()), ..settings() }),
            "--aws-ssm-secret-key: missing: the access key needs it"
        );
        assert!(
            refused(AwsSettings { team_secret_template: Some("/{{.team}}".into()), ..settings() })
                .starts_with("--aws-ssm-team-secret-template: '/{{.team}}': unknown placeholder")
        );
        let source = |config| AwsSettings::from_var_source(AwsService::SecretsManager, &config).unwrap_err();
        assert_eq!(source(json!({ "region": 3 })).to_string(), "region: must be a string");
        assert_eq!(
            source(json!({ "region": "r", "shared_path": "/x" })).to_string(),
            "shared_path: unknown key (expected one of region, access_key, secret_key, session_token, \
             pipeline_secret_template, team_secret_template, shared_secret_template)"
        );
    }
}
