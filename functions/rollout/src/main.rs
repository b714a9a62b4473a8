//! rollout Lambda: the fleet rollout state machine's three steps — plan the
//! waves from the registry, judge each wave against the failure budget, and
//! report — in one function (one role, one set of clients).
//!
//! Thin entry point: configs and clients once per cold start; each
//! invocation is [`handler::handle`].

mod children;
mod error;
mod handler;
mod ports;

use std::sync::Arc;
use stepdeploy_shared::config::EnvironmentSet;
use stepdeploy_shared::lambda;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_shared::init_tracing();
    let environments = &EnvironmentSet::from_env().map_err(Arc::new);
    if let Err(e) = environments {
        // Still start: every invocation answers ConfigInvalid.
        tracing::error!(error = %e, "environment configuration is invalid");
    }
    let config = stepdeploy_shared::aws::sdk_config().await;
    let ports = &ports::aws(config);
    lambda::serve("rollout", move |input| {
        handler::handle(input, environments, ports)
    })
    .await
}
