//! Teardown's steps: find a tenant's resources by name and remove them.

use crate::error::TeardownError;
use rollback::find::{self, FindError};
use rollback::ports::{DocumentStore, Registry};
use rollback::{undo, Connector, Resources, TenantScope, Undone};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use stepdeploy_shared::config::{ConfigError, EnvironmentConfig, EnvironmentSet};
use stepdeploy_shared::ledger::{LedgerEntry, LedgerKind};
use stepdeploy_shared::plan::PhaseSwitches;
use stepdeploy_shared::request::{Request, TeardownRequest};
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

/// What a step returns (each lands under its own key of the teardown state).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum StepOutput {
    /// `prepare`: the plan the later steps act on.
    Plan(Box<DeploymentPlan>),
    /// `remove`: what went.
    Removed(Removed),
    /// `lock`: taken.
    Locked {
        /// Always `true` (a held lock is an error).
        locked: bool,
    },
    /// `unlock`: whether this run's lock was released.
    Unlocked {
        /// `false` when the lock was no longer this run's.
        lock_released: bool,
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

/// Every resource the tenant has (rollback's [`find::inventory`]). Where
/// removal needs a quorum it is recoverable: the tables move to
/// `{database}_rm{yyyymmddThhmmss}` (docs/operating.md, "Removing a tenant from prod, and restoring it").
async fn inventory(
    plan: &DeploymentPlan,
    ports: &impl Resources,
) -> Result<Vec<LedgerEntry>, TeardownError> {
    let retain_as = plan
        .env
        .approval
        .is_some()
        .then(|| retained_name(&plan.names.database, &plan.started_at));
    find::inventory(&TenantScope::from(plan), ports, retain_as)
        .await
        .map_err(|e| match e {
            FindError::Aws(e) => TeardownError::Aws(e),
            FindError::MySql { database, reason } => TeardownError::Remove {
                what: format!("mysql {database}"),
                reason,
            },
        })
}

/// Takes the tenant's lock for a teardown (an hour).
async fn lock(state: &impl StateStore, plan: &DeploymentPlan) -> Result<(), TeardownError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let tenant = plan.tenant.as_str();
    if let LockOutcome::HeldBy(holder) = state
        .acquire_lock(
            tenant,
            &plan.execution,
            &plan.requested_by,
            now,
            now + 3_600,
        )
        .await?
    {
        return Err(TeardownError::Locked {
            tenant: tenant.to_string(),
            environment: plan.environment.to_string(),
            owner: holder.owner,
        });
    }
    Ok(())
}

/// The teardown state machine's data (`$.plan.output`): what the approval
/// gate, the guard and the announcement read. Only its tenant, environment,
/// names and run matter to the removal; the image is the environment's
/// default and no deployment phase runs.
fn teardown_plan(
    request: TeardownRequest,
    env: &EnvironmentConfig,
    execution: String,
    started_at: String,
    alb_priority: u32,
) -> DeploymentPlan {
    DeploymentPlan {
        names: ResourceNames::new(&request.environment, &request.tenant, &env.domain),
        tenant: request.tenant,
        environment: request.environment,
        execution,
        requested_by: request.requested_by,
        image: env.defaults.image.clone(),
        alb_priority,
        auto_promote: false,
        phases: PhaseSwitches {
            // Removing from an environment with approvers goes
            // through the same quorum as deploying to it.
            approval: env.approval.is_some(),
            verify: false,
            dns: false,
            promote_to: None,
        },
        // The tenant's load balancer: the one its priority is in.
        env: env.in_plan(alb_priority),
        started_at,
        labels: None,
        rollout: None,
        current: None,
        restore: None,
        backup: None,
        window: None,
        window_override: None,
        queued: None,
    }
}

/// Runs one step.
pub async fn handle<C: Connector>(
    step: Step,
    environments: &Result<EnvironmentSet, Arc<ConfigError>>,
    connector: &C,
) -> Result<StepOutput, TeardownError> {
    match step {
        Step::Prepare {
            event,
            execution,
            started_at,
        } => {
            let plan = prepare(event, execution, started_at, environments, connector).await?;
            Ok(StepOutput::Plan(Box::new(plan)))
        }
        Step::Remove { plan } => {
            let out = remove(&plan, &connector.connect(&plan.env).await).await?;
            Ok(StepOutput::Removed(out))
        }
        Step::Lock { plan } => {
            lock(connector.connect(&plan.env).await.state(), &plan).await?;
            Ok(StepOutput::Locked { locked: true })
        }
        Step::Unlock { plan } => {
            let ports = connector.connect(&plan.env).await;
            let released = ports
                .state()
                .release_lock(plan.tenant.as_str(), &plan.execution)
                .await?;
            Ok(StepOutput::Unlocked {
                lock_released: released,
            })
        }
    }
}

/// Validates the request, refuses a tenant with no trace, and (where no
/// quorum is needed first) takes the lock.
async fn prepare<C: Connector>(
    event: serde_json::Value,
    execution: String,
    started_at: String,
    environments: &Result<EnvironmentSet, Arc<ConfigError>>,
    connector: &C,
) -> Result<DeploymentPlan, TeardownError> {
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
    let ports = connector.connect(env).await;
    ports.state().ensure_table().await?;
    let tenant = request.tenant.clone();
    let priority = ports.state().tenant_priority(tenant.as_str()).await?;
    let plan = teardown_plan(request, env, execution, started_at, priority.unwrap_or(0));
    // A typo must not "succeed": a tenant with no registry entry and
    // nothing by its names is refused, naming the tenants there.
    let registered = ports.registry().is_registered(tenant.as_str()).await?;
    if !registered && !has_trace(&inventory(&plan, &ports).await?) {
        return Err(TeardownError::NotFound {
            tenant: plan.tenant.to_string(),
            environment: plan.environment.to_string(),
            known: ports.registry().claimed_tenants().await?,
        });
    }
    if env.approval.is_none() {
        lock(ports.state(), &plan).await?;
    }
    Ok(plan)
}

/// Removes everything the tenant has (with rollback's undo: idempotent,
/// tolerant of what is already gone), then the config document, the
/// registry entry and the lock.
async fn remove(plan: &DeploymentPlan, ports: &impl Resources) -> Result<Removed, TeardownError> {
    let scope = TenantScope::from(plan);
    let mut out = Removed::default();
    for item in inventory(plan, ports).await? {
        let what = format!("{} {}", item.kind, item.id);
        match undo(&scope, ports, &item)
            .await
            .map_err(|e| TeardownError::Remove {
                what: what.clone(),
                reason: e.to_string(),
            })? {
            Undone::Removed | Undone::Restored => out.removed.push(what),
            Undone::AlreadyGone => {}
        }
    }
    let (bucket, key) = (&plan.env.config_bucket, &plan.names.config_key);
    ports.documents().delete(bucket, key).await?;
    out.config_document = Some(format!("s3://{bucket}/{key}"));
    ports.registry().forget_tenant(plan.tenant.as_str()).await?;
    ports
        .state()
        .release_lock(plan.tenant.as_str(), &plan.execution)
        .await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use stepdeploy_shared::errors::ErrorName;
    fn step(value: serde_json::Value) -> super::Step {
        serde_json::from_value(value).expect("a step")
    }
    use super::*;
    use rollback::fake::{secret_arn, FakeEnv, FakeRule};
    use serde_json::json;
    use stepdeploy_shared::state::RegistryRecord;

    #[test]
    fn retained_databases_are_named_by_the_teardown_time() {
        assert_eq!(
            retained_name("goldencrust_db", "2026-11-30T10:15:02.123Z"),
            "goldencrust_db_rm20261130t101502"
        );
        let long = "a".repeat(60);
        assert_eq!(retained_name(&long, "2026-11-30T10:15:02Z").len(), 64);
    }

    fn environments() -> Result<EnvironmentSet, Arc<ConfigError>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/environments");
        Ok(EnvironmentSet::load_dir(&dir).expect("checked-in configs load"))
    }

    fn teardown_event(tenant: &str, environment: &str) -> serde_json::Value {
        json!({
            "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "Tenant Teardown Requested", "source": "stepdeploy",
            "account": "123456789012", "time": "2026-11-30T10:15:02Z", "region": "eu-west-1",
            "resources": [],
            "detail": {"tenant": tenant, "environment": environment, "requested_by": "ops@kimmyai.io"}
        })
    }

    async fn prepare_step(
        fake: &FakeEnv,
        tenant: &str,
        environment: &str,
    ) -> Result<DeploymentPlan, TeardownError> {
        let input = json!({
            "action": "prepare",
            "event": teardown_event(tenant, environment),
            "execution": "arn:td-exec:1",
            "started_at": "2026-11-30T10:15:02.123Z"
        });
        let plan = handle(step(input), &environments(), fake).await?;
        Ok(serde_json::from_value(serde_json::to_value(plan).expect("json")).expect("a plan"))
    }

    /// goldencrust deployed in the plan's environment, with two more task
    /// definition revisions and access points than a page holds.
    async fn deployed(plan: &DeploymentPlan) -> FakeEnv {
        let n = &plan.names;
        let fake = FakeEnv::default();
        let td = |r: u32| {
            format!(
                "arn:aws:ecs:eu-west-1:1:task-definition/{}:{r}",
                n.task_family
            )
        };
        fake.with(|w| {
            w.task_definitions = vec![td(1), td(2), td(3)];
            w.access_points = [
                ("fsap-x", "/other"),
                ("fsap-1", "/goldencrust"),
                ("fsap-y", "/x"),
                ("fsap-2", "/goldencrust"),
            ]
            .map(|(id, p)| (id.to_string(), p.to_string()))
            .to_vec();
            w.services.insert(n.service.clone(), td(3));
            w.target_groups = vec![(n.target_group.clone(), "arn:tg".into())];
            w.rules = vec![FakeRule {
                arn: "arn:rule".into(),
                host: n.host.clone(),
                priority: 140,
                target_group: "arn:tg".into(),
            }];
            w.secrets.insert(n.db_secret.clone(), false);
            w.records
                .insert(format!("{}.", n.host), "d1.cloudfront.net".into());
            w.documents.insert(n.config_key.clone(), "v3".into());
            w.db.database_exists = true;
            w.db.user_exists = true;
            w.registry.insert(
                plan.tenant.to_string(),
                RegistryRecord {
                    image: "wordpress:6.7".into(),
                    status: "active".into(),
                    last_execution: "arn:exec:0".into(),
                    updated_at: "2026-11-22T10:00:00Z".into(),
                    config_key: n.config_key.clone(),
                    requested_by: "jane".into(),
                    labels: Default::default(),
                },
            );
        });
        fake.state
            .claim_priority(140, plan.tenant.as_str(), "arn:exec:0")
            .await
            .expect("claimed");
        fake
    }

    fn sit_plan() -> DeploymentPlan {
        let mut plan = stepdeploy_shared::plan::sample("wordpress:6.7", 140);
        plan.execution = "arn:td-exec:1".into();
        plan.started_at = "2026-11-30T10:15:02.123Z".into();
        plan
    }

    #[tokio::test]
    async fn remove_takes_everything_reading_every_page() {
        let plan = sit_plan();
        let fake = deployed(&plan).await;
        let prepared = prepare_step(&fake, "goldencrust", "sit")
            .await
            .expect("prepared");
        assert_eq!(prepared.execution, plan.execution);
        assert!(!prepared.phases.approval);
        let out = handle(
            step(json!({"action": "remove", "plan": prepared})),
            &environments(),
            &fake,
        )
        .await
        .expect("removed");
        let out: Removed =
            serde_json::from_value(serde_json::to_value(out).expect("json")).expect("output");
        let n = &plan.names;
        assert_eq!(
            out.removed,
            [
                format!("dns_record {}/{}", plan.env.hosted_zone_id, n.host),
                format!("mysql_user {}", n.db_user),
                format!("mysql_database {}", n.database),
                format!("db_secret {}", secret_arn(&n.db_secret)),
                format!("service {}", n.service),
                "listener_rule arn:rule".to_string(),
                "target_group arn:tg".to_string(),
                format!("task_definition {}", n.task_family),
                format!("efs_access_point {}", n.efs_path),
                "priority_claim 140".to_string(),
            ]
        );
        assert_eq!(
            out.config_document,
            Some(format!("s3://{}/{}", plan.env.config_bucket, n.config_key))
        );
        // Three revisions and four access points: two pages each, all read.
        assert_eq!(fake.calls_to("ecs:ListTaskDefinitions").len(), 2);
        assert_eq!(fake.calls_to("efs:DescribeAccessPoints").len(), 2);
        fake.with(|w| {
            assert!(w.task_definitions.is_empty(), "{:?}", w.task_definitions);
            assert_eq!(w.access_points.len(), 2, "only the tenant's");
            assert!(w.services.is_empty() && w.rules.is_empty() && w.target_groups.is_empty());
            assert!(w.records.is_empty() && w.documents.is_empty() && w.registry.is_empty());
            assert!(w.secrets[&n.db_secret], "scheduled for deletion");
        });
        assert!(fake
            .state
            .with(|t| t.claims.is_empty() && t.locks.is_empty()));
    }

    #[tokio::test]
    async fn a_tenant_with_no_trace_is_refused_naming_those_there() {
        let fake = FakeEnv::default();
        fake.state
            .claim_priority(141, "crumbs", "arn:exec:9")
            .await
            .expect("claimed");
        let err = prepare_step(&fake, "goldencrus", "sit")
            .await
            .expect_err("refused");
        assert_eq!(err.error_name(), "TenantNotFound");
        assert_eq!(
            err.to_string(),
            "goldencrus has no trace in sit (no registry entry, no resource by its names); nothing was removed. Tenants in sit: crumbs"
        );
        assert!(fake.state.with(|t| t.locks.is_empty()), "not locked");
        let removing: Vec<String> = fake
            .calls()
            .into_iter()
            .filter(|c| c.contains("Delete") && !c.starts_with("dynamodb"))
            .collect();
        assert!(removing.is_empty(), "{removing:?}");
    }

    #[tokio::test]
    async fn where_removal_needs_a_quorum_the_data_is_kept_and_the_lock_waits() {
        let mut plan = sit_plan();
        plan.environment = stepdeploy_shared::EnvironmentName::parse("prod").expect("valid");
        let environments = environments();
        stepdeploy_shared::guard::reresolve(&mut plan, environments.as_ref().expect("loaded"))
            .expect("prod is configured");
        let fake = deployed(&plan).await;
        let prepared = prepare_step(&fake, "goldencrust", "prod")
            .await
            .expect("prepared");
        assert!(prepared.phases.approval);
        assert!(
            fake.state.with(|t| t.locks.is_empty()),
            "locked after the gate"
        );
        handle(
            step(json!({"action": "lock", "plan": prepared})),
            &environments,
            &fake,
        )
        .await
        .expect("locked");
        handle(
            step(json!({"action": "remove", "plan": prepared})),
            &environments,
            &fake,
        )
        .await
        .expect("removed");
        assert_eq!(
            fake.calls_to("mysql:RetainDatabase"),
            ["mysql:RetainDatabase goldencrust_db goldencrust_db_rm20261130t101502"]
        );
        assert!(fake.calls_to("mysql:DropDatabase").is_empty());
    }
}
