//! notify Lambda: tells people and systems how a run ended.
//!
//! On success: the tenant config document in the environment's config
//! bucket, the registry entry, an SNS message and a `Tenant Deployment
//! Succeeded` event, then the tenant lock is released. On failure: an SNS
//! message naming the failed phase, the error and what rollback removed, and
//! a `Tenant Deployment Failed` event.
//!
//! Thin entry point: tracing, the orchestrator's AWS config and clients once
//! per cold start; each invocation is handled by [`handler::handle`].

mod handler;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_shared::init_tracing();
    let config = stepdeploy_shared::aws::sdk_config().await;
    let ports = handler::AwsNotify::new(config, handler::Settings::from_env());
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let ports = &ports;
        stepdeploy_shared::timing::measured("notify", async move {
            handler::handle(event.payload, ports)
                .await
                .map_err(Diagnostic::from)
        })
    }))
    .await
}
