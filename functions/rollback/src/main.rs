//! rollback Lambda: after any failure, removes exactly what the run's ledger
//! says it created (newest first), restores what it changed on resources that
//! existed before, and releases the lock; also after runs that ended outside
//! the state machine's Catch, and on an operator's cleanup request
//! ([`rollback::handle`]).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let base = stepdeploy_shared::aws::sdk_config().await;
    let history = &rollback::cleanup::StepFunctionsHistory(aws_sdk_sfn::Client::new(&base));
    let reports = &rollback::cleanup::SnsReports::from_env(&base);
    let connector = &rollback::AwsConnector::new(base);
    let environments: &rollback::Environments =
        &stepdeploy_shared::EnvironmentSet::from_env().map_err(std::sync::Arc::new);
    // The input is raw: the state machine's `{state}`, a status-change event
    // or a cleanup request, told apart by `handle`.
    stepdeploy_shared::lambda::serve("rollback", move |input: serde_json::Value| {
        rollback::handle(input, connector, history, reports, environments)
    })
    .await
}
