//! What notify says, to people (the SNS subject and body) and to systems
//! (the event details, the run's final cause), and the tenant config
//! document: pure functions of the run's state, so the texts are read and
//! tested apart from the writes.

use stepdeploy_shared::contract::{DatabaseOutput, DnsOutput, EcsOutput, RunState, PHASES};
use stepdeploy_shared::DeploymentPlan;

/// Who a run was for, as messages name it: from the plan when bootstrap
/// made one, else from the event (a run refused at bootstrap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunNames {
    /// The tenant (`unknown` when neither says).
    pub tenant: String,
    /// The environment (`unknown` when neither says).
    pub environment: String,
    /// The execution ARN (empty without a plan).
    pub execution: String,
}

impl RunNames {
    /// The names `run` gives.
    pub fn of(run: &RunState) -> Self {
        let plan = run.plan();
        let detail = &run.event["detail"];
        let tenant = plan
            .map(|p| p.tenant.to_string())
            .or_else(|| detail["tenant"].as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".into());
        let environment = plan
            .map(|p| p.environment.to_string())
            .or_else(|| detail["environment"].as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".into());
        let execution = plan.map(|p| p.execution.clone()).unwrap_or_default();
        Self {
            tenant,
            environment,
            execution,
        }
    }

    /// The message attributes subscribers filter on.
    pub fn attributes<'a>(&'a self, outcome: &'a str) -> [(&'a str, &'a str); 3] {
        [
            ("tenant", self.tenant.as_str()),
            ("environment", self.environment.as_str()),
            ("outcome", outcome),
        ]
    }
}

/// The subject of a success message.
pub fn success_subject(names: &RunNames) -> String {
    format!(
        "stepdeploy: {} deployed to {}",
        names.tenant, names.environment
    )
}

/// The body of a success message: where the tenant is, what ran, who asked.
pub fn success_body(plan: &DeploymentPlan, names: &RunNames, now: &str) -> String {
    let phases: Vec<&str> = PHASES
        .into_iter()
        .filter(|p| match *p {
            "approval" => plan.phases.approval,
            "verify" => plan.phases.verify,
            "dns" => plan.phases.dns,
            _ => true,
        })
        .collect();
    let RunNames {
        tenant,
        environment,
        execution,
    } = names;
    format!(
        "{tenant} is live in {environment}.\n\nURL: https://{host}/\nAdmin: https://{host}/wp-admin/\nImage: {image}\nPhases: {phases}\nStarted: {started}\nFinished: {now}\nRequested by: {by}\nExecution: {execution}\nConsole: https://console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution}\n",
        host = plan.names.host,
        image = plan.image,
        phases = phases.join(" → "),
        started = plan.started_at,
        by = plan.requested_by,
        region = execution.split(':').nth(3).unwrap_or("eu-west-1"),
    )
}

/// The detail of the `Tenant Deployment Succeeded` event.
pub fn success_event(plan: &DeploymentPlan, names: &RunNames) -> serde_json::Value {
    let RunNames {
        tenant,
        environment,
        execution,
    } = names;
    serde_json::json!({"tenant": tenant, "environment": environment, "execution": execution, "image": plan.image, "url": format!("https://{}/", plan.names.host)})
}

/// How a failed run is reported: where it failed, its error, and what
/// rollback did about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The first phase without a result.
    pub phase: &'static str,
    /// The run's error name (`Unknown` when the state has none).
    pub error: String,
    /// The run's cause as Step Functions recorded it.
    pub cause: String,
    /// What rollback did.
    pub rollback: RollbackOutcome,
}

impl Failure {
    /// The failure `run` records.
    pub fn of(run: &RunState) -> Self {
        let error = run.error.clone().unwrap_or_default();
        Self {
            phase: failed_phase(run),
            error: error.error.unwrap_or_else(|| "Unknown".into()),
            cause: error.cause.unwrap_or_default(),
            rollback: rollback_outcome(run),
        }
    }

    /// The message subject.
    pub fn subject(&self, names: &RunNames) -> String {
        format!(
            "stepdeploy: {} failed in {} at {} ({})",
            names.tenant, names.environment, self.phase, self.error
        )
    }

    /// The message body.
    pub fn body(&self, names: &RunNames) -> String {
        format!(
            "Deploying {} to {} failed at {}.\n\nError: {}\nCause: {}\nRolled back: {}\nExecution: {}\n",
            names.tenant,
            names.environment,
            self.phase,
            self.error,
            cause_text(&self.cause).chars().take(2000).collect::<String>(),
            self.rollback.text,
            names.execution,
        )
    }

    /// The detail of the `Tenant Deployment Failed` event.
    pub fn event(&self, names: &RunNames) -> serde_json::Value {
        let RunNames {
            tenant,
            environment,
            execution,
        } = names;
        serde_json::json!({"tenant": tenant, "environment": environment, "execution": execution, "phase": self.phase, "error": self.error, "reason": cause_text(&self.cause).chars().take(1000).collect::<String>(), "rollback": {"complete": self.rollback.complete, "outcome": self.rollback.text}})
    }

    /// The run's cause with the rollback's outcome added, in the cause's own
    /// shape (a Lambda's JSON keeps its `errorType`), so the console shows both.
    pub fn cause_with_rollback(&self) -> String {
        let tail = format!(" | Rolled back: {}", self.rollback.text);
        match serde_json::from_str::<serde_json::Value>(&self.cause) {
            Ok(mut v) if v["errorMessage"].is_string() => {
                let message = format!("{}{tail}", v["errorMessage"].as_str().unwrap_or_default());
                v["errorMessage"] = serde_json::Value::String(message);
                v.to_string()
            }
            _ => format!("{}{tail}", self.cause),
        }
    }
}

/// What rollback did, as the failure message and event say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackOutcome {
    /// Nothing is left.
    pub complete: bool,
    /// One line for people.
    pub text: String,
}

/// Incomplete when rollback failed or never ran; else what it removed and restored.
fn rollback_outcome(run: &RunState) -> RollbackOutcome {
    if let Some(error) = &run.rollback_error {
        return RollbackOutcome {
            complete: false,
            text: format!(
                "NOT complete — {}",
                cause_text(error.cause.as_deref().unwrap_or("rollback failed"))
            ),
        };
    }
    let Some(rollback) = &run.rollback else {
        return RollbackOutcome {
            complete: false,
            text: "rollback did not run".into(),
        };
    };
    let (removed, restored) = (&rollback.output.removed, &rollback.output.restored);
    let text = match (removed.is_empty(), restored.is_empty()) {
        (true, true) => "complete; the run had created nothing".to_string(),
        (false, true) => format!("complete; removed {}", removed.join(", ")),
        (true, false) => format!("complete; restored {}", restored.join(", ")),
        (false, false) => format!(
            "complete; removed {}; restored {}",
            removed.join(", "),
            restored.join(", ")
        ),
    };
    RollbackOutcome {
        complete: true,
        text,
    }
}

/// A Lambda's cause is `{"errorType", "errorMessage"}`: its message.
fn cause_text(cause: &str) -> String {
    serde_json::from_str::<serde_json::Value>(cause)
        .ok()
        .and_then(|v| v["errorMessage"].as_str().map(str::to_string))
        .unwrap_or_else(|| cause.to_string())
}

/// The phase the run failed in: the first one, in run order, without a
/// result (approval and verify count as done when switched off, verify
/// otherwise only once stable).
fn failed_phase(state: &RunState) -> &'static str {
    let done = |phase: &str| match phase {
        "bootstrap" => state.plan.is_some(),
        "approval" => {
            state.approval.is_some()
                || state
                    .plan
                    .as_ref()
                    .is_some_and(|p| !p.output.phases.approval)
        }
        "ecs" => state.ecs.is_some(),
        "database" => state.database.is_some(),
        "verify" => {
            state.verify.as_ref().is_some_and(|v| v.output.stable)
                || state.plan.as_ref().is_some_and(|p| !p.output.phases.verify)
        }
        _ => false,
    };
    PHASES
        .iter()
        .find(|p| !done(p))
        .copied()
        .unwrap_or("notify")
}

/// The tenant config document (never a password).
pub fn config_document(
    plan: &DeploymentPlan,
    ecs: &EcsOutput,
    database: &DatabaseOutput,
    dns: Option<&DnsOutput>,
    now: &str,
) -> serde_json::Value {
    let url = format!("https://{}", plan.names.host);
    serde_json::json!({
        "tenant_name": plan.tenant,
        "environment": plan.environment,
        "deployment_date": now,
        "deployed_by": plan.requested_by,
        "execution": plan.execution,
        "image": plan.image,
        "status": "active",
        "region": plan.env.region,
        "url": url,
        "admin_url": format!("{url}/wp-admin/"),
        "infrastructure": {
            "account_id": plan.env.account_id,
            "cluster": plan.env.cluster,
            "ecs_service": plan.names.service,
            "task_definition": ecs.task_definition_arn,
            "target_group": ecs.target_group_arn,
            "listener_rule": ecs.listener_rule_arn,
            "alb_listener_rule_priority": plan.alb_priority,
        },
        "database": {
            "name": database.database,
            "username": database.username,
            "rds_endpoint": plan.env.rds.endpoint,
            "secret_arn": database.secret_arn,
        },
        "storage": {"efs_id": plan.env.efs_id, "access_point_id": ecs.access_point_id, "mount_path": plan.names.efs_path},
        "dns": {"record": plan.names.host, "alias": dns.map(|d| d.target.clone())},
    })
}

/// Now, as the document and the registry date a deployment.
pub fn now_rfc3339() -> String {
    stepdeploy_shared::names::now_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(state: serde_json::Value) -> RunState {
        serde_json::from_value(state).expect("a run state")
    }

    #[test]
    fn the_failed_phase_is_the_first_without_a_result() {
        let plan = serde_json::json!({"output": stepdeploy_shared::plan::sample("wordpress:6.4-apache", 140)});
        assert_eq!(failed_phase(&run(serde_json::json!({}))), "bootstrap");
        // approval is off in the sample plan: done without a result.
        assert_eq!(
            failed_phase(&run(serde_json::json!({"plan": plan}))),
            "database"
        );
        let unstable = run(serde_json::json!({
            "plan": plan,
            "database": {"output": {"database": "d", "username": "u", "secret_arn": "s", "changes": []}},
            "ecs": {"output": {"task_definition_arn": "td", "target_group_arn": "tg", "access_point_id": "ap", "listener_rule_arn": "r", "service_arn": "svc", "changes": []}},
            "verify": {"output": {"stable": false, "attempt": 3, "checks": [], "report": null, "failing": "http: 502"}},
        }));
        assert_eq!(failed_phase(&unstable), "verify");
    }

    #[test]
    fn the_cause_keeps_its_shape_with_the_rollback_added() {
        let mut failure = Failure::of(&run(serde_json::json!({
            "error": {"Error": "DatabaseError", "Cause": "connect refused"},
            "rollback": {"output": {"removed": [], "restored": ["service_update svc"], "lock_released": true}},
        })));
        assert_eq!(
            failure.cause_with_rollback(),
            "connect refused | Rolled back: complete; restored service_update svc"
        );
        failure.cause = r#"{"errorType":"DatabaseError","errorMessage":"connect refused"}"#.into();
        let cause: serde_json::Value =
            serde_json::from_str(&failure.cause_with_rollback()).expect("JSON");
        assert_eq!(cause["errorType"], "DatabaseError");
        assert_eq!(
            cause["errorMessage"],
            "connect refused | Rolled back: complete; restored service_update svc"
        );
        let none = Failure::of(&run(serde_json::json!({})));
        assert_eq!(
            (none.error.as_str(), none.rollback.complete),
            ("Unknown", false)
        );
        assert_eq!(none.rollback.text, "rollback did not run");
    }
}
