//! Cold starts of the three Lambda binaries (`scripts/bench --cold-start`): each release binary
//! runs against a Lambda Runtime API served here and a moto server, so its init, its memory after
//! init and its first invocation are timed as Lambda would see them, without reaching AWS.

use crate::receiver::{Receiver, event_body};
use crate::rig::call;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use webhooks::adapters::dynamo::DynamoStore;
use webhooks::adapters::sqs::SqsQueue;
use webhooks::api::{Api, Tokens, router};
use webhooks::config::{Defaults, Settings};
use webhooks::net::client::DeliveryClient;
use webhooks_tests::lambda_events::{http_event, sqs_record};
use webhooks_tests::moto_server::MotoServer;
use webhooks_tests::provision::{Provisioned, function_variables, provision};

const ADMIN: &str = "cold-admin-Bench-4c8e2a6f0b";
const INGEST: &str = "cold-ingest-Bench-7d1f3b5e9a";
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
pub const FUNCTIONS: [&str; 3] = ["ingest", "api", "sender"];

/// Median and maximum of one figure over the runs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub median: f64,
    pub max: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Self {
            median,
            max: values[n - 1],
        }
    }
}

/// One function's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ColdStart {
    pub function: String,
    pub runs: usize,
    pub binary_mb: f64,
    /// Exec to the first `GET /runtime/invocation/next`.
    pub init_ms: Spread,
    /// The part of init from the first connection to the AWS endpoint (the token parameters
    /// read from SSM) to its end; zero for a function that reads nothing at init.
    pub init_aws_ms: Spread,
    /// Resident memory when init ends.
    pub rss_mb: Spread,
    /// The first event handed out to its response posted.
    pub first_invocation_ms: Spread,
}

/// What one run observed.
struct Run {
    init_ms: f64,
    init_aws_ms: f64,
    rss_mb: f64,
    first_invocation_ms: f64,
}

/// moto with the template's tables and queue, the token parameters, one hook on a local
/// receiver, and the router in process to make jobs for the sender.
pub struct Bench {
    moto: MotoServer,
    provisioned: Provisioned,
    admin_parameter: String,
    ingest_parameter: String,
    memory_mb: String,
    app: axum::Router,
    queue: SqsQueue,
    _receiver: Receiver,
    events: AtomicUsize,
}

impl Bench {
    pub async fn start() -> Self {
        let (moto, sdk) = crate::rig::start().await;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let provisioned = provision(&sdk, "cold").await;
        let ssm = aws_sdk_ssm::Client::new(&sdk);
        let admin_parameter = "/cold/admin-tokens".to_string();
        let ingest_parameter = "/cold/ingest-tokens".to_string();
        for (name, value) in [(&admin_parameter, ADMIN), (&ingest_parameter, INGEST)] {
            ssm.put_parameter()
                .name(name)
                .value(value)
                .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                .send()
                .await
                .expect("put a token parameter into moto");
        }
        let store = DynamoStore::new(
            dynamo,
            provisioned.hooks_table.clone(),
            provisioned.deliveries_table.clone(),
        );
        let queue = SqsQueue::new(sqs.clone(), provisioned.queue_url.clone());
        let settings = Settings::from_lookup(Defaults::local(), |_| None).unwrap();
        let app = router(Api::new(
            Arc::new(store),
            Arc::new(SqsQueue::new(sqs, provisioned.queue_url.clone())),
            DeliveryClient::from_settings(&settings),
            Tokens::from_lists(ADMIN, INGEST),
            &settings,
        ));
        let receiver = Receiver::start().await;
        let hook = json!({"name": "cold start", "events": ["PostSignIn"], "config": {"url": receiver.url("/in")}});
        let (status, _) = call(&app, "/api/hooks", ADMIN, &hook).await;
        assert_eq!(status, 201, "create the hook");
        Self {
            moto,
            provisioned,
            admin_parameter,
            ingest_parameter,
            memory_mb: template_memory_mb(),
            app,
            queue,
            _receiver: receiver,
            events: AtomicUsize::new(0),
        }
    }

    /// Starts `function` (the binary in `dir`) `runs` times, each a fresh process.
    pub async fn measure(&self, dir: &Path, function: &str, runs: usize) -> ColdStart {
        let binary = std::fs::canonicalize(dir.join(function))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join(function).display()));
        let size = std::fs::metadata(&binary).unwrap().len();
        let mut all = Vec::with_capacity(runs);
        for _ in 0..runs {
            let event = self.first_event(function).await;
            all.push(self.run_once(&binary, function, event).await);
        }
        let spread = |f: fn(&Run) -> f64| Spread::of(all.iter().map(f).collect());
        ColdStart {
            function: function.to_string(),
            runs,
            binary_mb: size as f64 / 1e6,
            init_ms: spread(|r| r.init_ms),
            init_aws_ms: spread(|r| r.init_aws_ms),
            rss_mb: spread(|r| r.rss_mb),
            first_invocation_ms: spread(|r| r.first_invocation_ms),
        }
    }

    /// A realistic first event: an event posted to ingest, the hook list from the api, one
    /// real job for the sender (taken off the queue, as the event source mapping does).
    async fn first_event(&self, function: &str) -> Value {
        let n = self.events.fetch_add(1, Ordering::Relaxed);
        match function {
            "ingest" => http_event("POST", "/api/events", INGEST, Some(&event_body(n))),
            "api" => http_event("GET", "/api/hooks", ADMIN, None),
            "sender" => {
                let (status, _) = call(&self.app, "/api/events", INGEST, &event_body(n)).await;
                assert_eq!(status, 202, "ingest an event for the sender");
                let deadline = Instant::now() + Duration::from_secs(30);
                let job = loop {
                    let mut received = self.queue.receive(1, 1).await.expect("receive a job");
                    if let Some(job) = received.pop() {
                        break job;
                    }
                    assert!(Instant::now() < deadline, "no job on the queue");
                };
                self.queue
                    .delete(std::slice::from_ref(&job.receipt_handle))
                    .await
                    .expect("delete the job");
                json!({"Records": [sqs_record(&job.message.id, &job.message.body, &self.provisioned.queue_arn)]})
            }
            other => panic!("no function {other}"),
        }
    }

    /// The environment the template gives `function`, as Lambda sets it, with the AWS
    /// endpoint at `aws` and the runtime API at `runtime`.
    fn environment(&self, function: &str, runtime: &str, aws: &str) -> Vec<(String, String)> {
        let p = &self.provisioned;
        let name = format!("cold-{function}");
        let mut env: Vec<(String, String)> = function_variables(function)
            .into_iter()
            .filter_map(|variable| {
                let value = match variable.as_str() {
                    "WEBHOOKS_HOOKS_TABLE" => p.hooks_table.clone(),
                    "WEBHOOKS_DELIVERIES_TABLE" => p.deliveries_table.clone(),
                    "WEBHOOKS_QUEUE_URL" => p.queue_url.clone(),
                    "WEBHOOKS_ADMIN_TOKEN_PARAMETER" => self.admin_parameter.clone(),
                    "WEBHOOKS_INGEST_TOKEN_PARAMETER" => self.ingest_parameter.clone(),
                    "WEBHOOKS_METRICS_NAMESPACE" => "Webhooks".into(),
                    _ => return None,
                };
                Some((variable, value))
            })
            .collect();
        let lambda = [
            ("AWS_LAMBDA_RUNTIME_API", runtime),
            ("AWS_LAMBDA_FUNCTION_NAME", &name),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", &self.memory_mb),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", &format!("/aws/lambda/{name}")),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/27/[$LATEST]cold"),
            ("AWS_EXECUTION_ENV", "AWS_Lambda_rapid"),
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_SESSION_TOKEN", "testing"),
            ("AWS_ENDPOINT_URL", aws),
            ("LAMBDA_TASK_ROOT", "/var/task"),
            ("LAMBDA_RUNTIME_DIR", "/var/runtime"),
            ("_HANDLER", "bootstrap"),
            ("TZ", ":UTC"),
            ("LANG", "en_US.UTF-8"),
            ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"),
            // Deliveries go to the receiver on 127.0.0.1.
            ("WEBHOOKS_ALLOW_HTTP", "true"),
            ("WEBHOOKS_ALLOWED_CIDRS", "127.0.0.0/8"),
        ];
        env.extend(lambda.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    async fn run_once(&self, binary: &Path, function: &str, event: Value) -> Run {
        let runtime = RuntimeApi::start(event).await;
        let aws = Relay::start(&self.moto.endpoint).await;
        let log = std::env::temp_dir().join(format!(
            "bench-cold-start-{}-{function}.log",
            std::process::id()
        ));
        let out = std::fs::File::create(&log).expect("create the function's log file");
        let mut command = Command::new(binary);
        command
            .env_clear()
            .envs(self.environment(function, &runtime.address, &aws.endpoint))
            .current_dir(binary.parent().unwrap())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let started = Instant::now();
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        runtime.state.pid.store(child.id(), Ordering::Release);
        let mut child = Running(child);
        let deadline = started + Duration::from_secs(60);
        let outcome = loop {
            if let Some(outcome) = runtime.state.outcome.lock().unwrap().take() {
                break outcome;
            }
            if let Ok(Some(status)) = child.0.try_wait() {
                break Err(format!("exited with {status}"));
            }
            if Instant::now() > deadline {
                break Err("no answer within 60 s".into());
            }
            let _ = tokio::time::timeout(Duration::from_millis(20), runtime.state.done.notified())
                .await;
        };
        drop(child);
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        let answer = outcome.unwrap_or_else(|e| panic!("{function}: {e}; it printed:\n{output}"));
        check_answer(function, &answer.body)
            .unwrap_or_else(|e| panic!("{function}: {e}; it printed:\n{output}"));
        let init = answer.init_at - started;
        let aws_first = aws.first_connection().filter(|t| *t < answer.init_at);
        Run {
            init_ms: ms(init),
            init_aws_ms: aws_first.map_or(0.0, |t| ms(answer.init_at - t)),
            rss_mb: answer.rss_kb as f64 / 1024.0,
            first_invocation_ms: ms(answer.answered_at - answer.handed_at),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The function process, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The first invocation must have done its work: an event accepted for one hook, the hook
/// list, a job delivered.
fn check_answer(function: &str, body: &[u8]) -> Result<(), String> {
    let answer: Value = serde_json::from_slice(body)
        .map_err(|_| format!("answered {}", String::from_utf8_lossy(body)))?;
    let ok = match function {
        "sender" => answer["batchItemFailures"]
            .as_array()
            .is_some_and(|f| f.is_empty()),
        _ => {
            let expected = if function == "ingest" { 202 } else { 200 };
            answer["statusCode"].as_u64() == Some(expected)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("answered {answer}"))
    }
}

/// Memory of the functions, from the template's globals.
fn template_memory_mb() -> String {
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/template.yaml"
    ))
    .expect("infra/template.yaml");
    template
        .lines()
        .find_map(|l| l.trim().strip_prefix("MemorySize:"))
        .map(|v| v.trim().to_string())
        .expect("the template sets MemorySize")
}

/// What the runtime API saw of the first invocation.
struct Answer {
    init_at: Instant,
    rss_kb: u64,
    handed_at: Instant,
    answered_at: Instant,
    body: Bytes,
}

#[derive(Default)]
struct RuntimeState {
    pid: AtomicU32,
    event: Mutex<Option<Value>>,
    /// (init end, RSS then, event handed out) once the event went out.
    handed: Mutex<Option<(Instant, u64, Instant)>>,
    outcome: Mutex<Option<Result<Answer, String>>>,
    done: Notify,
}

/// The Lambda Runtime API for one process: the first `next` hands out the event, later ones
/// wait until the process is stopped; a response or an error ends the run.
struct RuntimeApi {
    address: String,
    state: Arc<RuntimeState>,
}

const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

impl RuntimeApi {
    async fn start(event: Value) -> Self {
        let state = Arc::new(RuntimeState::default());
        *state.event.lock().unwrap() = Some(event);
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(error))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Self { address, state }
    }
}

async fn next(State(state): State<Arc<RuntimeState>>) -> Response {
    let init_at = Instant::now();
    let event = state.event.lock().unwrap().take();
    let Some(event) = event else {
        // One invocation per process: the next one never comes.
        return std::future::pending().await;
    };
    let mut pid = state.pid.load(Ordering::Acquire);
    while pid == 0 {
        tokio::time::sleep(Duration::from_micros(100)).await;
        pid = state.pid.load(Ordering::Acquire);
    }
    let rss_kb = vm_rss_kb(pid);
    let deadline_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 30_000;
    let body = serde_json::to_vec(&event).unwrap();
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    let header = |v: String| HeaderValue::from_str(&v).unwrap();
    headers.insert("content-type", header("application/json".into()));
    headers.insert("lambda-runtime-aws-request-id", header(REQUEST_ID.into()));
    headers.insert(
        "lambda-runtime-deadline-ms",
        header(deadline_ms.to_string()),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        header(format!(
            "arn:aws:lambda:{REGION}:{ACCOUNT}:function:cold-start"
        )),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        header("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0".into()),
    );
    *state.handed.lock().unwrap() = Some((init_at, rss_kb, Instant::now()));
    response
}

async fn response(State(state): State<Arc<RuntimeState>>, body: Bytes) -> StatusCode {
    let answered_at = Instant::now();
    let handed = *state.handed.lock().unwrap();
    let outcome = match handed {
        Some((init_at, rss_kb, handed_at)) => Ok(Answer {
            init_at,
            rss_kb,
            handed_at,
            answered_at,
            body,
        }),
        None => Err("answered before it had an event".into()),
    };
    finish(&state, outcome);
    StatusCode::ACCEPTED
}

async fn error(State(state): State<Arc<RuntimeState>>, body: Bytes) -> StatusCode {
    finish(
        &state,
        Err(format!(
            "reported an error: {}",
            String::from_utf8_lossy(&body)
        )),
    );
    StatusCode::ACCEPTED
}

fn finish(state: &RuntimeState, outcome: Result<Answer, String>) {
    state.outcome.lock().unwrap().get_or_insert(outcome);
    state.done.notify_one();
}

fn vm_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A TCP relay in front of moto that notes when the function first connects to its AWS
/// endpoint, so the time init spends on AWS calls shows apart from the rest.
struct Relay {
    endpoint: String,
    first: Arc<Mutex<Option<Instant>>>,
}

impl Relay {
    async fn start(moto: &str) -> Self {
        let upstream = moto
            .strip_prefix("http://")
            .expect("moto on http")
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let first = Arc::new(Mutex::new(None));
        let noted = first.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                noted.lock().unwrap().get_or_insert_with(Instant::now);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = inbound.set_nodelay(true);
                        let _ = outbound.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { endpoint, first }
    }

    fn first_connection(&self) -> Option<Instant> {
        *self.first.lock().unwrap()
    }
}
