//! Name lookup behind the delivery client's resolver: the system's on every deployment, a
//! fixed table in tests, so the address policy is proven on real requests without real DNS.

use futures::future::BoxFuture;
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Resolves a host name to the addresses a connection may use.
pub trait NameLookup: Send + Sync + 'static {
    fn lookup(&self, host: &str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>>;
}

/// The operating system's resolver (`getaddrinfo` through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl NameLookup for SystemLookup {
    fn lookup(&self, host: &str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        let host = host.to_owned();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// A name's answers and the index of the next one.
type Answers = (usize, Vec<Vec<IpAddr>>);

/// A fixed table: each name answers its listed answers in turn, then repeats the last one,
/// so a test can play a DNS rebinding (a permitted address first, a private one next).
/// Unknown names fail like an unknown host.
#[derive(Debug, Default)]
pub struct FixedLookup {
    answers: Mutex<HashMap<String, Answers>>,
    calls: AtomicUsize,
}

impl FixedLookup {
    pub fn new<'a>(table: impl IntoIterator<Item = (&'a str, Vec<Vec<IpAddr>>)>) -> Self {
        Self {
            answers: Mutex::new(
                table
                    .into_iter()
                    .map(|(name, answers)| (name.to_ascii_lowercase(), (0, answers)))
                    .collect(),
            ),
            calls: AtomicUsize::new(0),
        }
    }

    /// How many lookups were made.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl NameLookup for FixedLookup {
    fn lookup(&self, host: &str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let answer = {
            let mut table = self.answers.lock().unwrap_or_else(|p| p.into_inner());
            table
                .get_mut(&host.to_ascii_lowercase())
                .and_then(|(next, answers)| {
                    let answer = answers.get(*next).or(answers.last()).cloned();
                    *next += 1;
                    answer
                })
        };
        Box::pin(async move {
            answer.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown host"))
        })
    }
}
