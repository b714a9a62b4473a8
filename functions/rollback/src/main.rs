//! rollback Lambda: after any failure, removes exactly what the run's ledger
//! says it created (newest first), restores what it changed on resources that
//! existed before (a live tenant keeps serving its previous version), and
//! releases the lock. Already-gone resources count as removed, so it can run
//! twice. It also cleans up after runs that ended without reaching the state
//! machine's Catch (stopped, timed out), from Step Functions' status-change
//! events (`cleanup`).
//!
//! Thin entry point: tracing and the orchestrator's AWS config once per cold
//! start; each invocation is handled by [`handler::handle`].

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_shared::init_tracing();
    let base = stepdeploy_shared::aws::sdk_config().await;
    let history = rollback::cleanup::StepFunctionsHistory(aws_sdk_sfn::Client::new(&base));
    let reports = rollback::cleanup::SnsReports {
        sns: aws_sdk_sns::Client::new(&base),
        topic_arn: std::env::var("STEPDEPLOY_NOTIFICATION_TOPIC_ARN")
            .ok()
            .filter(|t| !t.is_empty()),
    };
    let connector = rollback::AwsConnector::new(base);
    let environments: rollback::Environments =
        stepdeploy_shared::EnvironmentSet::from_env().map_err(std::sync::Arc::new);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (connector, history, reports, environments) =
            (&connector, &history, &reports, &environments);
        stepdeploy_shared::timing::measured("rollback", async move {
            rollback::handle(event.payload, connector, history, reports, environments)
                .await
                .map_err(Diagnostic::from)
        })
    }))
    .await
}
