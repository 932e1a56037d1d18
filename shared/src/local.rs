//! The local dev server: the whole API and the sender loop in one process, on the embedded
//! store and queue. Same handlers and sender logic as the Lambda functions.

use crate::adapters::memory_queue::MemoryQueue;
use crate::adapters::memory_store::MemoryStore;
use crate::api::listener::JsonErrorListener;
use crate::api::{Api, Tokens, router};
use crate::clock::now_ms;
use crate::config::{ConfigError, Defaults, Settings, var};
use crate::consumer::consume;
use crate::net::client::DeliveryClient;
use crate::ports::JobQueue;
use crate::sender::Sender;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const VISIBILITY: Duration = Duration::from_secs(60);
const MAX_RECEIVES: u32 = 5;

#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub bind: SocketAddr,
    pub admin_tokens: String,
    pub ingest_tokens: String,
    pub data_dir: Option<PathBuf>,
    pub settings: Settings,
    /// Concurrent sender loops, each taking batches of ten jobs.
    pub workers: usize,
}

impl LocalConfig {
    /// Reads `WEBHOOKS_*`; tokens that are unset are generated (the second value lists which).
    pub fn from_env() -> Result<(Self, Vec<&'static str>), ConfigError> {
        let bind = var("WEBHOOKS_BIND").unwrap_or_else(|| "127.0.0.1:3000".into());
        let bind = bind.parse().map_err(|_| ConfigError {
            name: "WEBHOOKS_BIND",
            message: "must be an address such as 127.0.0.1:3000".into(),
        })?;
        let mut generated = Vec::new();
        let mut token = |name: &'static str, prefix: &str| {
            var(name)
                .filter(|t| !t.trim().is_empty())
                .unwrap_or_else(|| {
                    generated.push(name);
                    random_token(prefix)
                })
        };
        let admin_tokens = token("WEBHOOKS_ADMIN_TOKEN", "adm");
        let ingest_tokens = token("WEBHOOKS_INGEST_TOKEN", "ing");
        Ok((
            Self {
                bind,
                admin_tokens,
                ingest_tokens,
                data_dir: var("WEBHOOKS_DATA_DIR")
                    .filter(|d| !d.trim().is_empty())
                    .map(PathBuf::from),
                settings: Settings::from_env(Defaults::local())?,
                workers: 4,
            },
            generated,
        ))
    }
}

fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    format!("{prefix}_{}", hex::encode(bytes))
}

/// A running dev server.
pub struct LocalServer {
    pub addr: SocketAddr,
    pub store: Arc<MemoryStore>,
    pub queue: Arc<MemoryQueue>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl LocalServer {
    pub async fn start(config: LocalConfig) -> std::io::Result<Self> {
        let store = match &config.data_dir {
            Some(dir) => MemoryStore::open(dir).await?,
            None => MemoryStore::new(),
        };
        let queue = MemoryQueue::new(VISIBILITY, MAX_RECEIVES);
        let pending = store.pending_jobs(now_ms());
        if !pending.is_empty() {
            tracing::info!(jobs = pending.len(), "re-queued pending deliveries");
            queue
                .enqueue(&pending)
                .await
                .map_err(std::io::Error::other)?;
        }
        let settings = &config.settings;
        let tokens = Tokens::from_lists(&config.admin_tokens, &config.ingest_tokens);
        let client = DeliveryClient::from_settings(settings);
        let app = router(Api::new(
            store.clone(),
            queue.clone(),
            client.clone(),
            tokens,
            settings,
        ));
        let sender = Sender::new(
            store.clone(),
            queue.clone(),
            client,
            settings.retry_schedule.clone(),
        );

        let (shutdown, stop) = watch::channel(false);
        let mut tasks = Vec::new();
        for _ in 0..config.workers.max(1) {
            tasks.push(tokio::spawn(consume(
                queue.clone(),
                sender.clone(),
                stop.clone(),
            )));
        }

        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        let addr = listener.local_addr()?;
        let mut stop_http = stop.clone();
        tasks.push(tokio::spawn(async move {
            let graceful = async move {
                let _ = stop_http.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(JsonErrorListener::new(listener), app)
                .with_graceful_shutdown(graceful)
                .await
            {
                tracing::error!(error = %e, "HTTP server stopped");
            }
        }));
        Ok(Self {
            addr,
            store,
            queue,
            shutdown,
            tasks,
        })
    }

    /// Stops serving, lets in-flight batches finish, and writes the store snapshot.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "could not write the store snapshot");
        }
    }
}
