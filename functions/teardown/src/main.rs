//! teardown Lambda: the steps of the teardown state machine.
//!
//! `prepare` validates the `Tenant Teardown Requested` event and takes the
//! tenant's lock; `remove` finds every resource the tenant has in the
//! environment by its names and removes it (with rollback's undo, so it is
//! idempotent and tolerates what is already gone), then the config document,
//! the registry entry and the lock; `unlock` gives the lock back after a
//! failure.

mod handler;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use std::sync::Arc;
use stepdeploy_shared::config::EnvironmentSet;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_shared::init_tracing();
    let environments = EnvironmentSet::from_env().map_err(Arc::new);
    let base = stepdeploy_shared::aws::sdk_config().await;
    let ports = handler::Ports::new(base);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (environments, ports) = (&environments, &ports);
        stepdeploy_shared::timing::measured("teardown", async move {
            handler::handle(event.payload, environments, ports)
                .await
                .map_err(Diagnostic::from)
        })
    }))
    .await
}
