//! Naming and starting executions: one run per request event, named after
//! it, and a loud note for an event with stepdeploy's source that no rule
//! acts on.

use crate::error::TriggerError;
use crate::ports::{Complaints, Executions};
use serde::Serialize;
use stepdeploy_shared::names;
use stepdeploy_shared::request::{
    DEPLOY_REQUESTED, REQUESTS, ROLLBACK_REQUESTED, TEARDOWN_REQUESTED,
};
use stepdeploy_shared::rollout::ROLLOUT_REQUESTED;

/// Environment variable naming the deploy state machine.
pub const DEPLOY_ARN_VAR: &str = "STEPDEPLOY_DEPLOY_STATE_MACHINE_ARN";
/// Environment variable naming the teardown state machine.
pub const TEARDOWN_ARN_VAR: &str = "STEPDEPLOY_TEARDOWN_STATE_MACHINE_ARN";
/// Environment variable naming the fleet rollout state machine.
pub const ROLLOUT_ARN_VAR: &str = "STEPDEPLOY_ROLLOUT_STATE_MACHINE_ARN";
/// What a rollout's execution name starts with, in the tenant's place.
pub const ROLLOUT_NAME_PREFIX: &str = "rollout";

/// The state machines events start.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// For `Tenant Deployment Requested` and `Tenant Rollback Requested`.
    pub deploy: Option<String>,
    /// For `Tenant Teardown Requested`.
    pub teardown: Option<String>,
    /// For `Fleet Rollout Requested`.
    pub rollout: Option<String>,
}

impl Targets {
    /// Reads [`DEPLOY_ARN_VAR`], [`TEARDOWN_ARN_VAR`] and [`ROLLOUT_ARN_VAR`].
    pub fn from_env() -> Self {
        Self {
            deploy: std::env::var(DEPLOY_ARN_VAR).ok().filter(|v| !v.is_empty()),
            teardown: std::env::var(TEARDOWN_ARN_VAR)
                .ok()
                .filter(|v| !v.is_empty()),
            rollout: std::env::var(ROLLOUT_ARN_VAR)
                .ok()
                .filter(|v| !v.is_empty()),
        }
    }
}

/// Outcome of a start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Started {
    /// The run's ARN.
    pub execution_arn: String,
    /// The run's name (see [`execution_name`]).
    pub name: String,
    /// `true` if the execution already existed (a duplicate delivery).
    pub deduplicated: bool,
}

/// An event nothing was started for, by its detail-type as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotUnderstood {
    /// The detail-type, quoted and cut short.
    pub not_understood: String,
}

/// What trigger answers (either shape, as is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum TriggerOutput {
    /// A request event: its run.
    Started(Started),
    /// Any other detail-type.
    NotUnderstood(NotUnderstood),
}

/// Handles one event from the rules: the raw EventBridge event, read as
/// JSON (it is stepdeploy's one untyped input; bootstrap validates it).
pub async fn handle(
    event: serde_json::Value,
    targets: &Targets,
    executions: &impl Executions,
    complaints: &impl Complaints,
) -> Result<TriggerOutput, TriggerError> {
    let detail_type = event["detail-type"].as_str().unwrap_or_default();
    if !REQUESTS.contains(&detail_type) {
        let received = not_understood(&event, complaints).await?;
        return Ok(TriggerOutput::NotUnderstood(received));
    }
    let started = start(event, targets, executions).await?;
    Ok(TriggerOutput::Started(started))
}

/// An event with stepdeploy's source whose detail-type no rule knows (a
/// misspelling): nothing starts, and that is said out loud.
pub async fn not_understood(
    event: &serde_json::Value,
    complaints: &impl Complaints,
) -> Result<NotUnderstood, TriggerError> {
    let received = stepdeploy_shared::validate::shown(event["detail-type"].as_str().unwrap_or(""));
    let known = REQUESTS;
    let detail = serde_json::json!({
        "received_detail_type": event["detail-type"],
        "event_id": event["id"],
        "known_detail_types": known,
        "detail": event["detail"],
    });
    complaints
        .publish(
            "stepdeploy: request not understood",
            &format!(
                "An event with source \"stepdeploy\" and detail-type {received} reached the bus; no rule acts on it, so nothing was started.\nstepdeploy acts on: {}.\nEvent id: {}\n",
                known.join(", "),
                event["id"].as_str().unwrap_or("-"),
            ),
        )
        .await?;
    complaints
        .put_event(stepdeploy_shared::request::REQUEST_NOT_UNDERSTOOD, &detail)
        .await?;
    Ok(NotUnderstood {
        not_understood: received,
    })
}

/// `{tenant}-{env}-{request id or event id}` (see [`names::execution_name`]).
///
/// The event id dedupes EventBridge's redeliveries; a sender that may re-send
/// an event (a retrying CI job) sets `detail.request_id`, which takes its
/// place, so the re-sent event also finds the first run.
///
/// Built from the raw event, before validation: an invalid request still
/// gets a run (which fails at bootstrap with `ValidationFailed`, visible in
/// the console) under a recognisable name.
pub fn execution_name(event: &serde_json::Value) -> String {
    let detail = &event["detail"];
    // A rollout is about a fleet, not a tenant: `rollout-{env}-{id}`.
    let rollout = event["detail-type"].as_str() == Some(ROLLOUT_REQUESTED);
    names::execution_name(
        if rollout {
            ROLLOUT_NAME_PREFIX
        } else {
            detail["tenant"].as_str().unwrap_or("invalid")
        },
        detail["environment"].as_str().unwrap_or("unknown"),
        detail["request_id"]
            .as_str()
            .or_else(|| event["id"].as_str())
            .unwrap_or("no-id"),
    )
}

/// Starts the state machine for one event.
pub async fn start(
    event: serde_json::Value,
    targets: &Targets,
    executions: &impl Executions,
) -> Result<Started, TriggerError> {
    let detail_type = event["detail-type"].as_str().unwrap_or_default();
    let state_machine = match detail_type {
        // A rollback is a deployment of a recorded release: same pipeline.
        DEPLOY_REQUESTED | ROLLBACK_REQUESTED => targets.deploy.as_deref().ok_or(TriggerError::NotConfigured(DEPLOY_ARN_VAR))?,
        TEARDOWN_REQUESTED => targets.teardown.as_deref().ok_or(TriggerError::NotConfigured(TEARDOWN_ARN_VAR))?,
        ROLLOUT_REQUESTED => targets.rollout.as_deref().ok_or(TriggerError::NotConfigured(ROLLOUT_ARN_VAR))?,
        other => {
            return Err(TriggerError::Unroutable(format!(
                "detail-type: {other:?} starts nothing; expected {DEPLOY_REQUESTED:?}, {ROLLBACK_REQUESTED:?}, {TEARDOWN_REQUESTED:?} or {ROLLOUT_REQUESTED:?}"
            )))
        }
    };
    let name = execution_name(&event);
    let input = serde_json::json!({ "event": event }).to_string();
    let started = executions.start(state_machine, &name, input).await?;
    let deduplicated = started.is_none();
    // ARN of an execution: the state machine's ARN with `stateMachine` → `execution`, plus the name.
    let execution_arn = started.unwrap_or_else(|| {
        format!(
            "{}:{name}",
            state_machine.replacen(":stateMachine:", ":execution:", 1)
        )
    });
    if deduplicated {
        // The same request again (a redelivery, a retrying sender) finds its
        // run; another request under the same id is refused, not swallowed.
        let first: Option<serde_json::Value> = executions
            .input_of(&execution_arn)
            .await?
            .and_then(|input| serde_json::from_str(&input).ok());
        if let Some(first) = first {
            if first["event"]["detail"] != event["detail"] {
                return Err(TriggerError::Conflict(format!(
                    "execution {name} already exists for a request with another detail; \
                     a request_id names one request: use a new request_id for a new request"
                )));
            }
        }
    }
    tracing::info!(%execution_arn, deduplicated, "execution for event");
    Ok(Started {
        execution_arn,
        name,
        deduplicated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::SfnExecutions;
    use aws_sdk_sfn::operation::start_execution::{StartExecutionError, StartExecutionOutput};
    use aws_sdk_sfn::types::error::ExecutionAlreadyExists;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use serde_json::json;
    use stepdeploy_shared::aws_error::AwsCallError;
    use stepdeploy_shared::errors::ErrorName;

    const SM: &str = "arn:aws:states:eu-west-1:123456789012:stateMachine:stepdeploy-deploy-tenant";

    fn event(detail: serde_json::Value) -> serde_json::Value {
        json!({"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "Tenant Deployment Requested",
               "source": "stepdeploy", "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "eu-west-1",
               "resources": [], "detail": detail})
    }

    fn targets() -> Targets {
        Targets {
            deploy: Some(SM.into()),
            teardown: None,
            rollout: None,
        }
    }

    #[test]
    fn names_are_readable_and_bounded() {
        let e = event(json!({"tenant": "goldencrust", "environment": "sit"}));
        assert_eq!(
            execution_name(&e),
            "goldencrust-sit-6a7e8feb-b491-4cf7-a9f1-bf3703467718"
        );
        // Not in name form: readable, plus a digest of what was sent.
        let e = event(json!({"tenant": "Golden Crust!", "environment": "prod"}));
        let name = execution_name(&e);
        assert!(
            name.starts_with("golden-crust--prod-6a7e8feb-b491-4cf7-a9f1-bf3703467718-x"),
            "{name}"
        );
        let mut e = event(json!({"tenant": "t".repeat(200), "environment": "e".repeat(50)}));
        e["id"] = json!("x".repeat(200));
        let name = execution_name(&e);
        assert_eq!(name.len(), 80);
        assert!(name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        assert_eq!(execution_name(&json!({})), "invalid-unknown-no-id");
        let e =
            event(json!({"tenant": "goldencrust", "environment": "sit", "request_id": "build-42"}));
        assert_eq!(execution_name(&e), "goldencrust-sit-build-42");
    }

    /// A squatter's request cannot take the name a later valid request uses:
    /// ids and tenants that only look alike once slugged name different runs.
    #[test]
    fn look_alike_requests_get_different_names() {
        let name = |tenant: &str, id: &str| {
            execution_name(&event(
                json!({"tenant": tenant, "environment": "prod", "request_id": id}),
            ))
        };
        let valid = name("acme", "release-7");
        assert_eq!(valid, "acme-prod-release-7");
        for squat in [
            name("acme", "Release_7"),
            name("acme", "release_7"),
            name("ACME", "release-7"),
        ] {
            assert_ne!(squat, valid);
            assert!(squat.starts_with("acme-prod-release-7-x"), "{squat}");
        }
        assert_ne!(name("acme", "Release_7"), name("acme", "release_7"));
    }

    #[tokio::test]
    async fn starts_named_execution_with_the_event_as_input() {
        let rule = mock!(aws_sdk_sfn::Client::start_execution)
            .match_requests(|r| {
                r.state_machine_arn() == Some(SM)
                    && r.name() == Some("goldencrust-sit-6a7e8feb-b491-4cf7-a9f1-bf3703467718")
                    && r.input()
                        .and_then(|i| serde_json::from_str::<serde_json::Value>(i).ok())
                        .is_some_and(|i| i["event"]["detail"]["tenant"] == "goldencrust")
            })
            .then_output(|| {
                StartExecutionOutput::builder()
                    .execution_arn("arn:exec:1")
                    .start_date(aws_sdk_sfn::primitives::DateTime::from_secs(0))
                    .build()
                    .expect("output")
            });
        let sfn = SfnExecutions(mock_client!(aws_sdk_sfn, [&rule]));
        let started = start(
            event(json!({"tenant": "goldencrust", "environment": "sit"})),
            &targets(),
            &sfn,
        )
        .await
        .expect("started");
        assert_eq!(
            started,
            Started {
                execution_arn: "arn:exec:1".into(),
                name: "goldencrust-sit-6a7e8feb-b491-4cf7-a9f1-bf3703467718".into(),
                deduplicated: false
            }
        );
    }

    #[tokio::test]
    async fn duplicate_delivery_is_not_an_error() {
        let rule = mock!(aws_sdk_sfn::Client::start_execution).then_error(|| {
            StartExecutionError::ExecutionAlreadyExists(
                ExecutionAlreadyExists::builder().message("exists").build(),
            )
        });
        let first = event(json!({"tenant": "goldencrust", "environment": "sit"}));
        let input = json!({ "event": first }).to_string();
        let describe = mock!(aws_sdk_sfn::Client::describe_execution).then_output(move || {
            aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput::builder()
                .execution_arn("arn:exec:1")
                .state_machine_arn(SM)
                .status(aws_sdk_sfn::types::ExecutionStatus::Running)
                .start_date(aws_sdk_sfn::primitives::DateTime::from_secs(0))
                .input(input.clone())
                .build()
                .expect("output")
        });
        let sfn = SfnExecutions(mock_client!(
            aws_sdk_sfn,
            RuleMode::MatchAny,
            [&rule, &describe]
        ));
        let started = start(first.clone(), &targets(), &sfn)
            .await
            .expect("deduplicated");
        assert!(started.deduplicated);
        // The same request id with another detail: refused, naming why.
        let mut other = first;
        other["detail"]["image"] = json!("wordpress:6.5-apache");
        let err = start(other, &targets(), &sfn)
            .await
            .expect_err("another request under the same id");
        assert_eq!(err.error_name(), "ValidationFailed");
        assert!(err.to_string().contains("another detail"), "{err}");
        assert_eq!(started.execution_arn, "arn:aws:states:eu-west-1:123456789012:execution:stepdeploy-deploy-tenant:goldencrust-sit-6a7e8feb-b491-4cf7-a9f1-bf3703467718");
    }

    #[tokio::test]
    async fn unroutable_or_unconfigured() {
        let rule = mock!(aws_sdk_sfn::Client::start_execution)
            .then_output(|| unreachable!("nothing may start"));
        let sfn = SfnExecutions(mock_client!(aws_sdk_sfn, [&rule]));
        let mut e = event(json!({}));
        e["detail-type"] = json!("Something Else");
        let err = start(e, &targets(), &sfn).await.expect_err("unroutable");
        assert_eq!(err.error_name(), "ValidationFailed");
        let mut e = event(json!({}));
        e["detail-type"] = json!("Tenant Teardown Requested");
        let err = start(e, &targets(), &sfn)
            .await
            .expect_err("no teardown machine");
        assert_eq!(err.error_name(), "ConfigInvalid");
        assert_eq!(rule.num_calls(), 0);
    }

    /// Everything said about an event nobody acts on, in memory.
    #[derive(Default)]
    struct Said(std::sync::Mutex<Vec<String>>);
    impl Complaints for Said {
        async fn publish(&self, subject: &str, message: &str) -> Result<(), AwsCallError> {
            self.0
                .lock()
                .expect("lock")
                .push(format!("publish {subject} | {message}"));
            Ok(())
        }
        async fn put_event(
            &self,
            detail_type: &str,
            detail: &serde_json::Value,
        ) -> Result<(), AwsCallError> {
            self.0
                .lock()
                .expect("lock")
                .push(format!("event {detail_type} {detail}"));
            Ok(())
        }
    }

    /// A misspelt detail-type starts nothing and is said out loud; a
    /// request starts its run.
    #[tokio::test]
    async fn unknown_detail_types_are_reported_and_requests_start() {
        let rule = mock!(aws_sdk_sfn::Client::start_execution).then_output(|| {
            StartExecutionOutput::builder()
                .execution_arn("arn:exec:1")
                .start_date(aws_sdk_sfn::primitives::DateTime::from_secs(0))
                .build()
                .expect("output")
        });
        let sfn = SfnExecutions(mock_client!(aws_sdk_sfn, [&rule]));
        let said = Said::default();
        let mut e = event(json!({"tenant": "goldencrust", "environment": "sit"}));
        e["detail-type"] = json!("Tenant Deployment Requestd");
        let out = handle(e, &targets(), &sfn, &said).await.expect("reported");
        assert_eq!(
            serde_json::to_value(&out).expect("json"),
            json!({"not_understood": "\"Tenant Deployment Requestd\""})
        );
        assert_eq!(rule.num_calls(), 0);
        let said = said.0.into_inner().expect("lock");
        assert!(
            said[0].starts_with("publish stepdeploy: request not understood"),
            "{}",
            said[0]
        );
        assert!(
            said[1].starts_with("event Request Not Understood"),
            "{}",
            said[1]
        );
        let e = event(json!({"tenant": "goldencrust", "environment": "sit"}));
        let out = handle(e, &targets(), &sfn, &Said::default())
            .await
            .expect("started");
        assert_eq!(
            serde_json::to_value(&out).expect("json"),
            json!({"execution_arn": "arn:exec:1", "name": "goldencrust-sit-6a7e8feb-b491-4cf7-a9f1-bf3703467718", "deduplicated": false})
        );
    }
}
