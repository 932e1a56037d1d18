//! Runs the DynamoDB store's real operations concurrently against an [`ItemStore`], one request
//! at a time in an order a seed chooses: every request is held until the scheduler picks it
//! among all the held ones, so a seed range explores many interleavings reproducibly.

use crate::item_store::ItemStore;
use aws_sdk_dynamodb::config::http::{HttpRequest, HttpResponse};
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{
    BehaviorVersion, Credentials, Region, StalledStreamProtectionConfig,
};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use futures::future::BoxFuture;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;
use webhooks::adapters::dynamo::DynamoStore;

pub const HOOKS_TABLE: &str = "hooks";
pub const DELIVERIES_TABLE: &str = "deliveries";

type Held = (String, Value, oneshot::Sender<(u16, Value)>);

#[derive(Default)]
struct Shared {
    items: ItemStore,
    /// While a run is under way, requests wait here for the scheduler.
    holding: bool,
    held: Vec<Held>,
}

/// The in-memory store and the scheduler of the requests sent to it.
#[derive(Clone, Default)]
pub struct Interleaving {
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for Interleaving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Interleaving")
    }
}

impl HttpConnector for Interleaving {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.split('.').nth(1))
            .expect("a DynamoDB operation")
            .to_string();
        let body: Value = serde_json::from_slice(request.body().bytes().expect("a buffered body"))
            .expect("a JSON request");
        let shared = self.shared.clone();
        HttpConnectorFuture::new(async move {
            let answer = {
                let mut shared = shared.lock().unwrap();
                if shared.holding {
                    let (tx, rx) = oneshot::channel();
                    shared.held.push((target, body, tx));
                    Err(rx)
                } else {
                    Ok(shared.items.execute(&target, &body))
                }
            };
            let (status, body) = match answer {
                Ok(answer) => answer,
                Err(rx) => rx.await.expect("the scheduler answers every request"),
            };
            let mut response = HttpResponse::new(
                StatusCode::try_from(status).unwrap(),
                SdkBody::from(body.to_string()),
            );
            response
                .headers_mut()
                .insert("content-type", "application/x-amz-json-1.0");
            Ok(response)
        })
    }
}

impl Interleaving {
    /// A DynamoDB store whose every request goes to this in-memory store.
    pub fn store(&self) -> DynamoStore {
        let connector = SharedHttpConnector::new(self.clone());
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("id", "secret", None, None, "in-memory"))
            .endpoint_url("http://127.0.0.1:9")
            .retry_config(RetryConfig::disabled())
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .http_client(http_client_fn(move |_, _| connector.clone()))
            .build();
        DynamoStore::new(
            aws_sdk_dynamodb::Client::from_conf(config),
            HOOKS_TABLE.into(),
            DELIVERIES_TABLE.into(),
        )
    }

    /// The stored item of the deliveries table keyed (`pk`, `sk`).
    pub fn item(&self, pk: &str, sk: &str) -> Option<crate::item_store::Item> {
        let shared = self.shared.lock().unwrap();
        shared.items.item(DELIVERIES_TABLE, pk, sk).cloned()
    }

    /// Runs `actors` concurrently; each step, once every unfinished actor waits on a request,
    /// carries out one of those requests, chosen by `seed`. Returns the actors' results in order.
    pub async fn run<T: Send + 'static>(
        &self,
        seed: u64,
        actors: Vec<BoxFuture<'static, T>>,
    ) -> Vec<T> {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        self.shared.lock().unwrap().holding = true;
        let handles: Vec<_> = actors.into_iter().map(tokio::spawn).collect();
        loop {
            let mut settled = false;
            for _ in 0..10_000 {
                let running = handles.iter().filter(|h| !h.is_finished()).count();
                if self.shared.lock().unwrap().held.len() == running {
                    settled = true;
                    break;
                }
                tokio::task::yield_now().await;
            }
            assert!(settled, "an actor neither finished nor sent a request");
            let mut shared = self.shared.lock().unwrap();
            if shared.held.is_empty() {
                break;
            }
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let pick = (rng % shared.held.len() as u64) as usize;
            let (target, body, reply) = shared.held.swap_remove(pick);
            let answer = shared.items.execute(&target, &body);
            reply.send(answer).ok();
        }
        self.shared.lock().unwrap().holding = false;
        let mut results = Vec::with_capacity(handles.len());
        for handle in handles {
            results.push(handle.await.expect("an actor panicked"));
        }
        results
    }
}
