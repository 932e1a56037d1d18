//! Wiring for the Lambda functions: SDK clients, adapters and tokens, built once per
//! execution environment from the environment the SAM template sets. Tokens come only from
//! SSM SecureString parameters: plain token variables are for the local dev server.
//! [`http_function`] and [`sender_function`] are what the functions' mains start with.

use crate::adapters::dynamo::DynamoStore;
use crate::adapters::sns::SnsTopic;
use crate::adapters::sqs::SqsQueue;
use crate::api::{Api, Tokens, router};
use crate::app::relay::LogtoSources;
use crate::app::sender::Sender;
use crate::config::{ConfigError, Defaults, Settings, var};
use crate::net::client::DeliveryClient;
use crate::operational::{NoticeTopic, Notices, OperationalEndpoint};
use std::sync::Arc;
use std::time::Duration;

/// Names the SSM SecureString parameter holding the Logto relay's sources.
const SOURCES_PARAMETER: &str = "WEBHOOKS_LOGTO_SOURCES_PARAMETER";

/// What an HTTP function (api, ingest) serves: telemetry on, the deployment with the tokens
/// `accepts` names, and the whole router over it, as the dev server serves it. The function's
/// main hands it to `lambda_http::run`.
pub async fn http_function(accepts: Accepts) -> Result<axum::Router, ConfigError> {
    crate::telemetry::init();
    let deployment = Deployment::from_env(accepts).await?;
    let settings = deployment.settings;
    let api = Api::new(
        deployment.store,
        deployment.queue,
        DeliveryClient::from_settings_on_first_use(&settings),
        deployment.tokens,
        &settings,
    )
    // None unless `accepts` is `AdminAndIngest` (the ingest function).
    .with_logto_sources(deployment.logto_sources);
    Ok(router(api))
}

/// The sender function's sender: telemetry on, the deployment (no tokens) and where its
/// operational notices go.
pub async fn sender_function() -> Result<Arc<Sender>, ConfigError> {
    crate::telemetry::init();
    let deployment = Deployment::from_env(Accepts::Nothing).await?;
    let notices = deployment.notices().await?;
    let settings = &deployment.settings;
    Ok(Sender::configured(
        deployment.store.clone(),
        deployment.queue.clone(),
        DeliveryClient::from_settings(settings),
        settings,
        notices,
    ))
}

/// The bearer tokens a function accepts; each list is read from the SSM parameter its
/// variable names, and a function stops at start when that variable is unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepts {
    /// No tokens (the sender).
    Nothing,
    /// Admin tokens, from `WEBHOOKS_ADMIN_TOKEN_PARAMETER` (the management API).
    Admin,
    /// Admin and ingest tokens, from both parameters (ingest).
    AdminAndIngest,
}

/// Everything a function needs, built before the handler loop.
pub struct Deployment {
    pub settings: Settings,
    pub store: Arc<DynamoStore>,
    pub queue: Arc<SqsQueue>,
    pub tokens: Tokens,
    /// Logto instances that may relay events (the ingest function's
    /// `WEBHOOKS_LOGTO_SOURCES_PARAMETER`); none elsewhere.
    pub logto_sources: LogtoSources,
    sdk: aws_config::SdkConfig,
}

/// One HTTPS client shared by every SDK client of the function, trusting the roots the
/// delivery client trusts: the SDK's default builds a connector per client, each reading the
/// system's certificate files, which was most of a cold start.
fn sdk_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let system = crate::net::client::system_roots_chosen();
    let mut trust = TrustStore::empty().with_native_roots(system);
    if !system {
        for der in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
            trust.add_pem_certificate(pem(der.as_ref()));
        }
    }
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("compiled-in roots make a valid TLS context");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

/// A DER certificate in PEM.
fn pem(der: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out.into_bytes()
}

fn required(name: &'static str) -> Result<String, ConfigError> {
    var(name)
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError {
            name,
            message: "must be set".into(),
        })
}

fn parameter_name(name: &'static str) -> Result<String, ConfigError> {
    required(name).map_err(|e| ConfigError {
        message: "must name the SSM SecureString parameter holding the tokens".into(),
        ..e
    })
}

impl Deployment {
    /// Settings, store, queue and the token lists `accepts` names; anything missing or
    /// unreadable is an error, so the function stops at start rather than on a request.
    pub async fn from_env(accepts: Accepts) -> Result<Self, ConfigError> {
        let admin_parameter = match accepts {
            Accepts::Nothing => None,
            Accepts::Admin | Accepts::AdminAndIngest => {
                Some(parameter_name("WEBHOOKS_ADMIN_TOKEN_PARAMETER")?)
            }
        };
        let ingest_parameter = match accepts {
            Accepts::Nothing | Accepts::Admin => None,
            Accepts::AdminAndIngest => Some(parameter_name("WEBHOOKS_INGEST_TOKEN_PARAMETER")?),
        };
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
            .http_client(sdk_http_client())
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
        // Both parameters are read at once; a function that takes no tokens builds no client.
        let (admin, ingest) = if accepts == Accepts::Nothing {
            (Ok(String::new()), Ok(String::new()))
        } else {
            let ssm = aws_sdk_ssm::Client::new(&sdk);
            tokio::join!(
                token_list(&ssm, "WEBHOOKS_ADMIN_TOKEN_PARAMETER", admin_parameter),
                token_list(&ssm, "WEBHOOKS_INGEST_TOKEN_PARAMETER", ingest_parameter),
            )
        };
        let (admin, ingest) = (admin?, ingest?);
        let logto_sources = match var(SOURCES_PARAMETER).filter(|v| !v.trim().is_empty()) {
            Some(name) if accepts == Accepts::AdminAndIngest => {
                let error = |message: String| ConfigError {
                    name: SOURCES_PARAMETER,
                    message: format!("parameter {}: {message}", name.trim()),
                };
                let ssm = aws_sdk_ssm::Client::new(&sdk);
                let value = secure_parameter(&ssm, name.trim()).await.map_err(error)?;
                LogtoSources::parse(&value).map_err(error)?
            }
            _ => LogtoSources::default(),
        };
        Ok(Self {
            settings,
            store: Arc::new(store),
            queue: Arc::new(queue),
            tokens: Tokens::from_lists(&admin, &ingest),
            logto_sources,
            sdk,
        })
    }

    /// Where the sender sends operational notices: the endpoint of `WEBHOOKS_OPERATIONAL_URL`,
    /// signed with the key in the SSM SecureString parameter
    /// `WEBHOOKS_OPERATIONAL_SIGNING_KEY_PARAMETER` names (both or neither), and the SNS topic
    /// `WEBHOOKS_OPERATIONAL_TOPIC_ARN`. The key is read once, here.
    pub async fn notices(&self) -> Result<Notices, ConfigError> {
        const PARAMETER: &str = "WEBHOOKS_OPERATIONAL_SIGNING_KEY_PARAMETER";
        let parameter = var(PARAMETER).filter(|v| !v.trim().is_empty());
        let endpoint = match (&self.settings.operational_url, parameter) {
            (None, None) => None,
            (Some(url), Some(name)) => {
                let error = |message: String| ConfigError {
                    name: PARAMETER,
                    message: format!("parameter {}: {message}", name.trim()),
                };
                let ssm = aws_sdk_ssm::Client::new(&self.sdk);
                let value = secure_parameter(&ssm, name.trim()).await.map_err(error)?;
                let key = OperationalEndpoint::parse_key(&value).map_err(error)?;
                Some(OperationalEndpoint {
                    url: url.clone(),
                    key,
                })
            }
            (Some(_), None) => {
                return Err(ConfigError {
                    name: PARAMETER,
                    message: "must name the SSM SecureString parameter holding the operational endpoint's whsec_ key".into(),
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError {
                    name: "WEBHOOKS_OPERATIONAL_URL",
                    message: format!("must be set with {PARAMETER}"),
                });
            }
        };
        let topic = var("WEBHOOKS_OPERATIONAL_TOPIC_ARN")
            .filter(|v| !v.trim().is_empty())
            .map(|arn| {
                Arc::new(SnsTopic::new(
                    aws_sdk_sns::Client::new(&self.sdk),
                    arn.trim().to_string(),
                )) as Arc<dyn NoticeTopic>
            });
        Ok(Notices {
            endpoint,
            topic,
            ..Notices::default()
        })
    }
}

/// The tokens in the SSM parameter `name` (the value of `variable`); a parameter without any
/// token is an error, since it would lock every caller out.
async fn token_list(
    ssm: &aws_sdk_ssm::Client,
    variable: &'static str,
    name: Option<String>,
) -> Result<String, ConfigError> {
    let Some(name) = name else {
        return Ok(String::new());
    };
    let error = |message: String| ConfigError {
        name: variable,
        message: format!("parameter {name}: {message}"),
    };
    let value = secure_parameter(ssm, name.trim()).await.map_err(error)?;
    if Tokens::from_lists(&value, "").is_empty() {
        return Err(error("holds no token".into()));
    }
    Ok(value)
}

/// The decrypted value of an SSM SecureString parameter (other types are refused: tokens are
/// never stored in clear); the error never carries the value.
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
    let parameter = out
        .parameter
        .ok_or_else(|| "the parameter has no value".to_string())?;
    if parameter.r#type != Some(aws_sdk_ssm::types::ParameterType::SecureString) {
        return Err("the parameter is not a SecureString".into());
    }
    parameter
        .value
        .ok_or_else(|| "the parameter has no value".to_string())
}
