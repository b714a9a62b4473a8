//! ecs Lambda: phase 1 of a deployment (EFS access point, task definition,
//! target group, listener rule, Fargate service), create or update.
//!
//! Thin entry point: the orchestrator's AWS config, the guard and the
//! per-environment connector once per cold start; each invocation is handled
//! by [`handler::handle`].

mod error;
mod handler;
mod ports;
mod spec;
mod steps;

use stepdeploy_shared::approvals::Action;
use stepdeploy_shared::aws::{sdk_config, AwsConnector};
use stepdeploy_shared::guard::{Guard, Quorum};
use stepdeploy_shared::lambda::{self, Admission};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = sdk_config().await;
    let guard = Guard::from_env(&config);
    let connector = &AwsConnector::with_env(config, "stepdeploy-ecs", ports::aws);
    let admission = Admission::new(Quorum::Required, Action::Deploy);
    lambda::serve_guarded("ecs", &guard, admission, move |input| {
        handler::handle(input, connector)
    })
    .await
}
