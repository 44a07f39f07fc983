//! The credential manager types a pipeline's `var_sources` may name, each
//! with how it is set up from the source's `config`. Validation and the
//! build runner both read this one list, so a pipeline is never accepted
//! with a var source that its builds cannot use.

use std::sync::Arc;

use serde_json::Value;

use super::aws::{AwsService, AwsSettings, SecretsManager, Ssm};
use super::vault::{Vault, VaultConfig};
use super::{CredentialManager, Dummy};

/// A var source that cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarSourceError {
    #[error("unknown credential manager type: '{kind}' (var_sources.{name}): expected one of {}", names().join(", "))]
    UnknownType { name: String, kind: String },
    #[error("var source '{name}' ({kind}): {message}")]
    InvalidConfig { name: String, kind: &'static str, message: String },
}

type Setup = fn(&Value) -> Result<Arc<dyn CredentialManager>, String>;

/// The types, by the name a pipeline gives them.
const TYPES: &[(&str, Setup)] = &[("dummy", dummy), ("vault", vault), ("ssm", ssm), ("secretsmanager", secretsmanager)];

fn dummy(config: &Value) -> Result<Arc<dyn CredentialManager>, String> {
    Ok(Arc::new(Dummy::from_var_source(config).map_err(|e| e.to_string())?))
}

fn vault(config: &Value) -> Result<Arc<dyn CredentialManager>, String> {
    let config = VaultConfig::from_var_source(config).map_err(|e| e.to_string())?;
    Ok(Arc::new(Vault::new(config).map_err(|e| e.to_string())?))
}

fn ssm(config: &Value) -> Result<Arc<dyn CredentialManager>, String> {
    let config = AwsSettings::from_var_source(AwsService::Ssm, config).map_err(|e| e.to_string())?;
    Ok(Arc::new(Ssm::new(config)))
}

fn secretsmanager(config: &Value) -> Result<Arc<dyn CredentialManager>, String> {
    let config = AwsSettings::from_var_source(AwsService::SecretsManager, config).map_err(|e| e.to_string())?;
    Ok(Arc::new(SecretsManager::new(config)))
}

/// Every type a var source may have.
pub fn names() -> Vec<&'static str> {
    TYPES.iter().map(|(name, _)| *name).collect()
}

pub fn is_known(kind: &str) -> bool {
    TYPES.iter().any(|(name, _)| *name == kind)
}

/// The manager of var source `name` of type `kind`, from its (interpolated) config.
pub fn from_var_source(name: &str, kind: &str, config: &Value) -> Result<Arc<dyn CredentialManager>, VarSourceError> {
    let Some((kind, setup)) = TYPES.iter().find(|(known, _)| *known == kind) else {
        return Err(VarSourceError::UnknownType { name: name.to_string(), kind: kind.to_string() });
    };
    setup(config).map_err(|message| VarSourceError::InvalidConfig { name: name.to_string(), kind, message })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_type_is_set_up_from_its_config_and_a_bad_config_names_the_source() {
        assert_eq!(from_var_source("d", "dummy", &json!({ "vars": { "a": "b" } })).unwrap().name(), "dummy");
        let vault = from_var_source("v", "vault", &json!({ "url": "http://127.0.0.1:8200", "client_token": "t" }));
        assert_eq!(vault.unwrap().name(), "vault");
        let error = from_var_source("d", "dummy", &json!({ "vars": [] })).err().unwrap();
        assert_eq!(error.to_string(), "var source 'd' (dummy): dummy var source: 'vars' must be a map, got []");
        let error = from_var_source("v", "vault", &json!({ "client_token": "t" })).err().unwrap();
        assert_eq!(error.to_string(), "var source 'v' (vault): url: missing");
        assert_eq!(from_var_source("s", "ssm", &json!({ "region": "eu-west-1" })).unwrap().name(), "ssm");
        let secrets = from_var_source("s", "secretsmanager", &json!({ "region": "eu-west-1" }));
        assert_eq!(secrets.unwrap().name(), "secretsmanager");
        let error = from_var_source("s", "ssm", &json!({})).err().unwrap();
        assert_eq!(error.to_string(), "var source 's' (ssm): region: missing");
        let error = from_var_source("c", "conjur", &json!({})).err().unwrap();
        assert_eq!(
            error.to_string(),
            "unknown credential manager type: 'conjur' (var_sources.c): expected one of dummy, vault, ssm, secretsmanager"
        );
    }
}
