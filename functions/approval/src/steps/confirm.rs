//! `confirm`: the step right after the gate. The run goes on only if the
//! table holds a real quorum for exactly this change (resuming the task with
//! `SendTaskSuccess` by hand is not enough); see
//! [`stepdeploy_shared::approvals::judge`].

use crate::error::ApprovalError;
use crate::handler::{ConfirmRequest, Question};
use crate::ports::Votes;
use stepdeploy_shared::approvals::{self, Action, Subject};
use stepdeploy_shared::config::EnvironmentSet;
use stepdeploy_shared::contract::{ApprovalOutcome, LateVote};

/// Who approved, and the decisions that came too late (`$.approval`).
pub async fn confirm(
    input: ConfirmRequest,
    votes: &impl Votes,
    environments: &EnvironmentSet,
) -> Result<ApprovalOutcome, ApprovalError> {
    let question = Question::of(input.approving, input.plan, input.rollout, environments)?;
    let request = votes.request(&input.execution).await?;
    let cast = match &request {
        Some(r) => votes.votes(&input.execution, &r.attempt).await?,
        None => Vec::new(),
    };
    // A rollout's quorum must cover every tenant it lists: judged for each.
    let tenants = match question.action {
        Action::Rollout => question.tenants(),
        _ => vec![question.tenant.clone()],
    };
    let mut approved_by = Vec::new();
    for tenant in &tenants {
        let subject = Subject {
            execution: &input.execution,
            action: question.action,
            tenant,
            environment: &question.environment,
            image: &question.image,
            requested_by: &question.requested_by,
        };
        approved_by = approvals::judge(&subject, request.as_ref(), &cast, &question.approval)
            .map_err(ApprovalError::Bypassed)?;
    }
    let late = cast
        .iter()
        .filter(|v| v.late)
        .map(|v| LateVote {
            approver: v.approver.clone(),
            decision: v.decision.clone(),
            reason: Some(v.reason.clone()),
        })
        .collect();
    Ok(ApprovalOutcome {
        approved_by,
        late,
        confirmed_at: None,
    })
}
