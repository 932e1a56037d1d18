//! Secrets never reach the logs (§7, §10): the real dev server binary at debug level, driven
//! over HTTP through every path that handles a token, a signing key or a custom header value.

use reqwest::Method as M;
use serde_json::{Value, json};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use webhooks_tests::receiver::Receiver;

const ADMIN: &str = "adm-Secret-7f3c9e1d5b2a4c6e8f0a";
const INGEST: &str = "ing-Secret-2b4d6f8a0c1e3g5h7j9k";
const IMPORTED_KEY: &str = "ImportedSigningKeyQ7vX9zR2mW4pL8sT";
const HEADER_VALUE: &str = "HeaderSecret-5Kq2Wz8Rt1Yv4Xn7";

/// `webhooks-local`, built the way the workspace test build (`scripts/test`) builds its
/// dependencies, so it costs a link once the tests are built; the path comes from cargo.
fn dev_server_binary() -> String {
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = webhooks_tests::nested_cargo(&cargo)
        // `--examples` (there are none) resolves features with dev-dependencies, as the test
        // build does, so the binary links against the library the tests already built.
        .args([
            "build",
            "--quiet",
            "--workspace",
            "--examples",
            "--bin",
            "webhooks-local",
        ])
        .args(["--message-format", "json-render-diagnostics"])
        .current_dir(workspace)
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo could not build webhooks-local"
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["profile"]["test"] == false)
        .filter(|m| m["target"]["name"] == "webhooks-local")
        .find_map(|m| m["executable"].as_str().map(str::to_string))
        .expect("cargo reports the webhooks-local executable")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The server process, with everything it wrote to stdout and stderr.
struct Server {
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    base: String,
}

impl Server {
    fn start(binary: &str) -> Self {
        let port = free_port();
        let mut child = Command::new(binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "debug")
            .env("WEBHOOKS_BIND", format!("127.0.0.1:{port}"))
            .env("WEBHOOKS_ADMIN_TOKEN", ADMIN)
            .env("WEBHOOKS_INGEST_TOKEN", INGEST)
            .env("WEBHOOKS_RETRY_SCHEDULE", "1s")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the dev server starts");
        let output = Arc::new(Mutex::new(Vec::new()));
        let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
        let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
        let readers = [stdout, stderr]
            .into_iter()
            .map(|mut pipe| {
                let output = output.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = pipe.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        output.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                })
            })
            .collect();
        Self {
            child,
            output,
            readers,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Everything printed so far, without terminal colour codes (they could split a secret).
    fn output(&self) -> String {
        let raw = String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned();
        let mut plain = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                chars.by_ref().find(char::is_ascii_alphabetic);
            } else {
                plain.push(c);
            }
        }
        plain
    }

    async fn ready(&mut self) {
        let started = Instant::now();
        while !self.output().contains("listening on") {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the dev server exited with {status}:\n{}", self.output());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the dev server did not start:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server with SIGINT (its Ctrl-C path) and returns everything it printed.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let started = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for reader in std::mem::take(&mut self.readers) {
            reader.join().unwrap();
        }
        self.output()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.expect("the dev server answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn no_secret_reaches_the_dev_servers_output() {
    let binary = tokio::task::spawn_blocking(dev_server_binary)
        .await
        .unwrap();
    let mut server = Server::start(&binary);
    server.ready().await;
    let base = server.base.clone();
    let receiver = Receiver::start(&[500]).await;
    let http = reqwest::Client::new();

    let (status, hook) = send(
        &http,
        M::POST,
        format!("{base}/api/hooks"),
        ADMIN,
        Some(json!({
            "name": "secrets",
            "events": ["PostRegister", "User.Created"],
            "config": {"url": receiver.url("/in"), "headers": {"x-api-key": HEADER_VALUE}},
            "signingKey": IMPORTED_KEY,
        })),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    let id = hook["id"].as_str().unwrap().to_string();
    let hook_url = format!("{base}/api/hooks/{id}");

    let (status, _) = send(
        &http,
        M::POST,
        format!("{base}/api/events"),
        INGEST,
        Some(json!({"event": "PostRegister", "userId": "u_1"})),
    )
    .await;
    assert_eq!(status, 202);
    let got = receiver.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(got[0].header("x-api-key"), HEADER_VALUE);
    assert_eq!(
        got[1].header("webhook-id"),
        got[0].header("webhook-id"),
        "a retry"
    );

    let refused = [
        (
            M::POST,
            format!("{base}/api/events"),
            "not-the-token",
            Some(json!({"event": "PostSignIn"})),
        ),
        (M::GET, format!("{base}/api/hooks"), INGEST, None),
        (
            M::POST,
            format!("{base}/api/events"),
            INGEST,
            Some(json!({
                "event": "PostSignIn",
                "userIp": HEADER_VALUE,
                "id": format!("{HEADER_VALUE} x"),
            })),
        ),
        (
            M::POST,
            format!("{base}/api/hooks"),
            ADMIN,
            Some(json!({
                "name": "bad",
                "events": ["PostSignIn"],
                "config": {
                    "url": receiver.url("/in"),
                    "headers": {"x-api-key": format!("{HEADER_VALUE}\r\n")},
                },
            })),
        ),
        (
            M::POST,
            format!("{base}/api/hooks"),
            ADMIN,
            Some(json!({
                "name": "bad",
                "events": ["PostSignIn"],
                "signingKey": format!("{IMPORTED_KEY} {HEADER_VALUE}"),
                "config": {
                    "url": format!("https://{HEADER_VALUE}:{IMPORTED_KEY}@hooks.example.com/"),
                },
            })),
        ),
        (
            M::PATCH,
            hook_url.clone(),
            ADMIN,
            Some(json!({HEADER_VALUE: IMPORTED_KEY})),
        ),
        (
            M::PATCH,
            hook_url.clone(),
            ADMIN,
            Some(json!({"config": {"url": format!("not a url {HEADER_VALUE}")}})),
        ),
    ];
    for (method, url, token, body) in refused {
        let (status, answer) = send(&http, method, url, token, body).await;
        assert!((400..500).contains(&status), "{status}: {answer}");
    }

    let (status, answer) = send(
        &http,
        M::POST,
        format!("{hook_url}/test"),
        ADMIN,
        Some(json!({"events": ["User.Created"]})),
    )
    .await;
    assert_eq!(status, 204, "{answer}");
    let (status, rotated) = send(
        &http,
        M::PATCH,
        format!("{hook_url}/signing-key"),
        ADMIN,
        Some(json!({"expireAfterSeconds": 3600})),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let rotated_key = rotated["signingKey"].as_str().unwrap().to_string();
    assert_ne!(rotated_key, IMPORTED_KEY);

    let (status, _) = send(
        &http,
        M::POST,
        format!("{base}/api/events"),
        ADMIN,
        Some(json!({"event": "User.Created", "data": {"id": "u_2"}})),
    )
    .await;
    assert_eq!(status, 202);
    let got = receiver.wait_for(4, Duration::from_secs(15)).await;
    assert_eq!(
        got[3].header("webhook-signature").split(' ').count(),
        2,
        "signed with the new and the retired key"
    );
    for path in ["", "/recent-logs"] {
        let (status, _) = send(&http, M::GET, format!("{hook_url}{path}"), ADMIN, None).await;
        assert_eq!(status, 200);
    }

    let output = server.stop();
    assert!(output.contains("listening on"), "{output}");
    assert!(
        output.contains("stopping"),
        "not stopped by SIGINT:\n{output}"
    );
    assert!(output.contains("DEBUG"), "no debug-level lines:\n{output}");
    assert!(output.contains("delivery attempt"), "{output}");
    for (what, secret) in [
        ("admin token", ADMIN),
        ("ingest token", INGEST),
        ("imported signing key", IMPORTED_KEY),
        ("rotated signing key", rotated_key.as_str()),
        ("custom header value", HEADER_VALUE),
    ] {
        let leaks: Vec<&str> = output.lines().filter(|l| l.contains(secret)).collect();
        assert!(
            leaks.is_empty(),
            "the {what} is in the output:\n{}",
            leaks.join("\n")
        );
    }
}
