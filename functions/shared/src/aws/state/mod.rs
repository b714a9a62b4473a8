//! The environment's state table: per-tenant locks, ALB priority claims, the
//! tenant registry and each run's resource ledger.
//!
//! The phases see it through [`StateStore`], so their unit tests run on the
//! in-memory `memory::MemoryState` (feature `testing`) and only
//! [`DynamoStateStore`] knows the item layout. Every write that guards
//! exclusivity is conditional, so two runs can never both believe they hold
//! a lock or a priority.
//!
//! The ledger is written ahead of each change: see [`crate::ledger`].

mod dynamo;
#[cfg(any(test, feature = "testing"))]
pub mod memory;

use crate::aws_error::AwsCallError;
pub use crate::ledger::{LedgerEntry, LedgerKind};
pub use dynamo::{claim_sk, conditional_write, ConditionalWriteError, DynamoStateStore, CLAIMS_PK};
use serde::{Deserialize, Serialize};
use std::future::Future;

/// Who holds a lock, for the `DeploymentLocked` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// Execution ARN holding the lock.
    pub owner: String,
    /// Who requested that run.
    pub requested_by: String,
    /// Epoch seconds after which the lock may be taken over.
    pub expires_at: u64,
}

/// Result of trying to take a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    /// Taken (or already held by the same execution: bootstrap retried).
    Acquired,
    /// Held by another live run.
    HeldBy(LockHolder),
}

/// Result of trying to claim a priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// Newly claimed for this tenant.
    Claimed,
    /// Claimed for this tenant by this same run in an earlier attempt (whose
    /// answer, or whose ledger write, may have been lost): the run's to record.
    ClaimedEarlier,
    /// Already this tenant's.
    AlreadyOurs,
    /// Claimed by another tenant.
    TakenBy(String),
}

/// The state table's operations, as the phases need them.
pub trait StateStore: Send + Sync {
    /// Creates the table if it does not exist; `true` if it was created now.
    fn ensure_table(&self) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
    /// Takes the lock for `tenant` unless another unexpired run holds it.
    fn acquire_lock(
        &self,
        tenant: &str,
        owner: &str,
        requested_by: &str,
        now: u64,
        expires_at: u64,
    ) -> impl Future<Output = Result<LockOutcome, AwsCallError>> + Send;
    /// Releases the lock if `owner` holds it; `true` if it was released.
    fn release_lock(
        &self,
        tenant: &str,
        owner: &str,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
    /// Every claimed priority (one query: a page holds thousands of claims).
    fn claimed_priorities(
        &self,
    ) -> impl Future<Output = Result<std::collections::BTreeSet<u32>, AwsCallError>> + Send;
    /// The priority the registry records for `tenant`.
    fn tenant_priority(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Option<u32>, AwsCallError>> + Send;
    /// Claims `priority` for `tenant` and records it in the registry, atomically.
    fn claim_priority(
        &self,
        priority: u32,
        tenant: &str,
        owner: &str,
    ) -> impl Future<Output = Result<ClaimOutcome, AwsCallError>> + Send;
    /// Frees `priority` if `tenant` holds it (and forgets a registry entry
    /// that held nothing but this priority: a tenant never deployed).
    fn release_priority(
        &self,
        priority: u32,
        tenant: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Frees the priority the registry gives `tenant` if the run `owner`
    /// claimed it (whether or not that run saw its claim succeed); the
    /// priority released, if any.
    fn release_claim_of(
        &self,
        tenant: &str,
        owner: &str,
    ) -> impl Future<Output = Result<Option<u32>, AwsCallError>> + Send;
    /// Appends an entry to `execution`'s ledger.
    fn record(
        &self,
        execution: &str,
        entry: &LedgerEntry,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// `execution`'s ledger in the order it was written.
    fn ledger(
        &self,
        execution: &str,
    ) -> impl Future<Output = Result<Vec<LedgerEntry>, AwsCallError>> + Send;
    /// The run holding `tenant`'s lock, expired or not (`stepdeploy cleanup
    /// <tenant> --env E` finishes that run's rollback).
    fn lock_owner(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;
    /// The tenants holding a priority in this environment (every deployed
    /// tenant does), sorted: teardown's "no such tenant" lists them.
    fn claimed_tenants(&self) -> impl Future<Output = Result<Vec<String>, AwsCallError>> + Send;
    /// The registry's record of the tenant's last deployment; `None` for a
    /// tenant never deployed (no entry, or only the priority of a claim).
    fn registry(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Option<RegistryRecord>, AwsCallError>> + Send;
    /// Records a tenant's deployment in the registry (keeps its priority).
    fn update_registry(
        &self,
        tenant: &str,
        record: &RegistryRecord,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Takes back what [`update_registry`](Self::update_registry) wrote for
    /// `execution` when the tenant had no record before; the priority stays
    /// (it goes with its claim). `false` if the record is not that run's.
    fn unregister(
        &self,
        tenant: &str,
        execution: &str,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
    /// Removes a torn-down tenant from the registry (its priority with it).
    /// Its release history stays: it is the audit trail.
    fn forget_tenant(&self, tenant: &str) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// The tenant's newest release, if it has one.
    fn latest_release(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Option<Release>, AwsCallError>> + Send;
    /// Release `number` of the tenant, if recorded.
    fn release(
        &self,
        tenant: &str,
        number: u32,
    ) -> impl Future<Output = Result<Option<Release>, AwsCallError>> + Send;
    /// Every release of the tenant, oldest first.
    fn releases(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<Release>, AwsCallError>> + Send;
    /// Records `release` unless its number is taken; `false` if it was.
    fn add_release(
        &self,
        tenant: &str,
        release: &Release,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
    /// Puts `entry` in `tenant`'s queue, or, if it is there, marks it seen
    /// at `entry.last_seen` (a waiting run's every try does: an entry not
    /// seen for a while is a run that died); when it joined (its first time).
    fn enqueue(
        &self,
        tenant: &str,
        entry: &QueueEntry,
    ) -> impl Future<Output = Result<u64, AwsCallError>> + Send;
    /// The tenant's queue, oldest first.
    fn queue(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<QueueEntry>, AwsCallError>> + Send;
    /// Takes `execution` out of the tenant's queue (nothing if it is not in it).
    fn dequeue(
        &self,
        tenant: &str,
        execution: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Takes back release `number` if `execution` recorded it (rollback of
    /// a run that failed after notify wrote it); `false` otherwise.
    fn remove_release(
        &self,
        tenant: &str,
        number: u32,
        execution: &str,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
}

/// A request waiting for a tenant another run holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// The waiting run.
    pub execution: String,
    /// Who asked.
    pub requested_by: String,
    /// When it joined, epoch seconds.
    pub enqueued_at: u64,
    /// When the entry stops counting (a run that died waiting), epoch seconds.
    pub expires_at: u64,
    /// The run's latest try, epoch seconds.
    pub last_seen: u64,
}

/// One successful deployment of a tenant to an environment: what
/// `stepdeploy releases` lists and `stepdeploy rollback --to N` puts back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// 1, 2, …: the tenant's releases in this environment, in order.
    pub number: u32,
    /// The image it ran.
    pub image: String,
    /// The task definition (ARN with its revision) the service ran.
    pub task_definition: String,
    /// S3 version id of the tenant config document it wrote (`None` in a
    /// bucket without versioning).
    #[serde(default)]
    pub config_version: Option<String>,
    /// When it went live (RFC 3339).
    pub at: String,
    /// Who asked.
    pub requested_by: String,
    /// Who approved it at its own gate (approval environments); empty for
    /// a rollout's child, whose quorum is the rollout's approval record.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// The execution that deployed it.
    pub execution: String,
    /// For a rollback: the release it put back.
    #[serde(default)]
    pub restored_from: Option<u32>,
    /// Key (in the config bucket) of the database dump taken just before
    /// this release changed the image: the data of the release before it.
    #[serde(default)]
    pub database_dump: Option<String>,
    /// For a rollback that restored a dump: its key.
    #[serde(default)]
    pub database_restored_from: Option<String>,
}

/// What the registry keeps about a tenant's last deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryRecord {
    /// Image running now.
    pub image: String,
    /// `active` after a success.
    pub status: String,
    /// Execution that deployed it.
    pub last_execution: String,
    /// When (RFC 3339).
    pub updated_at: String,
    /// Key of the tenant config document in the config bucket.
    pub config_key: String,
    /// Who asked.
    pub requested_by: String,
    /// The tenant's labels (`ring: canary`): what rollouts select on. A
    /// deployment that sets none keeps these.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// One tenant's registry entry, as `stepdeploy status` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryEntry {
    /// The tenant.
    pub tenant: String,
    /// Its ALB rule priority, once claimed.
    pub alb_priority: Option<u32>,
    /// Its last deployment; `None` while only a priority is claimed.
    pub record: Option<RegistryRecord>,
}
