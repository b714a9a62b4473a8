//! The rollout's child deployments: what each is started with (a
//! `Tenant Deployment Requested` event naming the rollout), and what its
//! Map iteration answered, read back as a [`TenantResult`].
//!
//! A child's name and input depend only on the rollout and the tenant, so a
//! redriven wave starts nothing twice: Step Functions answers the same name
//! with the same input as the running child, and a finished one with
//! `ExecutionAlreadyExists`, which is looked up here, not counted as a
//! failure.

use crate::ports::{ChildRun, Children};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::error_names::DEPLOYMENT_LOCKED;
use stepdeploy_shared::request::{DEPLOY_REQUESTED, EVENT_SOURCE};
use stepdeploy_shared::rollout::{child_execution_name, TenantOutcome, TenantResult, Wave};
use stepdeploy_shared::validate::{EnvironmentName, ImageRef, TenantName};

/// The error Step Functions gives a child start whose name is taken.
pub const ALREADY_EXISTS: &str = "StepFunctions.ExecutionAlreadyExistsException";
/// The error of a `.sync` child that did not succeed.
pub const TASK_FAILED: &str = "States.TaskFailed";
/// Longest error text kept per tenant (the report and the state stay small).
pub const ERROR_MAX: usize = 200;

/// What every child of one rollout shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutInfo {
    /// The rollout's execution ARN.
    pub execution: String,
    /// Its execution name.
    pub name: String,
    /// `$$.Execution.StartTime`: the children's event time.
    pub started_at: String,
    /// The environment.
    pub environment: EnvironmentName,
    /// The image every child deploys.
    pub image: ImageRef,
    /// Who asked (every child is requested by them).
    pub requested_by: String,
    /// The Map's `MaxConcurrencyPath`.
    pub max_parallel: u32,
    /// The Wait between waves (`SecondsPath`).
    pub bake_seconds: u32,
}

/// One child of a wave: the Map's item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Child {
    /// The tenant.
    pub tenant: TenantName,
    /// The child's execution name ([`child_execution_name`]).
    pub name: String,
}

/// What every child's `Tenant Deployment Requested` event shares; the Map
/// adds the tenant and the name (`statemachines/rollout-fleet.asl.json`,
/// `DeployTenant`). Carried once per wave, not once per child: the state
/// machine's data stays small (256 KB per state) for a wave of hundreds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildRequest {
    /// `Tenant Deployment Requested`.
    pub detail_type: String,
    /// `stepdeploy`.
    pub source: String,
    /// The rollout's account.
    pub account: String,
    /// The rollout's start.
    pub time: String,
    /// The rollout's region.
    pub region: String,
    /// The rollout run.
    pub resources: Vec<String>,
    /// The environment.
    pub environment: EnvironmentName,
    /// The image.
    pub image: ImageRef,
    /// The rollout's requester.
    pub requested_by: String,
    /// The rollout run (ARN): in an approval environment the guard checks
    /// its quorum instead of a gate of the child's own.
    pub rollout: String,
}

/// The wave the Map runs next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextWave {
    /// 1-based.
    pub number: u32,
    /// What the children's requests share.
    pub request: ChildRequest,
    /// Its children, in tenant order.
    pub children: Vec<Child>,
}

/// The children of `wave`.
pub fn wave(info: &RolloutInfo, wave: &Wave) -> NextWave {
    let arn: Vec<&str> = info.execution.split(':').collect();
    NextWave {
        number: wave.number,
        request: ChildRequest {
            detail_type: DEPLOY_REQUESTED.into(),
            source: EVENT_SOURCE.into(),
            account: arn.get(4).copied().unwrap_or_default().into(),
            time: info.started_at.clone(),
            region: arn.get(3).copied().unwrap_or_default().into(),
            resources: vec![info.execution.clone()],
            environment: info.environment.clone(),
            image: info.image.clone(),
            requested_by: info.requested_by.clone(),
            rollout: info.execution.clone(),
        },
        children: wave
            .tenants
            .iter()
            .map(|tenant| Child {
                tenant: tenant.clone(),
                name: child_execution_name(&info.name, &info.environment, tenant),
            })
            .collect(),
    }
}

/// What one Map iteration answered (see `statemachines/rollout-fleet.asl.json`):
/// the child's status, or the error that ended the iteration.
#[derive(Debug, Clone, Deserialize)]
pub struct Outcome {
    /// The tenant.
    pub tenant: TenantName,
    /// The child's name.
    pub name: String,
    /// The child's ARN (success).
    #[serde(default)]
    pub execution: Option<String>,
    /// The child's status (success: `SUCCEEDED`).
    #[serde(default)]
    pub status: Option<String>,
    /// DescribeExecution's dates (epoch milliseconds), when given.
    #[serde(default)]
    pub start: Option<Value>,
    /// See `start`.
    #[serde(default)]
    pub stop: Option<Value>,
    /// The iteration's error (failure; its cause is read from the child).
    #[serde(default)]
    pub error: Option<String>,
}

/// The result one iteration stands for. A locked tenant (another run holds
/// it) is `Locked`: reported, not retried, and it does not spend the
/// failure budget.
pub async fn result(outcome: Outcome, runs: &impl Children) -> Result<TenantResult, AwsCallError> {
    let mut result = TenantResult {
        tenant: outcome.tenant.clone(),
        outcome: TenantOutcome::Failed,
        execution: outcome.execution.clone(),
        error: None,
        duration_seconds: duration(outcome.start.as_ref(), outcome.stop.as_ref()),
    };
    match outcome.error.as_deref() {
        None if outcome.status.as_deref() == Some("SUCCEEDED") => {
            result.outcome = TenantOutcome::Succeeded;
        }
        None => {
            result.error = Some(format!(
                "the child ended {}",
                outcome.status.as_deref().unwrap_or("without a status")
            ));
        }
        Some(ALREADY_EXISTS) => {
            // Started before (a redriven wave): its own outcome counts.
            let (arn, run) = describe_child(&outcome.name, runs).await?;
            result.execution = arn;
            match run {
                Some(run) if run.status == "SUCCEEDED" => result.outcome = TenantOutcome::Succeeded,
                Some(run) if run.status == "RUNNING" => {
                    result.error = Some(format!(
                        "{} is already running under this rollout's name for the tenant (started outside this wave); not waited for",
                        outcome.name
                    ));
                }
                Some(run) => failed_as(&mut result, run.error.as_deref(), &run.status),
                None => {
                    result.error = Some(format!("{} exists but could not be found", outcome.name))
                }
            }
        }
        Some(TASK_FAILED) => {
            // The child ended without success: its own error and cause.
            let (arn, run) = describe_child(&outcome.name, runs).await?;
            result.execution = arn;
            match run {
                Some(run) => {
                    result.duration_seconds = run.duration_seconds;
                    failed_as(&mut result, run.error.as_deref(), &run.status);
                    if let (Some(text), Some(cause)) = (&mut result.error, run.cause.as_deref()) {
                        text.push_str(": ");
                        text.push_str(cause);
                    }
                }
                None => {
                    result.error = Some(format!("{} failed and could not be found", outcome.name))
                }
            }
        }
        Some(other) => {
            result.error = Some(format!(
                "{other} (the child's deployment was not started or not followed)"
            ));
        }
    }
    if let Some(text) = &mut result.error {
        if text.chars().count() > ERROR_MAX {
            *text = text.chars().take(ERROR_MAX).collect::<String>() + "…";
        }
    }
    Ok(result)
}

/// The deploy run named `name`: its ARN and what Step Functions says of it.
async fn describe_child(
    name: &str,
    runs: &impl Children,
) -> Result<(Option<String>, Option<ChildRun>), AwsCallError> {
    let arn = runs.arn_of(name);
    let run = match &arn {
        Some(arn) => runs.describe(arn).await?,
        None => None,
    };
    Ok((arn, run))
}

/// A child that ended without success, by its error name.
fn failed_as(result: &mut TenantResult, error: Option<&str>, status: &str) {
    if error == Some(DEPLOYMENT_LOCKED) {
        result.outcome = TenantOutcome::Locked;
    }
    result.error = Some(match error {
        Some(error) => error.to_string(),
        None => format!("the child ended {status}"),
    });
}

/// Seconds between two DescribeExecution dates given as epoch milliseconds.
fn duration(start: Option<&Value>, stop: Option<&Value>) -> Option<u64> {
    let (start, stop) = (start?.as_f64()?, stop?.as_f64()?);
    (stop >= start).then(|| ((stop - start) / 1000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    struct Runs(HashMap<String, ChildRun>);

    impl Children for Runs {
        fn arn_of(&self, name: &str) -> Option<String> {
            Some(format!(
                "arn:aws:states:eu-west-1:1:execution:s-deploy-tenant:{name}"
            ))
        }
        async fn describe(&self, execution: &str) -> Result<Option<ChildRun>, AwsCallError> {
            Ok(self.0.get(execution).cloned())
        }
    }

    fn info() -> RolloutInfo {
        RolloutInfo {
            execution:
                "arn:aws:states:eu-west-1:123456789012:execution:s-rollout-fleet:rollout-sit-r1"
                    .into(),
            name: "rollout-sit-r1".into(),
            started_at: "2026-11-30T10:00:00Z".into(),
            environment: EnvironmentName::parse("sit").expect("name"),
            image: ImageRef::parse("wordpress:6.7").expect("image"),
            requested_by: "jane@example.com".into(),
            max_parallel: 5,
            bake_seconds: 0,
        }
    }

    fn outcome(value: Value) -> Outcome {
        serde_json::from_value(value).expect("an outcome")
    }

    fn run(status: &str, error: Option<&str>, cause: Option<&str>) -> ChildRun {
        ChildRun {
            status: status.into(),
            error: error.map(Into::into),
            cause: cause.map(Into::into),
            duration_seconds: Some(2),
        }
    }

    fn arn(name: &str) -> String {
        format!("arn:aws:states:eu-west-1:1:execution:s-deploy-tenant:{name}")
    }

    #[test]
    fn children_are_named_and_requested_from_the_rollout_alone() {
        let tenants = vec![
            TenantName::parse("acme").expect("t"),
            TenantName::parse("bravo").expect("t"),
        ];
        let one = wave(
            &info(),
            &Wave {
                number: 2,
                tenants: tenants.clone(),
            },
        );
        let again = wave(&info(), &Wave { number: 2, tenants });
        assert_eq!(
            one, again,
            "a redelivery starts the same children with the same input"
        );
        assert_eq!(
            one.children[0].name,
            child_execution_name(
                "rollout-sit-r1",
                &info().environment,
                &one.children[0].tenant
            )
        );
        let request = &one.request;
        assert_eq!(request.detail_type, DEPLOY_REQUESTED);
        assert_eq!(request.rollout, info().execution);
        assert_eq!(
            (request.account.as_str(), request.region.as_str()),
            ("123456789012", "eu-west-1")
        );
    }

    #[tokio::test]
    async fn outcomes_read_as_results() {
        let runs = Runs(HashMap::from([
            (arn("done"), run("SUCCEEDED", None, None)),
            (arn("busy"), run("RUNNING", None, None)),
            (
                arn("bad"),
                run("FAILED", Some("VerificationFailed"), Some("HTTP 500")),
            ),
            (
                arn("held"),
                run("FAILED", Some(DEPLOYMENT_LOCKED), Some("held by x")),
            ),
            (
                arn("long"),
                run("FAILED", Some("DatabaseError"), Some(&"x".repeat(1000))),
            ),
        ]));
        let ok = result(outcome(json!({"tenant": "acme", "name": "n", "execution": "arn:x", "status": "SUCCEEDED", "start": 1000, "stop": 61000})), &runs).await.expect("read");
        assert_eq!(
            (ok.outcome, ok.duration_seconds, ok.execution.as_deref()),
            (TenantOutcome::Succeeded, Some(60), Some("arn:x"))
        );
        let failed = result(
            outcome(json!({"tenant": "acme", "name": "bad", "error": TASK_FAILED})),
            &runs,
        )
        .await
        .expect("read");
        assert_eq!(failed.outcome, TenantOutcome::Failed);
        assert_eq!(
            failed.error.as_deref(),
            Some("VerificationFailed: HTTP 500")
        );
        assert_eq!(failed.execution, Some(arn("bad")));
        let locked = result(
            outcome(json!({"tenant": "acme", "name": "held", "error": TASK_FAILED})),
            &runs,
        )
        .await
        .expect("read");
        assert_eq!(
            locked.outcome,
            TenantOutcome::Locked,
            "a locked tenant is reported, not a failure"
        );
        let again = result(
            outcome(json!({"tenant": "acme", "name": "done", "error": ALREADY_EXISTS})),
            &runs,
        )
        .await
        .expect("read");
        assert_eq!(
            again.outcome,
            TenantOutcome::Succeeded,
            "a child that already ran counts as it ended"
        );
        let busy = result(
            outcome(json!({"tenant": "acme", "name": "busy", "error": ALREADY_EXISTS})),
            &runs,
        )
        .await
        .expect("read");
        assert_eq!(busy.outcome, TenantOutcome::Failed);
        assert!(busy
            .error
            .as_deref()
            .is_some_and(|e| e.contains("already running")));
        let long = result(
            outcome(json!({"tenant": "acme", "name": "long", "error": TASK_FAILED})),
            &runs,
        )
        .await
        .expect("read");
        assert!(long.error.as_deref().is_some_and(
            |e| e.starts_with("DatabaseError: ") && e.chars().count() == ERROR_MAX + 1
        ));
        let runtime = result(
            outcome(json!({"tenant": "acme", "name": "n", "error": "States.Runtime"})),
            &runs,
        )
        .await
        .expect("read");
        assert!(runtime
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("States.Runtime")));
    }
}
