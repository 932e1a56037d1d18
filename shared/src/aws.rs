//! Wiring for the Lambda functions: SDK clients, adapters and tokens, built once per
//! execution environment from the environment the SAM template sets.

use crate::adapters::dynamo::DynamoStore;
use crate::adapters::sqs::SqsQueue;
use crate::api::Tokens;
use crate::config::{ConfigError, Defaults, Settings, var};
use std::sync::Arc;
use std::time::Duration;

/// Everything a function needs, built before the handler loop.
pub struct Deployment {
    pub settings: Settings,
    pub store: Arc<DynamoStore>,
    pub queue: Arc<SqsQueue>,
    pub tokens: Tokens,
}

fn required(name: &'static str) -> Result<String, ConfigError> {
    var(name)
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError {
            name,
            message: "must be set".into(),
        })
}

impl Deployment {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let settings = Settings::from_env(Defaults::aws())?;
        // Bounded calls: an unreachable AWS API fails the request (503, or a retried job)
        // well within the function's timeout instead of hanging it.
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2))
            .operation_attempt_timeout(Duration::from_secs(3))
            .operation_timeout(Duration::from_secs(8))
            .build();
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(timeouts)
            .load()
            .await;
        let store = DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            required("WEBHOOKS_HOOKS_TABLE")?,
            required("WEBHOOKS_DELIVERIES_TABLE")?,
        );
        let queue = SqsQueue::new(
            aws_sdk_sqs::Client::new(&sdk),
            required("WEBHOOKS_QUEUE_URL")?,
        );
        let ssm = aws_sdk_ssm::Client::new(&sdk);
        let admin = token_list(
            &ssm,
            "WEBHOOKS_ADMIN_TOKEN",
            "WEBHOOKS_ADMIN_TOKEN_PARAMETER",
        )
        .await?;
        let ingest = token_list(
            &ssm,
            "WEBHOOKS_INGEST_TOKEN",
            "WEBHOOKS_INGEST_TOKEN_PARAMETER",
        )
        .await?;
        Ok(Self {
            settings,
            store: Arc::new(store),
            queue: Arc::new(queue),
            tokens: Tokens::from_lists(&admin, &ingest),
        })
    }
}

/// A token list from an SSM SecureString parameter when its name is configured, else from
/// the plain variable (local runs and tests).
async fn token_list(
    ssm: &aws_sdk_ssm::Client,
    plain: &'static str,
    parameter: &'static str,
) -> Result<String, ConfigError> {
    match var(parameter).filter(|n| !n.trim().is_empty()) {
        Some(name) => secure_parameter(ssm, &name)
            .await
            .map_err(|message| ConfigError {
                name: parameter,
                message,
            }),
        None => Ok(var(plain).unwrap_or_default()),
    }
}

/// The decrypted value of an SSM (SecureString) parameter; the error never carries the value.
pub async fn secure_parameter(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<String, String> {
    let out = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            format!(
                "could not read the parameter: {}",
                aws_sdk_ssm::error::DisplayErrorContext(e)
            )
        })?;
    out.parameter
        .and_then(|p| p.value)
        .ok_or_else(|| "the parameter has no value".to_string())
}
