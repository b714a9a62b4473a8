//! The orchestrator stack as the CLI sees it: its names (all derived from
//! the stack name, as the SAM template and the local seed create them), its
//! clients, and the AWS reads and writes the commands share.

use crate::error::CliError;
use crate::progress::{error_text, Event};
use aws_config::SdkConfig;
use aws_sdk_sfn::types::{ExecutionListItem, HistoryEvent};
use aws_smithy_types::DateTime;
use std::time::Duration;
use stepdeploy_shared::aws::{assume_environment_read_role, sdk_config_with, SdkOverrides};
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::EnvironmentConfig;
use stepdeploy_shared::state::DynamoStateStore;
use stepdeploy_shared::validate::FieldError;
use stepdeploy_shared::{EnvironmentName, TenantName};

/// The state machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    /// `{stack}-deploy-tenant`.
    Deploy,
    /// `{stack}-teardown-tenant`.
    Teardown,
    /// `{stack}-rollout-fleet`: one image to many tenants, in waves.
    Rollout,
}

impl Machine {
    /// The two that run one tenant, deploy first.
    pub const ALL: [Machine; 2] = [Machine::Deploy, Machine::Teardown];

    /// `deploy`, `teardown` or `rollout`.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Teardown => "teardown",
            Self::Rollout => "rollout",
        }
    }

    /// The state machine's name without the stack's: `deploy-tenant`, `teardown-tenant`, `rollout-fleet`.
    fn suffix(self) -> &'static str {
        match self {
            Self::Deploy => "deploy-tenant",
            Self::Teardown => "teardown-tenant",
            Self::Rollout => "rollout-fleet",
        }
    }
}

/// What a rollout's execution name starts with (`rollout-{env}-{id}`), as
/// the trigger names it (`ROLLOUT_NAME_PREFIX` in functions/trigger).
pub const ROLLOUT_NAME_PREFIX: &str = "rollout";

/// A run, as listed.
#[derive(Debug, Clone)]
pub struct Run {
    /// Execution ARN.
    pub arn: String,
    /// Execution name (`{tenant}-{env}-{id}`).
    pub name: String,
    /// Which state machine.
    pub machine: Machine,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, …
    pub status: String,
    /// Start, seconds since the epoch.
    pub started: f64,
    /// End, when it ended.
    pub stopped: Option<f64>,
}

/// One approver's decision on a run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Vote {
    /// Who.
    pub approver: String,
    /// `approve` or `reject`.
    pub decision: String,
    /// Arrived after the gate settled: recorded, counts for nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
}

/// A run's approval request and the votes so far.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Approval {
    /// Approvals needed.
    pub required: u32,
    /// Approvers mailed.
    pub approvers: Vec<String>,
    /// `pending`, `approved`, `rejected`, `expired`.
    pub status: String,
    /// Decisions so far.
    pub votes: Vec<Vote>,
}

impl Approval {
    /// Who approved.
    pub fn approved_by(&self) -> Vec<String> {
        self.votes
            .iter()
            .filter(|v| v.decision == "approve" && !v.late)
            .map(|v| v.approver.clone())
            .collect()
    }
}

/// The orchestrator's clients and names.
pub struct Stack {
    /// Stack name.
    pub name: String,
    /// The endpoint override in use, for error messages.
    pub endpoint: Option<String>,
    config: SdkConfig,
    sfn: aws_sdk_sfn::Client,
    events: aws_sdk_eventbridge::Client,
}

fn seconds(t: &DateTime) -> f64 {
    t.as_secs_f64()
}

impl Stack {
    /// Loads the AWS config once, with the operator's overrides, and builds the clients.
    pub async fn connect(name: &str, overrides: &SdkOverrides) -> Self {
        let base = sdk_config_with(overrides).await;
        // An operator waits for a prompt answer: fail fast when nothing listens.
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(30))
            .build();
        let config = base.to_builder().timeout_config(timeouts).build();
        Self {
            name: name.to_string(),
            endpoint: config.endpoint_url().map(str::to_string),
            sfn: aws_sdk_sfn::Client::new(&config),
            events: aws_sdk_eventbridge::Client::new(&config),
            config,
        }
    }

    fn fail(&self, err: AwsCallError) -> CliError {
        CliError::aws(self.endpoint.as_deref(), err)
    }

    /// Invokes `{stack}-{function}` and waits for its answer: the result, or
    /// the function's (`errorType`, `errorMessage`).
    pub async fn invoke(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<Result<serde_json::Value, (String, String)>, CliError> {
        let out = aws_sdk_lambda::Client::new(&self.config)
            .invoke()
            .function_name(format!("{}-{function}", self.name))
            .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
            .send()
            .await
            .map_err(|e| self.fail(AwsCallError::new("lambda:Invoke", e)))?;
        let body: serde_json::Value = out
            .payload()
            .and_then(|b| serde_json::from_slice(b.as_ref()).ok())
            .unwrap_or(serde_json::Value::Null);
        Ok(if out.function_error().is_some() {
            let text = |k: &str| body[k].as_str().unwrap_or_default().to_string();
            Err((text("errorType"), text("errorMessage")))
        } else {
            Ok(body)
        })
    }

    /// The orchestrator's region.
    pub fn region(&self) -> String {
        self.config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into())
    }

    /// The event bus (named after the stack).
    pub fn bus(&self) -> &str {
        &self.name
    }

    /// A state machine's name.
    pub fn machine_name(&self, machine: Machine) -> String {
        format!("{}-{}", self.name, machine.suffix())
    }

    /// The approvals table.
    pub fn approvals_table(&self) -> String {
        format!("{}-approvals", self.name)
    }

    /// The Step Functions console page of an execution.
    pub fn console_url(&self, arn: &str) -> String {
        let region = arn.split(':').nth(3).unwrap_or("us-east-1");
        format!("https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{arn}")
    }

    /// A state machine's ARN, found by name.
    pub async fn machine_arn(&self, machine: Machine) -> Result<String, CliError> {
        let wanted = self.machine_name(machine);
        let mut pages = self.sfn.list_state_machines().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| self.fail(AwsCallError::new("states:ListStateMachines", e)))?;
            if let Some(found) = page.state_machines().iter().find(|m| m.name() == wanted) {
                return Ok(found.state_machine_arn().to_string());
            }
        }
        Err(CliError::NotFound(format!(
            "state machine {wanted} not found in {}: is the stepdeploy stack {:?} installed there? (--stack, --region)",
            self.region(),
            self.name
        )))
    }

    /// Puts one event on the bus; its event id.
    pub async fn put_event(&self, detail_type: &str, detail: &str) -> Result<String, CliError> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(self.bus())
            .source(stepdeploy_shared::request::EVENT_SOURCE)
            .detail_type(detail_type)
            .detail(detail)
            .build();
        let out = self
            .events
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| self.fail(AwsCallError::new("events:PutEvents", e)))?;
        let result = out.entries().first();
        if out.failed_entry_count() > 0 || result.and_then(|r| r.error_code()).is_some() {
            return Err(CliError::Refused(format!(
                "EventBridge refused the event on bus {}: {} {}",
                self.bus(),
                result.and_then(|r| r.error_code()).unwrap_or("unknown"),
                result.and_then(|r| r.error_message()).unwrap_or_default()
            )));
        }
        Ok(result
            .and_then(|r| r.event_id())
            .unwrap_or_default()
            .to_string())
    }

    /// The execution `name` of `machine`, waiting up to `wait` for the trigger to start it.
    pub async fn await_run(
        &self,
        machine: Machine,
        name: &str,
        wait: Duration,
    ) -> Result<Run, CliError> {
        let sm = self.machine_arn(machine).await?;
        let arn = format!("{}:{name}", sm.replacen(":stateMachine:", ":execution:", 1));
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(run) = self.describe(&arn, machine).await? {
                return Ok(run);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(CliError::NotFound(format!(
                    "the event was put, but no execution {name} started within {} s: check the trigger function's logs and the bus's rules",
                    wait.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// An execution by ARN, or `None` if it does not exist.
    pub async fn describe(&self, arn: &str, machine: Machine) -> Result<Option<Run>, CliError> {
        Ok(self.describe_full(arn).await?.map(|d| Run {
            arn: arn.to_string(),
            name: d.name().unwrap_or_default().to_string(),
            machine,
            status: d.status().as_str().to_string(),
            started: seconds(d.start_date()),
            stopped: d.stop_date().map(seconds),
        }))
    }

    /// DescribeExecution, with "does not exist" as `None`.
    pub async fn describe_full(
        &self,
        arn: &str,
    ) -> Result<Option<aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput>, CliError>
    {
        match self
            .sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_execution_does_not_exist()) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.fail(AwsCallError::new("states:DescribeExecution", e))),
        }
    }

    /// Runs of `machine`, newest first, at most `limit`, whose names start with `prefix`.
    pub async fn runs(
        &self,
        machine: Machine,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<Run>, CliError> {
        let sm = self.machine_arn(machine).await?;
        let mut runs = Vec::new();
        let mut items = self
            .sfn
            .list_executions()
            .state_machine_arn(&sm)
            .into_paginator()
            .items()
            .send();
        // ListExecutions returns newest first; stop reading once enough have matched.
        let mut read = 0usize;
        while let Some(item) = items.next().await {
            let item: ExecutionListItem =
                item.map_err(|e| self.fail(AwsCallError::new("states:ListExecutions", e)))?;
            read += 1;
            if item.name().starts_with(prefix) {
                runs.push(Run {
                    arn: item.execution_arn().to_string(),
                    name: item.name().to_string(),
                    machine,
                    status: item.status().as_str().to_string(),
                    started: seconds(item.start_date()),
                    stopped: item.stop_date().map(seconds),
                });
            }
            if runs.len() >= limit || read >= 10_000 {
                break;
            }
        }
        runs.sort_by(|a, b| b.started.total_cmp(&a.started));
        Ok(runs)
    }

    /// The execution's history, reduced to progress events.
    pub async fn history(&self, arn: &str) -> Result<Vec<Event>, CliError> {
        let mut items = self
            .sfn
            .get_execution_history()
            .execution_arn(arn)
            .max_results(1000)
            .into_paginator()
            .items()
            .send();
        let mut events = Vec::new();
        while let Some(item) = items.next().await {
            let item: HistoryEvent =
                item.map_err(|e| self.fail(AwsCallError::new("states:GetExecutionHistory", e)))?;
            events.push(progress_event(&item));
        }
        Ok(events)
    }

    /// The approval request and votes of a run's current gate attempt, if it has one.
    pub async fn approval(&self, execution_arn: &str) -> Result<Option<Approval>, CliError> {
        let table =
            stepdeploy_shared::approvals::ApprovalsTable::new(&self.config, self.approvals_table());
        let Some(request) = table
            .request(execution_arn)
            .await
            .map_err(|e| self.fail(e))?
        else {
            return Ok(None);
        };
        let votes = table
            .votes(execution_arn, &request.attempt)
            .await
            .map_err(|e| self.fail(e))?
            .into_iter()
            .map(|v| Vote {
                approver: v.approver,
                decision: v.decision,
                late: v.late,
            })
            .collect();
        Ok(Some(Approval {
            required: request.required,
            approvers: request.approvers,
            status: request.status,
            votes,
        }))
    }

    /// `env`'s state table, read through the environment's read-only role
    /// (the deploy role admits only the orchestrator's phase functions).
    pub async fn environment_state(&self, env: &EnvironmentConfig) -> DynamoStateStore {
        let config = assume_environment_read_role(&self.config, env, "stepdeploy-cli").await;
        DynamoStateStore::new(aws_sdk_dynamodb::Client::new(&config), &env.state_table)
    }

    /// Maps an error from a call in an environment's account.
    pub fn env_error(&self, err: AwsCallError) -> CliError {
        self.fail(err)
    }

    /// An execution ARN, an execution name, or a tenant's newest run in `env`.
    pub async fn find_run(&self, target: &str, env: Option<&str>) -> Result<Run, CliError> {
        if target.starts_with("arn:") {
            let machine = if target.contains("-teardown-tenant:") {
                Machine::Teardown
            } else if target.contains("-rollout-fleet:") {
                Machine::Rollout
            } else {
                Machine::Deploy
            };
            return self
                .describe(target, machine)
                .await?
                .ok_or_else(|| CliError::NotFound(format!("no execution {target}")));
        }
        if target.contains('-') {
            // `rollout-…` is a rollout's name (or a deployment of a tenant named "rollout").
            let machines: &[Machine] = if target.starts_with(&format!("{ROLLOUT_NAME_PREFIX}-")) {
                &[Machine::Rollout, Machine::Deploy, Machine::Teardown]
            } else {
                &Machine::ALL
            };
            for &machine in machines {
                let sm = self.machine_arn(machine).await?;
                let arn = format!(
                    "{}:{target}",
                    sm.replacen(":stateMachine:", ":execution:", 1)
                );
                if let Some(run) = self.describe(&arn, machine).await? {
                    return Ok(run);
                }
            }
            let names: Vec<String> = machines.iter().map(|m| self.machine_name(*m)).collect();
            let listed = match names.as_slice() {
                [rest @ .., last] if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                _ => names.join(""),
            };
            return Err(CliError::NotFound(format!(
                "no execution named {target} in {listed}"
            )));
        }
        let t = TenantName::parse(target).map_err(|e| FieldError::new("tenant", e.reason))?;
        let env = env.ok_or_else(|| {
            CliError::Refused(format!(
                "{target} is a tenant: say which environment with --env (or name an execution)"
            ))
        })?;
        EnvironmentName::parse(env).map_err(|e| e.within("--env"))?;
        self.newest_runs(&format!("{t}-{env}-"), 1)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| CliError::NotFound(format!("no runs of tenant {t} in {env}")))
    }

    /// Deploy and teardown runs whose names start with `prefix`, newest first.
    pub async fn newest_runs(&self, prefix: &str, limit: usize) -> Result<Vec<Run>, CliError> {
        let mut runs = Vec::new();
        for machine in Machine::ALL {
            runs.extend(self.runs(machine, prefix, limit).await?);
        }
        runs.sort_by(|a, b| b.started.total_cmp(&a.started));
        runs.truncate(limit);
        Ok(runs)
    }
}

/// The parts of a history event progress needs.
fn progress_event(e: &HistoryEvent) -> Event {
    let state = e
        .state_entered_event_details()
        .map(|d| d.name().to_string())
        .or_else(|| e.state_exited_event_details().map(|d| d.name().to_string()));
    let error = e
        .task_failed_event_details()
        .and_then(|d| error_text(d.error(), d.cause()))
        .or_else(|| {
            e.task_timed_out_event_details()
                .and_then(|d| error_text(d.error(), d.cause()))
        })
        .or_else(|| {
            e.execution_failed_event_details()
                .and_then(|d| error_text(d.error(), d.cause()))
        });
    // What a state received or handed on: a rollout's progress reads its waves from it.
    let data = e
        .state_entered_event_details()
        .and_then(|d| d.input())
        .or_else(|| e.state_exited_event_details().and_then(|d| d.output()))
        .map(str::to_string);
    Event {
        kind: e.r#type().as_str().to_string(),
        at: seconds(e.timestamp()),
        state,
        error,
        data,
    }
}
