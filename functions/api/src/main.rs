//! The api Lambda: the management API (`/api/hooks…`, `/api/hook-events`) from API Gateway.

use lambda_http::{Body, Error, Request, service_fn};
use std::sync::Arc;
use webhooks::api::{ApiRequest, ManagementHandler};
use webhooks::aws::{Accepts, Deployment};
use webhooks::net::client::DeliveryClient;

#[tokio::main]
async fn main() -> Result<(), Error> {
    webhooks::telemetry::init();
    let deployment = Deployment::from_env(Accepts::Admin).await?;
    let settings = deployment.settings;
    let handler = Arc::new(ManagementHandler::new(
        deployment.store,
        deployment.queue,
        DeliveryClient::from_settings(&settings),
        deployment.tokens,
        settings.url_policy,
    ));
    lambda_http::run(service_fn(move |req: Request| {
        let handler = handler.clone();
        async move {
            let (parts, body) = req.into_parts();
            let response = handler
                .handle(ApiRequest::from_parts(parts, body.to_vec().into()))
                .await;
            Ok::<_, Error>(
                response
                    .into_http()
                    .map(|b| match String::from_utf8(b.to_vec()) {
                        Ok(text) => Body::Text(text),
                        Err(e) => Body::Binary(e.into_bytes()),
                    }),
            )
        }
    }))
    .await
}
