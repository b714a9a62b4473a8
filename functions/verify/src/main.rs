//! verify Lambda: phase 3a, one round of post-deployment checks per
//! invocation (the state machine waits between rounds; this never sleeps).
//!
//! Thin entry point: tracing, the orchestrator's AWS config and the HTTP
//! client once per cold start; each invocation is handled by [`handler::handle`].

mod handler;
mod ports;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use std::time::Duration;
use stepdeploy_shared::approvals::Action;
use stepdeploy_shared::guard::{Guard, Quorum};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_shared::init_tracing();
    let config = stepdeploy_shared::aws::sdk_config().await;
    let guard = Guard::from_env(&config);
    let connector = ports::AwsConnector::new(config);
    let prober = stepdeploy_shared::http::Prober::new(Duration::from_secs(10))?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (connector, prober, guard) = (&connector, &prober, &guard);
        stepdeploy_shared::timing::measured("verify", async move {
            let payload = guard
                .admit(event.payload, Quorum::NotRequired, Action::Deploy)
                .await
                .map_err(Diagnostic::from)?;
            handler::handle(payload, connector, prober)
                .await
                .map_err(Diagnostic::from)
        })
    }))
    .await
}
