//! A moto server of a test's own, on a free loopback port, for tests that must freeze or
//! break the emulator without disturbing the shared one. Killed with its process group on drop.

use crate::provision::Keys;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct MotoServer {
    child: Child,
    pub endpoint: String,
}

impl MotoServer {
    /// Starts `moto_server` (from PATH) and waits until it accepts connections; panics if it
    /// is missing or does not come up within a minute.
    pub async fn start() -> Self {
        let port = crate::free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start moto_server ({e}): run the tests with scripts/test")
            });
        let mut server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("moto_server exited on startup: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto_server did not listen on 127.0.0.1:{port} within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    /// Freezes the server (SIGSTOP): connections are still accepted but never answered, and
    /// its state survives until [`MotoServer::resume`].
    pub fn pause(&self) {
        self.signal("STOP");
    }

    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), "--", &format!("-{}", self.child.id())])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} moto_server failed");
    }

    /// SDK configuration for this server with the given timeouts and static test credentials.
    pub async fn sdk_config(&self, timeouts: TimeoutConfig) -> SdkConfig {
        sdk_config(&self.endpoint, timeouts).await
    }

    /// SDK configuration for this server holding `keys`.
    pub async fn sdk_config_as(&self, keys: &Keys) -> SdkConfig {
        let credentials = Credentials::new(
            keys.access_key_id.clone(),
            keys.secret_access_key.clone(),
            keys.session_token.clone(),
            None,
            "moto",
        );
        load(&self.endpoint, credentials, default_timeouts()).await
    }

    /// From now on every request must be signed by an IAM identity of this server and is
    /// allowed only what that identity's policies allow (moto's `INITIAL_NO_AUTH_ACTION_COUNT`,
    /// set to zero through its control API).
    pub async fn enforce_iam(&self) {
        let answer = reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.endpoint))
            .body("0")
            .send()
            .await
            .expect("moto's control API answers");
        assert!(
            answer.status().is_success(),
            "reset-auth: {}",
            answer.status()
        );
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// SDK configuration for a moto endpoint on 127.0.0.1 with static test credentials, never
/// reaching real AWS.
pub async fn sdk_config(endpoint: &str, timeouts: TimeoutConfig) -> SdkConfig {
    let credentials = Credentials::new("testing", "testing", None, None, "moto");
    load(endpoint, credentials, timeouts).await
}

/// Connect in 5 s, answer within 30 s.
pub fn default_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(30))
        .build()
}

async fn load(endpoint: &str, credentials: Credentials, timeouts: TimeoutConfig) -> SdkConfig {
    assert!(
        endpoint.starts_with("http://127.0.0.1:"),
        "tests only talk to 127.0.0.1, not {endpoint}"
    );
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .timeout_config(timeouts)
        .load()
        .await
}
