//! The real Lambda binaries under `cargo lambda watch` (the Lambda runtime emulator), with the
//! environment and role of each function of the template deployed as a stack in moto. Only
//! invoke payloads and the processes' output are observed, so the binaries' code may change.
//! With least privilege, each function reaches moto through a recording proxy, and every AWS
//! call it makes must be allowed by its role's statements in the template.

mod delivery;
mod operational;
mod routes;
mod startup;

use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use webhooks_tests::captured::Captured;
use webhooks_tests::iam::{Decision, decide};
use webhooks_tests::lambda_events::http_event;
pub use webhooks_tests::lambda_events::sqs_record;
use webhooks_tests::least_privilege;
use webhooks_tests::provision::{Keys, Stack};
use webhooks_tests::recording_proxy::{Call, RecordingProxy};

/// The workspace root and the target directory `scripts/test` prebuilds the functions into.
const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn watch_target_dir() -> String {
    format!("{WORKSPACE}/target/lambda-watch")
}

/// A deployed stack whose functions the binaries play, and what the tests add.
pub struct Setup<'a> {
    pub stack: &'a Stack,
    /// Test-only variables (allowlists, decoys).
    pub extra: &'a [(&'a str, &'a str)],
    /// `RUST_LOG` of the function only: the emulator keeps its own level.
    pub log_filter: &'a str,
    /// Where the functions' AWS calls are collected.
    pub recording: &'a Recording,
}

/// Every AWS call the functions of one test made, by function.
#[derive(Clone, Default)]
pub struct Recording(Arc<Mutex<Vec<(&'static str, Call)>>>);

impl Recording {
    /// Each grant `infra/least-privilege.tsv` attributes to `test` was used by a recorded call
    /// of its function.
    pub fn assert_uses_its_grants(&self, stack: &Stack, test: &str) {
        let rows = least_privilege::table();
        let recorded = self.0.lock().unwrap();
        let mut unused = Vec::new();
        for (function, deployed) in &stack.functions {
            let calls: Vec<Call> = recorded
                .iter()
                .filter(|(f, _)| f == function)
                .map(|(_, c)| c.clone())
                .collect();
            unused.extend(least_privilege::unused(
                &rows,
                test,
                function,
                &deployed.policy,
                &calls,
            ));
        }
        assert!(
            unused.is_empty(),
            "granted, attributed to {test} in {}, but no recorded call used it:\n{}",
            least_privilege::TABLE,
            unused
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// The environment the stack gave `function`, its credentials (the role's when the stack was
/// deployed with least privilege, else the caller's) and the test's extra variables.
fn environment(
    function: &str,
    setup: &Setup,
    keys: Option<&Keys>,
    endpoint: &str,
) -> Vec<(String, String)> {
    let deployed = setup.stack.function(function);
    let mut env: Vec<(String, String)> = deployed
        .environment
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.push(("AWS_ENDPOINT_URL".into(), endpoint.to_string()));
    if let Some(keys) = keys.or(deployed.credentials.as_ref()) {
        env.extend(keys.variables());
    }
    env.extend(
        setup
            .extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    env
}

/// `cargo lambda watch` for one function, in its own process group (killed with everything it
/// started), with everything the emulator and the function print captured.
pub struct Watch {
    function: &'static str,
    child: Child,
    port: u16,
    output: Captured,
    /// With least privilege: the function's proxy, its role and its statements.
    proxy: Option<(RecordingProxy, String, Vec<Value>)>,
    recording: Recording,
}

impl Watch {
    pub fn start(function: &'static str, setup: &Setup) -> Self {
        Self::start_as(function, setup, None)
    }

    /// Like [`Watch::start`], holding `keys` instead of the function's own credentials.
    pub fn start_as(function: &'static str, setup: &Setup, keys: Option<&Keys>) -> Self {
        let port = webhooks_tests::free_port();
        let manifest = format!("functions/{function}/Cargo.toml");
        let deployed = setup.stack.function(function);
        let proxy = setup.stack.administrator.as_ref().map(|admin| {
            let proxy = RecordingProxy::start(
                &setup.stack.endpoint,
                admin.clone(),
                deployed.policy.statements.clone(),
                &setup.stack.provisioned().queue_arn,
            );
            (
                proxy,
                deployed.role.clone(),
                deployed.policy.statements.clone(),
            )
        });
        let endpoint = proxy
            .as_ref()
            .map_or(setup.stack.endpoint.clone(), |(p, _, _)| p.endpoint.clone());
        let mut command = webhooks_tests::nested_cargo("cargo");
        command
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "--quiet",
                "-A",
                "127.0.0.1",
            ])
            .args(["-P", &port.to_string(), "--manifest-path", &manifest])
            .args(["--env-var", &format!("RUST_LOG={}", setup.log_filter)])
            // Built as scripts/test prebuilt them, not with this test process's cargo variables.
            .env("CARGO_TARGET_DIR", watch_target_dir())
            .env_remove("RUST_LOG")
            .env_remove("WEBHOOKS_ADMIN_TOKEN")
            .env_remove("WEBHOOKS_INGEST_TOKEN")
            .env_remove("AWS_SESSION_TOKEN")
            .envs(environment(function, setup, keys, &endpoint))
            .current_dir(WORKSPACE)
            .process_group(0);
        let (child, output) = Captured::spawn(&mut command);
        Self {
            function,
            child,
            port,
            output,
            proxy,
            recording: setup.recording.clone(),
        }
    }

    pub async fn ready(&mut self) {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "cargo lambda watch ({}) exited with {status}:\n{}",
                    self.function,
                    self.output.stderr()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "cargo lambda watch ({}) did not start",
                self.function
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Invokes the function with `payload` and returns its answer.
    pub async fn invoke(&self, http: &reqwest::Client, payload: &Value) -> Value {
        let function = self.function;
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{function}/invocations",
            self.port
        );
        let response = http
            .post(&url)
            .json(payload)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "invoke {function}: {e}\n{}{}",
                    self.output.stdout(),
                    self.output.stderr()
                )
            });
        let status = response.status();
        let text = response.text().await.unwrap();
        self.assert_authorized();
        assert!(status.is_success(), "invoke {function}: {status} {text}");
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{function} answered {text}"))
    }

    /// Stops the emulator and the function; returns everything they printed (stdout, stderr).
    /// Panics naming each AWS call the function made that its role's statements do not allow.
    pub fn stop(mut self) -> (String, String) {
        self.kill();
        self.output.finish();
        self.assert_authorized();
        if let Some((proxy, _, _)) = &self.proxy {
            let mut recorded = self.recording.0.lock().unwrap();
            recorded.extend(proxy.calls().into_iter().map(|c| (self.function, c)));
        }
        (self.output.stdout(), self.output.stderr())
    }

    /// Panics naming each AWS call so far that the function's role does not allow (the proxy
    /// answered it with AccessDenied, as AWS would).
    fn assert_authorized(&self) {
        let Some((proxy, role, statements)) = &self.proxy else {
            return;
        };
        let refused: Vec<String> = proxy
            .calls()
            .iter()
            .filter(|c| {
                c.needs
                    .iter()
                    .any(|(a, r)| decide(statements, a, r) != Decision::Allowed)
            })
            .map(|c| c.to_string())
            .collect();
        assert!(
            refused.is_empty(),
            "{} made calls its role {role} does not allow in infra/template.yaml:\n{}",
            self.function,
            refused.join("\n")
        );
    }

    fn kill(&mut self) {
        if self.child.try_wait().is_ok_and(|s| s.is_some()) {
            return;
        }
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A function's answer to an API Gateway request.
pub struct HttpAnswer {
    pub status: u16,
    pub body: Value,
    /// The whole invoke answer (status, headers, body) as the function returned it.
    pub raw: String,
}

impl Watch {
    /// Invokes an HTTP function with an API Gateway request.
    pub async fn request(
        &self,
        http: &reqwest::Client,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> HttpAnswer {
        let answer = self
            .invoke(http, &http_event(method, path, token, body))
            .await;
        let status = answer["statusCode"]
            .as_u64()
            .unwrap_or_else(|| panic!("no statusCode in {answer}")) as u16;
        HttpAnswer {
            status,
            body: answer["body"]
                .as_str()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or(Value::Null),
            raw: answer.to_string(),
        }
    }
}
