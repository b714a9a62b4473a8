//! Teardown's steps: find a tenant's resources by name and remove them.

use aws_config::SdkConfig;
use rollback::{undo, AwsConnector, EnvClients, Undone};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use stepdeploy_shared::aws::{s3_client, EnvCache};
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::{ConfigError, EnvironmentSet};
use stepdeploy_shared::error_names;
use stepdeploy_shared::errors::{diagnostic, ErrorName};
use stepdeploy_shared::ledger::{LedgerEntry, LedgerKind};
use stepdeploy_shared::plan::PhaseSwitches;
use stepdeploy_shared::request::Request;
use stepdeploy_shared::state::{LockOutcome, StateStore};
use stepdeploy_shared::validate::FieldError;
use stepdeploy_shared::{DeploymentPlan, ResourceNames};

/// A step of the teardown state machine.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Validate and lock.
    Prepare {
        /// The EventBridge event.
        event: serde_json::Value,
        /// `$$.Execution.Id`.
        execution: String,
        /// `$$.Execution.StartTime`.
        started_at: String,
    },
    /// Remove everything.
    Remove {
        /// `prepare`'s plan.
        plan: DeploymentPlan,
    },
    /// Take the lock after the gate (environments with approvers).
    Lock {
        /// `prepare`'s plan.
        plan: DeploymentPlan,
    },
    /// Release the lock after a failure.
    Unlock {
        /// `prepare`'s plan.
        plan: DeploymentPlan,
    },
}

/// What `remove` did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Removed {
    /// Resources removed (`kind id`).
    pub removed: Vec<String>,
    /// The config document, if there was one.
    pub config_document: Option<String>,
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    /// Bad event or payload.
    #[error("invalid request: {0}")]
    Validation(#[from] FieldError),
    /// Environment configs could not be loaded.
    #[error("environment configuration is invalid: {0}")]
    Config(#[source] Arc<ConfigError>),
    /// Another run holds the tenant.
    #[error(
        "{tenant} in {environment} is being changed by {owner}; try again when it has finished"
    )]
    Locked {
        /// Tenant.
        tenant: String,
        /// Environment.
        environment: String,
        /// Lock holder.
        owner: String,
    },
    /// Nothing of the tenant exists in the environment.
    #[error("{tenant} has no trace in {environment} (no registry entry, no resource by its names); nothing was removed. Tenants in {environment}: {}", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    NotFound {
        /// Tenant asked for.
        tenant: String,
        /// Environment.
        environment: String,
        /// Tenants that do exist there.
        known: Vec<String>,
    },
    /// A resource could not be removed.
    #[error("could not remove {what}: {reason}")]
    Remove {
        /// `kind id`.
        what: String,
        /// Why.
        reason: String,
    },
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
}

impl ErrorName for TeardownError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Validation(_) => error_names::VALIDATION_FAILED,
            Self::Config(_) => error_names::CONFIG_INVALID,
            Self::Locked { .. } => error_names::DEPLOYMENT_LOCKED,
            Self::NotFound { .. } => error_names::TENANT_NOT_FOUND,
            Self::Remove { .. } => error_names::ROLLBACK_FAILED,
            Self::Aws(e) => e.error_name(),
        }
    }
}

impl From<TeardownError> for lambda_runtime::Diagnostic {
    fn from(err: TeardownError) -> Self {
        diagnostic(&err)
    }
}

/// Clients, once per environment.
pub struct Ports {
    connector: AwsConnector,
    s3: EnvCache<aws_sdk_s3::Client>,
}

impl Ports {
    /// On top of the orchestrator's own config.
    pub fn new(base: SdkConfig) -> Self {
        Self {
            s3: EnvCache::new(base.clone(), "stepdeploy-teardown"),
            connector: AwsConnector::new(base),
        }
    }
}

fn entry(kind: LedgerKind, id: impl Into<String>) -> LedgerEntry {
    LedgerEntry {
        kind,
        id: id.into(),
        created: true,
        phase: "teardown".into(),
        previous: None,
    }
}

/// Where a removed tenant's tables are kept: `{database}_rm` and the
/// teardown's start time as `yyyymmddthhmmss` (unique per teardown; at most
/// 64 characters, as MySQL allows).
pub fn retained_name(database: &str, started_at: &str) -> String {
    let stamp: String = started_at
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    let (date, time) = stamp.split_at(stamp.len().min(8));
    let name = format!("{database}_rm{date}t{time}");
    name.chars().take(64).collect()
}

/// Whether an inventory holds anything that certainly exists (task
/// definitions and access points are looked up by name when removed).
fn has_trace(found: &[LedgerEntry]) -> bool {
    found
        .iter()
        .any(|e| ![LedgerKind::TaskDefinition, LedgerKind::EfsAccessPoint].contains(&e.kind))
}

/// Every resource the tenant has, found by name, in the order they must go.
async fn inventory(
    plan: &DeploymentPlan,
    c: &EnvClients,
) -> Result<Vec<LedgerEntry>, TeardownError> {
    let env = &plan.env;
    let names = &plan.names;
    let mut found = Vec::new();
    let records = c
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(&env.hosted_zone_id)
        .start_record_name(format!("{}.", names.host))
        .start_record_type(aws_sdk_route53::types::RrType::A)
        .max_items(1)
        .send()
        .await
        .map_err(|e| AwsCallError::new("route53:ListResourceRecordSets", e))?;
    if records.resource_record_sets().iter().any(|r| {
        r.name()
            .trim_end_matches('.')
            .eq_ignore_ascii_case(&names.host)
    }) {
        found.push(entry(
            LedgerKind::DnsRecord,
            format!("{}/{}", env.hosted_zone_id, names.host),
        ));
    }
    // Only what exists, so the report says only what was removed.
    let db = rollback::mysql_state(plan, c)
        .await
        .map_err(|reason| TeardownError::Remove {
            what: format!("mysql {}", names.database),
            reason,
        })?;
    if db.user_exists {
        found.push(entry(LedgerKind::MysqlUser, names.db_user.clone()));
    }
    if !db.database_exists {
        // Nothing to drop or keep.
    } else if env.approval.is_some() {
        // Where removal needs a quorum it is recoverable: the tables move to
        // `{database}_rm{yyyymmddThhmmss}` (README, "Restoring a removed tenant").
        found.push(LedgerEntry {
            previous: Some(retained_name(&names.database, &plan.started_at)),
            ..entry(LedgerKind::MysqlDatabaseRetained, names.database.clone())
        });
    } else {
        found.push(entry(LedgerKind::MysqlDatabase, names.database.clone()));
    }
    match c
        .secrets
        .describe_secret()
        .secret_id(&names.db_secret)
        .send()
        .await
    {
        Ok(d) if d.deleted_date().is_none() => found.push(entry(
            LedgerKind::DbSecret,
            d.arn().unwrap_or(&names.db_secret).to_string(),
        )),
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(e) => return Err(AwsCallError::new("secretsmanager:DescribeSecret", e).into()),
    }
    let services = c
        .ecs
        .describe_services()
        .cluster(&env.cluster)
        .services(&names.service)
        .send()
        .await
        .map_err(|e| AwsCallError::new("ecs:DescribeServices", e))?;
    if services
        .services()
        .iter()
        .any(|s| s.status() == Some("ACTIVE"))
    {
        found.push(entry(LedgerKind::Service, names.service.clone()));
    }
    let rules = stepdeploy_shared::listener::ElbRules(c.elb.clone());
    use stepdeploy_shared::listener::ListenerRules;
    for rule in rules.rules(&env.alb_listener_arn).await? {
        if rule.hosts.iter().any(|h| h == &names.host) {
            found.push(entry(LedgerKind::ListenerRule, rule.arn));
        }
    }
    match c
        .elb
        .describe_target_groups()
        .names(&names.target_group)
        .send()
        .await
    {
        Ok(out) => found.extend(
            out.target_groups()
                .iter()
                .filter_map(|t| t.target_group_arn())
                .map(|arn| entry(LedgerKind::TargetGroup, arn)),
        ),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_target_group_not_found_exception()) => {}
        Err(e) => return Err(AwsCallError::new("elbv2:DescribeTargetGroups", e).into()),
    }
    // By name: rollback's undo finds every ACTIVE revision of the family and
    // every access point at the path, reading every page (a file system
    // holds more than one page of access points past 100 tenants).
    found.push(entry(LedgerKind::TaskDefinition, names.task_family.clone()));
    found.push(entry(LedgerKind::EfsAccessPoint, names.efs_path.clone()));
    if let Some(priority) = c.state.tenant_priority(plan.tenant.as_str()).await? {
        found.push(entry(LedgerKind::PriorityClaim, priority.to_string()));
    }
    Ok(found)
}

/// Takes the tenant's lock for a teardown (an hour).
async fn lock(
    clients: &EnvClients,
    tenant: &str,
    execution: &str,
    requested_by: &str,
    environment: &str,
) -> Result<(), TeardownError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    if let LockOutcome::HeldBy(holder) = clients
        .state
        .acquire_lock(tenant, execution, requested_by, now, now + 3_600)
        .await?
    {
        return Err(TeardownError::Locked {
            tenant: tenant.to_string(),
            environment: environment.to_string(),
            owner: holder.owner,
        });
    }
    Ok(())
}

/// Runs one step.
pub async fn handle(
    input: serde_json::Value,
    environments: &Result<EnvironmentSet, Arc<ConfigError>>,
    ports: &Ports,
) -> Result<serde_json::Value, TeardownError> {
    let step: Step = serde_json::from_value(input)
        .map_err(|e| FieldError::new("(state machine input)", e.to_string()))?;
    match step {
        Step::Prepare {
            event,
            execution,
            started_at,
        } => {
            let environments = environments
                .as_ref()
                .map_err(|e| TeardownError::Config(Arc::clone(e)))?;
            let Request::Teardown(request) = Request::from_event(&event, environments)? else {
                return Err(FieldError::new(
                    "detail-type",
                    "the teardown state machine only takes \"Tenant Teardown Requested\"",
                )
                .into());
            };
            let env = environments
                .get(request.environment.as_str())
                .map_err(|e| FieldError::new("detail.environment", e.to_string()))?;
            let clients = ports.connector.connect(env).await;
            clients.state.ensure_table().await?;
            let priority = clients
                .state
                .tenant_priority(request.tenant.as_str())
                .await?
                .unwrap_or(0);
            let plan = DeploymentPlan {
                names: ResourceNames::new(&request.environment, &request.tenant, &env.domain),
                tenant: request.tenant,
                environment: request.environment,
                execution,
                requested_by: request.requested_by,
                image: env.defaults.image.clone(),
                alb_priority: priority,
                auto_promote: false,
                phases: PhaseSwitches {
                    // Removing from an environment with approvers goes
                    // through the same quorum as deploying to it.
                    approval: env.approval.is_some(),
                    verify: false,
                    dns: false,
                    promote_to: None,
                },
                env: env.clone(),
                started_at,
            };
            // A typo must not "succeed": a tenant with no registry entry and
            // nothing by its names is refused, naming the tenants there.
            let registered = clients
                .state
                .registry(plan.tenant.as_str())
                .await?
                .is_some();
            if !registered && !has_trace(&inventory(&plan, &clients).await?) {
                return Err(TeardownError::NotFound {
                    tenant: plan.tenant.to_string(),
                    environment: plan.environment.to_string(),
                    known: clients.state.claimed_tenants().await?,
                });
            }
            if env.approval.is_none() {
                lock(
                    &clients,
                    plan.tenant.as_str(),
                    &plan.execution,
                    &plan.requested_by,
                    plan.environment.as_str(),
                )
                .await?;
            }
            Ok(serde_json::to_value(plan).unwrap_or_default())
        }
        Step::Remove { plan } => {
            let clients = ports.connector.connect(&plan.env).await;
            let mut out = Removed::default();
            for item in inventory(&plan, &clients).await? {
                let what = format!("{} {}", item.kind, item.id);
                match undo(&plan, &clients, &item).await.map_err(|reason| {
                    TeardownError::Remove {
                        what: what.clone(),
                        reason,
                    }
                })? {
                    Undone::Removed | Undone::Restored => out.removed.push(what),
                    Undone::AlreadyGone => {}
                }
            }
            let s3 = ports.s3.get(&plan.env, s3_client).await;
            s3.delete_object()
                .bucket(&plan.env.config_bucket)
                .key(&plan.names.config_key)
                .send()
                .await
                .map_err(|e| AwsCallError::new("s3:DeleteObject (config document)", e))?;
            out.config_document = Some(format!(
                "s3://{}/{}",
                plan.env.config_bucket, plan.names.config_key
            ));
            clients.state.forget_tenant(plan.tenant.as_str()).await?;
            clients
                .state
                .release_lock(plan.tenant.as_str(), &plan.execution)
                .await?;
            Ok(serde_json::to_value(out).unwrap_or_default())
        }
        Step::Lock { plan } => {
            let clients = ports.connector.connect(&plan.env).await;
            lock(
                &clients,
                plan.tenant.as_str(),
                &plan.execution,
                &plan.requested_by,
                plan.environment.as_str(),
            )
            .await?;
            Ok(serde_json::json!({ "locked": true }))
        }
        Step::Unlock { plan } => {
            let clients = ports.connector.connect(&plan.env).await;
            let released = clients
                .state
                .release_lock(plan.tenant.as_str(), &plan.execution)
                .await?;
            Ok(serde_json::json!({ "lock_released": released }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::retained_name;

    #[test]
    fn retained_databases_are_named_by_the_teardown_time() {
        assert_eq!(
            retained_name("goldencrust_db", "2026-11-30T10:15:02.123Z"),
            "goldencrust_db_rm20261130t101502"
        );
        let long = "a".repeat(60);
        assert_eq!(retained_name(&long, "2026-11-30T10:15:02Z").len(), 64);
    }
}
