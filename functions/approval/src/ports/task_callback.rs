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
    /// Where `image` already ran for `tenant` outside `environment`: the
    /// newest finished deploy runs of the same state machine as
    /// `execution`, one line each (outcome, when, verify's report).
    fn ran_before(
        &self,
        execution: &str,
        tenant: &str,
        environment: &str,
        image: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsCallError>> + Send;
}

/// Runs looked at for [`TaskCallback::ran_before`]: the newest page of the
/// state machine's executions, and at most this many described.
pub const EARLIER_RUNS_DESCRIBED: usize = 8;

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

/// One earlier run as an approver reads it, if it ran `image`.
fn earlier_line(
    run: &aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput,
    env: &str,
    image: &str,
) -> Option<String> {
    let when = run
        .stop_date()
        .and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
        .unwrap_or_default();
    let name = run.name().unwrap_or_default();
    match run.status() {
        aws_sdk_sfn::types::ExecutionStatus::Succeeded => {
            let output: serde_json::Value = serde_json::from_str(run.output()?).ok()?;
            (output["plan"]["output"]["image"].as_str()? == image).then(|| {
                let verify = match output["verify"]["output"]["report"].as_str() {
                    Some(report) => format!("; verify passed, report {report}"),
                    None => String::new(),
                };
                format!("Already ran in {env}: succeeded {when} ({name}){verify}")
            })
        }
        aws_sdk_sfn::types::ExecutionStatus::Failed => {
            let input: serde_json::Value = serde_json::from_str(run.input()?).ok()?;
            (input["event"]["detail"]["image"].as_str()? == image).then(|| {
                format!(
                    "Already ran in {env}: FAILED {when} ({name}): {}",
                    run.error().unwrap_or("failed")
                )
            })
        }
        _ => None,
    }
}

impl TaskCallback for SfnTaskCallback {
    async fn ran_before(
        &self,
        execution: &str,
        tenant: &str,
        environment: &str,
        image: &str,
    ) -> Result<Vec<String>, AwsCallError> {
        // arn:…:execution:MACHINE:NAME → arn:…:stateMachine:MACHINE
        let Some((machine, _)) = execution.rsplit_once(':') else {
            return Ok(Vec::new());
        };
        let machine = machine.replacen(":execution:", ":stateMachine:", 1);
        let page = self
            .client
            .list_executions()
            .state_machine_arn(&machine)
            .max_results(1000)
            .send()
            .await
            .map_err(|e| AwsCallError::new("states:ListExecutions (earlier runs)", e))?;
        let mut lines = Vec::new();
        let candidates = page.executions().iter().filter(|run| {
            stepdeploy_shared::names::parse_execution_name(run.name())
                .is_some_and(|(t, e)| t == tenant && e != environment)
                && matches!(
                    run.status(),
                    aws_sdk_sfn::types::ExecutionStatus::Succeeded
                        | aws_sdk_sfn::types::ExecutionStatus::Failed
                )
        });
        for run in candidates.take(EARLIER_RUNS_DESCRIBED) {
            let env = stepdeploy_shared::names::parse_execution_name(run.name())
                .map(|(_, e)| e.to_string())
                .unwrap_or_default();
            let described = self
                .client
                .describe_execution()
                .execution_arn(run.execution_arn())
                .send()
                .await
                .map_err(|e| AwsCallError::new("states:DescribeExecution (earlier runs)", e))?;
            lines.extend(earlier_line(&described, &env, image));
        }
        Ok(lines)
    }

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
