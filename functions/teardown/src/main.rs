//! teardown Lambda: the steps of the teardown state machine.
//!
//! `prepare` validates the `Tenant Teardown Requested` event and takes the
//! tenant's lock; `remove` finds every resource the tenant has in the
//! environment by its names and removes it (with rollback's undo, so it is
//! idempotent and tolerates what is already gone), then the config document,
//! the registry entry and the lock; `unlock` gives the lock back after a
//! failure.

mod error;
mod handler;

use stepdeploy_shared::approvals::Action;
use stepdeploy_shared::guard::{Guard, Quorum};
use stepdeploy_shared::lambda::{self, Admission};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let environments = &stepdeploy_shared::EnvironmentSet::from_env().map_err(std::sync::Arc::new);
    let base = stepdeploy_shared::aws::sdk_config().await;
    let guard = Guard::from_env(&base);
    let ports = &rollback::AwsConnector::new(base);
    // Removing (and locking for it) is a change: in an approval environment it
    // needs the quorum; unlocking after a failure undoes only this run's lock.
    let admission = |payload: &serde_json::Value| {
        let quorum = match payload["action"].as_str() {
            Some("remove" | "lock") => Quorum::Required,
            _ => Quorum::NotRequired,
        };
        Admission::new(quorum, Action::Teardown)
    };
    lambda::serve_admitting("teardown", &guard, admission, move |step| {
        handler::handle(step, environments, ports)
    })
    .await
}
