//! The api Lambda: API Gateway sends it `/api/hooks…` and `/api/hook-events`; it serves the
//! whole router, as the ingest Lambda and the dev server do.

use lambda_http::Error;
use webhooks::startup::aws::{Accepts, http_function};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(http_function(Accepts::Admin).await?).await
}
