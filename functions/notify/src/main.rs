//! notify Lambda: tells people and systems how a run ended.
//!
//! On success: the tenant config document in the environment's config
//! bucket, the registry entry, an SNS message and a `Tenant Deployment
//! Succeeded` event, then the tenant lock is released. On failure: an SNS
//! message naming the failed phase, the error and what rollback removed, and
//! a `Tenant Deployment Failed` event.
//!
//! Thin entry point: the orchestrator's AWS config and clients once per cold
//! start; each invocation is handled by [`handler::handle`]. The guard
//! re-resolves the run's environment from this function's configs, so the
//! document, the registry and the lock are written there only.

mod error;
mod handler;
mod message;
mod metrics;
mod ports;

use stepdeploy_shared::approvals::Action;
use stepdeploy_shared::guard::{Guard, Quorum};
use stepdeploy_shared::lambda::{self, Admission};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = stepdeploy_shared::aws::sdk_config().await;
    let guard = Guard::from_env(&config);
    let ports = &ports::AwsNotify::new(config, ports::Settings::from_env());
    let admission = Admission::new(Quorum::NotRequired, Action::Deploy).at("/state/plan/output");
    lambda::serve_guarded("notify", &guard, admission, move |input| {
        handler::handle(input, ports)
    })
    .await
}
