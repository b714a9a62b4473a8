//! `expire`: the gate timed out (the state machine's `ApprovalTimedOut`
//! branch); its request is closed so late links are refused.

use crate::error::ApprovalError;
use crate::handler::Expired;
use crate::ports::Votes;
use stepdeploy_shared::approvals::status;

/// Closes `execution`'s request if it is still pending.
pub async fn expire(execution: &str, votes: &impl Votes) -> Result<Expired, ApprovalError> {
    let Some(request) = votes.request(execution).await? else {
        return Ok(Expired { expired: false });
    };
    let closed = votes
        .settle(
            execution,
            &request.attempt,
            status::PENDING,
            status::EXPIRED,
        )
        .await?;
    Ok(Expired { expired: closed })
}
