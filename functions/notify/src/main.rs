//! notify Lambda: tells people and systems how a run ended.
//!
//! On success: the tenant config document in the environment's config
//! bucket, the registry entry, an SNS message and a `Tenant Deployment
//! Succeeded` event, then the tenant lock is released. On failure: an SNS
//! message naming the failed phase, the error and what rollback removed, and
//! a `Tenant Deployment Failed` event.
//!
//! Thin entry point: tracing, the orchestrator's AWS config and clients once
//! per cold start; each invocation is handled by [`handler::handle`].

mod handler;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use stepdeploy_shared::approvals::Action;
use stepdeploy_shared::guard::{Guard, Quorum};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_shared::init_tracing();
    let config = stepdeploy_shared::aws::sdk_config().await;
    let guard = Guard::from_env(&config);
    let ports = handler::AwsNotify::new(config, handler::Settings::from_env());
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (ports, guard) = (&ports, &guard);
        stepdeploy_shared::timing::measured("notify", async move {
            // The run's environment as this function's configs say: the
            // document, the registry and the lock are written there only.
            let payload = guard
                .admit_at(
                    event.payload,
                    "/state/plan/output",
                    Quorum::NotRequired,
                    Action::Deploy,
                )
                .await
                .map_err(Diagnostic::from)?;
            handler::handle(payload, ports)
                .await
                .map_err(Diagnostic::from)
        })
    }))
    .await
}
