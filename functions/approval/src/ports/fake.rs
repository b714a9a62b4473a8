//! The gate's ports in memory, one fake for all four, with the races and
//! failures the tests set up.

use super::{
    ApprovalRequest, KeyError, LinkKey, Mailer, SigningKey, TaskCallback, VoteOutcome, Votes,
};
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use stepdeploy_shared::approvals::{status, Vote};
use stepdeploy_shared::aws_error::AwsCallError;

/// The key every fake link is signed with.
pub const KEY: [u8; 32] = [7; 32];

/// Every port, in memory; clones share one state (one clone per port).
#[derive(Default, Clone)]
pub struct FakeGate(Arc<FakeState>);

impl Deref for FakeGate {
    type Target = FakeState;
    fn deref(&self) -> &FakeState {
        &self.0
    }
}

/// What the fake holds.
#[derive(Default)]
pub struct FakeState {
    /// The stored request.
    pub request: Mutex<Option<ApprovalRequest>>,
    /// Every decision recorded.
    pub votes: Mutex<Vec<Vote>>,
    /// Another decision settles the gate just before this vote's transaction.
    pub settle_before_vote: Mutex<Option<&'static str>>,
    /// SendTaskSuccess fails this many times.
    pub resume_failures: Mutex<u32>,
    /// Runs resumed.
    pub resumed: Mutex<u32>,
    /// Mails sent: (approver, subject, body).
    pub mails: Mutex<Vec<(String, String, String)>>,
}

impl LinkKey for FakeGate {
    async fn signing_key(&self) -> Result<SigningKey, KeyError> {
        Ok(SigningKey {
            id: "k".into(),
            bytes: KEY.to_vec(),
        })
    }
    async fn key(&self, _id: &str) -> Result<Option<Vec<u8>>, KeyError> {
        Ok(Some(KEY.to_vec()))
    }
}

impl Votes for FakeGate {
    async fn open(&self, r: &ApprovalRequest, _: Option<&str>) -> Result<bool, AwsCallError> {
        *self.request.lock().unwrap() = Some(r.clone());
        Ok(true)
    }
    async fn request(&self, _: &str) -> Result<Option<ApprovalRequest>, AwsCallError> {
        Ok(self.request.lock().unwrap().clone())
    }
    async fn vote(
        &self,
        r: &ApprovalRequest,
        approver: &str,
        decision: &str,
        reason: &str,
    ) -> Result<VoteOutcome, AwsCallError> {
        if let Some(to) = self.settle_before_vote.lock().unwrap().take() {
            if let Some(current) = self.request.lock().unwrap().as_mut() {
                current.status = to.into();
            }
        }
        let current = self.request.lock().unwrap().clone();
        if current.is_none_or(|c| c.status != status::PENDING || c.attempt != r.attempt) {
            return Ok(VoteOutcome::GateSettled);
        }
        let mut votes = self.votes.lock().unwrap();
        if votes.iter().any(|v| !v.late && v.approver == approver) {
            return Ok(VoteOutcome::AlreadyDecided);
        }
        votes.push(Vote {
            approver: approver.into(),
            decision: decision.into(),
            reason: reason.into(),
            late: false,
        });
        Ok(VoteOutcome::Recorded)
    }
    async fn late(
        &self,
        _: &ApprovalRequest,
        approver: &str,
        decision: &str,
        reason: &str,
    ) -> Result<(), AwsCallError> {
        self.votes.lock().unwrap().push(Vote {
            approver: approver.into(),
            decision: decision.into(),
            reason: reason.into(),
            late: true,
        });
        Ok(())
    }
    async fn votes(&self, _: &str, _: &str) -> Result<Vec<Vote>, AwsCallError> {
        Ok(self.votes.lock().unwrap().clone())
    }
    async fn settle(
        &self,
        _: &str,
        attempt: &str,
        from: &str,
        to: &str,
    ) -> Result<bool, AwsCallError> {
        let mut request = self.request.lock().unwrap();
        match request.as_mut() {
            Some(r) if r.status == from && r.attempt == attempt => {
                r.status = to.into();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl Mailer for FakeGate {
    async fn mail(&self, approver: &str, subject: &str, body: &str) -> Result<(), AwsCallError> {
        self.mails
            .lock()
            .unwrap()
            .push((approver.into(), subject.into(), body.into()));
        Ok(())
    }
}

impl TaskCallback for FakeGate {
    async fn ran_before(
        &self,
        _execution: &str,
        tenant: &str,
        _environment: &str,
        image: &str,
    ) -> Result<Vec<String>, AwsCallError> {
        Ok(vec![format!(
            "Already ran in sit: succeeded 2026-11-29T10:00:00Z ({tenant}-sit-1); image {image}"
        )])
    }

    async fn token(&self, _: &str, _: &str) -> Result<Option<String>, AwsCallError> {
        Ok(Some("token".into()))
    }
    async fn run_status(&self, _: &str) -> Result<Option<String>, AwsCallError> {
        Ok(Some("RUNNING".into()))
    }
    async fn succeed(&self, _: &str, _: &serde_json::Value) -> Result<(), AwsCallError> {
        let mut failures = self.resume_failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return Err(AwsCallError::other(
                "states:SendTaskSuccess",
                std::io::Error::other("throttled"),
            ));
        }
        *self.resumed.lock().unwrap() += 1;
        Ok(())
    }
    async fn fail(&self, _: &str, _: &str, _: &str) -> Result<(), AwsCallError> {
        Ok(())
    }
}

/// A pending deploy gate for `acme` in `prod`, two of three approvers needed.
pub fn pending() -> ApprovalRequest {
    ApprovalRequest {
        execution: "arn:aws:states:eu-west-1:1:execution:stepdeploy-deploy-tenant:acme-prod-1"
            .into(),
        attempt: "a1".into(),
        action: stepdeploy_shared::approvals::Action::Deploy,
        token_hash: "h".into(),
        tenant: "acme".into(),
        environment: "prod".into(),
        image: "wordpress:6".into(),
        tenants: Vec::new(),
        waves: Vec::new(),
        evidence: vec!["Image change: wordpress:5 -> wordpress:6".into()],
        requested_by: "jane@x.io".into(),
        approvers: vec!["lead@x.io".into(), "ops@x.io".into(), "cto@x.io".into()],
        required: 2,
        status: status::PENDING.into(),
        expires_at: 10_000,
    }
}
