//! The ingest Lambda: API Gateway sends it `POST /api/events` and the Logto relay
//! (`POST /api/ingest/logto/{sourceId}`); it serves the whole router, as the api Lambda and
//! the dev server do.

use lambda_http::Error;
use webhooks::api::{Api, router};
use webhooks::aws::{Accepts, Deployment};
use webhooks::net::client::DeliveryClient;

#[tokio::main]
async fn main() -> Result<(), Error> {
    webhooks::telemetry::init();
    let deployment = Deployment::from_env(Accepts::AdminAndIngest).await?;
    let settings = deployment.settings;
    let api = Api::new(
        deployment.store,
        deployment.queue,
        DeliveryClient::from_settings_on_first_use(&settings),
        deployment.tokens,
        &settings,
    )
    .with_logto_sources(deployment.logto_sources);
    lambda_http::run(router(api)).await
}
