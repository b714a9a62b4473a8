//! The environment's state table: per-tenant locks, ALB priority claims, the
//! tenant registry and each run's resource ledger, in one DynamoDB table with
//! a string `pk`/`sk` key.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | lock | `LOCK#{tenant}` | `LOCK` |
//! | priority claim | `PRIORITY` | `{n:05}` (zero-padded, so claims sort by priority) |
//! | tenant registry | `TENANT#{tenant}` | `REGISTRY` |
//! | ledger entry | `RUN#{execution}` | `{seq}#{kind}` |
//!
//! Every write that guards exclusivity is conditional, so two runs can never
//! both believe they hold a lock or a priority. The claims share one
//! partition so the allocator reads them all with one query (a page holds
//! thousands) instead of probing priorities one by one: the cost of a
//! bootstrap does not grow with the number of tenants.
//!
//! The ledger is written ahead of each change: see [`crate::ledger`].

use crate::aws_error::AwsCallError;
pub use crate::ledger::{LedgerEntry, LedgerKind};
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
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
}

/// A DynamoDB write error that can say its condition was not met (the
/// modeled `ConditionalCheckFailedException` of each operation).
pub trait ConditionalWriteError {
    /// The write's condition expression was false.
    fn condition_failed(&self) -> bool;
}

impl ConditionalWriteError for aws_sdk_dynamodb::operation::put_item::PutItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

/// A transaction failed its condition only when every cancellation reason is
/// `ConditionalCheckFailed` or `None`: a `TransactionConflict` (another
/// transaction on the same items) or a throttled item is no lost race, and is
/// retried instead of read as one (a claim read as lost would leak).
impl ConditionalWriteError
    for aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError
{
    fn condition_failed(&self) -> bool {
        match self {
            Self::TransactionCanceledException(e) => {
                let codes: Vec<&str> = e
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None"))
                    .collect();
                codes.contains(&"ConditionalCheckFailed")
                    && codes
                        .iter()
                        .all(|c| matches!(*c, "ConditionalCheckFailed" | "None"))
            }
            _ => false,
        }
    }
}

impl ConditionalWriteError for aws_sdk_dynamodb::operation::update_item::UpdateItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionalWriteError for aws_sdk_dynamodb::operation::delete_item::DeleteItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

/// The answer to a conditional write: `true` if it was applied, `false` if
/// its condition was not met (an answer, not an error); any other failure is
/// an error named `operation`.
pub fn conditional_write<O, E, R>(
    result: Result<O, aws_sdk_dynamodb::error::SdkError<E, R>>,
    operation: &'static str,
) -> Result<bool, AwsCallError>
where
    E: ConditionalWriteError
        + aws_sdk_dynamodb::error::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(E::condition_failed) => Ok(false),
        Err(e) => Err(AwsCallError::new(operation, e)),
    }
}

/// [`StateStore`] on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoStateStore {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, key: &str) -> Option<&'a str> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}
fn get_n<T: std::str::FromStr>(item: &HashMap<String, AttributeValue>, key: &str) -> Option<T> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// Partition key shared by every priority claim.
pub const CLAIMS_PK: &str = "PRIORITY";

/// Sort key of the claim on `priority` (ALB priorities are 1..=50000).
pub fn claim_sk(priority: u32) -> String {
    format!("{priority:05}")
}

impl DynamoStateStore {
    /// The store for `table`, using a client in the environment's account.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn key(pk: String, sk: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
    }

    /// Every item of partition `pk` in key order (all pages, consistent),
    /// with only `projection`'s attributes when given.
    async fn partition(
        &self,
        pk: String,
        projection: Option<&str>,
        what: &'static str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, AwsCallError> {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .set_projection_expression(projection.map(str::to_string))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| AwsCallError::new(what, e))
    }

    fn claim_key(priority: u32) -> HashMap<String, AttributeValue> {
        Self::key(CLAIMS_PK.into(), &claim_sk(priority))
    }

    /// The tenants holding a priority in this environment (every deployed
    /// tenant does), sorted: one query of the claims partition.
    pub async fn claimed_tenants(&self) -> Result<Vec<String>, AwsCallError> {
        let items = self
            .partition(CLAIMS_PK.into(), None, "dynamodb:Query (priority claims)")
            .await?;
        let tenants: std::collections::BTreeSet<String> = items
            .iter()
            .filter_map(|item| get_s(item, "tenant").map(str::to_string))
            .collect();
        Ok(tenants.into_iter().collect())
    }

    /// The run holding `tenant`'s lock, expired or not (`stepdeploy cleanup
    /// <tenant> --env E` finishes that run's rollback).
    pub async fn lock_owner(&self, tenant: &str) -> Result<Option<String>, AwsCallError> {
        Ok(self
            .get(format!("LOCK#{tenant}"), "LOCK")
            .await?
            .and_then(|item| get_s(&item, "owner").map(str::to_string)))
    }

    async fn get(
        &self,
        pk: String,
        sk: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, AwsCallError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsCallError::new("dynamodb:GetItem", e))?;
        Ok(out.item)
    }
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
}

impl DynamoStateStore {
    /// Removes a torn-down tenant from the registry.
    pub async fn forget_tenant(&self, tenant: &str) -> Result<(), AwsCallError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(format!("TENANT#{tenant}"), "REGISTRY")))
            .send()
            .await
            .map_err(|e| AwsCallError::new("dynamodb:DeleteItem (registry)", e))?;
        Ok(())
    }

    /// The registry's record of the tenant's last deployment; `None` for a
    /// tenant never deployed (no entry, or only the priority of a claim).
    pub async fn registry(&self, tenant: &str) -> Result<Option<RegistryRecord>, AwsCallError> {
        let Some(item) = self.get(format!("TENANT#{tenant}"), "REGISTRY").await? else {
            return Ok(None);
        };
        let field = |name: &str| get_s(&item, name).unwrap_or_default().to_string();
        Ok(get_s(&item, "last_execution").map(|_| RegistryRecord {
            image: field("image"),
            status: field("status"),
            last_execution: field("last_execution"),
            updated_at: field("updated_at"),
            config_key: field("config_key"),
            requested_by: field("requested_by"),
        }))
    }

    /// Takes back what [`update_registry`](Self::update_registry) wrote for
    /// `execution` when the tenant had no record before; the priority stays
    /// (it goes with its claim). `false` if the record is not that run's.
    pub async fn unregister(&self, tenant: &str, execution: &str) -> Result<bool, AwsCallError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(format!("TENANT#{tenant}"), "REGISTRY")))
            .update_expression(
                "REMOVE image, #status, last_execution, updated_at, config_key, requested_by",
            )
            .condition_expression("last_execution = :e")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":e", s(execution))
            .send()
            .await;
        conditional_write(result, "dynamodb:UpdateItem (unregister)")
    }

    /// Records a tenant's deployment in the registry (keeps its priority).
    pub async fn update_registry(
        &self,
        tenant: &str,
        record: &RegistryRecord,
    ) -> Result<(), AwsCallError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(format!("TENANT#{tenant}"), "REGISTRY")))
            .update_expression("SET image = :i, #status = :s, last_execution = :e, updated_at = :u, config_key = :k, requested_by = :r")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":i", s(&record.image))
            .expression_attribute_values(":s", s(&record.status))
            .expression_attribute_values(":e", s(&record.last_execution))
            .expression_attribute_values(":u", s(&record.updated_at))
            .expression_attribute_values(":k", s(&record.config_key))
            .expression_attribute_values(":r", s(&record.requested_by))
            .send()
            .await
            .map_err(|e| AwsCallError::new("dynamodb:UpdateItem (registry)", e))?;
        Ok(())
    }
}

impl StateStore for DynamoStateStore {
    async fn ensure_table(&self) -> Result<bool, AwsCallError> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => return Ok(false),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(e) => return Err(AwsCallError::new("dynamodb:DescribeTable", e)),
        }
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("name and type are set")
        };
        let key = |name: &str, key_type| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .expect("name and type are set")
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk"))
            .attribute_definitions(attr("sk"))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .tags(
                aws_sdk_dynamodb::types::Tag::builder()
                    .key("ManagedBy")
                    .value("stepdeploy")
                    .build()
                    .expect("key and value are set"),
            )
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Another run created it between our describe and create: fine.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                return Ok(false)
            }
            Err(e) => return Err(AwsCallError::new("dynamodb:CreateTable", e)),
        }
        self.client
            .wait_until_table_exists()
            .table_name(&self.table)
            .wait(std::time::Duration::from_secs(60))
            .await
            .map_err(|e| AwsCallError::other("dynamodb:DescribeTable (wait)", e))?;
        Ok(true)
    }

    async fn acquire_lock(
        &self,
        tenant: &str,
        owner: &str,
        requested_by: &str,
        now: u64,
        expires_at: u64,
    ) -> Result<LockOutcome, AwsCallError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("LOCK#{tenant}")))
            .item("sk", s("LOCK"))
            .item("owner", s(owner))
            .item("requested_by", s(requested_by))
            .item("acquired_at", n(now))
            .item("expires_at", n(expires_at))
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at < :now OR #owner = :owner",
            )
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        if conditional_write(result, "dynamodb:PutItem (lock)")? {
            return Ok(LockOutcome::Acquired);
        }
        let item = self
            .get(format!("LOCK#{tenant}"), "LOCK")
            .await?
            .unwrap_or_default();
        Ok(LockOutcome::HeldBy(LockHolder {
            owner: get_s(&item, "owner").unwrap_or("unknown").to_string(),
            requested_by: get_s(&item, "requested_by")
                .unwrap_or("unknown")
                .to_string(),
            expires_at: get_n(&item, "expires_at").unwrap_or(0),
        }))
    }

    async fn release_lock(&self, tenant: &str, owner: &str) -> Result<bool, AwsCallError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(format!("LOCK#{tenant}"), "LOCK")))
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        conditional_write(result, "dynamodb:DeleteItem (lock)")
    }

    async fn claimed_priorities(&self) -> Result<std::collections::BTreeSet<u32>, AwsCallError> {
        let items = self
            .partition(
                CLAIMS_PK.into(),
                Some("sk"),
                "dynamodb:Query (priority claims)",
            )
            .await?;
        Ok(items
            .iter()
            .filter_map(|item| get_s(item, "sk").and_then(|sk| sk.parse().ok()))
            .collect())
    }

    async fn tenant_priority(&self, tenant: &str) -> Result<Option<u32>, AwsCallError> {
        let item = self.get(format!("TENANT#{tenant}"), "REGISTRY").await?;
        Ok(item.and_then(|item| get_n(&item, "alb_priority")))
    }

    async fn claim_priority(
        &self,
        priority: u32,
        tenant: &str,
        owner: &str,
    ) -> Result<ClaimOutcome, AwsCallError> {
        let outcome = |item: &HashMap<String, AttributeValue>, unknown: &str| {
            match (get_s(item, "tenant"), get_s(item, "claimed_by")) {
                // This run's own claim, from an attempt whose answer was lost.
                (Some(holder), Some(by)) if holder == tenant && by == owner => {
                    ClaimOutcome::ClaimedEarlier
                }
                (Some(holder), _) if holder == tenant => ClaimOutcome::AlreadyOurs,
                (holder, _) => ClaimOutcome::TakenBy(holder.unwrap_or(unknown).to_string()),
            }
        };
        if let Some(item) = self.get(CLAIMS_PK.into(), &claim_sk(priority)).await? {
            return Ok(outcome(&item, "unknown"));
        }
        let claim = Put::builder()
            .table_name(&self.table)
            .item("pk", s(CLAIMS_PK))
            .item("sk", s(claim_sk(priority)))
            .item("tenant", s(tenant))
            .item("claimed_by", s(owner))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .expect("table and item are set");
        let registry = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(format!("TENANT#{tenant}"), "REGISTRY")))
            .update_expression("SET alb_priority = :p")
            .expression_attribute_values(":p", n(priority))
            .build()
            .expect("table, key and expression are set");
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(claim).build())
            .transact_items(TransactWriteItem::builder().update(registry).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(ClaimOutcome::Claimed),
            // Lost a race for this priority: tell the caller who won.
            Err(e)
                if e.as_service_error()
                    .is_some_and(ConditionalWriteError::condition_failed) =>
            {
                let item = self
                    .get(CLAIMS_PK.into(), &claim_sk(priority))
                    .await?
                    .unwrap_or_default();
                Ok(outcome(&item, "another run"))
            }
            Err(e) => Err(AwsCallError::new(
                "dynamodb:TransactWriteItems (priority)",
                e,
            )),
        }
    }

    async fn release_priority(&self, priority: u32, tenant: &str) -> Result<(), AwsCallError> {
        let claim = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::claim_key(priority)))
            .condition_expression("tenant = :t")
            .expression_attribute_values(":t", s(tenant))
            .build()
            .expect("table and key are set");
        let registry = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(format!("TENANT#{tenant}"), "REGISTRY")))
            .update_expression("REMOVE alb_priority")
            .condition_expression("alb_priority = :p")
            .expression_attribute_values(":p", n(priority))
            .build()
            .expect("table, key and expression are set");
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(claim).build())
            .transact_items(TransactWriteItem::builder().update(registry).build())
            .send()
            .await;
        match result {
            Ok(_) => {}
            // Already released (or never ours): nothing to do.
            Err(e)
                if e.as_service_error()
                    .is_some_and(ConditionalWriteError::condition_failed) => {}
            Err(e) => {
                return Err(AwsCallError::new(
                    "dynamodb:TransactWriteItems (release priority)",
                    e,
                ))
            }
        }
        // The claim created the registry entry of a tenant never deployed
        // (no last_execution): without its priority it is empty, remove it.
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(format!("TENANT#{tenant}"), "REGISTRY")))
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(alb_priority) AND attribute_not_exists(last_execution)",
            )
            .send()
            .await;
        conditional_write(result, "dynamodb:DeleteItem (empty registry)")?;
        Ok(())
    }

    async fn release_claim_of(
        &self,
        tenant: &str,
        owner: &str,
    ) -> Result<Option<u32>, AwsCallError> {
        let Some(priority) = self.tenant_priority(tenant).await? else {
            return Ok(None);
        };
        let claim = self
            .get(CLAIMS_PK.into(), &claim_sk(priority))
            .await?
            .unwrap_or_default();
        if get_s(&claim, "tenant") != Some(tenant) || get_s(&claim, "claimed_by") != Some(owner) {
            return Ok(None);
        }
        self.release_priority(priority, tenant).await?;
        Ok(Some(priority))
    }

    async fn record(&self, execution: &str, entry: &LedgerEntry) -> Result<(), AwsCallError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("RUN#{execution}")))
            .item("sk", s(format!("{nanos:020}#{}", entry.kind)))
            .item("kind", s(entry.kind.as_str()))
            .item("id", s(&entry.id))
            .item("created", AttributeValue::Bool(entry.created))
            .item("phase", s(&entry.phase));
        if let Some(previous) = &entry.previous {
            put = put.item("previous", s(previous));
        }
        put.send()
            .await
            .map_err(|e| AwsCallError::new("dynamodb:PutItem (ledger)", e))?;
        Ok(())
    }

    async fn ledger(&self, execution: &str) -> Result<Vec<LedgerEntry>, AwsCallError> {
        let items = self
            .partition(format!("RUN#{execution}"), None, "dynamodb:Query (ledger)")
            .await?;
        items
            .iter()
            .map(|item| {
                let kind = get_s(item, "kind").unwrap_or_default();
                Ok(LedgerEntry {
                    kind: kind
                        .parse()
                        .map_err(|e| AwsCallError::other("dynamodb:Query (ledger)", e))?,
                    id: get_s(item, "id").unwrap_or_default().to_string(),
                    created: item
                        .get("created")
                        .and_then(|v| v.as_bool().ok())
                        .copied()
                        .unwrap_or(false),
                    phase: get_s(item, "phase").unwrap_or_default().to_string(),
                    previous: get_s(item, "previous").map(str::to_string),
                })
            })
            .collect()
    }
}

/// An in-memory [`StateStore`] with the same conditional semantics as the
/// DynamoDB one, for the phases' unit tests (feature `testing`).
#[cfg(any(test, feature = "testing"))]
pub mod memory {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// The table's contents.
    #[derive(Debug, Default)]
    pub struct Tables {
        /// `ensure_table` calls.
        pub ensure_calls: u32,
        /// `claimed_priorities` calls.
        pub claimed_queries: u32,
        /// Claims made after the allocator's query: `claimed_priorities` does not see them.
        pub claims_unseen: std::collections::BTreeSet<u32>,
        /// Locks by tenant.
        pub locks: HashMap<String, LockHolder>,
        /// Priority claims: priority → tenant.
        pub claims: HashMap<u32, String>,
        /// Which run made each claim: priority → execution.
        pub claimed_by: HashMap<u32, String>,
        /// Registry priorities by tenant.
        pub registry: HashMap<String, u32>,
        /// Ledger entries with their execution, in write order.
        pub ledger: Vec<(String, LedgerEntry)>,
    }

    /// Shared handle; clones see the same tables.
    #[derive(Debug, Default, Clone)]
    pub struct MemoryState(pub Arc<Mutex<Tables>>);

    impl MemoryState {
        /// Runs `f` on the tables.
        pub fn with<T>(&self, f: impl FnOnce(&mut Tables) -> T) -> T {
            f(&mut self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner))
        }

        /// Every ledger entry, any execution.
        pub fn entries(&self) -> Vec<LedgerEntry> {
            self.with(|t| t.ledger.iter().map(|(_, e)| e.clone()).collect())
        }
    }

    impl StateStore for MemoryState {
        async fn ensure_table(&self) -> Result<bool, AwsCallError> {
            self.with(|t| t.ensure_calls += 1);
            Ok(false)
        }

        async fn acquire_lock(
            &self,
            tenant: &str,
            owner: &str,
            requested_by: &str,
            now: u64,
            expires_at: u64,
        ) -> Result<LockOutcome, AwsCallError> {
            Ok(self.with(|t| {
                if let Some(holder) = t.locks.get(tenant) {
                    if holder.expires_at >= now && holder.owner != owner {
                        return LockOutcome::HeldBy(holder.clone());
                    }
                }
                t.locks.insert(
                    tenant.into(),
                    LockHolder {
                        owner: owner.into(),
                        requested_by: requested_by.into(),
                        expires_at,
                    },
                );
                LockOutcome::Acquired
            }))
        }

        async fn release_lock(&self, tenant: &str, owner: &str) -> Result<bool, AwsCallError> {
            Ok(self.with(|t| {
                let ours = t.locks.get(tenant).is_some_and(|h| h.owner == owner);
                if ours {
                    t.locks.remove(tenant);
                }
                ours
            }))
        }

        async fn claimed_priorities(
            &self,
        ) -> Result<std::collections::BTreeSet<u32>, AwsCallError> {
            Ok(self.with(|t| {
                t.claimed_queries += 1;
                t.claims
                    .keys()
                    .filter(|p| !t.claims_unseen.contains(p))
                    .copied()
                    .collect()
            }))
        }

        async fn tenant_priority(&self, tenant: &str) -> Result<Option<u32>, AwsCallError> {
            Ok(self.with(|t| t.registry.get(tenant).copied()))
        }

        async fn claim_priority(
            &self,
            priority: u32,
            tenant: &str,
            owner: &str,
        ) -> Result<ClaimOutcome, AwsCallError> {
            Ok(self.with(|t| match t.claims.get(&priority) {
                Some(holder) if holder == tenant => {
                    if t.claimed_by.get(&priority).is_some_and(|by| by == owner) {
                        ClaimOutcome::ClaimedEarlier
                    } else {
                        ClaimOutcome::AlreadyOurs
                    }
                }
                Some(holder) => ClaimOutcome::TakenBy(holder.clone()),
                None => {
                    t.claims.insert(priority, tenant.into());
                    t.claimed_by.insert(priority, owner.into());
                    t.registry.insert(tenant.into(), priority);
                    ClaimOutcome::Claimed
                }
            }))
        }

        async fn release_priority(&self, priority: u32, tenant: &str) -> Result<(), AwsCallError> {
            self.with(|t| {
                if t.claims
                    .get(&priority)
                    .is_some_and(|holder| holder == tenant)
                {
                    t.claims.remove(&priority);
                    t.claimed_by.remove(&priority);
                    t.registry.remove(tenant);
                }
            });
            Ok(())
        }

        async fn release_claim_of(
            &self,
            tenant: &str,
            owner: &str,
        ) -> Result<Option<u32>, AwsCallError> {
            Ok(self.with(|t| {
                let priority = *t.registry.get(tenant)?;
                if t.claims.get(&priority).is_some_and(|h| h == tenant)
                    && t.claimed_by.get(&priority).is_some_and(|by| by == owner)
                {
                    t.claims.remove(&priority);
                    t.claimed_by.remove(&priority);
                    t.registry.remove(tenant);
                    Some(priority)
                } else {
                    None
                }
            }))
        }

        async fn record(&self, execution: &str, entry: &LedgerEntry) -> Result<(), AwsCallError> {
            self.with(|t| t.ledger.push((execution.into(), entry.clone())));
            Ok(())
        }

        async fn ledger(&self, execution: &str) -> Result<Vec<LedgerEntry>, AwsCallError> {
            Ok(self.with(|t| {
                t.ledger
                    .iter()
                    .filter(|(e, _)| e == execution)
                    .map(|(_, l)| l.clone())
                    .collect()
            }))
        }
    }
}

#[cfg(test)]
mod transaction_tests {
    use super::ConditionalWriteError;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_sdk_dynamodb::types::CancellationReason;

    fn cancelled(codes: &[&str]) -> TransactWriteItemsError {
        let mut e = TransactionCanceledException::builder();
        for code in codes {
            e = e.cancellation_reasons(CancellationReason::builder().code(*code).build());
        }
        TransactWriteItemsError::TransactionCanceledException(e.build())
    }

    #[test]
    fn only_a_failed_condition_is_a_lost_race() {
        assert!(cancelled(&["ConditionalCheckFailed", "None"]).condition_failed());
        assert!(cancelled(&["None", "ConditionalCheckFailed"]).condition_failed());
        // Another transaction on the same items: retried, not read as lost.
        assert!(!cancelled(&["TransactionConflict", "None"]).condition_failed());
        assert!(!cancelled(&["ConditionalCheckFailed", "TransactionConflict"]).condition_failed());
        assert!(!cancelled(&["ThrottlingError", "None"]).condition_failed());
        assert!(!cancelled(&[]).condition_failed());
    }
}
