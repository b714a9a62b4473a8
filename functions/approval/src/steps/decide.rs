//! A confirmed decision (POST): recorded as one vote per person and gate
//! attempt; a rejection fails the run at once (`ApprovalRejected`), the
//! approval that completes the quorum resumes it. A decision that lost the
//! race with the gate settling is recorded as late and counts for nothing.

use super::question;
use crate::link::{Decision, Link};
use crate::page::{html_escape, page, refuse, Page};
use crate::ports::{ApprovalRequest, TaskCallback, VoteOutcome, Votes};
use stepdeploy_shared::approvals::{self, status};
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::error_names;
use stepdeploy_shared::identity;

/// Records a decision and, when it settles the gate, resumes or fails the run.
pub async fn decide(
    votes: &impl Votes,
    runs: &impl TaskCallback,
    link: &Link,
    request: &ApprovalRequest,
    reason: &str,
) -> Result<Page, AwsCallError> {
    match request.status.as_str() {
        status::PENDING => {}
        // The quorum was reached but the resume failed: any approver's
        // confirmation retries it.
        status::SETTLING if link.decision == Decision::Approve => {
            let cast = votes.votes(&request.execution, &request.attempt).await?;
            return resume(votes, runs, request, &valid_approvals(request, &cast)).await;
        }
        _ => return too_late(votes, link, reason).await,
    }
    // One vote per person: the vote's key is the canonical identity.
    let voter = identity::canonical("", &link.approver).unwrap_or_else(|_| link.approver.clone());
    match votes
        .vote(request, &voter, link.decision.as_str(), reason)
        .await?
    {
        VoteOutcome::Recorded => {}
        VoteOutcome::AlreadyDecided => {
            return Ok(refuse(
                409,
                "you have already decided on this change; links work once",
            ))
        }
        VoteOutcome::GateSettled => return too_late(votes, link, reason).await,
    }
    match link.decision {
        Decision::Reject => reject(votes, runs, link, request, reason).await,
        Decision::Approve => approve(votes, runs, request).await,
    }
}

/// A recorded rejection: the gate closes (`rejected`) and the run is failed.
async fn reject(
    votes: &impl Votes,
    runs: &impl TaskCallback,
    link: &Link,
    request: &ApprovalRequest,
    reason: &str,
) -> Result<Page, AwsCallError> {
    if !votes
        .settle(
            &request.execution,
            &request.attempt,
            status::PENDING,
            status::REJECTED,
        )
        .await?
    {
        return too_late(votes, link, reason).await;
    }
    let cause = format!(
        "rejected by {}{}",
        link.approver,
        if reason.is_empty() {
            String::new()
        } else {
            format!(": {reason}")
        }
    );
    let stopped = match with_retries(|| runs.token(&request.execution, &request.token_hash)).await?
    {
        Some(token) => with_retries(|| runs.fail(&token, error_names::APPROVAL_REJECTED, &cause))
            .await
            .is_ok(),
        None => false,
    };
    let text = if stopped {
        "<p>The run was stopped. Nothing will be changed.</p>"
    } else {
        "<p>Your rejection is recorded and the gate is closed: the run cannot go on. \
         It could not be told at once, so it fails when the gate times out.</p>"
    };
    let what = question(request.action, &request.tenant, &request.environment);
    Ok(page(200, &format!("Rejected: {what}"), text))
}

/// A recorded approval: counted; the one that completes the quorum moves
/// the gate to `settling` and resumes the run.
async fn approve(
    votes: &impl Votes,
    runs: &impl TaskCallback,
    request: &ApprovalRequest,
) -> Result<Page, AwsCallError> {
    let what = question(request.action, &request.tenant, &request.environment);
    let cast = votes.votes(&request.execution, &request.attempt).await?;
    let valid = valid_approvals(request, &cast);
    let count = u32::try_from(valid.len()).unwrap_or(u32::MAX);
    if count < request.required {
        return Ok(page(
            200,
            &format!("Approval recorded: {what}"),
            &format!("<p>{count} of {} approvals so far.</p>", request.required),
        ));
    }
    if !votes
        .settle(
            &request.execution,
            &request.attempt,
            status::PENDING,
            status::SETTLING,
        )
        .await?
    {
        return Ok(page(
            200,
            &format!("Approval recorded: {what}"),
            &format!(
                "<p>Your approval is recorded; the gate had already opened with {n} of {n} approvals.</p>",
                n = request.required
            ),
        ));
    }
    resume(votes, runs, request, &valid).await
}

/// Distinct canonical approvers of this attempt, on its allow-list, not the requester.
fn valid_approvals(request: &ApprovalRequest, cast: &[approvals::Vote]) -> Vec<String> {
    let mut valid: Vec<String> = cast
        .iter()
        .filter(|v| !v.late && v.decision == "approve")
        .filter_map(|v| identity::canonical("", &v.approver).ok())
        .filter(|a| {
            request.approvers.iter().any(|x| identity::same(x, a))
                && !identity::same(a, &request.requested_by)
        })
        .collect();
    valid.sort();
    valid.dedup();
    valid
}

/// Calls `f` up to three times, 0.2 s then 0.8 s apart: the run waits on it.
async fn with_retries<T, F, Fut>(mut f: F) -> Result<T, AwsCallError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsCallError>>,
{
    let mut delay = std::time::Duration::from_millis(200);
    let mut tries = 0;
    loop {
        tries += 1;
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if tries >= 3 => return Err(e),
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
        }
    }
}

/// A decision that came after the gate settled: recorded, answered as late.
async fn too_late(votes: &impl Votes, link: &Link, reason: &str) -> Result<Page, AwsCallError> {
    let Some(now) = votes.request(&link.execution).await? else {
        return Ok(refuse(410, "this run has ended"));
    };
    if now.attempt != link.attempt {
        return Ok(refuse(
            410,
            "this link belongs to an earlier approval request for this run; use the newest mail",
        ));
    }
    let voter = identity::canonical("", &link.approver).unwrap_or_else(|_| link.approver.clone());
    votes
        .late(&now, &voter, link.decision.as_str(), reason)
        .await?;
    let what = question(now.action, &now.tenant, &now.environment);
    let state = match now.status.as_str() {
        status::APPROVED | status::SETTLING => "the quorum had already approved it".to_string(),
        other => format!("it was already {other}"),
    };
    Ok(page(
        409,
        &format!("Too late: {what}"),
        &format!(
            "<p>Your {} arrived after the gate had settled: {}. It is recorded (the run's history and outcome mail show it) and changes nothing.</p>",
            html_escape(link.decision.as_str()),
            html_escape(&state)
        ),
    ))
}

/// Resumes a run whose quorum is reached (status `settling`), with retries;
/// marks the request `approved` once the run has its answer.
async fn resume(
    votes: &impl Votes,
    runs: &impl TaskCallback,
    request: &ApprovalRequest,
    approved_by: &[String],
) -> Result<Page, AwsCallError> {
    let what = question(request.action, &request.tenant, &request.environment);
    let Some(token) = with_retries(|| runs.token(&request.execution, &request.token_hash)).await?
    else {
        return Ok(refuse(410, "this run has ended"));
    };
    let output = serde_json::json!({ "approved_by": approved_by, "attempt": request.attempt });
    if let Err(e) = with_retries(|| runs.succeed(&token, &output)).await {
        return Ok(page(
            503,
            &format!("Approved, not yet resumed: {what}"),
            &format!(
                "<p>The quorum is reached and recorded, but the run could not be resumed yet ({}). \
                 Open your link again and confirm to retry; nothing else is needed.</p>",
                html_escape(e.operation)
            ),
        ));
    }
    votes
        .settle(
            &request.execution,
            &request.attempt,
            status::SETTLING,
            status::APPROVED,
        )
        .await?;
    Ok(page(
        200,
        &format!("Approved: {what}"),
        &format!(
            "<p>{n} of {n} approvals: the change continues.</p>",
            n = request.required
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::fake::{pending, FakeGate};

    fn link(approver: &str, decision: Decision) -> Link {
        Link {
            execution: pending().execution,
            attempt: "a1".into(),
            key_id: "k".into(),
            approver: approver.into(),
            decision,
            expires: 10_000,
        }
    }

    fn body(page: &Page) -> String {
        format!(
            "{} {}",
            page.status_code,
            page.body.as_deref().unwrap_or_default()
        )
    }

    /// A rejection that loses the race with the deciding approval is told so
    /// and recorded as late; it does not claim to have stopped anything.
    #[tokio::test]
    async fn a_rejection_after_the_gate_opened_is_answered_as_late() {
        let gate = FakeGate::default();
        gate.open(&pending(), None).await.unwrap();
        *gate.settle_before_vote.lock().unwrap() = Some(status::APPROVED);
        let page = decide(
            &gate,
            &gate,
            &link("cto@x.io", Decision::Reject),
            &pending(),
            "no",
        )
        .await
        .unwrap();
        let text = body(&page);
        assert!(
            text.starts_with("409")
                && text.contains("Too late")
                && text.contains("already approved"),
            "{text}"
        );
        assert!(!text.contains("stopped"), "{text}");
        let votes = gate.votes.lock().unwrap().clone();
        assert_eq!(votes.len(), 1);
        assert!(votes[0].late && votes[0].decision == "reject");
    }

    /// Counts never pass the quorum; a third approver is told the gate had opened.
    #[tokio::test]
    async fn quorum_counts_never_exceed_the_quorum() {
        let gate = FakeGate::default();
        gate.open(&pending(), None).await.unwrap();
        let approve = |who: &'static str, request: ApprovalRequest| {
            let gate = &gate;
            async move {
                body(
                    &decide(gate, gate, &link(who, Decision::Approve), &request, "")
                        .await
                        .unwrap(),
                )
            }
        };
        let first = approve("lead@x.io", pending()).await;
        assert!(first.contains("1 of 2 approvals so far"), "{first}");
        let second = approve("ops@x.io", pending()).await;
        assert!(
            second.contains("2 of 2 approvals: the change continues"),
            "{second}"
        );
        let now = gate.request.lock().unwrap().clone().unwrap();
        let third = approve("cto@x.io", now).await;
        assert!(
            third.contains("Too late") && !third.contains("3 of"),
            "{third}"
        );
        assert_eq!(*gate.resumed.lock().unwrap(), 1);
    }

    /// A failed resume is retried, then reported; the gate stays `settling`
    /// and the next confirmation resumes the run.
    #[tokio::test]
    async fn a_failed_resume_is_retried_and_can_be_finished() {
        let gate = FakeGate::default();
        gate.open(&pending(), None).await.unwrap();
        let approve = |who: &'static str, request: ApprovalRequest| {
            let gate = &gate;
            async move {
                body(
                    &decide(gate, gate, &link(who, Decision::Approve), &request, "")
                        .await
                        .unwrap(),
                )
            }
        };
        approve("lead@x.io", pending()).await;
        *gate.resume_failures.lock().unwrap() = 5;
        let page = approve("ops@x.io", pending()).await;
        assert!(
            page.starts_with("503") && page.contains("not yet resumed"),
            "{page}"
        );
        let now = gate.request.lock().unwrap().clone().unwrap();
        assert_eq!(now.status, status::SETTLING);
        assert_eq!(*gate.resume_failures.lock().unwrap(), 2, "three tries");
        *gate.resume_failures.lock().unwrap() = 0;
        let page = approve("ops@x.io", now).await;
        assert!(
            page.starts_with("200") && page.contains("continues"),
            "{page}"
        );
        assert_eq!(
            gate.request.lock().unwrap().clone().unwrap().status,
            status::APPROVED
        );
    }
}
