//! The approvals table (orchestrator account): what the gate records, and the
//! quorum check every change in an approval environment goes through.
//!
//! The gate (the approval function) is the only writer. Everything else reads:
//! the `Confirm` step right after the gate, and each phase that changes an
//! approval environment (database, ecs, dns, teardown's `remove`). They ask
//! one question — does this execution have a real quorum for exactly this
//! tenant, environment, image and action? — and fail with `ApprovalBypassed`
//! otherwise. So a run resumed with `SendTaskSuccess` by someone who read the
//! task token, or a phase invoked directly with a hand-made plan, changes
//! nothing.
//!
//! Items (`pk` = `RUN#{execution}`):
//! - `sk = REQUEST`: one per gate attempt; a new attempt (a redriven run, an
//!   execution name used again) replaces it with a new random `attempt`.
//! - `sk = VOTE#{attempt}#{approver}`: one per approver and attempt, written
//!   in one transaction with a check that the request is still pending for
//!   that attempt, so no vote lands after the gate settled.
//! - `sk = LATE#{attempt}#{approver}`: a decision that arrived after the gate
//!   settled (kept for `history` and the outcome mail; it counts for nothing).
//!
//! Every item expires (TTL `expires_at`) a day after its gate's timeout.

use crate::aws_error::AwsCallError;
use crate::config::ApprovalConfig;
use crate::identity;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// Environment variable naming the approvals table.
pub const TABLE_VAR: &str = "STEPDEPLOY_APPROVALS_TABLE";
/// The table's name when [`TABLE_VAR`] is unset (the local stack's).
pub const DEFAULT_TABLE: &str = "stepdeploy-approvals";
/// How long records outlive their gate (TTL), for `history` and audits.
pub const KEEP_AFTER_GATE_SECONDS: u64 = 86_400;

/// Gate states, in order: `pending` → `settling` (quorum reached, run being
/// resumed) → `approved`; or `pending` → `rejected` / `expired` / `ended`.
pub mod status {
    /// Waiting for decisions.
    pub const PENDING: &str = "pending";
    /// The quorum is reached and the run is being resumed.
    pub const SETTLING: &str = "settling";
    /// The run was resumed.
    pub const APPROVED: &str = "approved";
    /// An approver rejected; the run was failed.
    pub const REJECTED: &str = "rejected";
    /// The gate timed out.
    pub const EXPIRED: &str = "expired";
    /// The run ended (stopped, timed out, failed) while its gate waited.
    pub const ENDED: &str = "ended";
}

/// What is being approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Deploy (create or update) the tenant.
    #[default]
    Deploy,
    /// Remove the tenant from the environment.
    Teardown,
    /// Deploy one image to the listed tenants of the environment, in waves
    /// (a fleet rollout): its children deploy under this one quorum.
    Rollout,
}

impl Action {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Teardown => "teardown",
            Self::Rollout => "rollout",
        }
    }
}

/// One gate attempt, as stored (no task token: only its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// Execution ARN.
    pub execution: String,
    /// Random id of this gate attempt: votes and links carry it.
    pub attempt: String,
    /// What is approved.
    #[serde(default)]
    pub action: Action,
    /// SHA-256 (hex) of the waiting task's token.
    pub token_hash: String,
    /// Tenant.
    pub tenant: String,
    /// Environment.
    pub environment: String,
    /// Image (for a teardown, the environment's default: not part of the question).
    pub image: String,
    /// For a rollout: every tenant it may deploy (its children's tenants).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
    /// For a rollout: the same tenants in its waves, in order (for the page).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<Vec<String>>,
    /// What the approver should know, one line each: what runs now, what
    /// changes (a rollback: from which release to which), the database.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// Who asked, canonical ([`identity::canonical`]); may not approve.
    pub requested_by: String,
    /// Allow-list, canonical, when the gate opened.
    pub approvers: Vec<String>,
    /// Quorum when the gate opened.
    pub required: u32,
    /// One of [`status`].
    pub status: String,
    /// Epoch seconds: the gate's timeout.
    pub expires_at: u64,
}

/// One recorded decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// Canonical approver.
    pub approver: String,
    /// `approve` or `reject`.
    pub decision: String,
    /// The approver's reason, sanitised.
    pub reason: String,
    /// Whether it arrived after the gate settled (counts for nothing).
    pub late: bool,
}

/// `pk`/`sk` of an item.
pub fn key(execution: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".into(), AttributeValue::S(format!("RUN#{execution}"))),
        ("sk".into(), AttributeValue::S(sk.into())),
    ])
}

/// The request item's sort key.
pub const REQUEST_SK: &str = "REQUEST";

/// A vote's sort key.
pub fn vote_sk(attempt: &str, approver: &str) -> String {
    format!("VOTE#{attempt}#{approver}")
}

/// A late decision's sort key.
pub fn late_sk(attempt: &str, approver: &str) -> String {
    format!("LATE#{attempt}#{approver}")
}

/// What a change in an approval environment must have been approved for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject<'a> {
    /// The run making the change.
    pub execution: &'a str,
    /// Deploy or teardown.
    pub action: Action,
    /// Tenant.
    pub tenant: &'a str,
    /// Environment.
    pub environment: &'a str,
    /// Image (ignored for a teardown).
    pub image: &'a str,
    /// Requester as the run carries it.
    pub requested_by: &'a str,
}

/// The quorum is real for `subject`: the gate settled with enough distinct
/// approvers from the allow-list *as configured now* (not as stored), none
/// of them the requester, each vote cast for this gate attempt. Returns who
/// approved; the error says what is missing.
pub fn judge(
    subject: &Subject<'_>,
    request: Option<&ApprovalRequest>,
    votes: &[Vote],
    approval: &ApprovalConfig,
) -> Result<Vec<String>, String> {
    let Some(request) = request else {
        return Err(format!(
            "no approval was requested for execution {}",
            subject.execution
        ));
    };
    if ![status::APPROVED, status::SETTLING].contains(&request.status.as_str()) {
        return Err(format!(
            "the approval request for this run is {}, not approved",
            request.status
        ));
    }
    let mismatch = |what: &str, approved: &str, here: &str| {
        Err(format!(
            "the quorum approved {what} {approved:?}, but this change is for {here:?}"
        ))
    };
    if request.action != subject.action {
        return mismatch("a", request.action.as_str(), subject.action.as_str());
    }
    if subject.action == Action::Rollout {
        if !request.tenants.iter().any(|t| t == subject.tenant) {
            return Err(format!(
                "the approved rollout does not cover tenant {:?}",
                subject.tenant
            ));
        }
    } else if request.tenant != subject.tenant {
        return mismatch("tenant", &request.tenant, subject.tenant);
    }
    if request.environment != subject.environment {
        return mismatch("environment", &request.environment, subject.environment);
    }
    if subject.action != Action::Teardown && request.image != subject.image {
        return mismatch("image", &request.image, subject.image);
    }
    if !identity::same(&request.requested_by, subject.requested_by) {
        return mismatch("a request by", &request.requested_by, subject.requested_by);
    }
    let allowed: BTreeSet<String> = approval
        .approvers
        .iter()
        .filter_map(|a| identity::canonical("", a).ok())
        .collect();
    let requester = identity::canonical("", &request.requested_by).ok();
    let approved: BTreeSet<String> = votes
        .iter()
        .filter(|v| !v.late && v.decision == "approve")
        .filter_map(|v| identity::canonical("", &v.approver).ok())
        .filter(|a| allowed.contains(a) && Some(a) != requester.as_ref())
        .collect();
    let have = u32::try_from(approved.len()).unwrap_or(u32::MAX);
    if have < approval.approvals_required {
        return Err(format!(
            "{have} valid approval(s) recorded for this gate attempt; {} needed",
            approval.approvals_required
        ));
    }
    Ok(approved.into_iter().collect())
}

/// Why a change may not go ahead.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// No valid quorum (the message says what is missing).
    #[error("no valid approval for this change: {0}")]
    Bypassed(String),
    /// The table could not be read.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
}

impl crate::errors::ErrorName for QuorumError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Bypassed(_) => crate::error_names::APPROVAL_BYPASSED,
            Self::Aws(e) => e.error_name(),
        }
    }
}

/// Reads the table (strongly consistent).
#[derive(Debug, Clone)]
pub struct ApprovalsTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl ApprovalsTable {
    /// On the orchestrator's own credentials.
    pub fn new(config: &aws_types::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_dynamodb::Client::new(config),
            table: table.into(),
        }
    }

    /// The table [`TABLE_VAR`] names.
    pub fn from_env(config: &aws_types::SdkConfig) -> Self {
        let table = std::env::var(TABLE_VAR)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_TABLE.to_string());
        Self::new(config, table)
    }

    /// The client (the gate writes with it).
    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    /// The table name.
    pub fn name(&self) -> &str {
        &self.table
    }

    /// The current gate attempt of `execution`.
    pub async fn request(&self, execution: &str) -> Result<Option<ApprovalRequest>, AwsCallError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(execution, REQUEST_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsCallError::new("dynamodb:GetItem (approval request)", e))?;
        Ok(out.item.and_then(|item| {
            let mut request: ApprovalRequest =
                serde_json::from_str(item.get("request")?.as_s().ok()?).ok()?;
            if let Some(status) = item.get("status").and_then(|s| s.as_s().ok()) {
                request.status = status.clone();
            }
            Some(request)
        }))
    }

    /// Every decision recorded for one gate attempt (on time and late), every page.
    pub async fn votes(&self, execution: &str, attempt: &str) -> Result<Vec<Vote>, AwsCallError> {
        let mut votes = Vec::new();
        for (prefix, late) in [("VOTE#", false), ("LATE#", true)] {
            let mut start = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :v)")
                    .expression_attribute_values(
                        ":pk",
                        AttributeValue::S(format!("RUN#{execution}")),
                    )
                    .expression_attribute_values(
                        ":v",
                        AttributeValue::S(format!("{prefix}{attempt}#")),
                    )
                    .consistent_read(true)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| AwsCallError::new("dynamodb:Query (votes)", e))?;
                let text = |item: &HashMap<String, AttributeValue>, name: &str| {
                    item.get(name)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default()
                };
                votes.extend(out.items().iter().map(|item| Vote {
                    approver: text(item, "approver"),
                    decision: text(item, "decision"),
                    reason: text(item, "reason"),
                    late,
                }));
                start = out.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
        }
        Ok(votes)
    }

    /// [`judge`] on what the table holds for `subject.execution`.
    pub async fn require_quorum(
        &self,
        subject: &Subject<'_>,
        approval: &ApprovalConfig,
    ) -> Result<Vec<String>, QuorumError> {
        let request = self.request(subject.execution).await?;
        let votes = match &request {
            Some(r) => self.votes(subject.execution, &r.attempt).await?,
            None => Vec::new(),
        };
        judge(subject, request.as_ref(), &votes, approval).map_err(QuorumError::Bypassed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval() -> ApprovalConfig {
        ApprovalConfig {
            approvers: vec![
                "lead@example.com".into(),
                "cto@example.com".into(),
                "ops@example.com".into(),
            ],
            approvals_required: 2,
            timeout_seconds: 3_600,
        }
    }

    fn request(status: &str) -> ApprovalRequest {
        ApprovalRequest {
            execution: "arn:x:run".into(),
            attempt: "a1".into(),
            action: Action::Deploy,
            token_hash: "h".into(),
            tenant: "acme".into(),
            environment: "prod".into(),
            image: "wordpress:6".into(),
            tenants: Vec::new(),
            waves: Vec::new(),
            evidence: Vec::new(),
            requested_by: "cto@example.com".into(),
            approvers: approval().approvers,
            required: 2,
            status: status.into(),
            expires_at: 10,
        }
    }

    fn subject() -> Subject<'static> {
        Subject {
            execution: "arn:x:run",
            action: Action::Deploy,
            tenant: "acme",
            environment: "prod",
            image: "wordpress:6",
            requested_by: "cto@example.com",
        }
    }

    fn vote(who: &str, decision: &str) -> Vote {
        Vote {
            approver: who.into(),
            decision: decision.into(),
            reason: String::new(),
            late: false,
        }
    }

    #[test]
    fn a_real_quorum_passes() {
        let votes = [
            vote("lead@example.com", "approve"),
            vote("ops@example.com", "approve"),
        ];
        assert_eq!(
            judge(&subject(), Some(&request("approved")), &votes, &approval()),
            Ok(vec!["lead@example.com".into(), "ops@example.com".into()])
        );
    }

    #[test]
    fn anything_less_is_bypassed() {
        let two = [
            vote("lead@example.com", "approve"),
            vote("ops@example.com", "approve"),
        ];
        let why = |request: Option<&ApprovalRequest>, votes: &[Vote], subject: &Subject<'_>| {
            judge(subject, request, votes, &approval()).expect_err("bypassed")
        };
        assert!(why(None, &two, &subject()).contains("no approval was requested"));
        // Resumed by SendTaskSuccess while the gate still waits.
        assert!(why(Some(&request("pending")), &two, &subject()).contains("pending, not approved"));
        // The requester's own vote (in any disguise) and one mailbox twice count once at most.
        let disguised = [
            vote("CTO+me@example.com", "approve"),
            vote("lead@example.com", "approve"),
            vote("Lead+2@example.com", "approve"),
        ];
        assert!(
            why(Some(&request("approved")), &disguised, &subject()).contains("1 valid approval")
        );
        // An approver since removed from the config counts for nothing.
        let removed = [
            vote("lead@example.com", "approve"),
            vote("former@example.com", "approve"),
        ];
        assert!(why(Some(&request("approved")), &removed, &subject()).contains("1 valid"));
        // Late votes and rejections are not approvals.
        let late = [
            vote("lead@example.com", "approve"),
            Vote {
                late: true,
                ..vote("ops@example.com", "approve")
            },
        ];
        assert!(why(Some(&request("approved")), &late, &subject()).contains("1 valid"));
        // An approval for another change.
        let other_image = Subject {
            image: "wordpress:7",
            ..subject()
        };
        assert!(why(Some(&request("approved")), &two, &other_image).contains("image"));
        let teardown = Subject {
            action: Action::Teardown,
            ..subject()
        };
        assert!(why(Some(&request("approved")), &two, &teardown).contains("\"deploy\""));
        let other_tenant = Subject {
            tenant: "other",
            ..subject()
        };
        assert!(why(Some(&request("approved")), &two, &other_tenant).contains("tenant"));
    }

    #[test]
    fn a_rollout_quorum_covers_its_listed_tenants_at_its_image_only() {
        let rollout = ApprovalRequest {
            action: Action::Rollout,
            tenant: "2 tenants".into(),
            tenants: vec!["acme".into(), "bravo".into()],
            ..request("approved")
        };
        let two = [
            vote("lead@example.com", "approve"),
            vote("ops@example.com", "approve"),
        ];
        let child = |tenant: &'static str, image: &'static str| Subject {
            action: Action::Rollout,
            tenant,
            image,
            ..subject()
        };
        assert!(judge(
            &child("acme", "wordpress:6"),
            Some(&rollout),
            &two,
            &approval()
        )
        .is_ok());
        assert!(judge(
            &child("bravo", "wordpress:6"),
            Some(&rollout),
            &two,
            &approval()
        )
        .is_ok());
        let not_listed = judge(
            &child("zulu", "wordpress:6"),
            Some(&rollout),
            &two,
            &approval(),
        )
        .expect_err("a tenant the rollout does not list");
        assert!(
            not_listed.contains("does not cover tenant \"zulu\""),
            "{not_listed}"
        );
        let other_image = judge(
            &child("acme", "wordpress:7"),
            Some(&rollout),
            &two,
            &approval(),
        )
        .expect_err("another image");
        assert!(other_image.contains("image"), "{other_image}");
        // A deploy quorum is not a rollout quorum, nor the other way round.
        let deploy = judge(&subject(), Some(&rollout), &two, &approval()).expect_err("deploy");
        assert!(deploy.contains("\"rollout\""), "{deploy}");
        let pending = ApprovalRequest {
            status: status::PENDING.into(),
            ..rollout
        };
        assert!(judge(
            &child("acme", "wordpress:6"),
            Some(&pending),
            &two,
            &approval()
        )
        .is_err());
    }
}
