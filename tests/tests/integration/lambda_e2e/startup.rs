//! On AWS, tokens (and the operational signing key) come only from SSM SecureString
//! parameters: a function that takes them stops at start, naming the variable, when its
//! parameter is unset, not a SecureString or empty, even with plain token variables set, and
//! never prints a secret while doing so.

use super::{WORKSPACE, watch_target_dir};
use crate::support::moto;
use aws_sdk_ssm::types::ParameterType;
use std::process::Command;
use std::time::{Duration, Instant};
use webhooks_tests::captured::Captured;
use webhooks_tests::provision::moto_config;
use webhooks_tests::unique_prefix;

const PLAIN: &str = "plain-Startup-Token-5r7t9v1x3z";
const STORED: &str = "stored-Startup-Token-2q4s6u8w0y";

/// Runs `function`'s binary (as `scripts/test` prebuilt it for `cargo lambda watch`) outside
/// any runtime; returns whether it stopped with an error, and what it printed.
async fn start(function: &str, vars: &[(&str, &str)]) -> (bool, String) {
    let binary = format!("{}/debug/{function}", watch_target_dir());
    let mut command = Command::new(&binary);
    command
        .current_dir(WORKSPACE)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("WEBHOOKS_ADMIN_TOKEN", PLAIN)
        .env("WEBHOOKS_INGEST_TOKEN", PLAIN)
        .env("RUST_LOG", "debug")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .envs(vars.iter().copied());
    let (mut child, mut output) = Captured::spawn(&mut command);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("{function} did not stop:\n{}", output.stderr());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    output.finish();
    (
        !status.success(),
        format!("{}{}", output.stdout(), output.stderr()),
    )
}

/// (function, its token variables, the variable the error must name, the reason it gives).
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);

#[tokio::test]
async fn lambda_functions_refuse_to_start_without_their_token_parameters() {
    let m = moto("lambda-start").await;
    let ssm = aws_sdk_ssm::Client::new(&moto_config().await);
    let prefix = unique_prefix("start");
    let put = |name: String, value: &'static str, kind: ParameterType| {
        let ssm = ssm.clone();
        async move {
            ssm.put_parameter()
                .name(&name)
                .value(value)
                .r#type(kind)
                .send()
                .await
                .unwrap();
            name
        }
    };
    let secure = put(
        format!("/{prefix}/tokens"),
        STORED,
        ParameterType::SecureString,
    )
    .await;
    let clear = put(format!("/{prefix}/clear"), STORED, ParameterType::String).await;
    let blank = put(
        format!("/{prefix}/blank"),
        " , ",
        ParameterType::SecureString,
    )
    .await;
    let missing = format!("/{prefix}/missing");

    let p = &m.provisioned;
    let base = [
        ("WEBHOOKS_HOOKS_TABLE", p.hooks_table.as_str()),
        ("WEBHOOKS_DELIVERIES_TABLE", p.deliveries_table.as_str()),
        ("WEBHOOKS_QUEUE_URL", p.queue_url.as_str()),
    ];
    let admin = "WEBHOOKS_ADMIN_TOKEN_PARAMETER";
    let ingest = "WEBHOOKS_INGEST_TOKEN_PARAMETER";
    let (url, key) = (
        "WEBHOOKS_OPERATIONAL_URL",
        "WEBHOOKS_OPERATIONAL_SIGNING_KEY_PARAMETER",
    );
    let ops_url = "https://ops.example.com/notices";
    let sources = "WEBHOOKS_LOGTO_SOURCES_PARAMETER";
    let cases: [Case; 12] = [
        (
            "api",
            &[],
            admin,
            "must name the SSM SecureString parameter",
        ),
        (
            "ingest",
            &[],
            admin,
            "must name the SSM SecureString parameter",
        ),
        (
            "ingest",
            &[(admin, &secure)],
            ingest,
            "must name the SSM SecureString parameter",
        ),
        ("api", &[(admin, &clear)], admin, "not a SecureString"),
        ("api", &[(admin, &blank)], admin, "holds no token"),
        (
            "api",
            &[(admin, &missing)],
            admin,
            "could not read the parameter",
        ),
        (
            "ingest",
            &[(admin, &secure), (ingest, &missing)],
            ingest,
            "could not read the parameter",
        ),
        // The sender reads no token, but the operational key the same way.
        (
            "sender",
            &[(url, ops_url)],
            key,
            "must name the SSM SecureString parameter",
        ),
        (
            "sender",
            &[(url, ops_url), (key, &clear)],
            key,
            "not a SecureString",
        ),
        ("sender", &[(url, ops_url), (key, &secure)], key, "whsec_"),
        // The Logto relay's sources, read by the ingest function the same way.
        (
            "ingest",
            &[(admin, &secure), (ingest, &secure), (sources, &clear)],
            sources,
            "not a SecureString",
        ),
        (
            "ingest",
            &[(admin, &secure), (ingest, &secure), (sources, &secure)],
            sources,
            "is not sourceId=signingKey",
        ),
    ];
    for (function, vars, variable, reason) in cases {
        let mut env = base.to_vec();
        env.extend_from_slice(vars);
        let (failed, output) = start(function, &env).await;
        let case = format!("{function} with {vars:?}");
        assert!(failed, "{case} started:\n{output}");
        assert!(
            output.contains(variable),
            "{case}: {variable} not named:\n{output}"
        );
        assert!(output.contains(reason), "{case}: not `{reason}`:\n{output}");
        for secret in [PLAIN, STORED] {
            assert!(
                !output.contains(secret),
                "{case} printed a token:\n{output}"
            );
        }
    }
}
