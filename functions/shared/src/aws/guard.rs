//! What every phase does with its payload before it acts: trust nothing in
//! it that says *where* or *whether* to change things.
//!
//! A phase function can be invoked directly by anyone with
//! `lambda:InvokeFunction` on it, with any plan. So the guard
//! - re-resolves the environment by name from the function's own configs
//!   (the environments layer), replacing the payload's account, role,
//!   ExternalId, cluster, endpoints and derived names: a plan cannot point a
//!   phase at another account or another tenant's resources;
//! - for a change in an environment with approvers, requires the run named by
//!   the plan to be running and to hold a real quorum for exactly this
//!   tenant, environment, image and action ([`crate::approvals::judge`]),
//!   failing with `ApprovalBypassed` otherwise.

use crate::approvals::{Action, ApprovalsTable, QuorumError, Subject};
use crate::aws_error::AwsCallError;
use crate::config::{ConfigError, EnvironmentSet};
use crate::errors::ErrorName;
use crate::names::ResourceNames;
use crate::validate::FieldError;
use crate::DeploymentPlan;
use std::sync::Arc;

/// The deploy state machine's name ends with this (`{stack}-deploy-tenant`).
pub const DEPLOY_MACHINE_SUFFIX: &str = "-deploy-tenant";
/// The teardown state machine's name ends with this.
pub const TEARDOWN_MACHINE_SUFFIX: &str = "-teardown-tenant";
/// The fleet rollout state machine's name ends with this.
pub const ROLLOUT_MACHINE_SUFFIX: &str = "-rollout-fleet";

/// The execution name at the end of an execution ARN.
fn execution_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or_default()
}

/// Whether a payload's change needs the quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quorum {
    /// The phase changes the environment (database, ecs, dns, teardown's remove).
    Required,
    /// The phase reads, reports, or undoes what its own run created.
    NotRequired,
}

/// Why a payload was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The environment configs could not be loaded.
    #[error("environment configuration is invalid: {0}")]
    Config(#[source] Arc<ConfigError>),
    /// The plan is malformed or names an unknown environment.
    #[error("invalid input: {0}")]
    Validation(#[from] FieldError),
    /// No valid quorum, or the run is not running.
    #[error(transparent)]
    Quorum(#[from] QuorumError),
}

impl ErrorName for GuardError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Config(_) => crate::error_names::CONFIG_INVALID,
            Self::Validation(_) => crate::error_names::VALIDATION_FAILED,
            Self::Quorum(e) => e.error_name(),
        }
    }
}

impl From<GuardError> for lambda_runtime::Diagnostic {
    fn from(err: GuardError) -> Self {
        crate::errors::diagnostic(&err)
    }
}

/// Replaces what the plan says about its environment with this function's
/// own config for that environment (by name), and re-derives the names.
pub fn reresolve(
    plan: &mut DeploymentPlan,
    environments: &EnvironmentSet,
) -> Result<(), FieldError> {
    let env = environments
        .get(plan.environment.as_str())
        .map_err(|e| FieldError::new("plan.environment", e.to_string()))?;
    // The tenant's load balancer is the one whose range holds its priority.
    plan.env = env.in_plan(plan.alb_priority);
    plan.names = ResourceNames::new(&plan.environment, &plan.tenant, &env.domain);
    // A run that overrides the deployment window needs a quorum even where
    // deployments need none: for it, the environment's `override_approval`
    // is its approval, here and so in every guarded phase.
    plan.env.approval = env.approval_for(plan.window_override.is_some()).cloned();
    plan.phases.approval = plan.env.approval.is_some();
    Ok(())
}

/// Is the run that `execution` names still running? (A plan naming a
/// finished run would replay its approval.)
pub trait Runs: Send + Sync {
    /// The execution's status (`RUNNING`, `SUCCEEDED`, …), `None` if there is no such execution.
    fn status(
        &self,
        execution: &str,
    ) -> impl std::future::Future<Output = Result<Option<String>, AwsCallError>> + Send;
}

/// [`Runs`] on Step Functions.
#[derive(Debug, Clone)]
pub struct StepFunctionsRuns(pub aws_sdk_sfn::Client);

impl Runs for StepFunctionsRuns {
    async fn status(&self, execution: &str) -> Result<Option<String>, AwsCallError> {
        match self
            .0
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.status().as_str().to_string())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_execution_does_not_exist() || e.is_invalid_arn()) =>
            {
                Ok(None)
            }
            Err(e) => Err(AwsCallError::new("states:DescribeExecution", e)),
        }
    }
}

/// The guard, built once per cold start.
pub struct Guard<R = StepFunctionsRuns> {
    environments: Result<EnvironmentSet, Arc<ConfigError>>,
    approvals: ApprovalsTable,
    runs: R,
}

impl Guard<StepFunctionsRuns> {
    /// The configs from `STEPDEPLOY_CONFIG_DIR`, the approvals table from
    /// `STEPDEPLOY_APPROVALS_TABLE`, on the orchestrator's credentials.
    pub fn from_env(config: &aws_types::SdkConfig) -> Self {
        Self {
            environments: EnvironmentSet::from_env().map_err(Arc::new),
            approvals: ApprovalsTable::from_env(config),
            runs: StepFunctionsRuns(aws_sdk_sfn::Client::new(config)),
        }
    }
}

impl<R: Runs> Guard<R> {
    /// With the given parts (tests).
    pub fn new(
        environments: Result<EnvironmentSet, Arc<ConfigError>>,
        approvals: ApprovalsTable,
        runs: R,
    ) -> Self {
        Self {
            environments,
            approvals,
            runs,
        }
    }

    /// The environment configs.
    pub fn environments(&self) -> Result<&EnvironmentSet, GuardError> {
        self.environments
            .as_ref()
            .map_err(|e| GuardError::Config(Arc::clone(e)))
    }

    /// Checks `plan` in place: re-resolved, and (for a change in an approval
    /// environment) approved for its run.
    pub async fn check(
        &self,
        plan: &mut DeploymentPlan,
        quorum: Quorum,
        action: Action,
    ) -> Result<(), GuardError> {
        reresolve(plan, self.environments()?)?;
        let Some(approval) = plan.env.approval.as_ref() else {
            return Ok(());
        };
        if quorum == Quorum::NotRequired {
            return Ok(());
        }
        // A deployment is approved in a deploy run, a removal in a teardown run.
        let expected = match action {
            Action::Deploy => DEPLOY_MACHINE_SUFFIX,
            Action::Teardown => TEARDOWN_MACHINE_SUFFIX,
            Action::Rollout => ROLLOUT_MACHINE_SUFFIX,
        };
        self.require_running(&plan.execution, expected).await?;
        // A rollout's child has no gate of its own: the rollout's quorum
        // covers it, if this run is the child the rollout names for the
        // tenant and the rollout (still running) was approved for this
        // tenant and image.
        let (execution, action) = match plan.rollout.as_deref() {
            Some(rollout) if action == Action::Deploy => {
                self.require_running(rollout, ROLLOUT_MACHINE_SUFFIX)
                    .await?;
                let rollout_name = execution_name(rollout);
                let wanted = crate::rollout::child_execution_name(
                    rollout_name,
                    &plan.environment,
                    &plan.tenant,
                );
                if execution_name(&plan.execution) != wanted {
                    return Err(QuorumError::Bypassed(format!(
                        "execution {} claims rollout {rollout}, whose run for {} is named {wanted}",
                        plan.execution, plan.tenant
                    ))
                    .into());
                }
                (rollout, Action::Rollout)
            }
            Some(_) => {
                return Err(QuorumError::Bypassed(format!(
                    "a {} is never part of a rollout",
                    action.as_str()
                ))
                .into())
            }
            None => (plan.execution.as_str(), action),
        };
        let subject = Subject {
            execution,
            action,
            tenant: plan.tenant.as_str(),
            environment: plan.environment.as_str(),
            image: plan.image.as_str(),
            requested_by: &plan.requested_by,
        };
        self.approvals.require_quorum(&subject, approval).await?;
        Ok(())
    }

    /// `execution` is a running run of the state machine whose name ends with `machine`.
    async fn require_running(&self, execution: &str, machine: &str) -> Result<(), GuardError> {
        let parts: Vec<&str> = execution.split(':').collect();
        if parts.len() != 8 || parts[5] != "execution" || !parts[6].ends_with(machine) {
            return Err(QuorumError::Bypassed(format!(
                "execution {execution} is not a run of the *{machine} state machine"
            ))
            .into());
        }
        match self
            .runs
            .status(execution)
            .await
            .map_err(QuorumError::Aws)?
        {
            Some(status) if status == "RUNNING" => Ok(()),
            other => Err(QuorumError::Bypassed(format!(
                "execution {execution} is {}, not a running run",
                other.as_deref().unwrap_or("unknown")
            ))
            .into()),
        }
    }

    /// [`Guard::check`] on the `plan` of a phase payload (`{plan, …}`),
    /// written back re-resolved. A payload without a plan passes unchanged:
    /// the phase refuses it with its own message.
    pub async fn admit(
        &self,
        payload: serde_json::Value,
        quorum: Quorum,
        action: Action,
    ) -> Result<serde_json::Value, GuardError> {
        self.admit_at(payload, "/plan", quorum, action).await
    }

    /// [`Guard::admit`] for a plan elsewhere in the payload (a JSON pointer:
    /// notify reads the whole run state, `/state/plan/output`).
    pub async fn admit_at(
        &self,
        mut payload: serde_json::Value,
        pointer: &str,
        quorum: Quorum,
        action: Action,
    ) -> Result<serde_json::Value, GuardError> {
        let Some(raw) = payload.pointer_mut(pointer) else {
            return Ok(payload);
        };
        let field = pointer.trim_start_matches('/').replace('/', ".");
        let mut plan: DeploymentPlan = serde_json::from_value(raw.take()).map_err(|e| {
            FieldError::new(
                field.clone(),
                crate::validate::one_line(&e.to_string(), 300),
            )
        })?;
        self.check(&mut plan, quorum, action).await?;
        *raw = serde_json::to_value(&plan).map_err(|e| FieldError::new(field, e.to_string()))?;
        Ok(payload)
    }
}

#[cfg(test)]
mod override_tests {
    use super::*;

    /// An override of the deployment window makes `override_approval` the
    /// run's approval where deployments need none, so every guarded phase
    /// requires its quorum; without an override nothing changes.
    #[test]
    fn an_override_run_is_an_approval_run() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/environments");
        let environments = EnvironmentSet::load_dir(&dir).expect("sample configs");
        let mut plan = crate::plan::sample("wordpress:6.4-apache", 40);
        reresolve(&mut plan, &environments).expect("sit");
        assert!(plan.env.approval.is_none() && !plan.phases.approval);
        plan.window_override = Some("board demo".into());
        reresolve(&mut plan, &environments).expect("sit");
        let approval = plan.env.approval.as_ref().expect("the override quorum");
        assert_eq!(approval.approvals_required, 2);
        assert!(plan.phases.approval);
    }
}
