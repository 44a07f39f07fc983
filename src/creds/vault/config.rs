//! How atc reaches a Vault (or OpenBao) server, from the `--vault-*` flags
//! or a `type: vault` var source's config. Everything is checked here, so a
//! bad setting stops start-up (or the build) naming the flag or key.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

pub use super::tls::Pem;

/// A setting that cannot be used; `setting` is the flag (`--vault-url`) or
/// the var source key (`url`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct VaultConfigError {
    pub setting: String,
    pub message: String,
}

/// How atc logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultAuth {
    /// A token given up front (`--vault-client-token`).
    Token(String),
    /// `role_id` and `secret_id` from `--vault-auth-param`.
    AppRole { mount: String, role_id: String, secret_id: String },
    /// The client certificate (`--vault-client-cert`); `name` picks the role.
    Cert { mount: String, name: String },
    /// A Kubernetes service account token, which Vault checks with the
    /// cluster (TokenReview) and maps to `role`.
    Kubernetes { mount: String, role: String, jwt: ServiceAccountToken },
}

/// Where the kubernetes backend's token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAccountToken {
    /// `jwt:...`, the token itself (as Concourse takes it).
    Given(String),
    /// `jwt_path:...`, or the pod's own token: read at each login, as
    /// Kubernetes rotates projected tokens.
    File(PathBuf),
}

/// Where a pod's service account token is mounted.
pub const POD_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

#[derive(Debug, Clone)]
pub struct VaultConfig {
    pub url: String,
    /// Prepended to every lookup path, e.g. `/concourse`.
    pub path_prefix: String,
    /// Paths tried in order, with `{{.Team}}`, `{{.Pipeline}}`, `{{.Secret}}`.
    pub lookup_templates: Vec<String>,
    /// Tried after the templates, for secrets every team may read.
    pub shared_path: Option<String>,
    pub namespace: Option<String>,
    pub ca_cert: Option<Pem>,
    pub client_cert: Option<Pem>,
    pub client_key: Option<Pem>,
    /// The name Vault's certificate is checked against (and greeted with),
    /// instead of the URL's host.
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
    pub auth: VaultAuth,
    pub login_timeout: Duration,
    pub query_timeout: Duration,
    /// Log in again after this long instead of renewing the token forever.
    pub auth_max_ttl: Option<Duration>,
    /// The waits between tries of a login Vault could not answer: the
    /// first, doubling up to the longest.
    pub auth_retry_initial: Duration,
    pub auth_retry_max: Duration,
    /// How the settings were named, for errors found after the check.
    pub names: fn(&str) -> String,
}

pub const DEFAULT_PATH_PREFIX: &str = "/concourse";
pub const DEFAULT_LOOKUP_TEMPLATES: [&str; 2] = ["/{{.Team}}/{{.Pipeline}}/{{.Secret}}", "/{{.Team}}/{{.Secret}}"];
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_AUTH_RETRY_INITIAL: Duration = Duration::from_secs(1);
pub const DEFAULT_AUTH_RETRY_MAX: Duration = Duration::from_secs(300);

/// The settings as given, before they are checked: flags and var source
/// configs both fill this in.
#[derive(Debug, Clone, Default)]
pub struct VaultSettings {
    pub url: Option<String>,
    pub path_prefix: Option<String>,
    pub lookup_templates: Vec<String>,
    pub shared_path: Option<String>,
    pub namespace: Option<String>,
    pub ca_cert: Option<Pem>,
    pub client_cert: Option<Pem>,
    pub client_key: Option<Pem>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
    pub auth_backend: Option<String>,
    pub auth_params: BTreeMap<String, String>,
    pub client_token: Option<String>,
    pub login_timeout: Option<Duration>,
    pub query_timeout: Option<Duration>,
    pub auth_max_ttl: Option<Duration>,
    pub auth_retry_initial: Option<Duration>,
    pub auth_retry_max: Option<Duration>,
}

/// What each setting is called where it was given.
pub struct SettingNames {
    pub name: fn(&str) -> String,
}

/// `--vault-url`, `--vault-auth-param`, ...
/// (The retry keys' flags have no `auth-`, as in Concourse.)
pub const FLAG_NAMES: SettingNames = SettingNames {
    name: |key| format!("--vault-{}", key.strip_prefix("auth_retry_").map_or(key, |_| &key[5..]).replace('_', "-")),
};
/// The keys of a var source's `config`.
pub const CONFIG_KEYS: SettingNames = SettingNames { name: |key| key.to_string() };

impl VaultSettings {
    /// Whether any Vault setting was given: without `--vault-url`, atc has no Vault.
    pub fn is_configured(&self) -> bool {
        self.url.is_some()
    }

    pub fn check(self, names: &SettingNames) -> Result<VaultConfig, VaultConfigError> {
        let error = |key: &str, message: &str| VaultConfigError { setting: (names.name)(key), message: message.into() };
        let url = self.url.clone().ok_or_else(|| error("url", "missing"))?;
        let after_scheme = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
        match after_scheme {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {}
            _ => return Err(error("url", &format!("'{url}' must be an http:// or https:// URL with a host"))),
        }
        if let Some(name) = &self.server_name
            && (name.is_empty() || name.contains(['/', ':', ' ']))
        {
            return Err(error("server_name", &format!("'{name}' is not a host name")));
        }
        let auth_retry_initial = self.auth_retry_initial.unwrap_or(DEFAULT_AUTH_RETRY_INITIAL);
        let auth_retry_max = self.auth_retry_max.unwrap_or(DEFAULT_AUTH_RETRY_MAX);
        if auth_retry_initial.is_zero() || auth_retry_max < auth_retry_initial {
            return Err(error("auth_retry_max", "must be at least the (non-zero) initial retry wait"));
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err(error(
                "client_key",
                "a client certificate needs both --vault-client-cert and --vault-client-key",
            ));
        }
        let param = |key: &str| self.auth_params.get(key).cloned();
        let backend = self.auth_backend.as_deref().filter(|b| !b.is_empty());
        let auth = match backend {
            None | Some("token") => match self.client_token.clone().filter(|t| !t.is_empty()) {
                Some(token) => VaultAuth::Token(token),
                None => return Err(error("client_token", "missing: give a token or an auth backend")),
            },
            Some("approle") => {
                let (Some(role_id), Some(secret_id)) = (param("role_id"), param("secret_id")) else {
                    return Err(error("auth_param", "approle needs role_id:... and secret_id:..."));
                };
                VaultAuth::AppRole { mount: param("mount").unwrap_or_else(|| "approle".into()), role_id, secret_id }
            }
            Some("cert") => {
                if self.client_cert.is_none() {
                    return Err(error("client_cert", "the cert auth backend needs a client certificate"));
                }
                VaultAuth::Cert {
                    mount: param("mount").unwrap_or_else(|| "cert".into()),
                    name: param("name").unwrap_or_default(),
                }
            }
            Some("kubernetes") => {
                let Some(role) = param("role") else {
                    return Err(error("auth_param", "kubernetes needs role:..."));
                };
                let jwt = match (param("jwt"), param("jwt_path")) {
                    (Some(_), Some(_)) => return Err(error("auth_param", "give jwt:... or jwt_path:..., not both")),
                    (Some(jwt), None) => ServiceAccountToken::Given(jwt),
                    (None, path) => ServiceAccountToken::File(path.unwrap_or_else(|| POD_TOKEN_PATH.into()).into()),
                };
                VaultAuth::Kubernetes { mount: param("mount").unwrap_or_else(|| "kubernetes".into()), role, jwt }
            }
            Some(other) => {
                return Err(error(
                    "auth_backend",
                    &format!("'{other}' is not one of token, approle, cert, kubernetes"),
                ));
            }
        };
        let lookup_templates = if self.lookup_templates.is_empty() {
            DEFAULT_LOOKUP_TEMPLATES.iter().map(|t| t.to_string()).collect()
        } else {
            self.lookup_templates.clone()
        };
        for template in &lookup_templates {
            if !template.contains("{{.Secret}}") {
                return Err(error("lookup_templates", &format!("'{template}' has no {{{{.Secret}}}}")));
            }
        }
        let path_prefix = self.path_prefix.clone().unwrap_or_else(|| DEFAULT_PATH_PREFIX.into());
        if path_prefix.trim_matches('/').is_empty() {
            return Err(error("path_prefix", "must name the secrets engine's mount, e.g. /concourse"));
        }
        Ok(VaultConfig {
            url: url.trim_end_matches('/').to_string(),
            path_prefix,
            lookup_templates,
            shared_path: self.shared_path.filter(|p| !p.is_empty()),
            namespace: self.namespace.filter(|n| !n.is_empty()),
            ca_cert: self.ca_cert,
            client_cert: self.client_cert,
            client_key: self.client_key,
            server_name: self.server_name,
            insecure_skip_verify: self.insecure_skip_verify,
            auth,
            login_timeout: self.login_timeout.unwrap_or(DEFAULT_TIMEOUT),
            query_timeout: self.query_timeout.unwrap_or(DEFAULT_TIMEOUT),
            auth_max_ttl: self.auth_max_ttl.filter(|ttl| !ttl.is_zero()),
            auth_retry_initial,
            auth_retry_max,
            names: names.name,
        })
    }
}

impl VaultConfig {
    /// A `type: vault` var source's config, with Concourse's keys.
    pub fn from_var_source(config: &Value) -> Result<VaultConfig, VaultConfigError> {
        let invalid = |key: &str, message: &str| VaultConfigError { setting: key.into(), message: message.into() };
        let text = |key: &str| -> Result<Option<String>, VaultConfigError> {
            match config.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) => Ok(Some(text.clone())),
                Some(_) => Err(invalid(key, "must be a string")),
            }
        };
        let duration = |key: &str| -> Result<Option<Duration>, VaultConfigError> {
            text(key)?.map(|text| crate::duration::parse(&text).map_err(|e| invalid(key, &e.to_string()))).transpose()
        };
        // Certificates and keys are PEM text in a var source, as Concourse takes them.
        let pem = |key: &str| -> Result<Option<Pem>, VaultConfigError> {
            match text(key)? {
                Some(text) if text.contains("-----BEGIN") => Ok(Some(Pem::Text(text))),
                Some(_) => Err(invalid(key, "must be PEM text (-----BEGIN ...)")),
                None => Ok(None),
            }
        };
        let lookup_templates = match config.get("lookup_templates") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_string).ok_or_else(|| invalid("lookup_templates", "must be strings"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("lookup_templates", "must be a list")),
        };
        let auth_params = match config.get("auth_params") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(params)) => params
                .iter()
                .map(|(key, value)| {
                    value
                        .as_str()
                        .map(|v| (key.clone(), v.to_string()))
                        .ok_or_else(|| invalid("auth_params", "must be strings"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("auth_params", "must be a map")),
        };
        let insecure_skip_verify = match config.get("insecure_skip_verify") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(skip)) => *skip,
            Some(_) => return Err(invalid("insecure_skip_verify", "must be true or false")),
        };
        VaultSettings {
            url: text("url")?,
            path_prefix: text("path_prefix")?,
            lookup_templates,
            shared_path: text("shared_path")?,
            namespace: text("namespace")?,
            ca_cert: pem("ca_cert")?,
            client_cert: pem("client_cert")?,
            client_key: pem("client_key")?,
            server_name: text("server_name")?,
            insecure_skip_verify,
            auth_backend: text("auth_backend")?,
            auth_params,
            client_token: text("client_token")?,
            login_timeout: duration("login_timeout")?,
            query_timeout: duration("query_timeout")?,
            auth_max_ttl: duration("auth_backend_max_ttl")?,
            auth_retry_initial: duration("auth_retry_initial")?,
            auth_retry_max: duration("auth_retry_max")?,
        }
        .check(&CONFIG_KEYS)
    }

    /// The paths `secret` is looked for at, in order, for a build of `team`
    /// (and `pipeline`): templates naming the pipeline are skipped outside one.
    pub fn paths(&self, team: &str, pipeline: Option<&str>, secret: &str) -> Vec<String> {
        let prefix = self.path_prefix.trim_end_matches('/');
        let mut paths: Vec<String> = self
            .lookup_templates
            .iter()
            .filter(|template| pipeline.is_some() || !template.contains("{{.Pipeline}}"))
            .map(|template| {
                let path = template
                    .replace("{{.Team}}", team)
                    .replace("{{.Pipeline}}", pipeline.unwrap_or_default())
                    .replace("{{.Secret}}", secret);
                format!("{prefix}/{}", path.trim_start_matches('/'))
            })
            .collect();
        if let Some(shared) = &self.shared_path {
            paths.push(format!("{prefix}/{}/{secret}", shared.trim_matches('/')));
        }
        paths
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings() -> VaultSettings {
        VaultSettings {
            url: Some("http://127.0.0.1:8200".into()),
            client_token: Some("t".into()),
            ..VaultSettings::default()
        }
    }

    #[test]
    fn lookups_try_the_pipeline_then_the_team_then_the_shared_path() {
        let config = VaultSettings { shared_path: Some("shared".into()), ..settings() }.check(&FLAG_NAMES).unwrap();
        assert_eq!(
            config.paths("main", Some("p"), "token"),
            ["/concourse/main/p/token", "/concourse/main/token", "/concourse/shared/token"]
        );
        assert_eq!(config.paths("main", None, "token"), ["/concourse/main/token", "/concourse/shared/token"]);
        let custom = VaultSettings {
            path_prefix: Some("/secret/".into()),
            lookup_templates: vec!["/ci/{{.Team}}-{{.Secret}}".into()],
            ..settings()
        }
        .check(&FLAG_NAMES)
        .unwrap();
        assert_eq!(custom.paths("main", Some("p"), "token"), ["/secret/ci/main-token"]);
    }

    #[test]
    fn a_bad_setting_is_refused_naming_its_flag_or_key() {
        let refused = |settings: VaultSettings| settings.check(&FLAG_NAMES).unwrap_err().to_string();
        assert_eq!(
            refused(VaultSettings { url: Some("127.0.0.1:8200".into()), ..settings() }),
            "--vault-url: '127.0.0.1:8200' must be an http:// or https:// URL with a host"
        );
        assert!(
            refused(VaultSettings { client_token: None, ..settings() }).starts_with("--vault-client-token: missing")
        );
        assert_eq!(
            refused(VaultSettings { auth_backend: Some("ldap".into()), ..settings() }),
            "--vault-auth-backend: 'ldap' is not one of token, approle, cert, kubernetes"
        );
        assert!(
            refused(VaultSettings { auth_backend: Some("approle".into()), ..settings() })
                .starts_with("--vault-auth-param: approle needs role_id")
        );
        assert!(
            refused(VaultSettings { lookup_templates: vec!["/{{.Team}}".into()], ..settings() })
                .starts_with("--vault-lookup-templates: '/{{.Team}}' has no {{.Secret}}")
        );
        let kubernetes = |params: &[(&str, &str)]| VaultSettings {
            auth_backend: Some("kubernetes".into()),
            auth_params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..settings()
        };
        assert_eq!(refused(kubernetes(&[])), "--vault-auth-param: kubernetes needs role:...");
        assert_eq!(
            refused(kubernetes(&[("role", "r"), ("jwt", "t"), ("jwt_path", "/t")])),
            "--vault-auth-param: give jwt:... or jwt_path:..., not both"
        );
        let pods = kubernetes(&[("role", "r")]).check(&FLAG_NAMES).unwrap();
        assert_eq!(
            pods.auth,
            VaultAuth::Kubernetes {
                mount: "kubernetes".into(),
                role: "r".into(),
                jwt: ServiceAccountToken::File(POD_TOKEN_PATH.into())
            }
        );
        assert_eq!(
            refused(VaultSettings { server_name: Some("vault:8200".into()), ..settings() }),
            "--vault-server-name: 'vault:8200' is not a host name"
        );
        assert_eq!(
            refused(VaultSettings { auth_retry_max: Some(Duration::from_millis(10)), ..settings() }),
            "--vault-retry-max: must be at least the (non-zero) initial retry wait"
        );
        let source = |config: Value| VaultConfig::from_var_source(&config).unwrap_err().to_string();
        assert_eq!(
            source(json!({ "url": "http://v", "client_token": "t", "ca_cert": "/etc/ca.pem" })),
            "ca_cert: must be PEM text (-----BEGIN ...)"
        );
        assert_eq!(
            source(json!({ "url": "http://v", "client_token": "t", "auth_backend_max_ttl": "soon" })),
            "auth_backend_max_ttl: invalid duration 'soon'"
        );
        let error = VaultConfig::from_var_source(&json!({ "url": "http://v", "client_token": 5 })).unwrap_err();
        assert_eq!(error.to_string(), "client_token: must be a string");
    }
}
