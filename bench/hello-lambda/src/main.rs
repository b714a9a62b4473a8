//! The baseline for the cold-start benchmark: the smallest `lambda_runtime`
//! function (tracing set up the same way, echoes its event), built with the
//! workspace's release profile like every stepdeploy function.

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<serde_json::Value>| async move { Ok::<_, Error>(event.payload) },
    ))
    .await
}
