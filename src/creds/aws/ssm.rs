//! The `ssm` credential manager: `((name))` is the SSM parameter at the
//! first name of the templates that has one, a SecureString decrypted; when
//! there is no parameter of that name but parameters below it
//! (`<name>/user`, `<name>/password`), they are its fields, as in Concourse.

use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use super::{AwsConfig, AwsService, lookup_error, traced};
use crate::config::vars::VarRef;
use crate::creds::endpoint::Endpoint;
use crate::creds::{CredentialManager, LookupError, LookupFuture, Secret};

const NAME: &str = AwsService::Ssm.name();

pub struct Ssm {
    config: AwsConfig,
    /// Made on first use: the SDK's configuration is loaded asynchronously.
    client: OnceCell<(aws_sdk_ssm::Client, Endpoint)>,
}

impl Ssm {
    pub fn new(config: AwsConfig) -> Ssm {
        Ssm { config, client: OnceCell::new() }
    }

    async fn client(&self) -> &(aws_sdk_ssm::Client, Endpoint) {
        self.client
            .get_or_init(|| async {
                let sdk = self.config.sdk_config().await;
                (aws_sdk_ssm::Client::new(&sdk), self.config.endpoint(&sdk))
            })
            .await
    }

    async fn find(&self, team: &str, pipeline: Option<&str>, secret: &str) -> Result<Option<Secret>, LookupError> {
        for name in self.config.names(team, pipeline, secret) {
            if let Some(value) = self.parameter(&name).await? {
                return Ok(Some(Secret::new(value)));
            }
            if let Some(fields) = self.parameters_below(&name).await? {
                return Ok(Some(Secret::new(Value::Object(fields))));
            }
        }
        Ok(None)
    }

    async fn parameter(&self, name: &str) -> Result<Option<Value>, LookupError> {
        let (client, endpoint) = self.client().await;
        let request = client.get_parameter().name(name).with_decryption(true).send();
        let absent = |error: &aws_sdk_ssm::operation::get_parameter::GetParameterError| error.is_parameter_not_found();
        match traced(AwsService::Ssm, endpoint, "GetParameter", absent, request).await {
            Ok(answer) => Ok(answer.parameter.and_then(|p| p.value).map(Value::String)),
            Err(error) if error.as_service_error().is_some_and(absent) => Ok(None),
            Err(error) => Err(lookup_error(NAME, error)),
        }
    }

    /// The parameters under `name/`, by their names relative to it; `None` when there are none.
    async fn parameters_below(&self, name: &str) -> Result<Option<Map<String, Value>>, LookupError> {
        let (client, endpoint) = self.client().await;
        let path = match name.trim_end_matches('/') {
            "" => "/",
            path => path,
        };
        let mut fields = Map::new();
        let mut next = None;
        loop {
            let request = client
                .get_parameters_by_path()
                .path(path)
                .recursive(true)
                .with_decryption(true)
                .set_next_token(next.take())
                .send();
            let page = traced(AwsService::Ssm, endpoint, "GetParametersByPath", |_| false, request)
                .await
                .map_err(|error| lookup_error(NAME, error))?;
            for parameter in page.parameters.unwrap_or_default() {
                if let (Some(full), Some(value)) = (parameter.name, parameter.value) {
                    let field = full.strip_prefix(path).unwrap_or(&full).trim_start_matches('/').to_string();
                    fields.insert(field, Value::String(value));
                }
            }
            match page.next_token {
                Some(token) if !token.is_empty() => next = Some(token),
                _ => break,
            }
        }
        Ok((!fields.is_empty()).then_some(fields))
    }
}

impl CredentialManager for Ssm {
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
