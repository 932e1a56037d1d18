//! Deploys `infra/template.yaml` into moto as a CloudFormation stack (`scripts/rehearse.py`:
//! the SAM transform offline, then `CreateStack`), so tests run against the tables, indexes,
//! queues, redrive policy, roles and function settings CloudFormation creates from it.

use aws_config::SdkConfig;
use serde::Deserialize;
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Names of the data resources of a deployed stack.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub hooks_table: String,
    pub deliveries_table: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub queue_arn: String,
}

/// Access keys, with a session token when they belong to an assumed role.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Keys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// The policy statements these keys hold (for a role).
    #[serde(default, rename = "statements")]
    pub statements: Vec<serde_json::Value>,
    /// The role's statements as moto's CloudFormation resolved them.
    #[serde(default, rename = "granted")]
    pub granted: Vec<serde_json::Value>,
}

impl Keys {
    /// The variables the AWS SDKs read these keys from.
    pub fn variables(&self) -> Vec<(String, String)> {
        let mut vars = vec![
            ("AWS_ACCESS_KEY_ID".to_string(), self.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY".to_string(),
                self.secret_access_key.clone(),
            ),
        ];
        if let Some(token) = &self.session_token {
            vars.push(("AWS_SESSION_TOKEN".to_string(), token.clone()));
        }
        vars
    }

    /// Actions granted by any statement.
    pub fn actions(&self) -> Vec<String> {
        self.statements
            .iter()
            .flat_map(|s| match &s["Action"] {
                serde_json::Value::String(a) => vec![a.clone()],
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
                _ => Vec::new(),
            })
            .collect()
    }
}

/// A deployed function as the emulator holds it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Function {
    pub name: String,
    pub role: String,
    pub timeout: Option<u64>,
    pub environment: BTreeMap<String, String>,
    /// Only with [`Deploy::least_privilege`].
    pub credentials: Option<Keys>,
    /// Its role's policy as the transformed template writes it.
    pub policy: Policy,
}

/// A role's policy from the template: statements resolved to this stack's ARNs, the same
/// statements with the template's `${...}` expressions, and managed policy ARNs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub statements: Vec<serde_json::Value>,
    pub symbolic: Vec<serde_json::Value>,
    pub managed_policies: Vec<String>,
}

/// What `scripts/rehearse.py` reports about a stack it created.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stack {
    pub stack: String,
    /// The emulator it was created in.
    #[serde(default)]
    pub endpoint: String,
    pub outputs: BTreeMap<String, String>,
    pub resources: BTreeMap<String, String>,
    /// Logical id -> resource type the emulator's CloudFormation does not create.
    pub not_created: BTreeMap<String, String>,
    /// What was applied by hand because the emulator's CloudFormation ignores it.
    pub fallbacks: Vec<String>,
    /// Keyed by binary (`ingest`, `api`, `sender`).
    pub functions: BTreeMap<String, Function>,
    pub queue_arns: BTreeMap<String, String>,
    pub administrator: Option<Keys>,
    /// Keyed by `function:action`: the function's policy without that action.
    #[serde(default)]
    pub without_action: BTreeMap<String, Keys>,
}

impl Stack {
    pub fn provisioned(&self) -> Provisioned {
        let output = |key: &str| {
            self.outputs
                .get(key)
                .unwrap_or_else(|| panic!("stack {} has no output {key}", self.stack))
                .clone()
        };
        Provisioned {
            hooks_table: output("HooksTableName"),
            deliveries_table: output("DeliveriesTableName"),
            queue_url: output("DeliveryQueueUrl"),
            dlq_url: output("DeliveryDeadLetterQueueUrl"),
            queue_arn: self
                .queue_arns
                .get("DeliveryQueue")
                .unwrap_or_else(|| panic!("stack {} has no DeliveryQueue", self.stack))
                .clone(),
        }
    }

    pub fn function(&self, binary: &str) -> &Function {
        self.functions
            .get(binary)
            .unwrap_or_else(|| panic!("stack {} has no function {binary}", self.stack))
    }
}

/// A stack to create: its name, template parameters, and which credentials to make.
pub struct Deploy<'a> {
    pub prefix: &'a str,
    pub parameters: Vec<(&'a str, String)>,
    pub least_privilege: bool,
    /// `function:action` pairs, each getting credentials without that one action.
    pub without: Vec<&'a str>,
}

impl<'a> Deploy<'a> {
    pub fn new(prefix: &'a str) -> Self {
        Self {
            prefix,
            parameters: Vec::new(),
            least_privilege: false,
            without: Vec::new(),
        }
    }

    /// Creates the stack in the emulator at `endpoint`; panics with the script's output if
    /// it fails.
    pub async fn run(self, endpoint: &str) -> Stack {
        assert!(
            endpoint.starts_with("http://127.0.0.1:"),
            "stacks are only created in a local emulator, not at {endpoint}"
        );
        let suffix = ulid::Ulid::new().to_string().to_lowercase();
        // Stage names every function and log group; queue names must stay within 80 chars.
        let stage = format!("s{}", &suffix[14..]);
        let mut stack: String = self
            .prefix
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(28)
            .collect();
        if !stack.starts_with(|c: char| c.is_ascii_alphabetic()) {
            stack.insert(0, 's');
        }
        stack = format!("{}-{stage}", stack.trim_end_matches('-'));
        let mut command = tokio::process::Command::new(python());
        command
            .arg(format!("{WORKSPACE}/scripts/rehearse.py"))
            .args(["--endpoint", endpoint, "--stack", &stack])
            .args(["--parameter", &format!("Stage={stage}")])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for (key, value) in &self.parameters {
            command.args(["--parameter", &format!("{key}={value}")]);
        }
        if self.least_privilege {
            command.arg("--least-privilege");
        }
        for spec in &self.without {
            command.args(["--without", spec]);
        }
        let output = tokio::time::timeout(Duration::from_secs(180), command.output())
            .await
            .unwrap_or_else(|_| panic!("scripts/rehearse.py did not finish within 180 s"))
            .unwrap_or_else(|e| panic!("cannot run scripts/rehearse.py: {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "scripts/rehearse.py failed ({}):\n{stderr}{stdout}",
            output.status
        );
        let mut stack: Stack = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("scripts/rehearse.py printed no stack ({e}):\n{stdout}"));
        stack.endpoint = endpoint.to_string();
        stack
    }
}

/// Deploys the template with its default parameters into the emulator `sdk` points at and
/// returns its tables and queues.
pub async fn provision(sdk: &SdkConfig, prefix: &str) -> Provisioned {
    let endpoint = sdk
        .endpoint_url()
        .expect("an SDK configuration with the emulator's endpoint");
    Deploy::new(prefix).run(endpoint).await.provisioned()
}

/// Names of the environment variables `infra/template.yaml` gives the function built from the
/// binary `binary` (its own and the global ones). Panics if no function builds it.
pub fn function_variables(binary: &str) -> Vec<String> {
    let path = format!("{WORKSPACE}/infra/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let root: Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {path}: {e}"));
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
    let function = root
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
        .unwrap_or_else(|| panic!("{}: no function builds {binary}", path));
    let mut names = variables(root.get("Globals").and_then(|g| g.get("Function")));
    names.extend(variables(function.get("Properties")));
    names
}

/// The Python of the virtual environment `scripts/test` sets up.
pub(crate) fn python() -> String {
    std::env::var("WEBHOOKS_TEST_PYTHON")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| format!("{WORKSPACE}/.venv/bin/python"))
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
    crate::moto_server::sdk_config(&endpoint, crate::moto_server::default_timeouts()).await
}
