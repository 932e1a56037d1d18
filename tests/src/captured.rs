//! A child process's whole stdout and stderr, read on threads of their own so the child never
//! blocks on a full pipe, kept separately and without terminal colour codes (they could split
//! a secret in two and hide it from a search).

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub struct Captured {
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Captured {
    /// Spawns `command` with both streams piped; panics if it cannot start.
    pub fn spawn(command: &mut Command) -> (Child, Self) {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {command:?}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipes: [(Box<dyn Read + Send>, _); 2] = [
            (Box::new(child.stdout.take().unwrap()), stdout.clone()),
            (Box::new(child.stderr.take().unwrap()), stderr.clone()),
        ];
        let readers = pipes
            .into_iter()
            .map(|(mut pipe, sink)| {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = pipe.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        sink.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                })
            })
            .collect();
        (
            child,
            Self {
                stdout,
                stderr,
                readers,
            },
        )
    }

    pub fn stdout(&self) -> String {
        plain(&self.stdout.lock().unwrap())
    }

    pub fn stderr(&self) -> String {
        plain(&self.stderr.lock().unwrap())
    }

    /// Waits until every process holding the pipes has closed them (exited).
    pub fn finish(&mut self) {
        for reader in std::mem::take(&mut self.readers) {
            reader.join().unwrap();
        }
    }
}

/// The text without ANSI escape sequences.
fn plain(bytes: &[u8]) -> String {
    let raw = String::from_utf8_lossy(bytes);
    let mut text = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(char::is_ascii_alphabetic);
        } else {
            text.push(c);
        }
    }
    text
}
