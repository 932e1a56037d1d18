//! The receiver check: `POST /api/hooks/{id}/check` and its kept reports on the dev server,
//! `webhooks-local check-receiver` (exit code, table, `--json`), and the example receivers
//! of `examples/receivers/` — each passes, and each deliberately broken variant is caught by
//! the check meant to catch it.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use webhooks_tests::dev_server::{DevServer, dev_server_binary};
use webhooks_tests::receiver::Receiver;
use webhooks_tests::verifiers::python;

const ADMIN: &str = "check-admin";
const INGEST: &str = "check-ingest";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Every check of a report, in order.
const CHECKS: [&str; 13] = [
    "signed",
    "tampered-body",
    "wrong-key",
    "missing-signature",
    "stale-timestamp",
    "future-timestamp",
    "standard-signature-wrong",
    "logto-signature-wrong",
    "key-rotation",
    "large-body",
    "unknown-fields",
    "duplicate",
    "redirect",
];

fn examples() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/receivers")
}

/// An example receiver, killed when dropped.
struct Example {
    child: Child,
    port: u16,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Example {
    /// Starts the `lang` example with `WEBHOOK_SECRET=SECRET`, `PORT=0` and `env`, and reads
    /// its `listening on PORT` line.
    fn start(lang: &str, env: &[(&str, &str)]) -> Self {
        let mut command = match lang {
            "python" => {
                let mut c = Command::new(python());
                c.arg(examples().join("python/receiver.py"));
                c
            }
            "node" => {
                let mut c = Command::new("node");
                c.arg(examples().join("node/receiver.js"));
                c
            }
            "rust" => Command::new(env!("CARGO_BIN_EXE_receiver-example")),
            other => panic!("no {other} example"),
        };
        command
            .env("WEBHOOK_SECRET", SECRET)
            .env("PORT", "0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("the example starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{lang} example printed {line:?}"));
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/webhooks", self.port)
    }
}

/// `webhooks-local check-receiver URL --secret SECRET [extra]`: exit code and stdout.
fn check_receiver(binary: &str, url: &str, extra: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(binary)
        .args(["check-receiver", url, "--secret", SECRET])
        .args(extra)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(SECRET), "the key was printed: {stderr}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn json_report(binary: &str, url: &str) -> (i32, Value) {
    let (code, out) = check_receiver(binary, url, &["--json"], &[]);
    assert!(!out.contains(SECRET), "the key was printed: {out}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (code, report)
}

fn outcome<'a>(report: &'a Value, check: &str) -> &'a str {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == check)
        .unwrap_or_else(|| panic!("no {check} in {report:#}"))["outcome"]
        .as_str()
        .unwrap()
}

/// A broken example: its language, its environment, the checks expected to catch it with
/// their outcomes, and the report's outcome.
type Broken = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [(&'static str, &'static str)],
    &'static str,
);

fn names(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

async fn binary() -> String {
    tokio::task::spawn_blocking(dev_server_binary)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_example_receiver_passes() {
    let binary = binary().await;
    tokio::task::spawn_blocking(move || {
        for lang in ["python", "node", "rust"] {
            let example = Example::start(lang, &[]);
            let (code, report) = json_report(&binary, &example.url());
            assert_eq!(report["outcome"], "pass", "{lang}: {report:#}");
            assert_eq!(code, 0, "{lang}");
            assert_eq!(names(&report), CHECKS, "{lang}");
            for name in CHECKS {
                assert_eq!(outcome(&report, name), "pass", "{lang} {name}: {report:#}");
            }
            assert!(report["hookId"].is_null());
            assert!(report["id"].as_str().unwrap().starts_with("chk_"));
        }
        // The table.
        let example = Example::start("node", &[]);
        let (code, table) = check_receiver(&binary, &example.url(), &[], &[]);
        assert_eq!(code, 0, "{table}");
        assert!(table.contains("PASS  signed"), "{table}");
        assert!(table.trim_end().ends_with("outcome: pass"), "{table}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn each_broken_receiver_is_caught_by_its_check() {
    let binary = binary().await;
    let cases: &[Broken] = &[
        (
            "node",
            &[("BROKEN", "no-verify")],
            &[
                ("tampered-body", "fail"),
                ("wrong-key", "fail"),
                ("missing-signature", "fail"),
                ("standard-signature-wrong", "warn"),
                ("logto-signature-wrong", "warn"),
            ],
            "fail",
        ),
        (
            "node",
            &[("BROKEN", "no-timestamp")],
            &[("stale-timestamp", "fail"), ("future-timestamp", "fail")],
            "fail",
        ),
        (
            "node",
            &[("BROKEN", "first-signature-only")],
            &[("key-rotation", "fail")],
            "fail",
        ),
        (
            "node",
            &[("BROKEN", "dup-error")],
            &[("duplicate", "fail")],
            "fail",
        ),
        ("node", &[("BROKEN", "slow")], &[("signed", "warn")], "warn"),
        (
            "node",
            &[("BROKEN", "small-body")],
            &[("large-body", "fail")],
            "fail",
        ),
        (
            "node",
            &[("BROKEN", "strict-fields")],
            &[("unknown-fields", "fail")],
            "fail",
        ),
        (
            "node",
            &[("BROKEN", "redirect")],
            &[("redirect", "warn"), ("signed", "fail")],
            "fail",
        ),
        // One scheme verified is enough: a warning, never a failure.
        (
            "node",
            &[("SCHEME", "logto")],
            &[
                ("standard-signature-wrong", "warn"),
                ("logto-signature-wrong", "pass"),
            ],
            "warn",
        ),
        (
            "node",
            &[("SCHEME", "standard")],
            &[
                ("logto-signature-wrong", "warn"),
                ("standard-signature-wrong", "pass"),
            ],
            "warn",
        ),
        (
            "python",
            &[("BROKEN", "no-verify")],
            &[("wrong-key", "fail"), ("tampered-body", "fail")],
            "fail",
        ),
        (
            "python",
            &[("BROKEN", "dup-error")],
            &[("duplicate", "fail")],
            "fail",
        ),
        (
            "rust",
            &[("BROKEN", "no-timestamp")],
            &[("stale-timestamp", "fail"), ("future-timestamp", "fail")],
            "fail",
        ),
        (
            "rust",
            &[("BROKEN", "dup-error")],
            &[("duplicate", "fail")],
            "fail",
        ),
    ];
    tokio::task::spawn_blocking(move || {
        for (lang, env, caught, overall) in cases {
            let example = Example::start(lang, env);
            let (code, report) = json_report(&binary, &example.url());
            let case = format!("{lang} {env:?}");
            for (check, expected) in *caught {
                assert_eq!(
                    outcome(&report, check),
                    *expected,
                    "{case} {check}: {report:#}"
                );
            }
            assert_eq!(report["outcome"], *overall, "{case}: {report:#}");
            assert_eq!(code, i32::from(*overall == "fail"), "{case}");
            // What a redirect answered is shown.
            if env.contains(&("BROKEN", "redirect")) {
                let signed = &report["checks"][0];
                assert_eq!(signed["response"]["status"], 307);
                assert_eq!(signed["response"]["location"], "/elsewhere");
            }
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_command_follows_the_address_policy_and_refuses_bad_usage() {
    let binary = binary().await;
    tokio::task::spawn_blocking(move || {
        let example = Example::start("node", &[]);
        // Loopback allowed by default (the dev server's policy); refused when not allowed.
        let (code, out) = check_receiver(
            &binary,
            &example.url(),
            &["--json"],
            &[("WEBHOOKS_ALLOWED_CIDRS", "")],
        );
        assert_eq!(code, 1, "{out}");
        let report: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(outcome(&report, "signed"), "fail");
        assert!(
            report["checks"][0]["response"]["error"]
                .as_str()
                .unwrap()
                .contains("not allowed"),
            "{report:#}"
        );
        let (code, _) = check_receiver(&binary, "ftp://127.0.0.1/", &[], &[]);
        assert_eq!(code, 2);
        let out = Command::new(&binary)
            .args(["check-receiver", &example.url()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "no --secret");
        let out = Command::new(&binary)
            .args(["check-receiver", &example.url(), "--secret", "short"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(!String::from_utf8_lossy(&out.stderr).contains("short"));
    })
    .await
    .unwrap();
}

async fn dev_server() -> DevServer {
    let binary = binary().await;
    let mut server = DevServer::start(
        &binary,
        &[
            ("WEBHOOKS_ADMIN_TOKEN", ADMIN),
            ("WEBHOOKS_INGEST_TOKEN", INGEST),
            ("WEBHOOKS_DATA_DIR", ":memory:"),
        ],
    );
    server.ready().await;
    server
}

async fn create_hook(http: &reqwest::Client, base: &str, url: &str, headers: Value) -> String {
    let r = http
        .post(format!("{base}/api/hooks"))
        .bearer_auth(ADMIN)
        .json(
            &json!({"name": "checked", "events": ["PostRegister"], "signingKey": SECRET,
                      "config": {"url": url, "headers": headers}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn the_route_checks_a_hook_and_lists_its_reports_newest_first() {
    let server = dev_server().await;
    let example = tokio::task::spawn_blocking(|| Example::start("node", &[]))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let base = &server.base;
    let hook = create_hook(&http, base, &example.url(), json!({})).await;

    let check = || async {
        let r = http
            .post(format!("{base}/api/hooks/{hook}/check"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let text = r.text().await.unwrap();
        assert!(!text.contains(SECRET), "the key is in the report");
        serde_json::from_str::<Value>(&text).unwrap()
    };
    let first = check().await;
    assert_eq!(first["outcome"], "pass", "{first:#}");
    assert_eq!(first["hookId"], hook.as_str());
    assert!(first["createdAt"].is_i64());
    assert_eq!(names(&first), CHECKS);
    let signed = &first["checks"][0];
    assert_eq!(signed["response"]["status"], 200);
    assert!(signed["response"]["timeMs"].is_u64());
    assert_eq!(signed["request"]["headers"]["webhook-check"], "1");
    assert!(
        signed["request"]["headers"]["webhook-signature"]
            .as_str()
            .unwrap()
            .ends_with('…'),
        "signatures are shortened: {signed:#}"
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = check().await;

    let list = |query: &'static str| {
        let (http, url) = (
            http.clone(),
            format!("{base}/api/hooks/{hook}/checks{query}"),
        );
        async move {
            let r = http.get(url).bearer_auth(ADMIN).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let link = r
                .headers()
                .get("link")
                .map(|l| l.to_str().unwrap().to_string());
            (r.json::<Value>().await.unwrap(), link)
        }
    };
    let (all, link) = list("").await;
    assert_eq!(all, json!([second, first]));
    assert!(link.is_none());
    let (page, link) = list("?page_size=1").await;
    assert_eq!(page, json!([second]));
    let next = link.expect("a next page is linked");
    let next = next
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string();
    let r = http.get(&next).bearer_auth(ADMIN).send().await.unwrap();
    assert!(r.headers().get("link").is_none());
    assert_eq!(r.json::<Value>().await.unwrap(), json!([first]));

    // The check is no delivery: nothing logged, nothing counted.
    let logs: Value = http
        .get(format!("{base}/api/hooks/{hook}/recent-logs"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(logs, json!([]));
    let read: Value = http
        .get(format!(
            "{base}/api/hooks/{hook}?includeExecutionStats=true"
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["executionStats"]["requestCount"], 0, "{read:#}");

    // Admin only; an unknown hook is 404; a bad cursor is 400.
    let r = http
        .post(format!("{base}/api/hooks/{hook}/check"))
        .bearer_auth(INGEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = http
        .post(format!(
            "{base}/api/hooks/hook_0000000000000000000000000/check"
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = http
        .get(format!("{base}/api/hooks/{hook}/checks?cursor=nope"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    server.stop();
}

#[tokio::test]
async fn check_requests_are_marked_and_never_count_towards_health() {
    let server = dev_server().await;
    // Accepts everything: a receiver that verifies nothing.
    let receiver = Receiver::start(&[]).await;
    let http = reqwest::Client::new();
    let base = &server.base;
    let header_secret = "HeaderSecret-Check-1";
    let hook = create_hook(
        &http,
        base,
        &receiver.url("/in"),
        json!({"x-api-key": header_secret}),
    )
    .await;
    for _ in 0..3 {
        let r = http
            .post(format!("{base}/api/hooks/{hook}/check"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let text = r.text().await.unwrap();
        assert!(
            !text.contains(header_secret),
            "a header value is in the report"
        );
        let report: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(report["outcome"], "fail");
        for check in ["tampered-body", "wrong-key", "missing-signature"] {
            assert_eq!(outcome(&report, check), "fail", "{check}");
        }
        assert_eq!(
            report["checks"][0]["request"]["headers"]["x-api-key"],
            "***"
        );
    }
    // 11 requests and a repeat per check, each marked, each with a check's webhook-id.
    let received = receiver.received();
    assert_eq!(received.len(), 3 * 13);
    for request in &received {
        assert_eq!(request.header("webhook-check"), "1");
        assert!(request.header("webhook-id").starts_with("chk_"));
        assert_eq!(request.header("x-api-key"), header_secret);
        assert_eq!(request.json()["check"], true);
        assert_eq!(request.json()["hookId"], hook.as_str());
    }
    // Three failing checks later, the hook is enabled, with no log and no counts.
    let read: Value = http
        .get(format!(
            "{base}/api/hooks/{hook}?includeExecutionStats=true"
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["enabled"], true);
    assert_eq!(read["executionStats"]["requestCount"], 0, "{read:#}");
    let logs: Value = http
        .get(format!("{base}/api/hooks/{hook}/recent-logs"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(logs, json!([]));
    let listed: Value = http
        .get(format!("{base}/api/hooks/{hook}/checks"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    server.stop();
}
