//! The phase contract: what each Lambda returns and what the state machine
//! accumulates from them, as the types every function reads.
//!
//! Each phase's result lands in the execution state as `{output: …}` under
//! its own key (`$.plan`, `$.ecs`, `$.database`, `$.verify`, `$.dns`,
//! `$.rollback`); later phases, notify and rollback read the same types back,
//! so the data stays typed from the phase that wrote it to the one that
//! reads it. Only the raw event stays JSON.

use crate::DeploymentPlan;
use serde::{Deserialize, Serialize};

/// The deployment phases in the order a run takes them (notify names the
/// first one without a result as the one that failed).
pub const PHASES: [&str; 6] = ["bootstrap", "approval", "database", "ecs", "verify", "dns"];

/// `{output: …}`: how the state machine stores a Lambda's result
/// (`ResultSelector: {"output.$": "$.Payload"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step<T> {
    /// The Lambda's result.
    pub output: T,
    /// When the state machine entered the step (`$$.State.EnteredTime`):
    /// what notify times the phases by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entered_at: Option<String>,
}

/// What ecs did, for the execution history and the next phases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcsOutput {
    /// EFS access point id.
    pub access_point_id: String,
    /// Task definition ARN the service runs.
    pub task_definition_arn: String,
    /// Target group ARN.
    pub target_group_arn: String,
    /// Listener rule ARN.
    pub listener_rule_arn: String,
    /// Service ARN.
    pub service_arn: String,
    /// What changed in this run (`created …`, `updated …`); empty when nothing had to.
    pub changes: Vec<String>,
}

/// What database did (no password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseOutput {
    /// The tenant secret's full ARN (ECS documents full ARNs for `valueFrom`).
    pub secret_arn: String,
    /// `{tenant}_db`.
    pub database: String,
    /// `{tenant}_user`.
    pub username: String,
    /// What changed in this run; empty when nothing had to.
    pub changes: Vec<String>,
    /// The dump taken before the image changes (key in the config bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// The dump loaded into the database (a rollback with `--restore-database`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored: Option<String>,
}

/// One verify check's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// `secret`, `service_active`, `service_steady`, `targets_healthy`, `http`, `logs`.
    pub name: String,
    /// Passed.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

/// One verify round's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyOutput {
    /// Every check passed.
    pub stable: bool,
    /// This round's number (1-based).
    pub attempt: u32,
    /// The checks.
    pub checks: Vec<Check>,
    /// `s3://bucket/key` of the report, when this round wrote it.
    pub report: Option<String>,
    /// The failing checks with what they saw, one `name: detail` each,
    /// `; `-separated (the state machine's `VerificationFailed` cause).
    pub failing: String,
}

/// What dns did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsOutput {
    /// The record's name.
    pub record: String,
    /// What it aliases.
    pub target: String,
    /// Whether this run changed the record.
    pub changed: bool,
    /// The URL checked and its status.
    pub url: String,
    /// HTTP status of the check.
    pub status: u16,
}

/// A decision that came after the gate had settled (recorded, not counted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LateVote {
    /// Who, as configured.
    pub approver: String,
    /// `approve` or `reject`.
    pub decision: String,
    /// Their reason, sanitised.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The quorum the gate's confirmation found (`$.approval`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApprovalOutcome {
    /// The distinct approvers that made the quorum.
    #[serde(default)]
    pub approved_by: Vec<String>,
    /// Decisions that came too late.
    #[serde(default)]
    pub late: Vec<LateVote>,
    /// When the gate resumed the run (ConfirmApproval entered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<String>,
}

/// When the approval gate started waiting (`$.approval_wait`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GateWait {
    /// `$$.State.EnteredTime` of the gate.
    #[serde(default)]
    pub waited_from: Option<String>,
}

/// The verify loop's counter (`$.verify_loop`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VerifyLoop {
    /// Rounds so far.
    #[serde(default)]
    pub attempt: u32,
    /// When the loop started (its first Wait).
    #[serde(default)]
    pub started_at: Option<String>,
}

/// A resource rollback could not undo, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftBehind {
    /// `kind id`, as the ledger names it.
    pub resource: String,
    /// The error that kept it (or why it was kept on purpose).
    pub error: String,
}

/// What rollback did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RollbackOutput {
    /// For a run that ended outside the state machine's Catch: why nothing
    /// was done (its Rollback state already ran, or no plan was made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Resources removed (`kind id`).
    pub removed: Vec<String>,
    /// Pre-existing resources put back as they were.
    pub restored: Vec<String>,
    /// What could not be undone (empty when the rollback finished).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left: Vec<LeftBehind>,
    /// Whether this call released the lock.
    pub lock_released: bool,
}

/// A caught error as Step Functions records it (`$.error`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StepError {
    /// The error name.
    #[serde(rename = "Error", default)]
    pub error: Option<String>,
    /// The cause (a Lambda's `{"errorType", "errorMessage"}` as a string).
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

/// The execution state as notify and rollback read it: every part optional,
/// since a run can fail anywhere.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunState {
    /// The event that started the run (raw: it is the one untyped input).
    #[serde(default)]
    pub event: serde_json::Value,
    /// bootstrap's plan.
    #[serde(default)]
    pub plan: Option<Step<DeploymentPlan>>,
    /// The quorum that approved the run (approval environments).
    #[serde(default)]
    pub approval: Option<ApprovalOutcome>,
    /// When the gate started waiting.
    #[serde(default)]
    pub approval_wait: Option<GateWait>,
    /// The verify loop's counter and start.
    #[serde(default)]
    pub verify_loop: Option<VerifyLoop>,
    /// database's result.
    #[serde(default)]
    pub database: Option<Step<DatabaseOutput>>,
    /// ecs's result.
    #[serde(default)]
    pub ecs: Option<Step<EcsOutput>>,
    /// verify's last round.
    #[serde(default)]
    pub verify: Option<Step<VerifyOutput>>,
    /// dns's result.
    #[serde(default)]
    pub dns: Option<Step<DnsOutput>>,
    /// The error that failed the run.
    #[serde(default)]
    pub error: Option<StepError>,
    /// What rollback did.
    #[serde(default)]
    pub rollback: Option<Step<RollbackOutput>>,
    /// Rollback's own failure (`RollbackFailed`: what is left, and the command).
    #[serde(default)]
    pub rollback_error: Option<StepError>,
}

impl RunState {
    /// The run's plan, if bootstrap made one.
    pub fn plan(&self) -> Option<&DeploymentPlan> {
        self.plan.as_ref().map(|p| &p.output)
    }
}
