//! trigger Lambda: the EventBridge rules' target.
//!
//! EventBridge cannot name the executions it starts, and it delivers at least
//! once. This function starts the state machine with a name derived from the
//! event (`{tenant}-{env}-{event id}`), so a redelivered or re-sent event
//! finds its execution already there instead of starting a second one, and an
//! operator can find a tenant's runs in the console by name.

mod error;
mod handler;
mod ports;

use stepdeploy_shared::lambda;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let targets = &handler::Targets::from_env();
    let config = stepdeploy_shared::aws::sdk_config().await;
    let sfn = &ports::SfnExecutions(aws_sdk_sfn::Client::new(&config));
    let complaints = &ports::AwsComplaints::from_env(
        aws_sdk_sns::Client::new(&config),
        aws_sdk_eventbridge::Client::new(&config),
    );
    lambda::serve("trigger", move |event: serde_json::Value| {
        handler::handle(event, targets, sfn, complaints)
    })
    .await
}
