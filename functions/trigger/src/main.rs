//! trigger Lambda: the EventBridge rules' target.
//!
//! EventBridge cannot name the executions it starts, and it delivers at least
//! once. This function starts the state machine with a name derived from the
//! event (`{tenant}-{env}-{event id}`), so a redelivered or re-sent event
//! finds its execution already there instead of starting a second one, and an
//! operator can find a tenant's runs in the console by name.

mod handler;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_shared::init_tracing();
    let targets = handler::Targets::from_env();
    let config = stepdeploy_shared::aws::sdk_config().await;
    let sfn = handler::SfnExecutions(aws_sdk_sfn::Client::new(&config));
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (targets, sfn) = (&targets, &sfn);
        stepdeploy_shared::timing::measured("trigger", async move {
            handler::handle(event.payload, targets, sfn)
                .await
                .map_err(Diagnostic::from)
        })
    }))
    .await
}
