//! The real `webhooks-local` binary as a child process: built once by cargo, started with a
//! chosen environment on a free port, its output captured, stopped with Ctrl-C or `kill -9`.

use serde_json::Value;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `webhooks-local`, built the way the workspace test build (`scripts/test`) builds its
/// dependencies, so it costs a link once the tests are built; the path comes from cargo.
pub fn dev_server_binary() -> String {
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = crate::nested_cargo(&cargo)
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

/// The server process, with everything it wrote to stdout and stderr.
pub struct DevServer {
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    pub base: String,
}

impl DevServer {
    /// Starts the binary with only `PATH`, `WEBHOOKS_BIND` and `env` set.
    pub fn start(binary: &str, env: &[(&str, &str)]) -> Self {
        Self::start_on(binary, crate::free_port(), env)
    }

    /// As [`DevServer::start`], on a chosen port (a restart keeps its address).
    pub fn start_on(binary: &str, port: u16, env: &[(&str, &str)]) -> Self {
        Self::start_in(binary, port, None, env)
    }

    /// As [`DevServer::start_on`], in the working directory `cwd`.
    pub fn start_in(
        binary: &str,
        port: u16,
        cwd: Option<&std::path::Path>,
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = Command::new(binary);
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("WEBHOOKS_BIND", format!("127.0.0.1:{port}"));
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
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

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything printed so far, without terminal colour codes (they could split a secret).
    pub fn output(&self) -> String {
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

    /// Waits for the start-up banner's last line; panics if the process exits first.
    pub async fn ready(&mut self) {
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

    /// Waits for the process to exit on its own; returns its exit code and output.
    pub fn wait_exit(mut self, timeout: Duration) -> (Option<i32>, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                for reader in std::mem::take(&mut self.readers) {
                    reader.join().unwrap();
                }
                return (status.code(), self.output());
            }
            assert!(
                started.elapsed() < timeout,
                "the dev server kept running:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`: no shutdown path runs.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server with SIGINT (its Ctrl-C path) and returns everything it printed.
    pub fn stop(mut self) -> String {
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

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
