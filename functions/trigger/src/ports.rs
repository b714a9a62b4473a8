//! What trigger calls: Step Functions to start (or find) a run, and the
//! notifications topic and event bus to say an event was not understood.
//! Small traits, so the handler's tests fake them; the AWS adapters beside.

use std::future::Future;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::publish;

/// Starting executions.
pub trait Executions: Send + Sync {
    /// Starts `name` on `state_machine`; `Ok(None)` if an execution with that name exists.
    fn start(
        &self,
        state_machine: &str,
        name: &str,
        input: String,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;
    /// The input an execution was started with (`None` if there is no such execution).
    fn input_of(
        &self,
        execution_arn: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;
}

/// Step Functions adapter.
pub struct SfnExecutions(pub aws_sdk_sfn::Client);

impl Executions for SfnExecutions {
    async fn start(
        &self,
        state_machine: &str,
        name: &str,
        input: String,
    ) -> Result<Option<String>, AwsCallError> {
        let result = self
            .0
            .start_execution()
            .state_machine_arn(state_machine)
            .name(name)
            .input(input)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(out.execution_arn)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_execution_already_exists()) =>
            {
                Ok(None)
            }
            Err(e) => Err(AwsCallError::new("states:StartExecution", e)),
        }
    }

    async fn input_of(&self, execution_arn: &str) -> Result<Option<String>, AwsCallError> {
        match self
            .0
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
        {
            Ok(out) => Ok(out.input().map(str::to_string)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_execution_does_not_exist()) =>
            {
                Ok(None)
            }
            Err(e) => Err(AwsCallError::new("states:DescribeExecution", e)),
        }
    }
}

/// Where an event stepdeploy does not understand is reported.
pub trait Complaints: Send + Sync {
    /// A message on the notifications topic.
    fn publish(
        &self,
        subject: &str,
        message: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// An event on stepdeploy's bus.
    fn put_event(
        &self,
        detail_type: &str,
        detail: &serde_json::Value,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// [`Complaints`] on SNS and EventBridge.
pub struct AwsComplaints {
    sns: aws_sdk_sns::Client,
    events: aws_sdk_eventbridge::Client,
    /// `STEPDEPLOY_NOTIFICATION_TOPIC_ARN`; no message without it.
    topic_arn: Option<String>,
    /// `STEPDEPLOY_EVENT_BUS`, default `stepdeploy`.
    bus: String,
}

impl AwsComplaints {
    /// The topic and the bus from the function's environment variables.
    pub fn from_env(sns: aws_sdk_sns::Client, events: aws_sdk_eventbridge::Client) -> Self {
        Self {
            sns,
            events,
            topic_arn: std::env::var("STEPDEPLOY_NOTIFICATION_TOPIC_ARN")
                .ok()
                .filter(|t| !t.is_empty()),
            bus: std::env::var("STEPDEPLOY_EVENT_BUS")
                .ok()
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| "stepdeploy".into()),
        }
    }
}

impl Complaints for AwsComplaints {
    async fn publish(&self, subject: &str, message: &str) -> Result<(), AwsCallError> {
        let Some(topic) = &self.topic_arn else {
            return Ok(());
        };
        let operation = "sns:Publish (request not understood)";
        publish::publish(&self.sns, operation, topic, subject, message, &[]).await
    }

    async fn put_event(
        &self,
        detail_type: &str,
        detail: &serde_json::Value,
    ) -> Result<(), AwsCallError> {
        // A refused entry is an error too: nothing sent here may vanish.
        let operation = "events:PutEvents (request not understood)";
        publish::put_event(&self.events, operation, &self.bus, detail_type, detail).await
    }
}
