//! The run waiting at the gate (`lambda:invoke.waitForTaskToken`): its task
//! token, read back from the execution's history (it is never stored or put
//! in a link), its status, and the answer that resumes or fails it.

use aws_config::SdkConfig;
use std::future::Future;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::guard::{Runs, StepFunctionsRuns};

/// SHA-256 (hex): how the gate stores the task token.
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Answers the waiting run.
pub trait TaskCallback: Send + Sync {
    /// The waiting task's token, read back from the execution's history and checked against `hash`.
    fn token(
        &self,
        execution: &str,
        hash: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;
    /// The run's status (`RUNNING`, `ABORTED`, …), `None` if it does not exist.
    fn run_status(
        &self,
        execution: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;
    /// Resumes the run.
    fn succeed(
        &self,
        token: &str,
        output: &serde_json::Value,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Fails the run.
    fn fail(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// [`TaskCallback`] on Step Functions.
pub struct SfnTaskCallback {
    client: aws_sdk_sfn::Client,
}

impl SfnTaskCallback {
    /// A Step Functions client.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_sfn::Client::new(config),
        }
    }
}

impl TaskCallback for SfnTaskCallback {
    async fn token(&self, execution: &str, hash: &str) -> Result<Option<String>, AwsCallError> {
        let out = self
            .client
            .get_execution_history()
            .execution_arn(execution)
            .reverse_order(true)
            .max_results(100)
            .send()
            .await
            .map_err(|e| AwsCallError::new("states:GetExecutionHistory", e))?;
        Ok(out
            .events()
            .iter()
            .filter_map(|e| e.task_scheduled_event_details())
            .find_map(|d| {
                let parameters: serde_json::Value = serde_json::from_str(d.parameters()).ok()?;
                let token = parameters["Payload"]["task_token"].as_str()?;
                (sha256_hex(token) == hash).then(|| token.to_string())
            }))
    }

    async fn run_status(&self, execution: &str) -> Result<Option<String>, AwsCallError> {
        StepFunctionsRuns(self.client.clone())
            .status(execution)
            .await
    }

    async fn succeed(&self, token: &str, output: &serde_json::Value) -> Result<(), AwsCallError> {
        self.client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
            .map_err(|e| AwsCallError::new("states:SendTaskSuccess", e))?;
        Ok(())
    }

    async fn fail(&self, token: &str, error: &str, cause: &str) -> Result<(), AwsCallError> {
        self.client
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause(cause)
            .send()
            .await
            .map_err(|e| AwsCallError::new("states:SendTaskFailure", e))?;
        Ok(())
    }
}
