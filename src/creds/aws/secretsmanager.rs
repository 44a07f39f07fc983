//! The `secretsmanager` credential manager: `((name))` is the secret whose
//! id is the first name of the templates that has one. A string that is a
//! JSON object is its fields (`((name.user))`), any other string is the
//! value; a binary secret must be a JSON object. A secret marked for
//! deletion is not found, as in Concourse.

use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::{AwsConfig, AwsService, lookup_error, traced};
use crate::config::vars::VarRef;
use crate::creds::endpoint::Endpoint;
use crate::creds::{CredentialManager, LookupError, LookupFuture, Secret};

const NAME: &str = AwsService::SecretsManager.name();

pub struct SecretsManager {
    config: AwsConfig,
    /// Made on first use: the SDK's configuration is loaded asynchronously.
    client: OnceCell<(aws_sdk_secretsmanager::Client, Endpoint)>,
}

/// A binary secret that is not a JSON object.
#[derive(Debug, thiserror::Error)]
#[error("secret '{id}' is binary but not a JSON object")]
struct NotAJsonObject {
    id: String,
}

/// No such secret, or one marked for deletion (which AWS refuses as an invalid request).
fn absent(error: &GetSecretValueError) -> bool {
    error.is_resource_not_found_exception() || error.is_invalid_request_exception()
}

impl SecretsManager {
    pub fn new(config: AwsConfig) -> SecretsManager {
        SecretsManager { config, client: OnceCell::new() }
    }

    async fn find(&self, team: &str, pipeline: Option<&str>, secret: &str) -> Result<Option<Secret>, LookupError> {
        let (client, endpoint) = self
            .client
            .get_or_init(|| async {
                let sdk = self.config.sdk_config().await;
                (aws_sdk_secretsmanager::Client::new(&sdk), self.config.endpoint(&sdk))
            })
            .await;
        for id in self.config.names(team, pipeline, secret) {
            let request = client.get_secret_value().secret_id(&id).send();
            let answer = match traced(AwsService::SecretsManager, endpoint, "GetSecretValue", absent, request).await {
                Ok(answer) => answer,
                Err(error) if error.as_service_error().is_some_and(absent) => continue,
                Err(error) => return Err(lookup_error(NAME, error)),
            };
            if let Some(text) = answer.secret_string {
                return Ok(Some(Secret::new(fields_or_text(text))));
            }
            if let Some(binary) = answer.secret_binary {
                return match serde_json::from_slice::<Value>(binary.as_ref()) {
                    Ok(fields @ Value::Object(_)) => Ok(Some(Secret::new(fields))),
                    _ => Err(LookupError::Permanent { manager: NAME, source: Box::new(NotAJsonObject { id }) }),
                };
            }
        }
        Ok(None)
    }
}

/// A JSON object's fields, or the text itself.
fn fields_or_text(text: String) -> Value {
    match serde_json::from_str::<Value>(&text) {
        Ok(fields @ Value::Object(_)) => fields,
        _ => Value::String(text),
    }
}

impl CredentialManager for SecretsManager {
    fn name(&self) -> &'static str {
        NAME
    }

    fn lookup<'a>(&'a self, team: &'a str, pipeline: Option<&'a str>, var: &'a VarRef) -> LookupFuture<'a> {
        Box::pin(self.find(team, pipeline, &var.path))
    }

    fn query_timeout(&self) -> Option<std::time::Duration> {
        Some(super::QUERY_TIMEOUT)
    }

    fn describe(&self) -> Option<Value> {
        Some(self.config.describe())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_json_object_is_fields_and_anything_else_the_text() {
        assert_eq!(fields_or_text(r#"{"user":"u","n":1}"#.into()), json!({ "user": "u", "n": 1 }));
        assert_eq!(fields_or_text("[1,2]".into()), json!("[1,2]"));
        assert_eq!(fields_or_text("plain".into()), json!("plain"));
    }
}
