//! Undoing a run, entry by entry: the rollback Lambda's logic, also used by
//! teardown (which undoes every resource a tenant has, found by name).
//!
//! The phases write each ledger entry *before* the change it describes
//! (write-ahead; see `stepdeploy_shared::state`). An entry for a resource
//! whose AWS id is only known once it exists names it instead: a target
//! group by name, a listener rule by host, an access point by root path, a
//! task definition by family (every ACTIVE revision newer than `previous` is
//! the run's). Rollback looks those up and removes what it finds; an entry
//! whose change never happened finds nothing and counts as already gone.

pub mod cleanup;

use aws_config::SdkConfig;
use cleanup::History;
use serde::{Deserialize, Serialize};
use stepdeploy_shared::aws::EnvCache;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::EnvironmentConfig;
use stepdeploy_shared::error_names;
use stepdeploy_shared::errors::{diagnostic, ErrorName};
use stepdeploy_shared::ledger::{LedgerEntry, LedgerKind};
use stepdeploy_shared::mysql::{Endpoint, Login, MySqlAgent, MySqlCall, MySqlRequest, Secret};
use stepdeploy_shared::state::{DynamoStateStore, StateStore};
use stepdeploy_shared::DeploymentPlan;

/// `{output: plan}` as the state machine stores it.
#[derive(Debug, Clone, Deserialize)]
struct WrappedPlan {
    output: DeploymentPlan,
}

/// The part of the execution state rollback reads.
#[derive(Debug, Clone, Deserialize)]
struct RunState {
    #[serde(default)]
    plan: Option<WrappedPlan>,
}

/// What the state machine passes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackInput {
    /// The whole execution state.
    pub state: serde_json::Value,
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

/// A resource rollback could not undo, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftBehind {
    /// `kind id`, as the ledger names it.
    pub resource: String,
    /// The error that kept it (or why it was kept on purpose).
    pub error: String,
}

/// The operator's command that finishes a rollback left incomplete.
pub fn cleanup_command(execution: &str) -> String {
    let name = execution.rsplit(':').next().unwrap_or(execution);
    format!("stepdeploy cleanup {name}")
}

/// One line per resource left, and what to do.
fn incomplete_message(execution: &str, removed: &[String], left: &[LeftBehind]) -> String {
    let left_text: Vec<String> = left
        .iter()
        .map(|l| {
            let error: String = l.error.split_whitespace().collect::<Vec<_>>().join(" ");
            let error: String = error.chars().take(240).collect();
            format!("{} ({error})", l.resource)
        })
        .collect();
    format!(
        "rollback could not finish; remove the obstacle, then run `{}` (the tenant stays locked until then). {} left: {}. Undone: {}.",
        cleanup_command(execution),
        left.len(),
        left_text.join("; "),
        if removed.is_empty() {
            "nothing".to_string()
        } else {
            removed.join(", ")
        },
    )
}

/// Why rollback could not finish.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// The payload is not `{state}`.
    #[error("invalid input: {0}")]
    Validation(String),
    /// Some entries could not be undone (the state machine retries the whole
    /// rollback; what is left stays in the ledger for `stepdeploy cleanup`).
    #[error("{}", incomplete_message(execution, removed, left))]
    Incomplete {
        /// The run.
        execution: String,
        /// What was undone.
        removed: Vec<String>,
        /// What is left, and why.
        left: Vec<LeftBehind>,
    },
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
}

impl ErrorName for RollbackError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Validation(_) => error_names::VALIDATION_FAILED,
            Self::Incomplete { .. } => error_names::ROLLBACK_FAILED,
            Self::Aws(e) => e.error_name(),
        }
    }
}

impl From<RollbackError> for lambda_runtime::Diagnostic {
    fn from(err: RollbackError) -> Self {
        diagnostic(&err)
    }
}

/// Clients in one environment's account.
#[derive(Clone)]
pub struct EnvClients {
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// EFS.
    pub efs: aws_sdk_efs::Client,
    /// ELBv2.
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    /// Route53.
    pub route53: aws_sdk_route53::Client,
    /// S3 (the config bucket).
    pub s3: aws_sdk_s3::Client,
    /// Secrets Manager.
    pub secrets: aws_sdk_secretsmanager::Client,
    /// The state table.
    pub state: DynamoStateStore,
    /// The environment's MySQL agent.
    pub mysql: MySqlAgent,
}

/// Assumes each environment's deploy role once per cold start and keeps the clients.
pub struct AwsConnector(EnvCache<EnvClients>);

impl AwsConnector {
    /// A connector on top of the orchestrator's own config.
    pub fn new(base: SdkConfig) -> Self {
        Self(EnvCache::new(base, "stepdeploy-rollback"))
    }

    /// Clients in `env`'s account.
    pub async fn connect(&self, env: &EnvironmentConfig) -> EnvClients {
        self.0
            .get(env, |c| EnvClients {
                ecs: aws_sdk_ecs::Client::new(c),
                efs: aws_sdk_efs::Client::new(c),
                elb: aws_sdk_elasticloadbalancingv2::Client::new(c),
                route53: aws_sdk_route53::Client::new(c),
                s3: stepdeploy_shared::aws::s3_client(c),
                secrets: aws_sdk_secretsmanager::Client::new(c),
                state: DynamoStateStore::new(
                    aws_sdk_dynamodb::Client::new(c),
                    env.state_table.clone(),
                ),
                mysql: MySqlAgent {
                    lambda: aws_sdk_lambda::Client::new(c),
                    function: env.mysql_agent_arn(),
                },
            })
            .await
    }
}

/// The environment configs, loaded once per cold start (the error kept to
/// answer every invocation with it).
pub type Environments = Result<
    stepdeploy_shared::EnvironmentSet,
    std::sync::Arc<stepdeploy_shared::config::ConfigError>,
>;

fn configs(
    environments: &Environments,
) -> Result<&stepdeploy_shared::EnvironmentSet, RollbackError> {
    environments
        .as_ref()
        .map_err(|e| RollbackError::Validation(format!("environment configuration: {e}")))
}

/// Days a removed tenant secret can be restored (Secrets Manager's minimum is 7).
pub const SECRET_RECOVERY_DAYS: i64 = stepdeploy_shared::config::RETENTION_DAYS;

/// Outcome of undoing one entry.
pub enum Undone {
    /// Deleted.
    Removed,
    /// Put back as it was before the run.
    Restored,
    /// Nothing to do.
    AlreadyGone,
}

/// Runs rollback for one failed execution: the state machine's `{state}`,
/// or an "Execution Status Change" event of a run that ended without
/// reaching its Catch (see [`cleanup`]).
pub async fn handle(
    input: serde_json::Value,
    connector: &AwsConnector,
    history: &impl History,
    reports: &impl cleanup::Reports,
    environments: &Environments,
) -> Result<RollbackOutput, RollbackError> {
    if cleanup::is_cleanup_request(&input) {
        return cleanup_request(input, connector, history, reports, environments).await;
    }
    if cleanup::is_status_change(&input) {
        let event: cleanup::StatusChange = serde_json::from_value(input)
            .map_err(|e| RollbackError::Validation(format!("status change event: {e}")))?;
        let record = history.run_record(&event.detail.execution_arn).await?;
        tracing::info!(
            execution = %event.detail.execution_arn,
            status = %event.detail.status,
            rolled_back = record.rolled_back,
            "run ended outside the state machine's Catch"
        );
        return match record {
            cleanup::RunRecord {
                rolled_back: true, ..
            } => Ok(RollbackOutput {
                skipped: Some("the run's Rollback state already ran".into()),
                ..RollbackOutput::default()
            }),
            cleanup::RunRecord {
                last_state: Some(state),
                ..
            } => rollback_state(state, connector, history, environments).await,
            cleanup::RunRecord {
                last_state: None, ..
            } => Ok(RollbackOutput {
                skipped: Some("the run made no plan (bootstrap cleans up after itself)".into()),
                ..RollbackOutput::default()
            }),
        };
    }
    let RollbackInput { state } = serde_json::from_value(input)
        .map_err(|e| RollbackError::Validation(format!("expected {{state}}: {e}")))?;
    rollback_state(state, connector, history, environments).await
}

/// `stepdeploy cleanup` / `Tenant Cleanup Requested`: runs the rollback of
/// one run again, once the operator removed what kept it from finishing.
/// It undoes only that run's own ledger (what the run created), so it needs
/// no quorum even in an environment with approvers; the lock and the
/// priority claim go only when nothing is left. The outcome is published.
async fn cleanup_request(
    input: serde_json::Value,
    connector: &AwsConnector,
    history: &impl History,
    reports: &impl cleanup::Reports,
    environments: &Environments,
) -> Result<RollbackOutput, RollbackError> {
    let detail: cleanup::CleanupDetail = serde_json::from_value(input["detail"].clone())
        .map_err(|e| RollbackError::Validation(format!("detail: {e}")))?;
    stepdeploy_shared::identity::canonical("detail.requested_by", &detail.requested_by)
        .map_err(|e| RollbackError::Validation(e.to_string()))?;
    let execution = match (&detail.execution, &detail.tenant, &detail.environment) {
        (Some(execution), None, None) if execution.starts_with("arn:") => execution.clone(),
        (Some(name), None, None) => {
            let machine = std::env::var("STEPDEPLOY_DEPLOY_STATE_MACHINE_ARN").map_err(|_| {
                RollbackError::Validation(
                    "STEPDEPLOY_DEPLOY_STATE_MACHINE_ARN is not set: give the execution's ARN"
                        .into(),
                )
            })?;
            format!(
                "{}:{name}",
                machine.replacen(":stateMachine:", ":execution:", 1)
            )
        }
        (None, Some(tenant), Some(environment)) => {
            let tenant = stepdeploy_shared::TenantName::parse(tenant)
                .map_err(|e| RollbackError::Validation(e.within("detail").to_string()))?;
            let env = configs(environments)?
                .get(environment)
                .map_err(|e| RollbackError::Validation(format!("detail.environment: {e}")))?;
            let clients = connector.connect(env).await;
            clients
                .state
                .lock_owner(tenant.as_str())
                .await?
                .ok_or_else(|| {
                    RollbackError::Validation(format!(
                        "no run holds {tenant} in {environment}: nothing to clean up"
                    ))
                })?
        }
        _ => {
            return Err(RollbackError::Validation(
                "detail: give either execution, or tenant and environment".into(),
            ))
        }
    };
    match history.status(&execution).await?.as_deref() {
        Some("FAILED" | "TIMED_OUT" | "ABORTED") => {}
        Some("RUNNING") => {
            return Err(RollbackError::Validation(format!(
                "execution {execution} is still running: it rolls itself back if it fails; \
                 stop it first (aws stepfunctions stop-execution) to clean up now"
            )))
        }
        other => {
            return Err(RollbackError::Validation(format!(
            "execution {execution} is {}: only a failed, stopped or timed-out run is cleaned up",
            other.unwrap_or("unknown")
        )))
        }
    }
    let record = history.run_record(&execution).await?;
    let Some(state) = record.last_state else {
        return Err(RollbackError::Validation(format!(
            "execution {execution} made no plan: nothing to clean up"
        )));
    };
    let name = execution
        .rsplit(':')
        .next()
        .unwrap_or(&execution)
        .to_string();
    let outcome = rollback_state(state, connector, history, environments).await;
    let (subject, message) =
        match &outcome {
            Ok(out) => (
                format!("stepdeploy: cleanup of {name} finished"),
                format!(
                "Cleanup of {name}, asked by {}: nothing is left.\nUndone: {}\nLock released: {}\n",
                detail.requested_by,
                if out.removed.is_empty() && out.restored.is_empty() {
                    "nothing (it was already clean)".to_string()
                } else {
                    [out.removed.clone(), out.restored.clone()].concat().join(", ")
                },
                out.lock_released
            ),
            ),
            Err(e) => (
                format!("stepdeploy: cleanup of {name} could not finish"),
                format!("Cleanup of {name}, asked by {}: {e}\n", detail.requested_by),
            ),
        };
    reports.publish(&subject, &message).await?;
    outcome
}

/// Undoes the ledger of the run whose execution state is `state`.
async fn rollback_state(
    state: serde_json::Value,
    connector: &AwsConnector,
    history: &impl History,
    environments: &Environments,
) -> Result<RollbackOutput, RollbackError> {
    let run: RunState = serde_json::from_value(state)
        .map_err(|e| RollbackError::Validation(format!("state: {e}")))?;
    // Without a plan bootstrap failed, and bootstrap cleans up after itself.
    let Some(WrappedPlan { output: mut plan }) = run.plan else {
        return Ok(RollbackOutput::default());
    };
    // The environment as this function's configs say, not as the payload does.
    stepdeploy_shared::guard::reresolve(&mut plan, configs(environments)?)
        .map_err(|e| RollbackError::Validation(e.to_string()))?;
    // Undo only a run that did not succeed: a succeeded run's ledger is the
    // tenant's current state, and undoing it (a direct invoke with that
    // run's plan) would remove a live tenant without any approval.
    match history.status(&plan.execution).await?.as_deref() {
        Some("RUNNING" | "FAILED" | "TIMED_OUT" | "ABORTED") => {}
        other => {
            return Err(RollbackError::Validation(format!(
                "execution {} is {}: rollback undoes only runs that are failing or ended without success",
                plan.execution,
                other.unwrap_or("unknown")
            )))
        }
    }
    let clients = connector.connect(&plan.env).await;
    let mut ledger = clients.state.ledger(&plan.execution).await?;
    // A phase retried after a failure may have written an entry twice: undo it once.
    let mut seen = Vec::new();
    ledger.reverse();
    ledger.retain(|e| {
        let new = !seen.contains(e);
        seen.push(e.clone());
        new
    });
    let mut output = RollbackOutput::default();
    for entry in &ledger {
        let line = format!("{} {}", entry.kind, entry.id);
        // The priority goes back to the pool only once nothing else is left:
        // a listener rule still standing would otherwise share it.
        if entry.kind == LedgerKind::PriorityClaim && !output.left.is_empty() {
            output.left.push(LeftBehind {
                resource: line,
                error: "kept until the rest is removed".into(),
            });
            continue;
        }
        // Past a failure, go on: most entries do not depend on each other,
        // and the report then names everything that is left.
        match undo(&plan, &clients, entry).await {
            Ok(Undone::Removed | Undone::AlreadyGone) => output.removed.push(line),
            Ok(Undone::Restored) => output.restored.push(line),
            Err(error) => output.left.push(LeftBehind {
                resource: line,
                error,
            }),
        }
    }
    if !output.left.is_empty() {
        tracing::warn!(left = output.left.len(), "rollback could not finish");
        return Err(RollbackError::Incomplete {
            execution: plan.execution.clone(),
            removed: output.removed,
            left: output.left,
        });
    }
    output.lock_released = clients
        .state
        .release_lock(plan.tenant.as_str(), &plan.execution)
        .await?;
    tracing::info!(
        removed = output.removed.len(),
        restored = output.restored.len(),
        "rolled back"
    );
    Ok(output)
}

/// Undoes one ledger entry; errors are reasons (the entry's kind and id are added by the caller).
pub async fn undo(
    plan: &DeploymentPlan,
    c: &EnvClients,
    entry: &LedgerEntry,
) -> Result<Undone, String> {
    let Some(found) = find_by_name(plan, c, entry).await? else {
        return undo_one(plan, c, entry).await;
    };
    let mut undone = Undone::AlreadyGone;
    for resource in &found {
        if let Undone::Removed | Undone::Restored = undo_one(plan, c, resource).await? {
            undone = Undone::Removed;
        }
    }
    Ok(undone)
}

/// For an entry that names its resource (written before the create), the
/// resources of that name as concrete entries (none if the create never
/// happened); `None` for an entry that carries the resource's id.
async fn find_by_name(
    plan: &DeploymentPlan,
    c: &EnvClients,
    entry: &LedgerEntry,
) -> Result<Option<Vec<LedgerEntry>>, String> {
    let env = &plan.env;
    let err = |e: AwsCallError| e.to_string();
    let concrete = |id: &str| LedgerEntry {
        id: id.to_string(),
        ..entry.clone()
    };
    let name = entry.id.as_str();
    let found = match (entry.kind.as_str(), entry.created) {
        ("efs_access_point", true) if name.starts_with('/') => {
            let mut found = Vec::new();
            let mut token = None;
            loop {
                let page = c
                    .efs
                    .describe_access_points()
                    .file_system_id(&env.efs_id)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| err(AwsCallError::new("efs:DescribeAccessPoints", e)))?;
                found.extend(
                    page.access_points()
                        .iter()
                        .filter(|ap| ap.root_directory().and_then(|r| r.path()) == Some(name))
                        .filter(|ap| {
                            !matches!(
                                ap.life_cycle_state(),
                                Some(
                                    aws_sdk_efs::types::LifeCycleState::Deleting
                                        | aws_sdk_efs::types::LifeCycleState::Deleted
                                )
                            )
                        })
                        .filter_map(|ap| ap.access_point_id())
                        .map(concrete),
                );
                match page.next_token() {
                    Some(next) if !next.is_empty() => token = Some(next.to_string()),
                    _ => break found,
                }
            }
        }
        ("task_definition", true) if !name.contains(":task-definition/") => {
            let revision = |arn: &str| {
                arn.rsplit_once(':')
                    .and_then(|(_, r)| r.parse::<u32>().ok())
            };
            let after = entry.previous.as_deref().and_then(revision).unwrap_or(0);
            // family_prefix also matches longer families: keep this one's.
            let exact = format!("task-definition/{name}:");
            let mut found = Vec::new();
            let mut token = None;
            loop {
                let page = c
                    .ecs
                    .list_task_definitions()
                    .family_prefix(name)
                    .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| err(AwsCallError::new("ecs:ListTaskDefinitions", e)))?;
                found.extend(
                    page.task_definition_arns()
                        .iter()
                        .filter(|arn| arn.contains(&exact))
                        .filter(|arn| revision(arn).is_some_and(|r| r > after))
                        .map(|arn| concrete(arn)),
                );
                match page.next_token() {
                    Some(next) if !next.is_empty() => token = Some(next.to_string()),
                    _ => break found,
                }
            }
        }
        ("target_group", true) if !name.starts_with("arn:") => {
            match c.elb.describe_target_groups().names(name).send().await {
                Ok(out) => out
                    .target_groups()
                    .iter()
                    .filter_map(|tg| tg.target_group_arn())
                    .map(concrete)
                    .collect(),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_target_group_not_found_exception()) =>
                {
                    Vec::new()
                }
                Err(e) => return Err(err(AwsCallError::new("elbv2:DescribeTargetGroups", e))),
            }
        }
        ("listener_rule", true) if !name.starts_with("arn:") => {
            use stepdeploy_shared::listener::{ElbRules, ListenerRules};
            ElbRules(c.elb.clone())
                .rules(&env.alb_listener_arn)
                .await
                .map_err(err)?
                .into_iter()
                .filter(|rule| rule.hosts.iter().any(|h| h == name))
                .map(|rule| concrete(&rule.arn))
                .collect()
        }
        _ => return Ok(None),
    };
    Ok(Some(found))
}

/// Undoes one entry that carries its resource's id (or whose undo works by name).
async fn undo_one(
    plan: &DeploymentPlan,
    c: &EnvClients,
    entry: &LedgerEntry,
) -> Result<Undone, String> {
    let env = &plan.env;
    let err = |e: AwsCallError| e.to_string();
    match (entry.kind.as_str(), entry.created) {
        ("priority_claim", true) => {
            let priority: u32 = entry
                .id
                .parse()
                .map_err(|_| format!("not a priority: {}", entry.id))?;
            c.state
                .release_priority(priority, plan.tenant.as_str())
                .await
                .map_err(err)?;
            Ok(Undone::Removed)
        }
        ("efs_access_point", true) => match c
            .efs
            .delete_access_point()
            .access_point_id(&entry.id)
            .send()
            .await
        {
            Ok(_) => Ok(Undone::Removed),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_access_point_not_found()) =>
            {
                Ok(Undone::AlreadyGone)
            }
            Err(e) => Err(err(AwsCallError::new("efs:DeleteAccessPoint", e))),
        },
        ("task_definition", true) => match c
            .ecs
            .deregister_task_definition()
            .task_definition(&entry.id)
            .send()
            .await
        {
            Ok(_) => Ok(Undone::Removed),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_client_exception()) =>
            {
                Ok(Undone::AlreadyGone)
            }
            Err(e) => Err(err(AwsCallError::new("ecs:DeregisterTaskDefinition", e))),
        },
        // DeleteTargetGroup succeeds for a group that is already gone (AWS)
        // or says it is not found (moto; also a repeat after a lost answer).
        ("target_group", true) => match c
            .elb
            .delete_target_group()
            .target_group_arn(&entry.id)
            .send()
            .await
        {
            Ok(_) => Ok(Undone::Removed),
            Err(e)
                if {
                    use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata;
                    e.code() == Some("TargetGroupNotFound")
                } =>
            {
                Ok(Undone::AlreadyGone)
            }
            Err(e) => Err(err(AwsCallError::new("elbv2:DeleteTargetGroup", e))),
        },
        ("listener_rule", true) => match c.elb.delete_rule().rule_arn(&entry.id).send().await {
            Ok(_) => Ok(Undone::Removed),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_rule_not_found_exception()) =>
            {
                Ok(Undone::AlreadyGone)
            }
            Err(e) => Err(err(AwsCallError::new("elbv2:DeleteRule", e))),
        },
        ("listener_rule_update", false) => {
            // previous = "priority=P;target_group=ARN[,ARN]"
            let previous = entry.previous.as_deref().unwrap_or_default();
            let field = |name: &str| {
                previous
                    .split(';')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                    .unwrap_or_default()
                    .to_string()
            };
            if let Ok(priority) = field("priority").parse::<i32>() {
                let pair = aws_sdk_elasticloadbalancingv2::types::RulePriorityPair::builder()
                    .rule_arn(&entry.id)
                    .priority(priority)
                    .build();
                c.elb
                    .set_rule_priorities()
                    .rule_priorities(pair)
                    .send()
                    .await
                    .map_err(|e| err(AwsCallError::new("elbv2:SetRulePriorities", e)))?;
            }
            if let Some(tg) = field("target_group")
                .split(',')
                .next()
                .filter(|t| !t.is_empty())
            {
                let action = aws_sdk_elasticloadbalancingv2::types::Action::builder()
                    .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                    .target_group_arn(tg)
                    .build();
                c.elb
                    .modify_rule()
                    .rule_arn(&entry.id)
                    .actions(action)
                    .send()
                    .await
                    .map_err(|e| err(AwsCallError::new("elbv2:ModifyRule", e)))?;
            }
            Ok(Undone::Restored)
        }
        ("service", true) => {
            let result = c
                .ecs
                .delete_service()
                .cluster(&env.cluster)
                .service(&entry.id)
                .force(true)
                .send()
                .await;
            match result {
                Ok(_) => Ok(Undone::Removed),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_service_not_found_exception()) =>
                {
                    Ok(Undone::AlreadyGone)
                }
                Err(e) => Err(err(AwsCallError::new("ecs:DeleteService", e))),
            }
        }
        ("service_update", false) => {
            let previous = entry
                .previous
                .as_deref()
                .ok_or("no previous task definition recorded")?;
            c.ecs
                .update_service()
                .cluster(&env.cluster)
                .service(&entry.id)
                .task_definition(previous)
                .send()
                .await
                .map_err(|e| err(AwsCallError::new("ecs:UpdateService (restore)", e)))?;
            Ok(Undone::Restored)
        }
        // A recovery window, not a forced delete: a forced delete finishes
        // asynchronously, so a redeploy right after could not create the
        // secret again; a scheduled one is restored by the next deployment's
        // database phase (and an operator can restore it for 7 days).
        ("db_secret", true) => match c
            .secrets
            .delete_secret()
            .secret_id(&entry.id)
            .recovery_window_in_days(SECRET_RECOVERY_DAYS)
            .send()
            .await
        {
            Ok(_) => Ok(Undone::Removed),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(Undone::AlreadyGone)
            }
            // Already scheduled for deletion (an earlier attempt): done.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_invalid_request_exception()) =>
            {
                let scheduled = c
                    .secrets
                    .describe_secret()
                    .secret_id(&entry.id)
                    .send()
                    .await
                    .map(|d| d.deleted_date().is_some())
                    .unwrap_or(false);
                if scheduled {
                    Ok(Undone::AlreadyGone)
                } else {
                    Err(err(AwsCallError::new("secretsmanager:DeleteSecret", e)))
                }
            }
            Err(e) => Err(err(AwsCallError::new("secretsmanager:DeleteSecret", e))),
        },
        ("mysql_user", true) => {
            drop_sql(
                plan,
                c,
                MySqlRequest::DropUser {
                    user: checked(&entry.id)?.to_string(),
                },
            )
            .await
        }
        // Teardown in an approval environment keeps the data: the tables
        // move to the retained database named in `previous`.
        ("mysql_database_retained", true) => {
            let retained_as = entry
                .previous
                .as_deref()
                .ok_or_else(|| "no retained name for the database".to_string())?;
            drop_sql(
                plan,
                c,
                MySqlRequest::RetainDatabase {
                    database: checked(&entry.id)?.to_string(),
                    retained_as: checked(retained_as)?.to_string(),
                },
            )
            .await
        }
        ("mysql_database", true) => {
            drop_sql(
                plan,
                c,
                MySqlRequest::DropDatabase {
                    database: checked(&entry.id)?.to_string(),
                },
            )
            .await
        }
        ("dns_record", created) => {
            let name = format!("{}.", plan.names.host);
            let zone = env.hosted_zone_id.as_str();
            let target = match (created, entry.previous.as_deref()) {
                (false, Some(previous)) => Some(previous.to_string()),
                _ => None,
            };
            let current = c
                .route53
                .list_resource_record_sets()
                .hosted_zone_id(zone)
                .start_record_name(&name)
                .start_record_type(aws_sdk_route53::types::RrType::A)
                .max_items(1)
                .send()
                .await
                .map_err(|e| err(AwsCallError::new("route53:ListResourceRecordSets", e)))?;
            let existing = current
                .resource_record_sets()
                .iter()
                .find(|r| r.name().eq_ignore_ascii_case(&name))
                .cloned();
            let (action, record) = match (target, existing) {
                (None, None) => return Ok(Undone::AlreadyGone),
                (None, Some(record)) => (aws_sdk_route53::types::ChangeAction::Delete, record),
                (Some(previous), _) => {
                    let alias = aws_sdk_route53::types::AliasTarget::builder()
                        .dns_name(format!("{}.", previous.trim_end_matches('.')))
                        .hosted_zone_id(&env.cloudfront.hosted_zone_id)
                        .evaluate_target_health(false)
                        .build()
                        .map_err(|e| e.to_string())?;
                    let record = aws_sdk_route53::types::ResourceRecordSet::builder()
                        .name(&name)
                        .r#type(aws_sdk_route53::types::RrType::A)
                        .alias_target(alias)
                        .build()
                        .map_err(|e| e.to_string())?;
                    (aws_sdk_route53::types::ChangeAction::Upsert, record)
                }
            };
            let restoring = action == aws_sdk_route53::types::ChangeAction::Upsert;
            let change = aws_sdk_route53::types::Change::builder()
                .action(action)
                .resource_record_set(record)
                .build()
                .map_err(|e| e.to_string())?;
            let batch = aws_sdk_route53::types::ChangeBatch::builder()
                .comment("stepdeploy rollback")
                .changes(change)
                .build()
                .map_err(|e| e.to_string())?;
            c.route53
                .change_resource_record_sets()
                .hosted_zone_id(zone)
                .change_batch(batch)
                .send()
                .await
                .map_err(|e| {
                    err(AwsCallError::new(
                        "route53:ChangeResourceRecordSets (rollback)",
                        e,
                    ))
                })?;
            Ok(if restoring {
                Undone::Restored
            } else {
                Undone::Removed
            })
        }
        // notify's: the config document (deleted, or its previous version
        // copied back) and the registry record (taken back, or put back).
        ("config_document", created) => {
            let bucket = env.config_bucket.as_str();
            match (created, entry.previous.as_deref()) {
                (false, Some(version)) => {
                    c.s3.copy_object()
                        .bucket(bucket)
                        .key(&entry.id)
                        .copy_source(format!("{bucket}/{}?versionId={version}", entry.id))
                        .send()
                        .await
                        .map_err(|e| err(AwsCallError::new("s3:CopyObject (restore)", e)))?;
                    Ok(Undone::Restored)
                }
                _ => {
                    c.s3.delete_object()
                        .bucket(bucket)
                        .key(&entry.id)
                        .send()
                        .await
                        .map_err(|e| {
                            err(AwsCallError::new("s3:DeleteObject (config document)", e))
                        })?;
                    Ok(Undone::Removed)
                }
            }
        }
        ("registry_record", created) => match (created, entry.previous.as_deref()) {
            (false, Some(previous)) => {
                let record: stepdeploy_shared::state::RegistryRecord =
                    serde_json::from_str(previous)
                        .map_err(|e| format!("previous registry record: {e}"))?;
                c.state
                    .update_registry(&entry.id, &record)
                    .await
                    .map_err(err)?;
                Ok(Undone::Restored)
            }
            _ => Ok(
                if c.state
                    .unregister(&entry.id, &plan.execution)
                    .await
                    .map_err(err)?
                {
                    Undone::Removed
                } else {
                    Undone::AlreadyGone
                },
            ),
        },
        (kind, created) => Err(format!(
            "no undo for a ledger entry of kind {kind} (created: {created})"
        )),
    }
}

/// Names in SQL come from validated tenants: `[a-z0-9_]` only.
fn checked(name: &str) -> Result<&str, String> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(name)
    } else {
        Err(format!("refusing to use {name:?} in SQL"))
    }
}

/// Drops a MySQL user or database (`IF EXISTS`) through the environment's
/// MySQL agent, as the master user.
/// What exists on the environment's MySQL for the tenant (asked of the agent).
pub async fn mysql_state(
    plan: &DeploymentPlan,
    c: &EnvClients,
) -> Result<stepdeploy_shared::mysql::DbState, String> {
    let call = master_call(
        plan,
        c,
        MySqlRequest::Inspect {
            database: checked(&plan.names.database)?.to_string(),
            user: checked(&plan.names.db_user)?.to_string(),
        },
    )
    .await?;
    match c.mysql.call(&call).await.map_err(|e| e.to_string())? {
        stepdeploy_shared::mysql::MySqlResponse::State(state) => Ok(state),
        other => Err(format!("the MySQL agent answered {other:?} to inspect")),
    }
}

async fn drop_sql(
    plan: &DeploymentPlan,
    c: &EnvClients,
    request: MySqlRequest,
) -> Result<Undone, String> {
    let call = master_call(plan, c, request).await?;
    c.mysql.run(&call).await.map_err(|e| e.to_string())?;
    Ok(Undone::Removed)
}

/// A call to the agent as the master user (its secret read through the deploy role).
async fn master_call(
    plan: &DeploymentPlan,
    c: &EnvClients,
    request: MySqlRequest,
) -> Result<MySqlCall, String> {
    let env = &plan.env;
    let secret = c
        .secrets
        .get_secret_value()
        .secret_id(&env.rds.master_secret_arn)
        .send()
        .await
        .map_err(|e| AwsCallError::new("secretsmanager:GetSecretValue (master)", e).to_string())?;
    let doc: serde_json::Value = serde_json::from_str(secret.secret_string().unwrap_or_default())
        .map_err(|_| "the master secret is not JSON".to_string())?;
    let text = |k: &str| doc[k].as_str().unwrap_or_default().to_string();
    let call = MySqlCall {
        endpoint: Endpoint {
            host: env.rds.endpoint.clone(),
            port: env.rds.port,
            tls: env.rds.tls,
        },
        master: Login {
            username: text("username"),
            password: Secret(text("password")),
        },
        request,
    };
    Ok(call)
}
