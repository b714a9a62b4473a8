//! One file per thing the gate is asked: the state machine's `request`,
//! `confirm` and `expire`, and the approvers' links (`url`: GET shows a
//! confirmation page, POST goes to `decide`).

pub mod confirm;
pub mod decide;
pub mod expire;
pub mod request;
pub mod url;

use crate::error::ApprovalError;
use stepdeploy_shared::approvals::Action;
use stepdeploy_shared::config::{ApprovalConfig, EnvironmentSet};
use stepdeploy_shared::DeploymentPlan;

/// The plan's environment as this function's configs say (the allow-list
/// and quorum are never taken from the payload), and its approval settings.
pub(crate) fn approval_of(
    plan: &mut DeploymentPlan,
    environments: &EnvironmentSet,
) -> Result<ApprovalConfig, ApprovalError> {
    stepdeploy_shared::guard::reresolve(plan, environments)
        .map_err(|e| ApprovalError::Validation(e.to_string()))?;
    plan.env.approval.clone().ok_or_else(|| {
        ApprovalError::Validation(format!("{} has no approval configured", plan.environment))
    })
}

/// The question, in words (`deploy goldencrust to prod`).
fn question(action: Action, tenant: &str, env: &str) -> String {
    match action {
        Action::Deploy => format!("deploy {tenant} to {env}"),
        Action::Teardown => format!("remove {tenant} from {env}"),
        Action::Rollout => format!("roll out to {tenant} of {env}"),
    }
}
