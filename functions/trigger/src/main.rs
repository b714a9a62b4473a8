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
    let complaints = handler::AwsComplaints {
        sns: aws_sdk_sns::Client::new(&config),
        events: aws_sdk_eventbridge::Client::new(&config),
        topic_arn: std::env::var("STEPDEPLOY_NOTIFICATION_TOPIC_ARN")
            .ok()
            .filter(|t| !t.is_empty()),
        bus: std::env::var("STEPDEPLOY_EVENT_BUS")
            .ok()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| "stepdeploy".into()),
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (targets, sfn, complaints) = (&targets, &sfn, &complaints);
        stepdeploy_shared::timing::measured("trigger", async move {
            let payload = event.payload;
            let detail_type = payload["detail-type"].as_str().unwrap_or_default();
            if !stepdeploy_shared::request::REQUESTS.contains(&detail_type) {
                return handler::not_understood(&payload, complaints)
                    .await
                    .map_err(Diagnostic::from);
            }
            handler::handle(payload, targets, sfn)
                .await
                .map(|started| serde_json::to_value(started).unwrap_or_default())
                .map_err(Diagnostic::from)
        })
    }))
    .await
}
