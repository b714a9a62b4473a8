//! [`StateStore`] on DynamoDB: the one place that knows the table's items
//! and keys (a string `pk`/`sk` key).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | lock | `LOCK#{tenant}` | `LOCK` |
//! | priority claim | `PRIORITY` | `{n:05}` (zero-padded, so claims sort by priority) |
//! | tenant registry | `TENANT#{tenant}` | `REGISTRY` |
//! | ledger entry | `RUN#{execution}` | `{seq}#{kind}` |
//!
//! The claims share one partition so the allocator reads them all with one
//! query (a page holds thousands) instead of probing priorities one by one:
//! the cost of a bootstrap does not grow with the number of tenants.

use super::{
    ClaimOutcome, LedgerEntry, LockHolder, LockOutcome, QueueEntry, RegistryEntry, RegistryRecord,
    Release, StateStore,
};
use crate::aws_error::AwsCallError;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

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

/// The deployment a registry item records; `None` for an entry that holds
/// only a claim's priority (a tenant never deployed).
fn registry_record(item: &HashMap<String, AttributeValue>) -> Option<RegistryRecord> {
    let field = |name: &str| get_s(item, name).unwrap_or_default().to_string();
    get_s(item, "last_execution").map(|_| RegistryRecord {
        image: field("image"),
        status: field("status"),
        last_execution: field("last_execution"),
        updated_at: field("updated_at"),
        config_key: field("config_key"),
        requested_by: field("requested_by"),
        labels: item
            .get("labels")
            .and_then(|v| v.as_m().ok())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_s().ok()?.clone())))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Partition key shared by every priority claim.
pub const CLAIMS_PK: &str = "PRIORITY";

/// Sort key of the claim on `priority` (ALB priorities are 1..=50000).
pub fn claim_sk(priority: u32) -> String {
    format!("{priority:05}")
}

fn lock_pk(tenant: &str) -> String {
    format!("LOCK#{tenant}")
}
const LOCK_SK: &str = "LOCK";

/// Prefix of every registry entry's partition key (`TENANT#{tenant}`).
const REGISTRY_PK_PREFIX: &str = "TENANT#";
fn registry_pk(tenant: &str) -> String {
    format!("{REGISTRY_PK_PREFIX}{tenant}")
}
const REGISTRY_SK: &str = "REGISTRY";

/// Sort-key prefix of a tenant's releases (`RELEASE#000001`…), beside its
/// registry item: one query reads the history in order.
const RELEASE_SK_PREFIX: &str = "RELEASE#";
fn release_sk(number: u32) -> String {
    format!("{RELEASE_SK_PREFIX}{number:06}")
}

/// A release item's record (kept whole as JSON in `release`).
fn release_of(item: &HashMap<String, AttributeValue>) -> Option<Release> {
    get_s(item, "release").and_then(|json| serde_json::from_str(json).ok())
}

/// A tenant's queue: one item per waiting run (sort key: the execution).
fn queue_pk(tenant: &str) -> String {
    format!("QUEUE#{tenant}")
}

fn run_pk(execution: &str) -> String {
    format!("RUN#{execution}")
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

    /// The tenant's release items, newest first when `newest_first`, at
    /// most `limit` (all pages otherwise).
    async fn release_items(
        &self,
        tenant: &str,
        newest_first: bool,
        limit: Option<i32>,
    ) -> Result<Vec<Release>, AwsCallError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :r)")
            .expression_attribute_values(":pk", s(registry_pk(tenant)))
            .expression_attribute_values(":r", s(RELEASE_SK_PREFIX))
            .scan_index_forward(!newest_first)
            .consistent_read(true);
        let items = match limit {
            Some(limit) => query
                .limit(limit)
                .send()
                .await
                .map(|out| out.items.unwrap_or_default()),
            None => {
                query
                    .into_paginator()
                    .items()
                    .send()
                    .collect::<Result<Vec<_>, _>>()
                    .await
            }
        };
        match items {
            Ok(items) => Ok(items.iter().filter_map(release_of).collect()),
            // An environment never deployed to has no table: no releases.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(AwsCallError::new("dynamodb:Query (releases)", e)),
        }
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

    /// Every tenant's registry entry (a scan of all pages: an operator's
    /// read, not a phase's); empty while the table does not exist (an
    /// environment never deployed to).
    pub async fn registry_entries(&self) -> Result<Vec<RegistryEntry>, AwsCallError> {
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("sk = :r")
            .expression_attribute_values(":r", s(REGISTRY_SK))
            .into_paginator()
            .send();
        let mut entries = Vec::new();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
                {
                    return Ok(entries)
                }
                Err(e) => return Err(AwsCallError::new("dynamodb:Scan (registry)", e)),
            };
            for item in page.items() {
                let Some(tenant) =
                    get_s(item, "pk").and_then(|pk| pk.strip_prefix(REGISTRY_PK_PREFIX))
                else {
                    continue;
                };
                entries.push(RegistryEntry {
                    tenant: tenant.to_string(),
                    alb_priority: get_n(item, "alb_priority"),
                    record: registry_record(item),
                });
            }
        }
        Ok(entries)
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
            .item("pk", s(lock_pk(tenant)))
            .item("sk", s(LOCK_SK))
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
            .get(lock_pk(tenant), LOCK_SK)
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
            .set_key(Some(Self::key(lock_pk(tenant), LOCK_SK)))
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
        let item = self.get(registry_pk(tenant), REGISTRY_SK).await?;
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
            .set_key(Some(Self::key(registry_pk(tenant), REGISTRY_SK)))
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
            .set_key(Some(Self::key(registry_pk(tenant), REGISTRY_SK)))
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
            .set_key(Some(Self::key(registry_pk(tenant), REGISTRY_SK)))
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
            .item("pk", s(run_pk(execution)))
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
            .partition(run_pk(execution), None, "dynamodb:Query (ledger)")
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

    async fn lock_owner(&self, tenant: &str) -> Result<Option<String>, AwsCallError> {
        Ok(self
            .get(lock_pk(tenant), LOCK_SK)
            .await?
            .and_then(|item| get_s(&item, "owner").map(str::to_string)))
    }

    async fn claimed_tenants(&self) -> Result<Vec<String>, AwsCallError> {
        let items = self
            .partition(CLAIMS_PK.into(), None, "dynamodb:Query (priority claims)")
            .await?;
        let tenants: std::collections::BTreeSet<String> = items
            .iter()
            .filter_map(|item| get_s(item, "tenant").map(str::to_string))
            .collect();
        Ok(tenants.into_iter().collect())
    }

    async fn registry(&self, tenant: &str) -> Result<Option<RegistryRecord>, AwsCallError> {
        let item = self.get(registry_pk(tenant), REGISTRY_SK).await?;
        Ok(item.as_ref().and_then(registry_record))
    }

    async fn update_registry(
        &self,
        tenant: &str,
        record: &RegistryRecord,
    ) -> Result<(), AwsCallError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(registry_pk(tenant), REGISTRY_SK)))
            .update_expression("SET image = :i, #status = :s, last_execution = :e, updated_at = :u, config_key = :k, requested_by = :r, labels = :l")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":i", s(&record.image))
            .expression_attribute_values(":s", s(&record.status))
            .expression_attribute_values(":e", s(&record.last_execution))
            .expression_attribute_values(":u", s(&record.updated_at))
            .expression_attribute_values(":k", s(&record.config_key))
            .expression_attribute_values(":r", s(&record.requested_by))
            .expression_attribute_values(
                ":l",
                AttributeValue::M(
                    record
                        .labels
                        .iter()
                        .map(|(k, v)| (k.clone(), s(v)))
                        .collect(),
                ),
            )
            .send()
            .await
            .map_err(|e| AwsCallError::new("dynamodb:UpdateItem (registry)", e))?;
        Ok(())
    }

    async fn unregister(&self, tenant: &str, execution: &str) -> Result<bool, AwsCallError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(registry_pk(tenant), REGISTRY_SK)))
            .update_expression(
                "REMOVE image, #status, last_execution, updated_at, config_key, requested_by, labels",
            )
            .condition_expression("last_execution = :e")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":e", s(execution))
            .send()
            .await;
        conditional_write(result, "dynamodb:UpdateItem (unregister)")
    }

    async fn forget_tenant(&self, tenant: &str) -> Result<(), AwsCallError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(registry_pk(tenant), REGISTRY_SK)))
            .send()
            .await
            .map_err(|e| AwsCallError::new("dynamodb:DeleteItem (registry)", e))?;
        Ok(())
    }

    async fn enqueue(&self, tenant: &str, entry: &QueueEntry) -> Result<u64, AwsCallError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(HashMap::from([
                ("pk".to_string(), s(queue_pk(tenant))),
                ("sk".to_string(), s(&entry.execution)),
                ("requested_by".to_string(), s(&entry.requested_by)),
                ("enqueued_at".to_string(), n(entry.enqueued_at)),
                ("expires_at".to_string(), n(entry.expires_at)),
                ("last_seen".to_string(), n(entry.last_seen)),
            ])))
            .condition_expression("attribute_not_exists(sk)")
            .send()
            .await;
        if conditional_write(result, "dynamodb:PutItem (queue)")? {
            return Ok(entry.enqueued_at);
        }
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(queue_pk(tenant), &entry.execution)))
            .update_expression("SET last_seen = :n")
            .expression_attribute_values(":n", n(entry.last_seen))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| AwsCallError::new("dynamodb:UpdateItem (queue)", e))?;
        Ok(out
            .attributes
            .as_ref()
            .and_then(|i| get_n(i, "enqueued_at"))
            .unwrap_or(entry.enqueued_at))
    }

    async fn queue(&self, tenant: &str) -> Result<Vec<QueueEntry>, AwsCallError> {
        let items = self
            .partition(queue_pk(tenant), None, "dynamodb:Query (queue)")
            .await?;
        let mut entries: Vec<QueueEntry> = items
            .iter()
            .filter_map(|i| {
                Some(QueueEntry {
                    execution: get_s(i, "sk")?.to_string(),
                    requested_by: get_s(i, "requested_by").unwrap_or_default().to_string(),
                    enqueued_at: get_n(i, "enqueued_at")?,
                    expires_at: get_n(i, "expires_at")?,
                    last_seen: get_n(i, "last_seen").unwrap_or_default(),
                })
            })
            .collect();
        entries.sort_by(|a, b| (a.enqueued_at, &a.execution).cmp(&(b.enqueued_at, &b.execution)));
        Ok(entries)
    }

    async fn dequeue(&self, tenant: &str, execution: &str) -> Result<(), AwsCallError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(queue_pk(tenant), execution)))
            .send()
            .await
            .map_err(|e| AwsCallError::new("dynamodb:DeleteItem (queue)", e))?;
        Ok(())
    }

    async fn latest_release(&self, tenant: &str) -> Result<Option<Release>, AwsCallError> {
        Ok(self
            .release_items(tenant, true, Some(1))
            .await?
            .into_iter()
            .next())
    }

    async fn release(&self, tenant: &str, number: u32) -> Result<Option<Release>, AwsCallError> {
        let item = self.get(registry_pk(tenant), &release_sk(number)).await?;
        Ok(item.as_ref().and_then(release_of))
    }

    async fn releases(&self, tenant: &str) -> Result<Vec<Release>, AwsCallError> {
        self.release_items(tenant, false, None).await
    }

    async fn add_release(&self, tenant: &str, release: &Release) -> Result<bool, AwsCallError> {
        let json = serde_json::to_string(release).unwrap_or_default();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(HashMap::from([
                ("pk".to_string(), s(registry_pk(tenant))),
                ("sk".to_string(), s(release_sk(release.number))),
                ("number".to_string(), n(release.number)),
                ("execution".to_string(), s(&release.execution)),
                ("release".to_string(), s(json)),
            ])))
            .condition_expression("attribute_not_exists(sk)")
            .send()
            .await;
        conditional_write(result, "dynamodb:PutItem (release)")
    }

    async fn remove_release(
        &self,
        tenant: &str,
        number: u32,
        execution: &str,
    ) -> Result<bool, AwsCallError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(registry_pk(tenant), &release_sk(number))))
            .condition_expression("execution = :e")
            .expression_attribute_values(":e", s(execution))
            .send()
            .await;
        conditional_write(result, "dynamodb:DeleteItem (release)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
    use aws_sdk_dynamodb::operation::scan::{ScanError, ScanOutput};
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    use aws_sdk_dynamodb::types::error::{
        ConditionalCheckFailedException, ResourceNotFoundException, TransactionCanceledException,
    };
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

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

    #[tokio::test]
    async fn lock_held_by_another_run_names_the_holder() {
        let put = mock!(aws_sdk_dynamodb::Client::put_item)
            .match_requests(|r| {
                r.condition_expression()
                    .is_some_and(|c| c.contains("attribute_not_exists(pk)"))
            })
            .then_error(|| {
                PutItemError::ConditionalCheckFailedException(
                    ConditionalCheckFailedException::builder()
                        .message("held")
                        .build(),
                )
            });
        let get = mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| {
            GetItemOutput::builder()
                .item("owner", AttributeValue::S("arn:exec:first".into()))
                .item("requested_by", AttributeValue::S("jane".into()))
                .item("expires_at", AttributeValue::N("5000".into()))
                .build()
        });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&put, &get]);
        let store = DynamoStateStore::new(client, "stepdeploy-state-dev");
        let outcome = store
            .acquire_lock("goldencrust", "arn:exec:second", "bob", 100, 200)
            .await
            .expect("answered");
        let LockOutcome::HeldBy(holder) = outcome else {
            panic!("expected HeldBy, got {outcome:?}")
        };
        assert_eq!(
            (
                holder.owner.as_str(),
                holder.requested_by.as_str(),
                holder.expires_at
            ),
            ("arn:exec:first", "jane", 5000)
        );
    }

    #[tokio::test]
    async fn free_lock_is_acquired() {
        let put = mock!(aws_sdk_dynamodb::Client::put_item)
            .match_requests(|r| {
                r.table_name() == Some("stepdeploy-state-dev")
                    && r.item()
                        .and_then(|i| i.get("pk"))
                        .and_then(|v| v.as_s().ok())
                        .map(String::as_str)
                        == Some("LOCK#goldencrust")
            })
            .then_output(|| PutItemOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, [&put]);
        let store = DynamoStateStore::new(client, "stepdeploy-state-dev");
        assert_eq!(
            store
                .acquire_lock("goldencrust", "arn:exec", "jane", 100, 200)
                .await
                .expect("ok"),
            LockOutcome::Acquired
        );
    }

    #[tokio::test]
    async fn registry_entries_read_every_page_and_a_missing_table_as_none() {
        let item = |tenant: &str, deployed: bool| {
            let mut item = HashMap::from([
                ("pk".to_string(), s(registry_pk(tenant))),
                ("sk".to_string(), s(REGISTRY_SK)),
                ("alb_priority".to_string(), n(7)),
            ]);
            if deployed {
                for field in [
                    "image",
                    "status",
                    "updated_at",
                    "config_key",
                    "requested_by",
                ] {
                    item.insert(field.into(), s(format!("{tenant}-{field}")));
                }
                item.insert("last_execution".into(), s("arn:exec"));
            }
            item
        };
        let first = mock!(aws_sdk_dynamodb::Client::scan)
            .match_requests(|r| r.exclusive_start_key().is_none())
            .then_output(move || {
                ScanOutput::builder()
                    .items(item("goldencrust", true))
                    .last_evaluated_key("pk", s("TENANT#goldencrust"))
                    .build()
            });
        let second = mock!(aws_sdk_dynamodb::Client::scan)
            .match_requests(|r| r.exclusive_start_key().is_some())
            .then_output(move || ScanOutput::builder().items(item("claimed", false)).build());
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&first, &second]);
        let entries = DynamoStateStore::new(client, "t")
            .registry_entries()
            .await
            .expect("scanned");
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert_eq!(entries[0].tenant, "goldencrust");
        assert_eq!(
            entries[0].record.as_ref().map(|r| r.image.as_str()),
            Some("goldencrust-image")
        );
        assert_eq!(
            (
                &entries[1].tenant[..],
                entries[1].alb_priority,
                &entries[1].record
            ),
            ("claimed", Some(7), &None)
        );

        let missing = mock!(aws_sdk_dynamodb::Client::scan).then_error(|| {
            ScanError::ResourceNotFoundException(ResourceNotFoundException::builder().build())
        });
        let client = mock_client!(aws_sdk_dynamodb, [&missing]);
        assert_eq!(
            DynamoStateStore::new(client, "t")
                .registry_entries()
                .await
                .expect("answered"),
            Vec::new()
        );
    }
}
