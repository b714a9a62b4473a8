//! database Lambda: phase 1 of a deployment, before ecs (tenant secret,
//! MySQL database and user, the latter through the environment's MySQL agent).
//!
//! Thin entry point: tracing and the orchestrator's AWS config once per cold
//! start; each invocation is handled by [`handler::handle`].

mod error;
mod handler;
mod ports;
mod secret;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_shared::init_tracing();
    let connector = ports::AwsConnector::new(stepdeploy_shared::aws::sdk_config().await);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let connector = &connector;
        stepdeploy_shared::timing::measured("database", async move {
            handler::handle(event.payload, connector)
                .await
                .map_err(Diagnostic::from)
        })
    }))
    .await
}
