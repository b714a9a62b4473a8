//! What notify writes and publishes, from the execution's state.

use aws_config::SdkConfig;
use aws_sdk_sns::types::MessageAttributeValue;
use serde::{Deserialize, Serialize};
use std::future::Future;
use stepdeploy_shared::aws::{s3_client, EnvCache};
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::EnvironmentConfig;
use stepdeploy_shared::contract::{
    DatabaseOutput, DnsOutput, EcsOutput, RunState, StepError, PHASES,
};
use stepdeploy_shared::error_names;
use stepdeploy_shared::errors::{diagnostic, ErrorName};
use stepdeploy_shared::ledger::{LedgerEntry, LedgerKind};
use stepdeploy_shared::request::{DEPLOY_FAILED, DEPLOY_SUCCEEDED, EVENT_SOURCE};
use stepdeploy_shared::state::{DynamoStateStore, RegistryRecord, StateStore};
use stepdeploy_shared::DeploymentPlan;

/// Where messages and events go (orchestrator account).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// SNS topic for outcomes (`STEPDEPLOY_NOTIFICATION_TOPIC_ARN`).
    pub topic_arn: Option<String>,
    /// Event bus (`STEPDEPLOY_EVENT_BUS`, default `stepdeploy`).
    pub event_bus: String,
}

impl Settings {
    /// Reads the environment variables.
    pub fn from_env() -> Self {
        Self {
            topic_arn: std::env::var("STEPDEPLOY_NOTIFICATION_TOPIC_ARN")
                .ok()
                .filter(|v| !v.is_empty()),
            event_bus: std::env::var("STEPDEPLOY_EVENT_BUS")
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "stepdeploy".into()),
        }
    }
}

/// What the state machine passes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyInput {
    /// `succeeded` or `failed`.
    pub outcome: Outcome,
    /// The whole execution state.
    pub state: serde_json::Value,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Everything passed.
    Succeeded,
    /// A phase failed (and rollback ran).
    Failed,
}

/// What notify did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyOutput {
    /// `succeeded` or `failed`.
    pub outcome: Outcome,
    /// The message subject.
    pub subject: String,
    /// `s3://…` of the config document (success only).
    pub config_document: Option<String>,
    /// Whether the lock was released here.
    pub lock_released: bool,
    /// Failure only: the run's error name, for its final state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Failure only: the run's cause with the rollback's outcome added, so
    /// the console shows both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// Why notify failed.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The payload is not `{outcome, state}`.
    #[error("invalid input: {0}")]
    Validation(String),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
}

impl ErrorName for NotifyError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Validation(_) => error_names::VALIDATION_FAILED,
            Self::Aws(e) => e.error_name(),
        }
    }
}

impl From<NotifyError> for lambda_runtime::Diagnostic {
    fn from(err: NotifyError) -> Self {
        diagnostic(&err)
    }
}

/// Where notify writes.
pub trait NotifyPorts: Send + Sync {
    /// Publishes to the outcome topic with filterable attributes.
    fn publish(
        &self,
        subject: &str,
        message: &str,
        attributes: &[(&str, &str)],
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Puts one event on the bus.
    fn put_event(
        &self,
        detail_type: &str,
        detail: &serde_json::Value,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// The version of the config document now (`"null"` in a bucket that was
    /// not versioned when it was written), `None` if there is none.
    fn document_version(
        &self,
        env: &EnvironmentConfig,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;
    /// The registry's record of the tenant's last deployment, if any.
    fn registry(
        &self,
        env: &EnvironmentConfig,
        tenant: &str,
    ) -> impl Future<Output = Result<Option<RegistryRecord>, AwsCallError>> + Send;
    /// Appends an entry to the run's ledger in the environment's state table.
    fn record(
        &self,
        env: &EnvironmentConfig,
        execution: &str,
        entry: &LedgerEntry,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Writes the config document in the environment's bucket.
    fn put_document(
        &self,
        env: &EnvironmentConfig,
        key: &str,
        body: String,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Updates the registry in the environment's state table.
    fn update_registry(
        &self,
        env: &EnvironmentConfig,
        tenant: &str,
        record: &RegistryRecord,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Releases the tenant lock held by `owner`.
    fn release_lock(
        &self,
        env: &EnvironmentConfig,
        tenant: &str,
        owner: &str,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
}

/// The AWS adapter: orchestrator clients built once, environment clients once per environment.
pub struct AwsNotify {
    settings: Settings,
    sns: aws_sdk_sns::Client,
    events: aws_sdk_eventbridge::Client,
    envs: EnvCache<(aws_sdk_s3::Client, DynamoStateStore)>,
}

impl AwsNotify {
    /// Clients for the orchestrator account.
    pub fn new(base: SdkConfig, settings: Settings) -> Self {
        Self {
            sns: aws_sdk_sns::Client::new(&base),
            events: aws_sdk_eventbridge::Client::new(&base),
            envs: EnvCache::new(base, "stepdeploy-notify"),
            settings,
        }
    }

    async fn env(&self, env: &EnvironmentConfig) -> (aws_sdk_s3::Client, DynamoStateStore) {
        self.envs
            .get(env, |config| {
                (
                    s3_client(config),
                    DynamoStateStore::new(
                        aws_sdk_dynamodb::Client::new(config),
                        env.state_table.clone(),
                    ),
                )
            })
            .await
    }
}

impl NotifyPorts for AwsNotify {
    async fn publish(
        &self,
        subject: &str,
        message: &str,
        attributes: &[(&str, &str)],
    ) -> Result<(), AwsCallError> {
        let Some(topic) = &self.settings.topic_arn else {
            tracing::warn!("STEPDEPLOY_NOTIFICATION_TOPIC_ARN is not set; no message published");
            return Ok(());
        };
        let mut publish = self
            .sns
            .publish()
            .topic_arn(topic)
            .subject(stepdeploy_shared::names::sns_subject(subject))
            .message(message);
        for (name, value) in attributes {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(*value)
                .build()
                .map_err(|e| AwsCallError::other("sns:Publish (build)", e))?;
            publish = publish.message_attributes(*name, attribute);
        }
        publish
            .send()
            .await
            .map_err(|e| AwsCallError::new("sns:Publish", e))?;
        Ok(())
    }

    async fn put_event(
        &self,
        detail_type: &str,
        detail: &serde_json::Value,
    ) -> Result<(), AwsCallError> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.settings.event_bus)
            .source(EVENT_SOURCE)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let out = self
            .events
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| AwsCallError::new("events:PutEvents", e))?;
        if out.failed_entry_count() > 0 {
            let why = out
                .entries()
                .iter()
                .filter_map(|e| e.error_message())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(AwsCallError::other(
                "events:PutEvents",
                std::io::Error::other(why),
            ));
        }
        Ok(())
    }

    async fn document_version(
        &self,
        env: &EnvironmentConfig,
        key: &str,
    ) -> Result<Option<String>, AwsCallError> {
        let (s3, _) = self.env(env).await;
        match s3
            .head_object()
            .bucket(&env.config_bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.version_id().unwrap_or("null").to_string())),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(e) => Err(AwsCallError::new("s3:HeadObject (config document)", e)),
        }
    }

    async fn registry(
        &self,
        env: &EnvironmentConfig,
        tenant: &str,
    ) -> Result<Option<RegistryRecord>, AwsCallError> {
        let (_, state) = self.env(env).await;
        state.registry(tenant).await
    }

    async fn record(
        &self,
        env: &EnvironmentConfig,
        execution: &str,
        entry: &LedgerEntry,
    ) -> Result<(), AwsCallError> {
        let (_, state) = self.env(env).await;
        state.record(execution, entry).await
    }

    async fn put_document(
        &self,
        env: &EnvironmentConfig,
        key: &str,
        body: String,
    ) -> Result<(), AwsCallError> {
        let (s3, _) = self.env(env).await;
        s3.put_object()
            .bucket(&env.config_bucket)
            .key(key)
            .content_type("application/json")
            .body(body.into_bytes().into())
            .send()
            .await
            .map_err(|e| AwsCallError::new("s3:PutObject (config document)", e))?;
        Ok(())
    }

    async fn update_registry(
        &self,
        env: &EnvironmentConfig,
        tenant: &str,
        record: &RegistryRecord,
    ) -> Result<(), AwsCallError> {
        let (_, state) = self.env(env).await;
        state.update_registry(tenant, record).await
    }

    async fn release_lock(
        &self,
        env: &EnvironmentConfig,
        tenant: &str,
        owner: &str,
    ) -> Result<bool, AwsCallError> {
        let (_, state) = self.env(env).await;
        state.release_lock(tenant, owner).await
    }
}

fn failed_phase(state: &RunState) -> &'static str {
    let done = |phase: &str| match phase {
        "bootstrap" => state.plan.is_some(),
        "approval" => {
            state.approval.is_some()
                || state
                    .plan
                    .as_ref()
                    .is_some_and(|p| !p.output.phases.approval)
        }
        "ecs" => state.ecs.is_some(),
        "database" => state.database.is_some(),
        "verify" => {
            state.verify.as_ref().is_some_and(|v| v.output.stable)
                || state.plan.as_ref().is_some_and(|p| !p.output.phases.verify)
        }
        _ => false,
    };
    PHASES
        .iter()
        .find(|p| !done(p))
        .copied()
        .unwrap_or("notify")
}

/// The tenant config document (never a password).
pub fn config_document(
    plan: &DeploymentPlan,
    ecs: &EcsOutput,
    database: &DatabaseOutput,
    dns: Option<&DnsOutput>,
    now: &str,
) -> serde_json::Value {
    let url = format!("https://{}", plan.names.host);
    serde_json::json!({
        "tenant_name": plan.tenant,
        "environment": plan.environment,
        "deployment_date": now,
        "deployed_by": plan.requested_by,
        "execution": plan.execution,
        "image": plan.image,
        "status": "active",
        "region": plan.env.region,
        "url": url,
        "admin_url": format!("{url}/wp-admin/"),
        "infrastructure": {
            "account_id": plan.env.account_id,
            "cluster": plan.env.cluster,
            "ecs_service": plan.names.service,
            "task_definition": ecs.task_definition_arn,
            "target_group": ecs.target_group_arn,
            "listener_rule": ecs.listener_rule_arn,
            "alb_listener_rule_priority": plan.alb_priority,
        },
        "database": {
            "name": database.database,
            "username": database.username,
            "rds_endpoint": plan.env.rds.endpoint,
            "secret_arn": database.secret_arn,
        },
        "storage": {"efs_id": plan.env.efs_id, "access_point_id": ecs.access_point_id, "mount_path": plan.names.efs_path},
        "dns": {"record": plan.names.host, "alias": dns.map(|d| d.target.clone())},
    })
}

fn now_rfc3339() -> String {
    aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// Runs notify.
pub async fn handle(
    input: serde_json::Value,
    ports: &impl NotifyPorts,
) -> Result<NotifyOutput, NotifyError> {
    let NotifyInput { outcome, state } = serde_json::from_value(input)
        .map_err(|e| NotifyError::Validation(format!("expected {{outcome, state}}: {e}")))?;
    let run: RunState = serde_json::from_value(state)
        .map_err(|e| NotifyError::Validation(format!("state: {e}")))?;
    let plan = run.plan.as_ref().map(|p| &p.output);
    let detail = &run.event["detail"];
    let tenant = plan
        .map(|p| p.tenant.to_string())
        .or_else(|| detail["tenant"].as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    let environment = plan
        .map(|p| p.environment.to_string())
        .or_else(|| detail["environment"].as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    let execution = plan.map(|p| p.execution.clone()).unwrap_or_default();
    let outcome_name = match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Failed => "failed",
    };
    let attributes = [
        ("tenant", tenant.as_str()),
        ("environment", environment.as_str()),
        ("outcome", outcome_name),
    ];

    match (outcome, plan) {
        (Outcome::Succeeded, Some(plan)) => {
            let (Some(ecs), Some(database)) = (&run.ecs, &run.database) else {
                return Err(NotifyError::Validation(
                    "state: a succeeded run has no ecs or database result".into(),
                ));
            };
            let dns = run.dns.as_ref().map(|w| &w.output);
            let now = now_rfc3339();
            let document = config_document(plan, &ecs.output, &database.output, dns, &now);
            // Written ahead, like every phase's changes: should anything after
            // this fail, rollback deletes the document or puts the previous
            // version back, and takes the registry record back.
            let entry = |kind: LedgerKind, id: &str, previous: Option<String>| LedgerEntry {
                kind,
                id: id.into(),
                created: previous.is_none(),
                phase: "notify".into(),
                previous,
            };
            let previous = ports
                .document_version(&plan.env, &plan.names.config_key)
                .await?;
            ports
                .record(
                    &plan.env,
                    &plan.execution,
                    &entry(LedgerKind::ConfigDocument, &plan.names.config_key, previous),
                )
                .await?;
            ports
                .put_document(
                    &plan.env,
                    &plan.names.config_key,
                    serde_json::to_string_pretty(&document).unwrap_or_default(),
                )
                .await?;
            let record = RegistryRecord {
                image: plan.image.to_string(),
                status: "active".into(),
                last_execution: plan.execution.clone(),
                updated_at: now.clone(),
                config_key: plan.names.config_key.clone(),
                requested_by: plan.requested_by.clone(),
            };
            let previous = ports
                .registry(&plan.env, plan.tenant.as_str())
                .await?
                .map(|r| serde_json::to_string(&r).unwrap_or_default());
            ports
                .record(
                    &plan.env,
                    &plan.execution,
                    &entry(LedgerKind::RegistryRecord, plan.tenant.as_str(), previous),
                )
                .await?;
            ports
                .update_registry(&plan.env, plan.tenant.as_str(), &record)
                .await?;
            let subject = format!("stepdeploy: {tenant} deployed to {environment}");
            let phases: Vec<&str> = PHASES
                .into_iter()
                .filter(|p| match *p {
                    "approval" => plan.phases.approval,
                    "verify" => plan.phases.verify,
                    "dns" => plan.phases.dns,
                    _ => true,
                })
                .collect();
            let message = format!(
                "{tenant} is live in {environment}.\n\nURL: https://{host}/\nAdmin: https://{host}/wp-admin/\nImage: {image}\nPhases: {phases}\nStarted: {started}\nFinished: {now}\nRequested by: {by}\nExecution: {execution}\nConsole: https://console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution}\n",
                host = plan.names.host,
                image = plan.image,
                phases = phases.join(" → "),
                started = plan.started_at,
                by = plan.requested_by,
                region = execution.split(':').nth(3).unwrap_or("eu-west-1"),
            );
            ports.publish(&subject, &message, &attributes).await?;
            ports
                .put_event(DEPLOY_SUCCEEDED, &serde_json::json!({"tenant": tenant, "environment": environment, "execution": execution, "image": plan.image, "url": format!("https://{}/", plan.names.host)}))
                .await?;
            let lock_released = ports
                .release_lock(&plan.env, plan.tenant.as_str(), &plan.execution)
                .await?;
            Ok(NotifyOutput {
                outcome,
                subject,
                config_document: Some(format!(
                    "s3://{}/{}",
                    plan.env.config_bucket, plan.names.config_key
                )),
                lock_released,
                error: None,
                cause: None,
            })
        }
        (Outcome::Succeeded, None) => Err(NotifyError::Validation(
            "a succeeded run without a plan".into(),
        )),
        (Outcome::Failed, _) => {
            let phase = failed_phase(&run);
            let error = run.error.clone().unwrap_or(StepError {
                error: None,
                cause: None,
            });
            let (error_name, cause) = (
                error.error.unwrap_or_else(|| "Unknown".into()),
                error.cause.unwrap_or_default(),
            );
            let rollback = rollback_outcome(&run);
            let subject =
                format!("stepdeploy: {tenant} failed in {environment} at {phase} ({error_name})");
            let message = format!(
                "Deploying {tenant} to {environment} failed at {phase}.\n\nError: {error_name}\nCause: {}\nRolled back: {}\nExecution: {execution}\n",
                cause_text(&cause).chars().take(2000).collect::<String>(),
                rollback.text,
            );
            ports.publish(&subject, &message, &attributes).await?;
            ports
                .put_event(DEPLOY_FAILED, &serde_json::json!({"tenant": tenant, "environment": environment, "execution": execution, "phase": phase, "error": error_name, "reason": cause_text(&cause).chars().take(1000).collect::<String>(), "rollback": {"complete": rollback.complete, "outcome": rollback.text}}))
                .await?;
            // What rollback left keeps the tenant locked until `stepdeploy cleanup`.
            let lock_released = match plan {
                Some(plan) if rollback.complete => {
                    ports
                        .release_lock(&plan.env, plan.tenant.as_str(), &plan.execution)
                        .await?
                }
                _ => false,
            };
            let combined = with_rollback(&cause, &rollback);
            Ok(NotifyOutput {
                outcome,
                subject,
                config_document: None,
                lock_released,
                error: Some(error_name),
                cause: Some(combined),
            })
        }
    }
}

/// What rollback did, as the failure message and event say it.
struct RollbackOutcome {
    /// Nothing is left.
    complete: bool,
    /// One line for people.
    text: String,
}

fn rollback_outcome(run: &RunState) -> RollbackOutcome {
    if let Some(error) = &run.rollback_error {
        return RollbackOutcome {
            complete: false,
            text: format!(
                "NOT complete — {}",
                cause_text(error.cause.as_deref().unwrap_or("rollback failed"))
            ),
        };
    }
    let Some(rollback) = &run.rollback else {
        return RollbackOutcome {
            complete: false,
            text: "rollback did not run".into(),
        };
    };
    let (removed, restored) = (&rollback.output.removed, &rollback.output.restored);
    let text = match (removed.is_empty(), restored.is_empty()) {
        (true, true) => "complete; the run had created nothing".to_string(),
        (false, true) => format!("complete; removed {}", removed.join(", ")),
        (true, false) => format!("complete; restored {}", restored.join(", ")),
        (false, false) => format!(
            "complete; removed {}; restored {}",
            removed.join(", "),
            restored.join(", ")
        ),
    };
    RollbackOutcome {
        complete: true,
        text,
    }
}

/// A Lambda's cause is `{"errorType", "errorMessage"}`: its message.
fn cause_text(cause: &str) -> String {
    serde_json::from_str::<serde_json::Value>(cause)
        .ok()
        .and_then(|v| v["errorMessage"].as_str().map(str::to_string))
        .unwrap_or_else(|| cause.to_string())
}

/// The run's cause with the rollback's outcome added, in the cause's own
/// shape (a Lambda's JSON keeps its `errorType`).
fn with_rollback(cause: &str, rollback: &RollbackOutcome) -> String {
    let tail = format!(" | Rolled back: {}", rollback.text);
    match serde_json::from_str::<serde_json::Value>(cause) {
        Ok(mut v) if v["errorMessage"].is_string() => {
            let message = format!("{}{tail}", v["errorMessage"].as_str().unwrap_or_default());
            v["errorMessage"] = serde_json::Value::String(message);
            v.to_string()
        }
        _ => format!("{cause}{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Everything notify would send, in memory.
    #[derive(Default, Clone)]
    struct Sent(Arc<Mutex<Vec<String>>>);

    impl Sent {
        fn log(&self) -> Vec<String> {
            self.0.lock().expect("lock").clone()
        }
        fn push(&self, line: String) {
            self.0.lock().expect("lock").push(line);
        }
    }

    impl NotifyPorts for Sent {
        async fn publish(
            &self,
            subject: &str,
            message: &str,
            attributes: &[(&str, &str)],
        ) -> Result<(), AwsCallError> {
            self.push(format!("publish {subject} | {attributes:?} | {message}"));
            Ok(())
        }
        async fn put_event(
            &self,
            detail_type: &str,
            detail: &serde_json::Value,
        ) -> Result<(), AwsCallError> {
            self.push(format!("event {detail_type} {detail}"));
            Ok(())
        }
        async fn document_version(
            &self,
            _env: &EnvironmentConfig,
            _key: &str,
        ) -> Result<Option<String>, AwsCallError> {
            Ok(None)
        }
        async fn registry(
            &self,
            _env: &EnvironmentConfig,
            _tenant: &str,
        ) -> Result<Option<RegistryRecord>, AwsCallError> {
            Ok(None)
        }
        async fn record(
            &self,
            _env: &EnvironmentConfig,
            _execution: &str,
            entry: &LedgerEntry,
        ) -> Result<(), AwsCallError> {
            self.push(format!(
                "ledger {} {} {}",
                entry.kind, entry.id, entry.created
            ));
            Ok(())
        }
        async fn put_document(
            &self,
            _env: &EnvironmentConfig,
            key: &str,
            body: String,
        ) -> Result<(), AwsCallError> {
            self.push(format!("document {key} {body}"));
            Ok(())
        }
        async fn update_registry(
            &self,
            _env: &EnvironmentConfig,
            tenant: &str,
            record: &RegistryRecord,
        ) -> Result<(), AwsCallError> {
            self.push(format!("registry {tenant} {}", record.status));
            Ok(())
        }
        async fn release_lock(
            &self,
            _env: &EnvironmentConfig,
            tenant: &str,
            owner: &str,
        ) -> Result<bool, AwsCallError> {
            self.push(format!("release {tenant} {owner}"));
            Ok(true)
        }
    }

    fn state(extra: serde_json::Value) -> serde_json::Value {
        let mut state = serde_json::json!({
            "event": {"detail": {"tenant": "goldencrust", "environment": "sit"}},
            "plan": {"output": stepdeploy_shared::plan::sample("wordpress:6.4-apache", 140)},
        });
        if let (Some(s), Some(e)) = (state.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        state
    }

    #[tokio::test]
    async fn success_writes_the_document_registry_message_event_and_releases_the_lock() {
        let sent = Sent::default();
        let run = state(serde_json::json!({
            "ecs": {"output": {"task_definition_arn": "arn:td:1", "target_group_arn": "arn:tg", "access_point_id": "fsap-1", "listener_rule_arn": "arn:rule", "service_arn": "arn:svc", "changes": []}},
            "database": {"output": {"database": "goldencrust_db", "username": "goldencrust_user", "secret_arn": "arn:secret", "changes": []}},
            "verify": {"output": {"stable": true, "attempt": 1, "checks": [], "report": null, "failing": "none"}},
        }));
        let out = handle(
            serde_json::json!({"outcome": "succeeded", "state": run}),
            &sent,
        )
        .await
        .expect("ok");
        assert_eq!(
            out.config_document.as_deref(),
            Some("s3://stepdeploy-config-sit-222222222222/sit/goldencrust.json")
        );
        assert!(out.lock_released);
        let mut log = sent.log();
        assert_eq!(
            log.remove(0),
            "ledger config_document sit/goldencrust.json true",
            "written before the document"
        );
        assert!(
            log[0].starts_with("document sit/goldencrust.json")
                && log[0].contains("\"secret_arn\": \"arn:secret\"")
        );
        assert!(!log[0].contains("password"));
        assert_eq!(log.remove(1), "ledger registry_record goldencrust true");
        assert_eq!(log[1], "registry goldencrust active");
        assert!(log[2].starts_with("publish stepdeploy: goldencrust deployed to sit | [(\"tenant\", \"goldencrust\"), (\"environment\", \"sit\"), (\"outcome\", \"succeeded\")]"), "{}", log[2]);
        assert!(log[3].starts_with("event Tenant Deployment Succeeded"));
        assert_eq!(log[4], "release goldencrust arn:exec:1");
    }

    #[tokio::test]
    async fn failure_names_the_phase_error_and_what_rollback_removed() {
        let sent = Sent::default();
        // database runs before ecs: nothing of ecs's yet.
        let run = state(serde_json::json!({
            "error": {"Error": "DatabaseError", "Cause": "MySQL at db:3306: connect refused"},
            "rollback": {"output": {"removed": ["db_secret sit-goldencrust-db-credentials"], "restored": [], "lock_released": true}},
        }));
        let out = handle(
            serde_json::json!({"outcome": "failed", "state": run}),
            &sent,
        )
        .await
        .expect("ok");
        assert_eq!(
            out.subject,
            "stepdeploy: goldencrust failed in sit at database (DatabaseError)"
        );
        let log = sent.log();
        assert!(
            log[0].contains("Cause: MySQL at db:3306: connect refused")
                && log[0].contains("db_secret sit-goldencrust-db-credentials"),
            "{}",
            log[0]
        );
        assert!(log[1].contains("\"phase\":\"database\""), "{}", log[1]);
    }

    /// Rollback that could not finish: the mail, the event and the run's
    /// cause say what is left and how to finish; the tenant stays locked.
    #[tokio::test]
    async fn an_incomplete_rollback_is_reported_and_keeps_the_lock() {
        let sent = Sent::default();
        let left = "rollback could not finish: 1 left: target_group arn:tg/x (ResourceInUse: in use by a listener rule). Undone: task_definition sit-goldencrust. Remove the obstacle, then run `stepdeploy cleanup goldencrust-sit-1`; the tenant stays locked until then.";
        let run = state(serde_json::json!({
            "error": {"Error": "VerificationFailed", "Cause": "{\"errorType\":\"VerificationFailed\",\"errorMessage\":\"not stable\"}"},
            "rollback_error": {"Error": "RollbackFailed", "Cause": serde_json::json!({"errorType": "RollbackFailed", "errorMessage": left}).to_string()},
        }));
        let out = handle(
            serde_json::json!({"outcome": "failed", "state": run}),
            &sent,
        )
        .await
        .expect("ok");
        let log = sent.log();
        assert!(
            log[0].contains("Rolled back: NOT complete — rollback could not finish")
                && log[0].contains("target_group arn:tg/x")
                && log[0].contains("stepdeploy cleanup goldencrust-sit-1")
                && !log[0].contains("nothing to roll back"),
            "{}",
            log[0]
        );
        assert!(log[1].contains("\"complete\":false"), "{}", log[1]);
        assert!(!out.lock_released, "what is left keeps the tenant locked");
        assert_eq!(out.error.as_deref(), Some("VerificationFailed"));
        let cause: serde_json::Value =
            serde_json::from_str(out.cause.as_deref().unwrap_or_default()).expect("JSON cause");
        assert_eq!(cause["errorType"], "VerificationFailed");
        let message = cause["errorMessage"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("not stable | Rolled back: NOT complete")
                && message.contains("stepdeploy cleanup"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_run_without_a_plan_releases_no_lock() {
        let sent = Sent::default();
        let run = serde_json::json!({"event": {"detail": {"tenant": "goldencrust", "environment": "sit"}}, "error": {"Error": "DeploymentLocked", "Cause": null}});
        let out = handle(
            serde_json::json!({"outcome": "failed", "state": run}),
            &sent,
        )
        .await
        .expect("ok");
        assert!(!out.lock_released, "the lock belongs to the other run");
        assert!(out.subject.contains("at bootstrap (DeploymentLocked)"));
    }
}
