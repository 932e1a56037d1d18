//! The ingest Lambda: API Gateway sends it `POST /api/events` and the Logto relay
//! (`POST /api/ingest/logto/{sourceId}`); it serves the whole router, as the api Lambda and
//! the dev server do.

use lambda_http::Error;
use webhooks::startup::aws::{Accepts, http_function};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(http_function(Accepts::AdminAndIngest).await?).await
}
