//! `confirm`: the step right after the gate. The run goes on only if the
//! table holds a real quorum for exactly this change (resuming the task with
//! `SendTaskSuccess` by hand is not enough); see
//! [`stepdeploy_shared::approvals::judge`].

use super::approval_of;
use crate::error::ApprovalError;
use crate::handler::ConfirmRequest;
use crate::ports::Votes;
use stepdeploy_shared::approvals::{self, Subject};
use stepdeploy_shared::config::EnvironmentSet;
use stepdeploy_shared::contract::{ApprovalOutcome, LateVote};

/// Who approved, and the decisions that came too late (`$.approval`).
pub async fn confirm(
    mut input: ConfirmRequest,
    votes: &impl Votes,
    environments: &EnvironmentSet,
) -> Result<ApprovalOutcome, ApprovalError> {
    let approval = approval_of(&mut input.plan, environments)?;
    let plan = &input.plan;
    let request = votes.request(&input.execution).await?;
    let cast = match &request {
        Some(r) => votes.votes(&input.execution, &r.attempt).await?,
        None => Vec::new(),
    };
    let subject = Subject {
        execution: &input.execution,
        action: input.approving,
        tenant: plan.tenant.as_str(),
        environment: plan.environment.as_str(),
        image: plan.image.as_str(),
        requested_by: &plan.requested_by,
    };
    let approved_by = approvals::judge(&subject, request.as_ref(), &cast, &approval)
        .map_err(ApprovalError::Bypassed)?;
    let late = cast
        .iter()
        .filter(|v| v.late)
        .map(|v| LateVote {
            approver: v.approver.clone(),
            decision: v.decision.clone(),
            reason: Some(v.reason.clone()),
        })
        .collect();
    Ok(ApprovalOutcome { approved_by, late })
}
