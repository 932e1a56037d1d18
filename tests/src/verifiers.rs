//! Independent verification of delivered signatures: the official `standardwebhooks` Python
//! library and Logto's documented Node snippet, run as separate processes.

use crate::receiver::Received;
use base64::Engine;
use std::io::Write;
use std::process::{Command, Stdio};

const PYTHON_VERIFY: &str = r#"
import base64, json, sys
from standardwebhooks.webhooks import Webhook
d = json.load(sys.stdin)
Webhook(d["secret"]).verify(base64.b64decode(d["body"]), d["headers"])
print("verified")
"#;

const NODE_VERIFY: &str = r#"
const { createHmac } = require('crypto');
let input = '';
process.stdin.on('data', (c) => (input += c));
process.stdin.on('end', () => {
  const d = JSON.parse(input);
  const rawBody = Buffer.from(d.body, 'base64');
  const signature = createHmac('sha256', d.secret).update(rawBody).digest('hex');
  if (signature !== d.headers['logto-signature-sha-256']) { console.error('mismatch'); process.exit(1); }
  console.log('verified');
});
"#;

fn payload(secret: &str, received: &Received) -> Vec<u8> {
    let headers: serde_json::Map<String, serde_json::Value> = received
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.into())))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "secret": secret,
        "headers": headers,
        "body": base64::engine::general_purpose::STANDARD.encode(&received.body),
    }))
    .unwrap()
}

fn run(mut cmd: Command, input: &[u8]) -> Result<(), String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start {cmd:?}: {e}"))?;
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The Python interpreter of the test venv (set by scripts/test).
pub fn python() -> String {
    std::env::var("WEBHOOKS_TEST_PYTHON")
        .expect("WEBHOOKS_TEST_PYTHON is not set: run the tests with scripts/test")
}

/// Verifies with the official Standard Webhooks library.
pub fn standard_webhooks_verifies(secret: &str, received: &Received) -> Result<(), String> {
    let mut cmd = Command::new(python());
    cmd.args(["-c", PYTHON_VERIFY]);
    run(cmd, &payload(secret, received))
}

/// Verifies with Logto's documented `createHmac('sha256', signingKey)` check, in Node.
pub fn logto_node_verifies(secret: &str, received: &Received) -> Result<(), String> {
    let mut cmd = Command::new("node");
    cmd.args(["-e", NODE_VERIFY]);
    run(cmd, &payload(secret, received))
}
