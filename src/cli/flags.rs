//! Flag groups shared by the server commands. Names, defaults and
//! `CONCOURSE_*` variables follow Concourse so existing deployments keep
//! their configuration.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::auth::LocalUser;
use crate::db::EncryptionKey;
use crate::telemetry::{
    GcpConfig, KeyValuePair, MetricsConfig, OtlpAddress, OtlpConfig, Protocol, SamplingStrategy, TelemetryConfig,
    TracingConfig, parse_sampling_rate,
};
use crate::ui::trace_link::TraceLinkTemplate;

/// Flags of everything that serves the API: `web` and `quickstart`.
#[derive(Debug, Clone, Args)]
pub struct ServerFlags {
    /// IP address on which to listen for web traffic [web: 0.0.0.0, quickstart: 127.0.0.1].
    #[arg(long, env = "CONCOURSE_BIND_IP", value_name = "IP")]
    pub bind_ip: Option<IpAddr>,

    /// Port on which to listen for HTTP traffic.
    #[arg(long, env = "CONCOURSE_BIND_PORT", default_value_t = 8080, value_name = "PORT")]
    pub bind_port: u16,

    /// URL used to reach atc from the outside world [default: http://<bind-ip>:<bind-port>].
    #[arg(long, env = "CONCOURSE_EXTERNAL_URL", value_parser = parse_external_url, value_name = "URL")]
    pub external_url: Option<String>,

    /// A name for this cluster, shown in the UI and returned by /api/v1/info.
    #[arg(long, env = "CONCOURSE_CLUSTER_NAME", default_value = "", value_name = "NAME")]
    pub cluster_name: String,

    /// Minimum level of logs to print: debug, info, warn, error.
    #[arg(long, env = "CONCOURSE_LOG_LEVEL", default_value = "info", value_parser = parse_log_level, value_name = "LEVEL")]
    pub log_level: String,

    #[command(flatten)]
    pub auth: AuthFlags,

    #[command(flatten)]
    pub encryption: EncryptionFlags,

    #[command(flatten)]
    pub runtime: RuntimeFlags,

    #[command(flatten)]
    pub credentials: CredentialFlags,

    #[command(flatten)]
    pub checking: CheckingFlags,

    #[command(flatten)]
    pub builds: BuildFlags,

    #[command(flatten)]
    pub uploads: UploadFlags,

    #[command(flatten)]
    pub tracing: TracingFlags,

    #[command(flatten)]
    pub metrics: MetricsFlags,

    #[command(flatten)]
    pub prometheus: PrometheusFlags,
}

/// How often resources are checked for new versions.
#[derive(Debug, Clone, Args)]
pub struct CheckingFlags {
    /// How often a resource without `check_every` is checked.
    #[arg(long, env = "CONCOURSE_RESOURCE_CHECKING_INTERVAL", default_value = "1m", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub resource_checking_interval: Duration,

    /// How often a resource type without `check_every` is checked.
    #[arg(long, env = "CONCOURSE_RESOURCE_TYPE_CHECKING_INTERVAL", default_value = "1m", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub resource_type_checking_interval: Duration,
}

/// How atc nodes share running builds.
#[derive(Debug, Clone, Args)]
pub struct BuildFlags {
    /// How long a node's hold on a running build lasts without renewal: when a node dies or is cut off,
    /// another node ends its builds after this long (and never sooner).
    #[arg(long, env = "CONCOURSE_BUILD_LEASE_DURATION", default_value = "30s", value_parser = parse_lease_duration, value_name = "DURATION")]
    pub build_lease_duration: Duration,
}

/// A flag value this module's parsers refuse; clap shows it after the flag.
#[derive(Debug, thiserror::Error)]
pub(super) enum InvalidFlag {
    #[error(transparent)]
    Duration(#[from] crate::duration::InvalidDuration),
    #[error("must be longer than 0s")]
    ZeroDuration,
    #[error("'{0}' is too short: a build lease lasts at least 1s")]
    LeaseTooShort(String),
    #[error("'{0}' must start with http:// or https://")]
    NotHttpUrl(String),
    #[error("'{0}' has no host")]
    NoHost(String),
    #[error("'{0}' is not one of debug, info, warn, error, fatal")]
    UnknownLogLevel(String),
}

/// A lease short enough to renew three times a second at most.
fn parse_lease_duration(value: &str) -> Result<Duration, InvalidFlag> {
    let duration = parse_positive_duration(value)?;
    if duration < Duration::from_secs(1) {
        return Err(InvalidFlag::LeaseTooShort(value.to_string()));
    }
    Ok(duration)
}

/// How large a `fly execute` upload may be.
#[derive(Debug, Clone, Args)]
pub struct UploadFlags {
    /// Largest artifact upload (`fly execute` inputs) accepted, as sent: gzipped.
    #[arg(long, env = "CONCOURSE_ARTIFACT_UPLOAD_MAX_SIZE", default_value = "1GB", value_parser = crate::byte_size::parse, value_name = "SIZE")]
    pub artifact_upload_max_size: u64,

    /// Largest size an artifact upload may unpack to; a bigger one is refused as soon as that is known.
    #[arg(long, env = "CONCOURSE_ARTIFACT_UNPACKED_MAX_SIZE", default_value = "4GB", value_parser = crate::byte_size::parse, value_name = "SIZE")]
    pub artifact_unpacked_max_size: u64,
}

impl UploadFlags {
    pub fn limits(&self) -> crate::runtime::UploadLimits {
        crate::runtime::UploadLimits {
            max_compressed_bytes: self.artifact_upload_max_size,
            max_unpacked_bytes: self.artifact_unpacked_max_size,
        }
    }
}

/// Where `((vars))` of pipelines get their values, and how lookups are
/// cached and retried.
#[derive(Debug, Clone, Args)]
pub struct CredentialFlags {
    /// A var for the `dummy` credential manager, as KEY:VALUE. Repeatable, or comma-separated.
    #[arg(long, env = "CONCOURSE_DUMMY_CREDS_VAR", hide_env_values = true, value_delimiter = ',', value_parser = crate::creds::Dummy::parse_flag, value_name = "KEY:VALUE")]
    pub dummy_creds_var: Vec<(String, String)>,

    /// Cache the answers of the credential manager (found and not found).
    #[arg(long, env = "CONCOURSE_SECRET_CACHE_ENABLED")]
    pub secret_cache_enabled: bool,

    /// How long a found secret is cached (no longer than its lease).
    #[arg(long, env = "CONCOURSE_SECRET_CACHE_DURATION", default_value = "1m", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub secret_cache_duration: Duration,

    /// How long a secret that was not found is cached.
    #[arg(long, env = "CONCOURSE_SECRET_CACHE_DURATION_NOTFOUND", default_value = "10s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub secret_cache_duration_notfound: Duration,

    /// How many times a lookup is tried when the credential manager cannot be reached.
    #[arg(long, env = "CONCOURSE_SECRET_RETRY_ATTEMPTS", default_value = "5", value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub secret_retry_attempts: u32,

    /// How long to wait between two tries of a lookup.
    #[arg(long, env = "CONCOURSE_SECRET_RETRY_INTERVAL", default_value = "1s", value_parser = crate::duration::parse, value_name = "DURATION")]
    pub secret_retry_interval: Duration,

    /// Replace the secrets a build looked up with ((redacted)) in its output and events (`=false` shows them).
    #[arg(long, env = "CONCOURSE_ENABLE_REDACT_SECRETS", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub enable_redact_secrets: bool,

    #[command(flatten)]
    pub vault: VaultFlags,

    #[command(flatten)]
    pub ssm: AwsSsmFlags,

    #[command(flatten)]
    pub secretsmanager: AwsSecretsManagerFlags,

    #[command(flatten)]
    pub kubernetes: KubernetesCredsFlags,

    #[command(flatten)]
    pub credhub: CredHubFlags,
}

/// The `credhub` credential manager.
#[derive(Debug, Clone, Args)]
pub struct CredHubFlags {
    /// CredHub's URL, e.g. https://credhub.example.com:8844; enables the manager.
    #[arg(long, env = "CONCOURSE_CREDHUB_URL", value_name = "URL")]
    pub credhub_url: Option<String>,

    /// Under which credentials are looked up.
    #[arg(long, env = "CONCOURSE_CREDHUB_PATH_PREFIX", default_value = crate::creds::credhub::DEFAULT_PATH_PREFIX, value_name = "PATH")]
    pub credhub_path_prefix: String,

    /// A path under the prefix tried last, for credentials every team may use.
    #[arg(long, env = "CONCOURSE_CREDHUB_SHARED_PATH", value_name = "PATH")]
    pub credhub_shared_path: Option<String>,

    /// A PEM file of CA certificates to trust for CredHub's (and UAA's) certificate. Repeatable.
    #[arg(long, env = "CONCOURSE_CREDHUB_CA_CERT", value_delimiter = ',', value_name = "FILE")]
    pub credhub_ca_cert: Vec<PathBuf>,

    /// A PEM client certificate for mutual TLS.
    #[arg(long, env = "CONCOURSE_CREDHUB_CLIENT_CERT", value_name = "FILE")]
    pub credhub_client_cert: Option<PathBuf>,

    /// The PEM private key of --credhub-client-cert.
    #[arg(long, env = "CONCOURSE_CREDHUB_CLIENT_KEY", value_name = "FILE")]
    pub credhub_client_key: Option<PathBuf>,

    /// Do not verify CredHub's certificate. For trying things out only.
    #[arg(long, env = "CONCOURSE_CREDHUB_INSECURE_SKIP_VERIFY")]
    pub credhub_insecure_skip_verify: bool,

    /// The UAA client atc gets tokens as (client credentials grant).
    #[arg(long, env = "CONCOURSE_CREDHUB_CLIENT_ID", value_name = "ID")]
    pub credhub_client_id: Option<String>,

    /// The secret of --credhub-client-id.
    #[arg(long, env = "CONCOURSE_CREDHUB_CLIENT_SECRET", hide_env_values = true, value_name = "SECRET")]
    pub credhub_client_secret: Option<String>,
}

impl CredHubFlags {
    fn settings(&self) -> crate::creds::credhub::CredHubSettings {
        crate::creds::credhub::CredHubSettings {
            url: self.credhub_url.clone(),
            path_prefix: Some(self.credhub_path_prefix.clone()),
            shared_path: self.credhub_shared_path.clone(),
            ca_certs: self.credhub_ca_cert.clone(),
            client_cert: self.credhub_client_cert.clone(),
            client_key: self.credhub_client_key.clone(),
            insecure_skip_verify: self.credhub_insecure_skip_verify,
            client_id: self.credhub_client_id.clone(),
            client_secret: self.credhub_client_secret.clone(),
        }
    }
}

/// The `kubernetes` credential manager (Secrets in a cluster). Not the
/// JetBridge runtime's --kubernetes-* flags: these only find secrets.
#[derive(Debug, Clone, Args)]
pub struct KubernetesCredsFlags {
    /// Read Secrets with the service account of atc's own pod; enables the manager.
    #[arg(long, env = "CONCOURSE_KUBERNETES_IN_CLUSTER")]
    pub kubernetes_in_cluster: bool,

    /// Read Secrets with this kubeconfig (atc outside the cluster); enables the manager.
    #[arg(long, env = "CONCOURSE_KUBERNETES_CONFIG_PATH", value_name = "FILE")]
    pub kubernetes_config_path: Option<PathBuf>,

    /// A team's Secrets are in namespace <prefix><team>.
    #[arg(long, env = "CONCOURSE_KUBERNETES_NAMESPACE_PREFIX", default_value = crate::creds::kubernetes::DEFAULT_NAMESPACE_PREFIX, value_name = "PREFIX")]
    pub kubernetes_namespace_prefix: String,

    /// Secrets every team may use are in namespace <prefix><suffix>, tried last.
    #[arg(long, env = "CONCOURSE_KUBERNETES_SHARED_NAMESPACE_SUFFIX", value_name = "SUFFIX")]
    pub kubernetes_shared_namespace_suffix: Option<String>,
}

impl KubernetesCredsFlags {
    fn settings(&self) -> crate::creds::kubernetes::KubernetesSettings {
        crate::creds::kubernetes::KubernetesSettings {
            in_cluster: self.kubernetes_in_cluster,
            config_path: self.kubernetes_config_path.clone(),
            namespace_prefix: Some(self.kubernetes_namespace_prefix.clone()),
            shared_namespace_suffix: self.kubernetes_shared_namespace_suffix.clone(),
        }
    }
}

/// The `ssm` credential manager (AWS SSM Parameter Store).
#[derive(Debug, Clone, Args)]
pub struct AwsSsmFlags {
    /// The AWS region of the parameters; enables the manager.
    #[arg(long, env = "CONCOURSE_AWS_SSM_REGION", value_name = "REGION")]
    pub aws_ssm_region: Option<String>,

    /// An access key ID (without one, the SDK's default chain finds credentials).
    #[arg(long, env = "CONCOURSE_AWS_SSM_ACCESS_KEY", value_name = "KEY")]
    pub aws_ssm_access_key: Option<String>,

    /// The secret access key of --aws-ssm-access-key.
    #[arg(long, env = "CONCOURSE_AWS_SSM_SECRET_KEY", hide_env_values = true, value_name = "KEY")]
    pub aws_ssm_secret_key: Option<String>,

    /// A session token for temporary keys.
    #[arg(long, env = "CONCOURSE_AWS_SSM_SESSION_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub aws_ssm_session_token: Option<String>,

    /// The parameter name of a pipeline's secret.
    #[arg(long, env = "CONCOURSE_AWS_SSM_PIPELINE_SECRET_TEMPLATE", default_value = crate::creds::aws::DEFAULT_PIPELINE_SECRET_TEMPLATE, value_name = "TEMPLATE")]
    pub aws_ssm_pipeline_secret_template: String,

    /// The parameter name of a team's secret, tried after the pipeline's.
    #[arg(long, env = "CONCOURSE_AWS_SSM_TEAM_SECRET_TEMPLATE", default_value = crate::creds::aws::DEFAULT_TEAM_SECRET_TEMPLATE, value_name = "TEMPLATE")]
    pub aws_ssm_team_secret_template: String,

    /// A path whose <path>/<secret> is tried last, for secrets every team may use.
    #[arg(long, env = "CONCOURSE_AWS_SSM_SHARED_PATH", value_name = "PATH")]
    pub aws_ssm_shared_path: Option<String>,
}

impl AwsSsmFlags {
    fn settings(&self) -> crate::creds::aws::AwsSettings {
        crate::creds::aws::AwsSettings {
            region: self.aws_ssm_region.clone(),
            access_key: self.aws_ssm_access_key.clone(),
            secret_key: self.aws_ssm_secret_key.clone(),
            session_token: self.aws_ssm_session_token.clone(),
            pipeline_secret_template: Some(self.aws_ssm_pipeline_secret_template.clone()),
            team_secret_template: Some(self.aws_ssm_team_secret_template.clone()),
            shared: self.aws_ssm_shared_path.clone(),
        }
    }
}

/// The `secretsmanager` credential manager (AWS Secrets Manager).
#[derive(Debug, Clone, Args)]
pub struct AwsSecretsManagerFlags {
    /// The AWS region of the secrets; enables the manager.
    #[arg(long, env = "CONCOURSE_AWS_SECRETSMANAGER_REGION", value_name = "REGION")]
    pub aws_secretsmanager_region: Option<String>,

    /// An access key ID (without one, the SDK's default chain finds credentials).
    #[arg(long, env = "CONCOURSE_AWS_SECRETSMANAGER_ACCESS_KEY", value_name = "KEY")]
    pub aws_secretsmanager_access_key: Option<String>,

    /// The secret access key of --aws-secretsmanager-access-key.
    #[arg(long, env = "CONCOURSE_AWS_SECRETSMANAGER_SECRET_KEY", hide_env_values = true, value_name = "KEY")]
    pub aws_secretsmanager_secret_key: Option<String>,

    /// A session token for temporary keys.
    #[arg(long, env = "CONCOURSE_AWS_SECRETSMANAGER_SESSION_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub aws_secretsmanager_session_token: Option<String>,

    /// The secret id of a pipeline's secret.
    #[arg(long, env = "CONCOURSE_AWS_SECRETSMANAGER_PIPELINE_SECRET_TEMPLATE", default_value = crate::creds::aws::DEFAULT_PIPELINE_SECRET_TEMPLATE, value_name = "TEMPLATE")]
    pub aws_secretsmanager_pipeline_secret_template: String,

    /// The secret id of a team's secret, tried after the pipeline's.
    #[arg(long, env = "CONCOURSE_AWS_SECRETSMANAGER_TEAM_SECRET_TEMPLATE", default_value = crate::creds::aws::DEFAULT_TEAM_SECRET_TEMPLATE, value_name = "TEMPLATE")]
    pub aws_secretsmanager_team_secret_template: String,

    /// The secret id tried last, for secrets every team may use.
    #[arg(long, env = "CONCOURSE_AWS_SECRETSMANAGER_SHARED_SECRET_TEMPLATE", default_value = crate::creds::aws::DEFAULT_SHARED_SECRET_TEMPLATE, value_name = "TEMPLATE")]
    pub aws_secretsmanager_shared_secret_template: String,
}

impl AwsSecretsManagerFlags {
    fn settings(&self) -> crate::creds::aws::AwsSettings {
        crate::creds::aws::AwsSettings {
            region: self.aws_secretsmanager_region.clone(),
            access_key: self.aws_secretsmanager_access_key.clone(),
            secret_key: self.aws_secretsmanager_secret_key.clone(),
            session_token: self.aws_secretsmanager_session_token.clone(),
            pipeline_secret_template: Some(self.aws_secretsmanager_pipeline_secret_template.clone()),
            team_secret_template: Some(self.aws_secretsmanager_team_secret_template.clone()),
            shared: Some(self.aws_secretsmanager_shared_secret_template.clone()),
        }
    }
}

/// The `vault` credential manager (Vault or OpenBao).
#[derive(Debug, Clone, Args)]
pub struct VaultFlags {
    /// Vault's URL, e.g. https://vault.example.com:8200; enables the manager.
    #[arg(long, env = "CONCOURSE_VAULT_URL", value_name = "URL")]
    pub vault_url: Option<String>,

    /// Prepended to every lookup path; its first segment is the KV mount.
    #[arg(long, env = "CONCOURSE_VAULT_PATH_PREFIX", default_value = "/concourse", value_name = "PATH")]
    pub vault_path_prefix: String,

    /// Paths tried in order, with {{.Team}}, {{.Pipeline}} and {{.Secret}} [default: /{{.Team}}/{{.Pipeline}}/{{.Secret}},/{{.Team}}/{{.Secret}}].
    #[arg(long, env = "CONCOURSE_VAULT_LOOKUP_TEMPLATES", value_delimiter = ',', value_name = "TEMPLATE")]
    pub vault_lookup_templates: Vec<String>,

    /// A path under the prefix tried last, for secrets every team may use.
    #[arg(long, env = "CONCOURSE_VAULT_SHARED_PATH", value_name = "PATH")]
    pub vault_shared_path: Option<String>,

    /// The Vault Enterprise (or OpenBao) namespace.
    #[arg(long, env = "CONCOURSE_VAULT_NAMESPACE", value_name = "NAMESPACE")]
    pub vault_namespace: Option<String>,

    /// A PEM file of CA certificates to trust for Vault's certificate.
    #[arg(long, env = "CONCOURSE_VAULT_CA_CERT", value_name = "FILE")]
    pub vault_ca_cert: Option<PathBuf>,

    /// A PEM client certificate for mutual TLS (and the cert auth backend).
    #[arg(long, env = "CONCOURSE_VAULT_CLIENT_CERT", value_name = "FILE")]
    pub vault_client_cert: Option<PathBuf>,

    /// The PEM private key of --vault-client-cert.
    #[arg(long, env = "CONCOURSE_VAULT_CLIENT_KEY", value_name = "FILE")]
    pub vault_client_key: Option<PathBuf>,

    /// The name Vault's certificate is checked against and the TLS server name (SNI) sent, when not the URL's host.
    #[arg(long, env = "CONCOURSE_VAULT_SERVER_NAME", value_name = "NAME")]
    pub vault_server_name: Option<String>,

    /// Do not verify Vault's certificate. For trying things out only.
    #[arg(long, env = "CONCOURSE_VAULT_INSECURE_SKIP_VERIFY")]
    pub vault_insecure_skip_verify: bool,

    /// How atc logs in: token (--vault-client-token), approle, cert or kubernetes [default: token].
    #[arg(long, env = "CONCOURSE_VAULT_AUTH_BACKEND", value_name = "BACKEND")]
    pub vault_auth_backend: Option<String>,

    /// A parameter of the auth backend, as KEY:VALUE (approle: role_id, secret_id; cert: name; kubernetes: role, jwt or jwt_path; any: mount). Repeatable.
    #[arg(long, env = "CONCOURSE_VAULT_AUTH_PARAM", hide_env_values = true, value_delimiter = ',', value_parser = crate::creds::Dummy::parse_flag, value_name = "KEY:VALUE")]
    pub vault_auth_param: Vec<(String, String)>,

    /// The token atc uses with the token auth backend.
    #[arg(long, env = "CONCOURSE_VAULT_CLIENT_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub vault_client_token: Option<String>,

    /// How long a login may take.
    #[arg(long, env = "CONCOURSE_VAULT_LOGIN_TIMEOUT", default_value = "60s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub vault_login_timeout: Duration,

    /// How long one lookup (retries included) may take before the step errors.
    #[arg(long, env = "CONCOURSE_VAULT_QUERY_TIMEOUT", default_value = "60s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub vault_query_timeout: Duration,

    /// Log in again after this long instead of renewing the token for ever.
    #[arg(long, env = "CONCOURSE_VAULT_AUTH_BACKEND_MAX_TTL", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub vault_auth_backend_max_ttl: Option<Duration>,

    /// The first wait before a login Vault could not answer is tried again (doubling each time).
    #[arg(long, env = "CONCOURSE_VAULT_RETRY_INITIAL", default_value = "1s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub vault_retry_initial: Duration,

    /// The longest wait between two tries of a login.
    #[arg(long, env = "CONCOURSE_VAULT_RETRY_MAX", default_value = "5m", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub vault_retry_max: Duration,
}

impl VaultFlags {
    fn settings(&self) -> crate::creds::vault::VaultSettings {
        use crate::creds::vault::Pem;
        crate::creds::vault::VaultSettings {
            url: self.vault_url.clone(),
            path_prefix: Some(self.vault_path_prefix.clone()),
            lookup_templates: self.vault_lookup_templates.clone(),
            shared_path: self.vault_shared_path.clone(),
            namespace: self.vault_namespace.clone(),
            ca_cert: self.vault_ca_cert.clone().map(Pem::File),
            client_cert: self.vault_client_cert.clone().map(Pem::File),
            client_key: self.vault_client_key.clone().map(Pem::File),
            server_name: self.vault_server_name.clone(),
            insecure_skip_verify: self.vault_insecure_skip_verify,
            auth_backend: self.vault_auth_backend.clone(),
            auth_params: self.vault_auth_param.iter().cloned().collect(),
            client_token: self.vault_client_token.clone(),
            login_timeout: Some(self.vault_login_timeout),
            query_timeout: Some(self.vault_query_timeout),
            auth_max_ttl: self.vault_auth_backend_max_ttl,
            auth_retry_initial: Some(self.vault_retry_initial),
            auth_retry_max: Some(self.vault_retry_max),
        }
    }
}

impl CredentialFlags {
    /// atc's credential manager: the one whose enabling flag is given
    /// (--vault-url, --aws-ssm-region, ...), else none. Two at once, or a bad
    /// setting, is an error naming the flags.
    /// The configured manager; a `kubernetes` one uses `kube_client` when it
    /// reaches the same cluster the same way (the Kubernetes runtime's).
    pub fn manager(
        &self,
        kube_client: Option<&crate::kube_access::KubeClient>,
    ) -> anyhow::Result<std::sync::Arc<dyn crate::creds::CredentialManager>> {
        use crate::creds::aws::{AwsService, SecretsManager, Ssm};
        use std::sync::Arc;
        let vault = self.vault.settings();
        let ssm = self.ssm.settings();
        let secretsmanager = self.secretsmanager.settings();
        let kubernetes = self.kubernetes.settings();
        let credhub = self.credhub.settings();
        let configured: Vec<&str> = [
            (!self.dummy_creds_var.is_empty(), "--dummy-creds-var"),
            (vault.is_configured(), "--vault-url"),
            (ssm.is_configured(), "--aws-ssm-region"),
            (secretsmanager.is_configured(), "--aws-secretsmanager-region"),
            (kubernetes.is_configured(), "--kubernetes-in-cluster/--kubernetes-config-path"),
            (credhub.is_configured(), "--credhub-*"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect();
        match configured.as_slice() {
            [] => Ok(Arc::new(crate::creds::NoCredentials)),
            ["--dummy-creds-var"] => {
                let vars = self
                    .dummy_creds_var
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect();
                Ok(Arc::new(crate::creds::Dummy::new(vars)))
            }
            ["--vault-url"] => {
                let config = vault.check(&crate::creds::vault::FLAG_NAMES)?;
                Ok(Arc::new(crate::creds::vault::Vault::new(config)?))
            }
            ["--aws-ssm-region"] => {
                let config = ssm.check(AwsService::Ssm, &|key| AwsService::Ssm.flag(key))?;
                Ok(Arc::new(Ssm::new(config)))
            }
            ["--aws-secretsmanager-region"] => {
                let service = AwsService::SecretsManager;
                Ok(Arc::new(SecretsManager::new(secretsmanager.check(service, &|key| service.flag(key))?)))
            }
            ["--kubernetes-in-cluster/--kubernetes-config-path"] => {
                Ok(Arc::new(crate::creds::kubernetes::Kubernetes::new(kubernetes.check()?, kube_client)))
            }
            ["--credhub-*"] => Ok(Arc::new(crate::creds::credhub::CredHub::new(credhub.check()?))),
            several => {
                anyhow::bail!("{}: only one credential manager may be configured", several.join(" and "))
            }
        }
    }

    pub fn secret_policy(&self) -> crate::creds::SecretPolicy {
        crate::creds::SecretPolicy {
            cache: crate::creds::CacheOptions {
                enabled: self.secret_cache_enabled,
                duration: self.secret_cache_duration,
                not_found_duration: self.secret_cache_duration_notfound,
            },
            retry: crate::creds::RetryOptions {
                attempts: self.secret_retry_attempts,
                interval: self.secret_retry_interval,
            },
        }
    }
}

/// Where and how the local runtime runs steps.
#[derive(Debug, Clone, Args)]
pub struct RuntimeFlags {
    /// Where the local runtime keeps step work dirs, artifacts and caches [quickstart: <data-dir>/work, web: $XDG_DATA_HOME/atc/work or ~/.local/share/atc/work].
    #[arg(long, env = "CONCOURSE_WORK_DIR", value_name = "DIR")]
    pub work_dir: Option<PathBuf>,

    /// Resource types as executables: DIR/TYPE/{check,in,out} is resource type TYPE (it wins over a built-in type of that name).
    #[arg(long, env = "CONCOURSE_RESOURCE_TYPES_DIR", value_name = "DIR")]
    pub resource_types_dir: Option<PathBuf>,
}

impl RuntimeFlags {
    /// The local runtime's options, with `default_work_dir` unless `--work-dir` is given.
    pub fn local_runtime_options(&self, default_work_dir: PathBuf) -> crate::runtime::local::LocalRuntimeOptions {
        let mut options =
            crate::runtime::local::LocalRuntimeOptions::new(self.work_dir.clone().unwrap_or(default_work_dir));
        options.resource_types_dir = self.resource_types_dir.clone();
        options
    }
}

/// `$XDG_DATA_HOME/atc`, else `~/.local/share/atc`.
pub fn default_data_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("atc"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).ok_or_else(|| {
        anyhow::anyhow!("cannot find a data directory: set --data-dir or --work-dir (HOME is not set)")
    })?;
    Ok(PathBuf::from(home).join(".local/share/atc"))
}

/// Creates the local runtime, failing start-up with the flag to fix.
pub async fn start_local_runtime(
    flags: &RuntimeFlags,
    default_work_dir: PathBuf,
) -> anyhow::Result<crate::runtime::local::LocalRuntime> {
    let options = flags.local_runtime_options(default_work_dir);
    let work_dir = options.work_dir.clone();
    let runtime = crate::runtime::local::LocalRuntime::new(options)
        .await
        .map_err(|err| anyhow::anyhow!("--work-dir / --resource-types-dir: {err}"))?;
    tracing::info!(work_dir = %work_dir.display(), resource_types = ?runtime.resource_types(), "local runtime ready");
    Ok(runtime)
}

#[derive(Debug, Clone, Args)]
pub struct AuthFlags {
    /// A local user as USERNAME:PASSWORD; the password may be a bcrypt hash. Repeatable, or comma-separated.
    #[arg(long, env = "CONCOURSE_ADD_LOCAL_USER", hide_env_values = true, value_delimiter = ',', value_parser = LocalUser::parse_flag, value_name = "USERNAME:PASSWORD")]
    pub add_local_user: Vec<LocalUser>,

    /// A local user who owns the `main` team (and so administers atc). Repeatable, or comma-separated.
    #[arg(long, env = "CONCOURSE_MAIN_TEAM_LOCAL_USER", value_delimiter = ',', value_name = "USERNAME")]
    pub main_team_local_user: Vec<String>,

    /// How long access tokens stay valid.
    #[arg(long, env = "CONCOURSE_AUTH_DURATION", default_value = "24h", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub auth_duration: Duration,

    /// Mark session cookies Secure (set this when atc is served over HTTPS).
    #[arg(long, env = "CONCOURSE_COOKIE_SECURE")]
    pub cookie_secure: bool,
}

#[derive(Debug, Clone, Args)]
pub struct EncryptionFlags {
    /// A 16 or 32 byte key that encrypts pipeline configuration at rest (AES-GCM).
    #[arg(long, env = "CONCOURSE_ENCRYPTION_KEY", hide_env_values = true, value_parser = EncryptionKey::parse_flag, value_name = "KEY")]
    pub encryption_key: Option<EncryptionKey>,
}

/// Trace export (see observability.md). Where a flag is unset, the standard
/// `OTEL_*` variable applies.
#[derive(Debug, Clone, Args)]
pub struct TracingFlags {
    /// The service.name of atc's traces and metrics [default: $OTEL_SERVICE_NAME, else atc].
    #[arg(long, env = "CONCOURSE_TRACING_SERVICE_NAME", value_name = "NAME")]
    pub tracing_service_name: Option<String>,

    /// A resource attribute for traces, as KEY:VALUE. Repeatable.
    #[arg(long, env = "CONCOURSE_TRACING_ATTRIBUTE", value_delimiter = ',', value_parser = KeyValuePair::parse_attribute, value_name = "KEY:VALUE")]
    pub tracing_attribute: Vec<KeyValuePair>,

    /// Export traces over OTLP to this collector: HOST:PORT or an http(s):// URL.
    #[arg(long, env = "CONCOURSE_TRACING_OTLP_ADDRESS", value_parser = OtlpAddress::parse_flag, value_name = "ADDRESS")]
    pub tracing_otlp_address: Option<OtlpAddress>,

    /// The OTLP transport: grpc or http/protobuf [default: $OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else grpc].
    #[arg(long, env = "CONCOURSE_TRACING_OTLP_PROTOCOL", value_parser = Protocol::parse_flag, value_name = "PROTOCOL")]
    pub tracing_otlp_protocol: Option<Protocol>,

    /// A header sent with every trace export, as KEY:VALUE (e.g. a vendor's API key). Repeatable.
    #[arg(long, env = "CONCOURSE_TRACING_OTLP_HEADER", hide_env_values = true, value_delimiter = ',', value_parser = KeyValuePair::parse_header, value_name = "KEY:VALUE")]
    pub tracing_otlp_header: Vec<KeyValuePair>,

    /// Use TLS to reach the trace collector (a HOST:PORT address becomes https://).
    #[arg(long, env = "CONCOURSE_TRACING_OTLP_USE_TLS")]
    pub tracing_otlp_use_tls: bool,

    /// Export traces to Google Cloud Trace in this project, with Application Default Credentials.
    #[arg(
        long,
        env = "CONCOURSE_TRACING_GCP_PROJECT_ID",
        conflicts_with = "tracing_otlp_address",
        value_name = "PROJECT"
    )]
    pub tracing_gcp_project_id: Option<String>,

    /// Which traces to keep [default: $OTEL_TRACES_SAMPLER, else always].
    #[arg(long, env = "CONCOURSE_TRACING_SAMPLING_STRATEGY", value_parser = SamplingStrategy::parse_flag, value_name = "STRATEGY")]
    pub tracing_sampling_strategy: Option<SamplingStrategy>,

    /// The fraction of traces the probability strategies keep, 0.0 to 1.0 [default: $OTEL_TRACES_SAMPLER_ARG, else 1.0].
    #[arg(long, env = "CONCOURSE_TRACING_SAMPLING_RATE", allow_negative_numbers = true, value_parser = parse_sampling_rate, value_name = "RATE")]
    pub tracing_sampling_rate: Option<f64>,

    /// Where build pages link to the build's trace: a URL with {trace_id} in it, e.g. https://tempo.example/explore?traceId={trace_id}.
    #[arg(long, env = "CONCOURSE_TRACING_UI_URL", value_parser = TraceLinkTemplate::parse, value_name = "URL")]
    pub tracing_ui_url: Option<TraceLinkTemplate>,
}

/// Metric export: OTLP or Google Cloud Monitoring, and the attributes every series carries.
#[derive(Debug, Clone, Args)]
pub struct MetricsFlags {
    /// An attribute of every metric (OTLP resource attribute and Prometheus label), as KEY:VALUE. Repeatable.
    #[arg(long, env = "CONCOURSE_METRICS_ATTRIBUTE", value_delimiter = ',', value_parser = KeyValuePair::parse_attribute, value_name = "KEY:VALUE")]
    pub metrics_attribute: Vec<KeyValuePair>,

    /// Export metrics over OTLP to this collector: HOST:PORT or an http(s):// URL.
    #[arg(long, env = "CONCOURSE_METRICS_OTLP_ADDRESS", value_parser = OtlpAddress::parse_flag, value_name = "ADDRESS")]
    pub metrics_otlp_address: Option<OtlpAddress>,

    /// The OTLP transport: grpc or http/protobuf [default: $OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, else grpc].
    #[arg(long, env = "CONCOURSE_METRICS_OTLP_PROTOCOL", value_parser = Protocol::parse_flag, value_name = "PROTOCOL")]
    pub metrics_otlp_protocol: Option<Protocol>,

    /// A header sent with every metric export, as KEY:VALUE. Repeatable.
    #[arg(long, env = "CONCOURSE_METRICS_OTLP_HEADER", hide_env_values = true, value_delimiter = ',', value_parser = KeyValuePair::parse_header, value_name = "KEY:VALUE")]
    pub metrics_otlp_header: Vec<KeyValuePair>,

    /// Use TLS to reach the metrics collector (a HOST:PORT address becomes https://).
    #[arg(long, env = "CONCOURSE_METRICS_OTLP_USE_TLS")]
    pub metrics_otlp_use_tls: bool,

    /// How often metrics are exported.
    #[arg(long, env = "CONCOURSE_METRICS_OTLP_INTERVAL", default_value = "60s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub metrics_otlp_interval: Duration,

    /// Export metrics to Google Cloud Monitoring in this project, with Application Default Credentials.
    #[arg(
        long,
        env = "CONCOURSE_METRICS_GCP_PROJECT_ID",
        conflicts_with = "metrics_otlp_address",
        value_name = "PROJECT"
    )]
    pub metrics_gcp_project_id: Option<String>,
}

/// The Prometheus listener serving `/metrics`.
#[derive(Debug, Clone, Args)]
pub struct PrometheusFlags {
    /// IP address on which to serve Prometheus metrics [web: 0.0.0.0, quickstart: 127.0.0.1].
    #[arg(long, env = "CONCOURSE_PROMETHEUS_BIND_IP", value_name = "IP")]
    pub prometheus_bind_ip: Option<IpAddr>,

    /// Port on which to serve Prometheus metrics at /metrics [web: off, quickstart: 9391; 0 picks a free port].
    #[arg(long, env = "CONCOURSE_PROMETHEUS_BIND_PORT", value_name = "PORT")]
    pub prometheus_bind_port: Option<u16>,
}

/// Where the PostgreSQL database lives (`web` and `migrate`).
#[derive(Debug, Clone, Args)]
pub struct PostgresFlags {
    /// The host to connect to.
    #[arg(long, env = "CONCOURSE_POSTGRES_HOST", default_value = "127.0.0.1", value_name = "HOST")]
    pub postgres_host: String,

    /// The port to connect to.
    #[arg(long, env = "CONCOURSE_POSTGRES_PORT", default_value_t = 5432, value_name = "PORT")]
    pub postgres_port: u16,

    /// Path to a UNIX domain socket directory to connect through instead of TCP.
    #[arg(long, env = "CONCOURSE_POSTGRES_SOCKET", value_name = "PATH")]
    pub postgres_socket: Option<PathBuf>,

    /// The user to sign in as.
    #[arg(long, env = "CONCOURSE_POSTGRES_USER", default_value = "", value_name = "USER")]
    pub postgres_user: String,

    /// The user's password.
    #[arg(
        long,
        env = "CONCOURSE_POSTGRES_PASSWORD",
        hide_env_values = true,
        default_value = "",
        value_name = "PASSWORD"
    )]
    pub postgres_password: String,

    /// The name of the database to use.
    #[arg(long, env = "CONCOURSE_POSTGRES_DATABASE", default_value = "atc", value_name = "NAME")]
    pub postgres_database: String,

    /// Whether or not to use SSL: disable, require, verify-ca, verify-full.
    #[arg(long, env = "CONCOURSE_POSTGRES_SSLMODE", default_value = "disable", value_parser = ["disable", "require", "verify-ca", "verify-full"], value_name = "MODE")]
    pub postgres_sslmode: String,

    /// CA certificate file to verify the server with when connecting with SSL.
    #[arg(long, env = "CONCOURSE_POSTGRES_CA_CERT", value_name = "FILE")]
    pub postgres_ca_cert: Option<PathBuf>,

    /// How long start-up waits for PostgreSQL to accept connections (0 waits indefinitely).
    #[arg(long, env = "CONCOURSE_POSTGRES_CONNECT_TIMEOUT", default_value = "5m", value_parser = crate::duration::parse, value_name = "DURATION")]
    pub postgres_connect_timeout: Duration,

    /// How long a request waits for a database connection before it answers 503 (database unavailable).
    #[arg(long, env = "CONCOURSE_POSTGRES_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub postgres_acquire_timeout: Duration,

    /// The maximum number of open connections to PostgreSQL.
    #[arg(long, env = "CONCOURSE_API_MAX_CONNS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub api_max_conns: u32,
}

fn parse_external_url(value: &str) -> Result<String, InvalidFlag> {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .ok_or_else(|| InvalidFlag::NotHttpUrl(value.to_string()))?;
    if rest.trim_end_matches('/').is_empty() {
        return Err(InvalidFlag::NoHost(value.to_string()));
    }
    Ok(value.trim_end_matches('/').to_string())
}

fn parse_log_level(value: &str) -> Result<String, InvalidFlag> {
    match value {
        "debug" | "info" | "warn" | "error" => Ok(value.to_string()),
        // lager's `fatal` is the most severe level Concourse accepts; our nearest is error.
        "fatal" => Ok("error".to_string()),
        _ => Err(InvalidFlag::UnknownLogLevel(value.to_string())),
    }
}

pub(super) fn parse_positive_duration(value: &str) -> Result<Duration, InvalidFlag> {
    match crate::duration::parse(value)? {
        Duration::ZERO => Err(InvalidFlag::ZeroDuration),
        d => Ok(d),
    }
}

impl PostgresFlags {
    pub fn settings(&self) -> crate::db::PostgresSettings {
        crate::db::PostgresSettings {
            host: self.postgres_host.clone(),
            port: self.postgres_port,
            socket: self.postgres_socket.clone(),
            user: self.postgres_user.clone(),
            password: self.postgres_password.clone(),
            database: self.postgres_database.clone(),
            sslmode: self.postgres_sslmode.clone(),
            ca_cert: self.postgres_ca_cert.clone(),
            connect_timeout: self.postgres_connect_timeout,
            acquire_timeout: self.postgres_acquire_timeout,
            max_connections: self.api_max_conns,
        }
    }
}

impl ServerFlags {
    /// The server's options, listening on `default_bind_ip` unless `--bind-ip` says otherwise;
    /// Prometheus on `default_prometheus_port` unless `--prometheus-bind-port` is given.
    pub fn options(
        &self,
        default_bind_ip: IpAddr,
        default_prometheus_port: Option<u16>,
        runtime: std::sync::Arc<dyn crate::runtime::Runtime>,
        kube_client: Option<&crate::kube_access::KubeClient>,
    ) -> anyhow::Result<crate::server::ServerOptions> {
        let prometheus_port = self.prometheus.prometheus_bind_port.or(default_prometheus_port);
        Ok(crate::server::ServerOptions {
            runtime,
            credentials: self.credentials.manager(kube_client)?,
            secret_policy: self.credentials.secret_policy(),
            redact_secrets: self.credentials.enable_redact_secrets,
            bind: std::net::SocketAddr::new(self.bind_ip.unwrap_or(default_bind_ip), self.bind_port),
            prometheus: prometheus_port.map(|port| crate::metric::PrometheusOptions {
                bind: std::net::SocketAddr::new(self.prometheus.prometheus_bind_ip.unwrap_or(default_bind_ip), port),
                constant_labels: self
                    .metrics
                    .metrics_attribute
                    .iter()
                    .map(|a| (a.key.clone(), a.value.clone()))
                    .collect(),
            }),
            external_url: self.external_url.clone(),
            cluster_name: self.cluster_name.clone(),
            local_users: self.auth.add_local_user.clone(),
            main_team_users: self.auth.main_team_local_user.clone(),
            auth_duration: self.auth.auth_duration,
            cookie_secure: self.auth.cookie_secure,
            encryption_key: self.encryption.encryption_key.clone(),
            resource_checking_interval: self.checking.resource_checking_interval,
            resource_type_checking_interval: self.checking.resource_type_checking_interval,
            build_lease_duration: self.builds.build_lease_duration,
            upload_limits: self.uploads.limits(),
            trace_link: self.tracing.tracing_ui_url.clone(),
        })
    }
}

impl ServerFlags {
    /// What to export where; the `OTEL_*` variables fill in what is unset.
    pub fn telemetry(&self) -> TelemetryConfig {
        let t = &self.tracing;
        let m = &self.metrics;
        TelemetryConfig {
            service_name: t.tracing_service_name.clone(),
            tracing: TracingConfig {
                attributes: t.tracing_attribute.clone(),
                otlp: OtlpConfig {
                    address: t.tracing_otlp_address.clone(),
                    protocol: t.tracing_otlp_protocol,
                    headers: t.tracing_otlp_header.clone(),
                    use_tls: t.tracing_otlp_use_tls,
                },
                gcp: t.tracing_gcp_project_id.clone().map(GcpConfig::new),
                sampling_strategy: t.tracing_sampling_strategy,
                sampling_rate: t.tracing_sampling_rate,
            },
            metrics: MetricsConfig {
                attributes: m.metrics_attribute.clone(),
                otlp: OtlpConfig {
                    address: m.metrics_otlp_address.clone(),
                    protocol: m.metrics_otlp_protocol,
                    headers: m.metrics_otlp_header.clone(),
                    use_tls: m.metrics_otlp_use_tls,
                },
                gcp: m.metrics_gcp_project_id.clone().map(GcpConfig::new),
                interval: m.metrics_otlp_interval,
            },
        }
    }
}
