//! Creates the DynamoDB tables and SQS queues declared in `infra/template.yaml` inside moto,
//! through the real AWS SDK, so tests run against the keys, index, TTL and redrive policy that
//! get deployed: code and infrastructure cannot drift apart.

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ProvisionedThroughput, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_yaml::Value;
use std::collections::HashMap;
use std::time::Duration;

const TABLE: &str = "AWS::DynamoDB::Table";
const QUEUE: &str = "AWS::SQS::Queue";
const REQUIRED: [(&str, &str); 4] = [
    ("HooksTable", TABLE),
    ("DeliveriesTable", TABLE),
    ("DeliveryQueue", QUEUE),
    ("DeliveryDeadLetterQueue", QUEUE),
];
const QUEUE_ATTRIBUTES: [&str; 6] = [
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "ContentBasedDeduplication",
];

/// Names of the resources [`provision`] created.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub hooks_table: String,
    pub deliveries_table: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub queue_arn: String,
}

/// Parses `infra/template.yaml` and creates every `AWS::DynamoDB::Table` and `AWS::SQS::Queue`
/// in it, named `{prefix}-{LogicalId}`. Dead-letter queues are created before the queues whose
/// `RedrivePolicy` points at them. Panics if a required resource is missing or a call fails.
pub async fn provision(
    dynamo: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
) -> Provisioned {
    let template = Template::load();
    for (id, kind) in REQUIRED {
        let found = template.resources().find(|(rid, _, _)| *rid == id);
        match found {
            Some((_, k, _)) if k == kind => {}
            Some((_, k, _)) => panic!("{}: {id} is a {k}, expected a {kind}", template.path),
            None => panic!("{}: resource {id} ({kind}) is missing", template.path),
        }
    }

    let (tables, queues) = tokio::join!(
        create_tables(dynamo, &template, prefix),
        create_queues(sqs, &template, prefix)
    );
    let queue = &queues["DeliveryQueue"];
    Provisioned {
        hooks_table: tables["HooksTable"].clone(),
        deliveries_table: tables["DeliveriesTable"].clone(),
        queue_url: queue.url.clone(),
        dlq_url: queues["DeliveryDeadLetterQueue"].url.clone(),
        queue_arn: queue.arn.clone(),
    }
}

/// Names of the environment variables `infra/template.yaml` gives the function built from the
/// binary `binary` (its own and the global ones). Panics if no function builds it.
pub fn function_variables(binary: &str) -> Vec<String> {
    let template = Template::load();
    let variables = |scope: Option<&Value>| -> Vec<String> {
        scope
            .and_then(|s| s.get("Environment"))
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping)
            .map(|m| {
                m.keys()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let function = template
        .root
        .get("Resources")
        .and_then(Value::as_mapping)
        .and_then(|resources| {
            resources.values().find(|r| {
                r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function")
                    && r.get("Metadata")
                        .and_then(|m| m.get("BuildProperties"))
                        .and_then(|b| b.get("Binary"))
                        .and_then(Value::as_str)
                        == Some(binary)
            })
        })
        .unwrap_or_else(|| panic!("{}: no function builds {binary}", template.path));
    let mut names = variables(template.root.get("Globals").and_then(|g| g.get("Function")));
    names.extend(variables(function.get("Properties")));
    names
}

/// SDK configuration for the moto server at `WEBHOOKS_TEST_AWS_ENDPOINT`, with static test
/// credentials so nothing reaches real AWS or the instance metadata service.
pub async fn moto_config() -> SdkConfig {
    let endpoint = std::env::var("WEBHOOKS_TEST_AWS_ENDPOINT")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| {
            panic!("WEBHOOKS_TEST_AWS_ENDPOINT is not set: run the tests with scripts/test")
        });
    let region = std::env::var("AWS_REGION")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "us-east-1".to_string());
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .load()
        .await
}

struct Template {
    path: String,
    root: Value,
}

impl Template {
    fn load() -> Self {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml").to_string();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read the SAM template {path}: {e}"));
        let root = serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("cannot parse the SAM template {path}: {e}"));
        Self { path, root }
    }

    /// `(logical id, type, properties)` of every resource, in template order.
    fn resources(&self) -> impl Iterator<Item = (&str, &str, &Value)> {
        let resources = self
            .root
            .get("Resources")
            .and_then(Value::as_mapping)
            .unwrap_or_else(|| panic!("{}: no Resources section", self.path));
        resources.iter().map(|(id, body)| {
            let id = id
                .as_str()
                .unwrap_or_else(|| panic!("{}: non-string logical id {id:?}", self.path));
            let kind = body.get("Type").and_then(Value::as_str).unwrap_or_default();
            (id, kind, body.get("Properties").unwrap_or(&Value::Null))
        })
    }

    /// Replaces `!Ref Parameter` by the parameter's default; other values are returned as is.
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match intrinsic(value) {
            Some(("Ref", Value::String(name))) => self
                .root
                .get("Parameters")
                .and_then(|p| p.get(name.as_str()))
                .and_then(|p| p.get("Default"))
                .unwrap_or_else(|| {
                    panic!(
                        "{}: cannot resolve Ref {name} (no parameter default)",
                        self.path
                    )
                }),
            _ => value,
        }
    }

    fn string(&self, value: &Value, what: &str) -> String {
        match self.resolve(value) {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => panic!("{}: {what} must be a scalar, got {other:?}", self.path),
        }
    }

    fn bool(&self, value: &Value, what: &str) -> bool {
        match self.string(value, what).as_str() {
            "true" | "True" => true,
            "false" | "False" => false,
            other => panic!("{}: {what} must be true or false, got {other}", self.path),
        }
    }

    fn field(&self, map: &Value, key: &str, what: &str) -> String {
        let value = map
            .get(key)
            .unwrap_or_else(|| panic!("{}: {what} lacks {key}", self.path));
        self.string(value, &format!("{what}.{key}"))
    }

    fn list<'a>(&self, props: &'a Value, key: &str, what: &str) -> &'a [Value] {
        match props.get(key) {
            None => &[],
            Some(Value::Sequence(items)) => items,
            Some(other) => panic!("{}: {what}.{key} must be a list, got {other:?}", self.path),
        }
    }

    fn key_schema(&self, props: &Value, what: &str) -> Vec<KeySchemaElement> {
        self.list(props, "KeySchema", what)
            .iter()
            .map(|k| {
                KeySchemaElement::builder()
                    .attribute_name(self.field(k, "AttributeName", what))
                    .key_type(KeyType::from(self.field(k, "KeyType", what).as_str()))
                    .build()
                    .expect("attribute name and key type are set")
            })
            .collect()
    }

    fn projection(&self, props: &Value, what: &str) -> Projection {
        let projection = props
            .get("Projection")
            .unwrap_or_else(|| panic!("{}: {what} lacks Projection", self.path));
        let non_key: Vec<String> = self
            .list(projection, "NonKeyAttributes", what)
            .iter()
            .map(|a| self.string(a, what))
            .collect();
        Projection::builder()
            .set_projection_type(
                projection
                    .get("ProjectionType")
                    .map(|t| ProjectionType::from(self.string(t, what).as_str())),
            )
            .set_non_key_attributes((!non_key.is_empty()).then_some(non_key))
            .build()
    }

    fn throughput(&self, props: &Value, what: &str) -> Option<ProvisionedThroughput> {
        let t = props.get("ProvisionedThroughput")?;
        let units = |key: &str| -> i64 {
            let value = self.field(t, key, what);
            value
                .parse()
                .unwrap_or_else(|_| panic!("{}: {what}.{key} is not a number", self.path))
        };
        Some(
            ProvisionedThroughput::builder()
                .read_capacity_units(units("ReadCapacityUnits"))
                .write_capacity_units(units("WriteCapacityUnits"))
                .build()
                .expect("read and write capacity are set"),
        )
    }
}

/// `Code: message` for service errors, the whole error chain otherwise (e.g. connection refused).
fn describe<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error {
        SdkError::ServiceError(e) => format!(
            "{}: {}",
            e.err().code().unwrap_or("unknown error"),
            e.err().message().unwrap_or_default()
        ),
        _ => DisplayErrorContext(error).to_string(),
    }
}

/// The intrinsic function a value calls, in short (`!GetAtt`) or long (`Fn::GetAtt`) form.
fn intrinsic(value: &Value) -> Option<(&str, &Value)> {
    const NAMES: [&str; 4] = ["Ref", "GetAtt", "Sub", "ImportValue"];
    match value {
        Value::Tagged(tagged) => NAMES
            .into_iter()
            .find(|n| tagged.tag == *n)
            .map(|n| (n, &tagged.value)),
        Value::Mapping(map) if map.len() == 1 => {
            let (key, inner) = map.iter().next()?;
            let key = key.as_str()?;
            let name = key.strip_prefix("Fn::").unwrap_or(key);
            NAMES.into_iter().find(|n| *n == name).map(|n| (n, inner))
        }
        _ => None,
    }
}

/// The logical id a `GetAtt X.Arn` points at.
fn get_att_arn(value: &Value) -> Option<String> {
    let (resource, attribute) = match intrinsic(value)? {
        ("GetAtt", Value::String(s)) => {
            let (r, a) = s.split_once('.')?;
            (r.to_string(), a.to_string())
        }
        ("GetAtt", Value::Sequence(parts)) if parts.len() == 2 => (
            parts[0].as_str()?.to_string(),
            parts[1].as_str()?.to_string(),
        ),
        _ => return None,
    };
    (attribute == "Arn").then_some(resource)
}

async fn create_tables(
    client: &aws_sdk_dynamodb::Client,
    template: &Template,
    prefix: &str,
) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for (id, _, props) in template.resources().filter(|(_, kind, _)| *kind == TABLE) {
        let name = format!("{prefix}-{id}");
        let attributes = template
            .list(props, "AttributeDefinitions", id)
            .iter()
            .map(|a| {
                let kind = template.field(a, "AttributeType", id);
                AttributeDefinition::builder()
                    .attribute_name(template.field(a, "AttributeName", id))
                    .attribute_type(ScalarAttributeType::from(kind.as_str()))
                    .build()
                    .expect("attribute name and type are set")
            })
            .collect();
        let global: Vec<GlobalSecondaryIndex> = template
            .list(props, "GlobalSecondaryIndexes", id)
            .iter()
            .map(|index| {
                let what = format!("{id}.GlobalSecondaryIndexes");
                GlobalSecondaryIndex::builder()
                    .index_name(template.field(index, "IndexName", &what))
                    .set_key_schema(Some(template.key_schema(index, &what)))
                    .projection(template.projection(index, &what))
                    .set_provisioned_throughput(template.throughput(index, &what))
                    .build()
                    .unwrap_or_else(|e| panic!("{}: invalid {what}: {e}", template.path))
            })
            .collect();
        let local: Vec<LocalSecondaryIndex> = template
            .list(props, "LocalSecondaryIndexes", id)
            .iter()
            .map(|index| {
                let what = format!("{id}.LocalSecondaryIndexes");
                LocalSecondaryIndex::builder()
                    .index_name(template.field(index, "IndexName", &what))
                    .set_key_schema(Some(template.key_schema(index, &what)))
                    .projection(template.projection(index, &what))
                    .build()
                    .unwrap_or_else(|e| panic!("{}: invalid {what}: {e}", template.path))
            })
            .collect();
        let billing = props
            .get("BillingMode")
            .map(|b| BillingMode::from(template.string(b, id).as_str()));

        client
            .create_table()
            .table_name(&name)
            .set_attribute_definitions(Some(attributes))
            .set_key_schema(Some(template.key_schema(props, id)))
            .set_billing_mode(billing)
            .set_provisioned_throughput(template.throughput(props, id))
            .set_global_secondary_indexes((!global.is_empty()).then_some(global))
            .set_local_secondary_indexes((!local.is_empty()).then_some(local))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "CreateTable {name} (prefixes must be unique per moto server): {}",
                    describe(&e)
                )
            });

        if let Some(ttl) = props.get("TimeToLiveSpecification") {
            let what = format!("{id}.TimeToLiveSpecification");
            let enabled = ttl.get("Enabled").is_some_and(|e| template.bool(e, &what));
            if enabled {
                let spec = TimeToLiveSpecification::builder()
                    .attribute_name(template.field(ttl, "AttributeName", &what))
                    .enabled(true)
                    .build()
                    .expect("attribute name and flag are set");
                client
                    .update_time_to_live()
                    .table_name(&name)
                    .time_to_live_specification(spec)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("UpdateTimeToLive {name}: {}", describe(&e)));
            }
        }
        names.insert(id.to_string(), name);
    }
    names
}

struct Queue {
    url: String,
    arn: String,
}

async fn create_queues(
    client: &aws_sdk_sqs::Client,
    template: &Template,
    prefix: &str,
) -> HashMap<String, Queue> {
    let mut pending: Vec<(&str, &Value)> = template
        .resources()
        .filter(|(_, kind, _)| *kind == QUEUE)
        .map(|(id, _, props)| (id, props))
        .collect();
    let mut created: HashMap<String, Queue> = HashMap::new();

    while !pending.is_empty() {
        let ready = pending.iter().position(|(id, props)| {
            redrive_target(template, id, props).is_none_or(|target| created.contains_key(&target))
        });
        let Some(index) = ready else {
            let ids: Vec<&str> = pending.iter().map(|(id, _)| *id).collect();
            panic!(
                "{}: the RedrivePolicy of {ids:?} points at queues that are not in the template \
                 or at each other",
                template.path
            );
        };
        let (id, props) = pending.remove(index);
        let queue = create_queue(client, template, prefix, id, props, &created).await;
        created.insert(id.to_string(), queue);
    }
    created
}

fn redrive_target(template: &Template, id: &str, props: &Value) -> Option<String> {
    let target = props.get("RedrivePolicy")?.get("deadLetterTargetArn")?;
    Some(get_att_arn(target).unwrap_or_else(|| {
        panic!(
            "{}: {id}.RedrivePolicy.deadLetterTargetArn must be a GetAtt of a queue's Arn",
            template.path
        )
    }))
}

async fn create_queue(
    client: &aws_sdk_sqs::Client,
    template: &Template,
    prefix: &str,
    id: &str,
    props: &Value,
    created: &HashMap<String, Queue>,
) -> Queue {
    let fifo = props
        .get("FifoQueue")
        .is_some_and(|f| template.bool(f, &format!("{id}.FifoQueue")));
    let name = format!("{prefix}-{id}{}", if fifo { ".fifo" } else { "" });

    let mut attributes: HashMap<QueueAttributeName, String> = HashMap::new();
    if fifo {
        attributes.insert(QueueAttributeName::FifoQueue, "true".into());
    }
    for key in QUEUE_ATTRIBUTES {
        if let Some(value) = props.get(key) {
            let value = template.string(value, &format!("{id}.{key}"));
            attributes.insert(QueueAttributeName::from(key), value);
        }
    }
    if let Some(policy) = props.get("RedrivePolicy") {
        let what = format!("{id}.RedrivePolicy");
        let Some(map) = policy.as_mapping() else {
            panic!("{}: {what} must be a mapping", template.path);
        };
        let mut json = serde_json::Map::new();
        for (key, value) in map {
            let key = key
                .as_str()
                .unwrap_or_else(|| panic!("{}: {what} has a non-string key", template.path));
            let value = if key == "deadLetterTargetArn" {
                let target = redrive_target(template, id, props).expect("checked above");
                serde_json::Value::String(created[&target].arn.clone())
            } else {
                serde_json::to_value(template.resolve(value)).unwrap_or_else(|e| {
                    panic!("{}: {what}.{key} is not plain data: {e}", template.path)
                })
            };
            json.insert(key.to_string(), value);
        }
        attributes.insert(
            QueueAttributeName::RedrivePolicy,
            serde_json::Value::Object(json).to_string(),
        );
    }

    let url = client
        .create_queue()
        .queue_name(&name)
        .set_attributes(Some(attributes))
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateQueue {name}: {}", describe(&e)))
        .queue_url
        .unwrap_or_else(|| panic!("CreateQueue {name} returned no queue URL"));
    let arn = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetQueueAttributes {name}: {}", describe(&e)))
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .unwrap_or_else(|| panic!("GetQueueAttributes {name} returned no QueueArn"));
    Queue { url, arn }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).expect("valid yaml")
    }

    #[test]
    fn get_att_arn_reads_short_and_long_forms() {
        assert_eq!(
            get_att_arn(&yaml("!GetAtt Dlq.Arn")).as_deref(),
            Some("Dlq")
        );
        assert_eq!(
            get_att_arn(&yaml("!GetAtt [Dlq, Arn]")).as_deref(),
            Some("Dlq")
        );
        assert_eq!(
            get_att_arn(&yaml("Fn::GetAtt: [Dlq, Arn]")).as_deref(),
            Some("Dlq")
        );
        assert_eq!(
            get_att_arn(&yaml("Fn::GetAtt: Dlq.Arn")).as_deref(),
            Some("Dlq")
        );
        assert_eq!(get_att_arn(&yaml("!GetAtt Dlq.QueueName")), None);
        assert_eq!(get_att_arn(&yaml("!Ref Dlq")), None);
        assert_eq!(get_att_arn(&yaml("arn:aws:sqs:us-east-1:1:q")), None);
    }

    #[test]
    fn template_declares_the_required_resources() {
        let template = Template::load();
        for (id, kind) in REQUIRED {
            assert!(
                template.resources().any(|(r, k, _)| r == id && k == kind),
                "{id} ({kind}) missing from {}",
                template.path
            );
        }
        let (_, _, queue) = template
            .resources()
            .find(|(id, _, _)| *id == "DeliveryQueue")
            .expect("checked above");
        assert_eq!(
            redrive_target(&template, "DeliveryQueue", queue).as_deref(),
            Some("DeliveryDeadLetterQueue")
        );
    }
}
