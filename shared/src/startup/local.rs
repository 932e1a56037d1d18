//! The local dev server: the whole API and the sender loop in one process, on the embedded
//! store and queue. Same handlers and sender logic as the Lambda functions.

use super::listener::JsonErrorListener;
use crate::adapters::sqlite::{Database, SqliteQueue, SqliteStore};
use crate::api::{Api, Tokens, router};
use crate::app::consumer::consume;
use crate::app::relay::{LogtoSources, SOURCES_VARIABLE};
use crate::app::sender::Sender;
use crate::config::{ConfigError, Defaults, Settings, var};
use crate::net::client::DeliveryClient;
use crate::operational::{Notices, OperationalEndpoint};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const VISIBILITY: Duration = Duration::from_secs(60);
const MAX_RECEIVES: u32 = 5;
const EXPIRE_EVERY: Duration = Duration::from_secs(60);
/// `WEBHOOKS_DATA_DIR` when unset; `:memory:` keeps nothing.
pub const DEFAULT_DATA_DIR: &str = ".webhooks";

#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub bind: SocketAddr,
    pub admin_tokens: String,
    pub ingest_tokens: String,
    /// Where the database file lives; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    pub settings: Settings,
    /// Concurrent sender loops, each taking batches of ten jobs.
    pub workers: usize,
    /// Where operational notices go (`WEBHOOKS_OPERATIONAL_URL` and
    /// `WEBHOOKS_OPERATIONAL_SIGNING_KEY`).
    pub operational: Option<OperationalEndpoint>,
    /// Logto instances that may relay events (`WEBHOOKS_LOGTO_SOURCES`).
    pub logto_sources: LogtoSources,
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
        let settings = Settings::from_env(Defaults::local())?;
        let key = var("WEBHOOKS_OPERATIONAL_SIGNING_KEY").filter(|k| !k.trim().is_empty());
        let operational = operational_endpoint(&settings, key.as_deref())?;
        let logto_sources = LogtoSources::parse(&var(SOURCES_VARIABLE).unwrap_or_default())
            .map_err(|message| ConfigError {
                name: SOURCES_VARIABLE,
                message,
            })?;
        Ok((
            Self {
                bind,
                admin_tokens,
                ingest_tokens,
                data_dir: data_dir(var("WEBHOOKS_DATA_DIR")),
                settings,
                workers: 8,
                operational,
                logto_sources,
            },
            generated,
        ))
    }
}

/// The operational endpoint from its URL (in `settings`) and its key: both or neither.
pub fn operational_endpoint(
    settings: &Settings,
    key: Option<&str>,
) -> Result<Option<OperationalEndpoint>, ConfigError> {
    const KEY: &str = "WEBHOOKS_OPERATIONAL_SIGNING_KEY";
    match (&settings.operational_url, key) {
        (None, None) => Ok(None),
        (Some(url), Some(key)) => Ok(Some(OperationalEndpoint {
            url: url.clone(),
            key: OperationalEndpoint::parse_key(key)
                .map_err(|message| ConfigError { name: KEY, message })?,
        })),
        (Some(_), None) => Err(ConfigError {
            name: KEY,
            message: "must be set with WEBHOOKS_OPERATIONAL_URL".into(),
        }),
        (None, Some(_)) => Err(ConfigError {
            name: "WEBHOOKS_OPERATIONAL_URL",
            message: "must be set with WEBHOOKS_OPERATIONAL_SIGNING_KEY".into(),
        }),
    }
}

fn data_dir(value: Option<String>) -> Option<PathBuf> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Some(PathBuf::from(DEFAULT_DATA_DIR)),
        Some(":memory:") => None,
        Some(dir) => Some(PathBuf::from(dir)),
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
    pub store: Arc<SqliteStore>,
    pub queue: Arc<SqliteQueue>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl LocalServer {
    pub async fn start(config: LocalConfig) -> std::io::Result<Self> {
        let db = match &config.data_dir {
            Some(dir) => Database::open(dir).map_err(std::io::Error::other)?,
            None => Database::in_memory(),
        };
        db.spawn_expiry(EXPIRE_EVERY);
        let store = SqliteStore::new(db.clone());
        let queue = SqliteQueue::new(db, VISIBILITY, MAX_RECEIVES);
        let settings = &config.settings;
        let tokens = Tokens::from_lists(&config.admin_tokens, &config.ingest_tokens);
        let client = DeliveryClient::from_settings(settings);
        let sender = Sender::configured(
            store.clone(),
            queue.clone(),
            client.clone(),
            settings,
            Notices {
                endpoint: config.operational.clone(),
                ..Notices::default()
            },
        );
        let app = router(
            Api::new(store.clone(), queue.clone(), client, tokens, settings)
                .with_logto_sources(config.logto_sources.clone())
                .with_health(sender.health()),
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

    /// Stops serving and lets in-flight batches finish; everything is already committed.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
