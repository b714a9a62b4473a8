//! ecs Lambda: phase 1 of a deployment (EFS access point, task definition,
//! target group, listener rule, Fargate service), create or update.
//!
//! Thin entry point: tracing and the orchestrator's AWS config once per cold
//! start; each invocation is handled by [`handler::handle`].

mod error;
mod handler;
mod ports;
mod spec;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use stepdeploy_shared::approvals::Action;
use stepdeploy_shared::guard::{Guard, Quorum};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_shared::init_tracing();
    let config = stepdeploy_shared::aws::sdk_config().await;
    let guard = Guard::from_env(&config);
    let connector = ports::AwsConnector::new(config);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (connector, guard) = (&connector, &guard);
        stepdeploy_shared::timing::measured("ecs", async move {
            let payload = guard
                .admit(event.payload, Quorum::Required, Action::Deploy)
                .await
                .map_err(Diagnostic::from)?;
            handler::handle(payload, connector)
                .await
                .map_err(Diagnostic::from)
        })
    }))
    .await
}
