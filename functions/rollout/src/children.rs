//! The rollout's child deployments: what each is started with (a
//! `Tenant Deployment Requested` event naming the rollout), and what its
//! Map iteration answered, read back as a [`TenantResult`].
//!
//! A child's name and input depend only on the rollout and the tenant, so a
//! redriven wave starts nothing twice: Step Functions answers the same name
//! with the same input as the running child, and a finished one with
//! `ExecutionAlreadyExists`, which is looked up here, not counted as a
//! failure.

use crate::ports::Children;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
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
const ERROR_MAX: usize = 400;

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
    /// Its input: `{event}`, as the trigger gives a deploy run.
    pub input: Value,
}

/// The wave the Map runs next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextWave {
    /// 1-based.
    pub number: u32,
    /// Its children, in tenant order.
    pub children: Vec<Child>,
}

/// The children of `wave`.
pub fn wave(info: &RolloutInfo, wave: &Wave) -> NextWave {
    NextWave {
        number: wave.number,
        children: wave
            .tenants
            .iter()
            .map(|tenant| Child {
                tenant: tenant.clone(),
                name: child_execution_name(&info.name, &info.environment, tenant),
                input: json!({ "event": event(info, tenant) }),
            })
            .collect(),
    }
}

/// The deployment request a child runs: the rollout's image for one
/// tenant, `rollout` naming the rollout run (in an approval environment
/// the guard then checks the rollout's quorum instead of a gate of its own).
fn event(info: &RolloutInfo, tenant: &TenantName) -> Value {
    let arn: Vec<&str> = info.execution.split(':').collect();
    json!({
        "version": "0",
        "id": format!("{}/{tenant}", info.name),
        "detail-type": DEPLOY_REQUESTED,
        "source": EVENT_SOURCE,
        "account": arn.get(4).copied().unwrap_or_default(),
        "time": info.started_at,
        "region": arn.get(3).copied().unwrap_or_default(),
        "resources": [info.execution],
        "detail": {
            "tenant": tenant,
            "environment": info.environment,
            "image": info.image,
            "requested_by": info.requested_by,
            "rollout": info.execution,
        },
    })
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
    /// The iteration's error (failure).
    #[serde(default)]
    pub error: Option<String>,
    /// Its cause (for `States.TaskFailed` the child's DescribeExecution, as JSON text).
    #[serde(default)]
    pub cause: Option<String>,
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
            let arn = runs.arn_of(&outcome.name);
            let run = match &arn {
                Some(arn) => runs.describe(arn).await?,
                None => None,
            };
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
            let child: Value = outcome
                .cause
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or(Value::Null);
            if let Some(arn) = child["ExecutionArn"].as_str() {
                result.execution = Some(arn.to_string());
            }
            result.duration_seconds =
                duration(child.get("StartDate"), child.get("StopDate")).or(result.duration_seconds);
            let mut error = child["Error"].as_str().map(str::to_string);
            if error.is_none() {
                if let Some(arn) = &result.execution {
                    error = runs.describe(arn).await?.and_then(|r| r.error);
                }
            }
            let status = child["Status"].as_str().unwrap_or("FAILED").to_string();
            failed_as(&mut result, error.as_deref(), &status);
            if let (Some(text), Some(cause)) = (&mut result.error, child["Cause"].as_str()) {
                text.push_str(": ");
                text.push_str(cause);
            }
        }
        Some(other) => {
            result.error = Some(format!(
                "{other}: {}",
                outcome.cause.as_deref().unwrap_or("no cause given")
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
    use crate::ports::ChildRun;
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
        let event = &one.children[1].input["event"];
        assert_eq!(event["detail-type"], DEPLOY_REQUESTED);
        assert_eq!(event["detail"]["tenant"], "bravo");
        assert_eq!(event["detail"]["image"], "wordpress:6.7");
        assert_eq!(event["detail"]["rollout"], info().execution);
        assert_eq!(
            (event["account"].as_str(), event["region"].as_str()),
            (Some("123456789012"), Some("eu-west-1"))
        );
    }

    #[tokio::test]
    async fn outcomes_read_as_results() {
        let runs = Runs(HashMap::from([
            (
                "arn:aws:states:eu-west-1:1:execution:s-deploy-tenant:done".to_string(),
                ChildRun {
                    status: "SUCCEEDED".into(),
                    error: None,
                },
            ),
            (
                "arn:aws:states:eu-west-1:1:execution:s-deploy-tenant:busy".to_string(),
                ChildRun {
                    status: "RUNNING".into(),
                    error: None,
                },
            ),
        ]));
        let ok = result(outcome(json!({"tenant": "acme", "name": "n", "execution": "arn:x", "status": "SUCCEEDED", "start": 1000, "stop": 61000})), &runs).await.expect("read");
        assert_eq!(
            (ok.outcome, ok.duration_seconds, ok.execution.as_deref()),
            (TenantOutcome::Succeeded, Some(60), Some("arn:x"))
        );
        let cause = json!({"ExecutionArn": "arn:c", "Status": "FAILED", "Error": "VerificationFailed", "Cause": "HTTP 500", "StartDate": 0, "StopDate": 2000}).to_string();
        let failed = result(
            outcome(json!({"tenant": "acme", "name": "n", "error": TASK_FAILED, "cause": cause})),
            &runs,
        )
        .await
        .expect("read");
        assert_eq!(failed.outcome, TenantOutcome::Failed);
        assert_eq!(
            failed.error.as_deref(),
            Some("VerificationFailed: HTTP 500")
        );
        assert_eq!(
            (failed.execution.as_deref(), failed.duration_seconds),
            (Some("arn:c"), Some(2))
        );
        let cause =
            json!({"ExecutionArn": "arn:l", "Status": "FAILED", "Error": DEPLOYMENT_LOCKED})
                .to_string();
        let locked = result(
            outcome(json!({"tenant": "acme", "name": "n", "error": TASK_FAILED, "cause": cause})),
            &runs,
        )
        .await
        .expect("read");
        assert_eq!(
            locked.outcome,
            TenantOutcome::Locked,
            "a locked tenant is reported, not a failure"
        );
        let again = result(outcome(json!({"tenant": "acme", "name": "done", "error": ALREADY_EXISTS, "cause": "exists"})), &runs).await.expect("read");
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
        let other = result(outcome(json!({"tenant": "acme", "name": "n", "error": "States.Runtime", "cause": "x".repeat(1000)})), &runs).await.expect("read");
        assert!(other.error.as_deref().is_some_and(
            |e| e.starts_with("States.Runtime: ") && e.chars().count() == ERROR_MAX + 1
        ));
    }
}
