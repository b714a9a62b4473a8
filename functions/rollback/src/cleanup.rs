//! Runs that end without reaching the state machine's Catch — stopped
//! (`StopExecution`), timed out, or failed by Step Functions itself
//! (`States.Runtime`, `States.DataLimitExceeded`, the history limit) — never
//! run the Rollback state, so their resources and lock would stay behind.
//! An EventBridge rule sends Step Functions' "Execution Status Change" events
//! of the deploy state machine (ABORTED, TIMED_OUT, FAILED) here: the run's
//! last recorded state, with bootstrap's plan, is read from the execution
//! history and rolled back exactly as the Rollback state would have.
//! A run whose Rollback state already ran is left alone.
//!
//! The operator's `stepdeploy cleanup` (`Tenant Cleanup Requested`) comes
//! here too: it runs a rollback left incomplete again (`cleanup_request`).

use crate::ports::{Connector, Registry, Resources};
use crate::run::roll_back;
use crate::{configs, Environments, RollbackError, RollbackOutput};
use serde::Deserialize;
use std::future::Future;
use stepdeploy_shared::aws_error::AwsCallError;

/// The operator's request to finish a rollback left incomplete.
pub const CLEANUP_REQUESTED: &str = stepdeploy_shared::request::CLEANUP_REQUESTED;

/// Whether `input` is a `Tenant Cleanup Requested` event (or the CLI's
/// invocation, which sends the same shape).
pub fn is_cleanup_request(input: &serde_json::Value) -> bool {
    input.get("detail-type").and_then(|t| t.as_str()) == Some(CLEANUP_REQUESTED)
}

/// `detail` of a cleanup request: a run (name or ARN), or a tenant and an
/// environment (the run holding the tenant's lock).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanupDetail {
    /// The run whose rollback to finish.
    #[serde(default)]
    pub execution: Option<String>,
    /// Or the tenant…
    #[serde(default)]
    pub tenant: Option<String>,
    /// …in this environment.
    #[serde(default)]
    pub environment: Option<String>,
    /// Who asks.
    pub requested_by: String,
}

/// Where cleanup outcomes are told (the notifications topic).
pub trait Reports: Send + Sync {
    /// Publishes one message.
    fn publish(
        &self,
        subject: &str,
        message: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// [`Reports`] on SNS (`STEPDEPLOY_NOTIFICATION_TOPIC_ARN`; no topic, no message).
pub struct SnsReports {
    /// Client.
    pub sns: aws_sdk_sns::Client,
    /// Topic; without one the outcome is only logged.
    pub topic_arn: Option<String>,
}

impl SnsReports {
    /// The notification topic from `STEPDEPLOY_NOTIFICATION_TOPIC_ARN`.
    pub fn from_env(base: &aws_config::SdkConfig) -> Self {
        Self {
            sns: aws_sdk_sns::Client::new(base),
            topic_arn: std::env::var("STEPDEPLOY_NOTIFICATION_TOPIC_ARN")
                .ok()
                .filter(|t| !t.is_empty()),
        }
    }
}

impl Reports for SnsReports {
    async fn publish(&self, subject: &str, message: &str) -> Result<(), AwsCallError> {
        let Some(topic) = &self.topic_arn else {
            return Ok(());
        };
        let operation = "sns:Publish (cleanup outcome)";
        stepdeploy_shared::publish::publish(&self.sns, operation, topic, subject, message, &[])
            .await
    }
}

/// EventBridge's `detail-type` for Step Functions' execution status changes.
pub const STATUS_CHANGE: &str = "Step Functions Execution Status Change";

/// The state machine state that rolls a failed run back.
const ROLLBACK_STATE: &str = "Rollback";

/// The part of the event the cleanup reads.
#[derive(Debug, Clone, Deserialize)]
pub struct StatusChange {
    /// The event's `detail`.
    pub detail: StatusDetail,
}

/// `detail` of a status change.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetail {
    /// The execution.
    pub execution_arn: String,
    /// `ABORTED`, `TIMED_OUT`, `FAILED`, …
    pub status: String,
}

/// What the history says about a finished run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunRecord {
    /// The newest state output (the whole execution state) that holds a plan.
    pub last_state: Option<serde_json::Value>,
    /// Whether the Rollback state finished (the run cleaned up after itself).
    pub rolled_back: bool,
}

/// Reads an execution's history.
pub trait History: Send + Sync {
    /// The run's record, from every page of its history.
    fn run_record(
        &self,
        execution_arn: &str,
    ) -> impl Future<Output = Result<RunRecord, AwsCallError>> + Send;
    /// The run's status (`RUNNING`, `FAILED`, …), `None` if there is no such execution.
    fn status(
        &self,
        execution_arn: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;
}

/// Whether `input` is a status-change event rather than the state machine's `{state}`.
pub fn is_status_change(input: &serde_json::Value) -> bool {
    input.get("detail-type").and_then(|t| t.as_str()) == Some(STATUS_CHANGE)
}

/// Folds history events, oldest first, into a [`RunRecord`]: each event is
/// `(state exited, its output)`.
pub fn record_of<'a>(exits: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> RunRecord {
    let mut record = RunRecord::default();
    for (name, output) in exits {
        if name == ROLLBACK_STATE {
            record.rolled_back = true;
        }
        let Some(state) = output.and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok())
        else {
            continue;
        };
        if state.pointer("/plan/output").is_some() {
            record.last_state = Some(state);
        }
    }
    record
}

/// A state read back from the history, as the phases' contract types.
fn run_state(
    state: serde_json::Value,
) -> Result<stepdeploy_shared::contract::RunState, RollbackError> {
    serde_json::from_value(state).map_err(|e| RollbackError::Validation(format!("state: {e}")))
}

/// The Step Functions adapter.
pub struct StepFunctionsHistory(pub aws_sdk_sfn::Client);

impl History for StepFunctionsHistory {
    async fn status(&self, execution_arn: &str) -> Result<Option<String>, AwsCallError> {
        use stepdeploy_shared::guard::Runs;
        stepdeploy_shared::guard::StepFunctionsRuns(self.0.clone())
            .status(execution_arn)
            .await
    }

    async fn run_record(&self, execution_arn: &str) -> Result<RunRecord, AwsCallError> {
        let mut pages = self
            .0
            .get_execution_history()
            .execution_arn(execution_arn)
            .include_execution_data(true)
            .into_paginator()
            .send();
        let mut exits = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsCallError::new("states:GetExecutionHistory", e))?;
            exits.extend(page.events().iter().filter_map(|e| {
                e.state_exited_event_details()
                    .map(|d| (d.name().to_string(), d.output().map(str::to_string)))
            }));
        }
        Ok(record_of(
            exits.iter().map(|(n, o)| (n.as_str(), o.as_deref())),
        ))
    }
}

/// A run that ended outside the state machine's Catch: rolled back from its
/// last recorded state, unless its Rollback state already ran.
pub(crate) async fn after_status_change<C: Connector>(
    input: serde_json::Value,
    connector: &C,
    history: &impl History,
    environments: &Environments,
) -> Result<RollbackOutput, RollbackError> {
    let event: StatusChange = serde_json::from_value(input)
        .map_err(|e| RollbackError::Validation(format!("status change event: {e}")))?;
    let record = history.run_record(&event.detail.execution_arn).await?;
    tracing::info!(
        execution = %event.detail.execution_arn,
        status = %event.detail.status,
        rolled_back = record.rolled_back,
        "run ended outside the state machine's Catch"
    );
    match record {
        RunRecord {
            rolled_back: true, ..
        } => Ok(RollbackOutput {
            skipped: Some("the run's Rollback state already ran".into()),
            ..RollbackOutput::default()
        }),
        RunRecord {
            last_state: Some(state),
            ..
        } => roll_back(run_state(state)?, connector, history, environments).await,
        RunRecord {
            last_state: None, ..
        } => Ok(RollbackOutput {
            skipped: Some("the run made no plan (bootstrap cleans up after itself)".into()),
            ..RollbackOutput::default()
        }),
    }
}

/// `stepdeploy cleanup` / `Tenant Cleanup Requested`: runs the rollback of
/// one run again, once the operator removed what kept it from finishing.
/// It undoes only that run's own ledger (what the run created), so it needs
/// no quorum even in an environment with approvers; the lock and the
/// priority claim go only when nothing is left. The outcome is published.
pub(crate) async fn cleanup_request<C: Connector>(
    input: serde_json::Value,
    connector: &C,
    history: &impl History,
    reports: &impl Reports,
    environments: &Environments,
) -> Result<RollbackOutput, RollbackError> {
    let detail: CleanupDetail = serde_json::from_value(input["detail"].clone())
        .map_err(|e| RollbackError::Validation(format!("detail: {e}")))?;
    stepdeploy_shared::identity::canonical("detail.requested_by", &detail.requested_by)
        .map_err(|e| RollbackError::Validation(e.to_string()))?;
    let execution = execution_to_clean(&detail, connector, environments).await?;
    refuse_unless_ended(history, &execution).await?;
    let record = history.run_record(&execution).await?;
    let Some(state) = record.last_state else {
        return Err(RollbackError::Validation(format!(
            "execution {execution} made no plan: nothing to clean up"
        )));
    };
    let name = execution
        .rsplit(':')
        .next()
        .unwrap_or(&execution)
        .to_string();
    let outcome = roll_back(run_state(state)?, connector, history, environments).await;
    let (subject, message) = outcome_report(&name, &detail.requested_by, &outcome);
    reports.publish(&subject, &message).await?;
    outcome
}

/// The run a cleanup request names: by ARN, by name (on the deploy state
/// machine), or the run holding the tenant's lock.
async fn execution_to_clean<C: Connector>(
    detail: &CleanupDetail,
    connector: &C,
    environments: &Environments,
) -> Result<String, RollbackError> {
    match (&detail.execution, &detail.tenant, &detail.environment) {
        (Some(execution), None, None) if execution.starts_with("arn:") => Ok(execution.clone()),
        (Some(name), None, None) => {
            let machine = std::env::var("STEPDEPLOY_DEPLOY_STATE_MACHINE_ARN").map_err(|_| {
                RollbackError::Validation(
                    "STEPDEPLOY_DEPLOY_STATE_MACHINE_ARN is not set: give the execution's ARN"
                        .into(),
                )
            })?;
            Ok(format!(
                "{}:{name}",
                machine.replacen(":stateMachine:", ":execution:", 1)
            ))
        }
        (None, Some(tenant), Some(environment)) => {
            let tenant = stepdeploy_shared::TenantName::parse(tenant)
                .map_err(|e| RollbackError::Validation(e.within("detail").to_string()))?;
            let env = configs(environments)?
                .get(environment)
                .map_err(|e| RollbackError::Validation(format!("detail.environment: {e}")))?;
            let ports = connector.connect(env).await;
            ports
                .registry()
                .lock_owner(tenant.as_str())
                .await?
                .ok_or_else(|| {
                    RollbackError::Validation(format!(
                        "no run holds {tenant} in {environment}: nothing to clean up"
                    ))
                })
        }
        _ => Err(RollbackError::Validation(
            "detail: give either execution, or tenant and environment".into(),
        )),
    }
}

/// Only a failed, stopped or timed-out run is cleaned up: a running one
/// rolls itself back if it fails.
async fn refuse_unless_ended(history: &impl History, execution: &str) -> Result<(), RollbackError> {
    match history.status(execution).await?.as_deref() {
        Some("FAILED" | "TIMED_OUT" | "ABORTED") => Ok(()),
        Some("RUNNING") => Err(RollbackError::Validation(format!(
            "execution {execution} is still running: it rolls itself back if it fails; \
             stop it first (aws stepfunctions stop-execution) to clean up now"
        ))),
        other => Err(RollbackError::Validation(format!(
            "execution {execution} is {}: only a failed, stopped or timed-out run is cleaned up",
            other.unwrap_or("unknown")
        ))),
    }
}

/// The subject and message that tell a cleanup's outcome.
fn outcome_report(
    name: &str,
    requested_by: &str,
    outcome: &Result<RollbackOutput, RollbackError>,
) -> (String, String) {
    match outcome {
        Ok(out) => (
            format!("stepdeploy: cleanup of {name} finished"),
            format!(
                "Cleanup of {name}, asked by {requested_by}: nothing is left.\nUndone: {}\nLock released: {}\n",
                if out.removed.is_empty() && out.restored.is_empty() {
                    "nothing (it was already clean)".to_string()
                } else {
                    [out.removed.clone(), out.restored.clone()].concat().join(", ")
                },
                out.lock_released
            ),
        ),
        Err(e) => (
            format!("stepdeploy: cleanup of {name} could not finish"),
            format!("Cleanup of {name}, asked by {requested_by}: {e}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_state_with_a_plan_is_the_one_rolled_back() {
        let plan = r#"{"event":{},"plan":{"output":{"tenant":"acme"}}}"#;
        let later = r#"{"event":{},"plan":{"output":{"tenant":"acme"}},"database":{"output":{}}}"#;
        let record = record_of([
            ("Bootstrap", Some(r#"{"event":{}}"#)),
            ("NeedsApproval", Some(plan)),
            ("Database", Some(later)),
            ("Ecs", None),
        ]);
        assert_eq!(
            record.last_state,
            Some(serde_json::from_str(later).expect("json"))
        );
        assert!(!record.rolled_back);
        assert!(record_of([("Rollback", Some(later))]).rolled_back);
        assert_eq!(record_of([("Bootstrap", Some("{}"))]).last_state, None);
    }

    #[test]
    fn status_change_events_are_told_apart_from_state_machine_input() {
        assert!(is_status_change(&serde_json::json!({
            "detail-type": STATUS_CHANGE,
            "detail": {"executionArn": "arn:x", "status": "ABORTED"}
        })));
        assert!(!is_status_change(&serde_json::json!({"state": {}})));
    }
}
