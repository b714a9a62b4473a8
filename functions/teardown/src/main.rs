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
use stepdeploy_shared::approvals::Action;
use stepdeploy_shared::config::EnvironmentSet;
use stepdeploy_shared::guard::{Guard, Quorum};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_shared::init_tracing();
    let environments = EnvironmentSet::from_env().map_err(Arc::new);
    let base = stepdeploy_shared::aws::sdk_config().await;
    let guard = Guard::from_env(&base);
    let ports = handler::Ports::new(base);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (environments, ports, guard) = (&environments, &ports, &guard);
        stepdeploy_shared::timing::measured("teardown", async move {
            // Removing is a change: in an approval environment it needs the
            // quorum; unlocking after a failure undoes only this run's lock.
            let quorum = if ["remove", "lock"]
                .contains(&event.payload["action"].as_str().unwrap_or_default())
            {
                Quorum::Required
            } else {
                Quorum::NotRequired
            };
            let payload = guard
                .admit(event.payload, quorum, Action::Teardown)
                .await
                .map_err(Diagnostic::from)?;
            handler::handle(payload, environments, ports)
                .await
                .map_err(Diagnostic::from)
        })
    }))
    .await
}
