//! bootstrap Lambda: the first phase of every deployment.
//!
//! Thin entry point: the orchestrator's AWS config, the environment configs
//! and the guard once per cold start; each invocation is admitted by
//! [`handler::admit`] (the guard, for the claim after the gate only) and
//! handled by [`handler::handle`].

mod error;
mod handler;
mod lock;
mod ports;
mod priority;
mod queue;
mod release;
mod window;

use std::sync::Arc;
use stepdeploy_shared::aws::AwsConnector;
use stepdeploy_shared::config::EnvironmentSet;
use stepdeploy_shared::guard::Guard;
use stepdeploy_shared::lambda;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_shared::init_tracing();
    let environments = &EnvironmentSet::from_env().map_err(Arc::new);
    if let Err(e) = environments {
        // Still start: every invocation answers ConfigInvalid, which the state machine reports.
        tracing::error!(error = %e, "environment configuration is invalid");
    }
    let config = stepdeploy_shared::aws::sdk_config().await;
    let guard = &Guard::from_env(&config);
    let connector = &AwsConnector::with_env(config, "stepdeploy-bootstrap", ports::aws_ports);
    let clock = &lock::SystemClock;
    lambda::serve("bootstrap", move |input| async move {
        let input = handler::admit(input, guard).await?;
        handler::handle(input, environments, connector, clock).await
    })
    .await
}
