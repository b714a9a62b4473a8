//! bootstrap Lambda: the first phase of every deployment.
//!
//! Thin entry point: tracing, the orchestrator's AWS config and the
//! environment configs are loaded once per cold start; each invocation is
//! handled by [`handler::handle`].

mod error;
mod handler;
mod ports;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use std::sync::Arc;
use stepdeploy_shared::approvals::Action;
use stepdeploy_shared::config::EnvironmentSet;
use stepdeploy_shared::guard::{Guard, Quorum};
use stepdeploy_shared::plan::DeploymentPlan;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_shared::init_tracing();
    let environments = EnvironmentSet::from_env().map_err(Arc::new);
    if let Err(e) = &environments {
        // Still start: every invocation answers ConfigInvalid, which the state machine reports.
        tracing::error!(error = %e, "environment configuration is invalid");
    }
    let config = stepdeploy_shared::aws::sdk_config().await;
    let guard = Guard::from_env(&config);
    let connector = ports::AwsConnector::new(config);
    let clock = handler::SystemClock;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (environments, connector, clock, guard) = (&environments, &connector, &clock, &guard);
        stepdeploy_shared::timing::measured("bootstrap", async move {
            // The claim after the gate takes the lock and a priority in an
            // approval environment: only for an approved, running run.
            let payload = if event.payload.get("action").is_some() {
                guard
                    .admit(event.payload, Quorum::Required, Action::Deploy)
                    .await
                    .map_err(Diagnostic::from)?
            } else {
                event.payload
            };
            handler::handle(payload, environments, connector, clock)
                .await
                .map_err(Diagnostic::from)
                .map(|plan: DeploymentPlan| plan)
        })
    }))
    .await
}
