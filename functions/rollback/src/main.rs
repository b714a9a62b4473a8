//! rollback Lambda: after any failure, removes exactly what the run's ledger
//! says it created (newest first), restores what it changed on resources that
//! existed before (a live tenant keeps serving its previous version), and
//! releases the lock. Already-gone resources count as removed, so it can run
//! twice.
//!
//! Thin entry point: tracing and the orchestrator's AWS config once per cold
//! start; each invocation is handled by [`handler::handle`].

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_shared::init_tracing();
    let connector = rollback::AwsConnector::new(stepdeploy_shared::aws::sdk_config().await);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let connector = &connector;
        stepdeploy_shared::timing::measured("rollback", async move {
            rollback::handle(event.payload, connector)
                .await
                .map_err(Diagnostic::from)
        })
    }))
    .await
}
