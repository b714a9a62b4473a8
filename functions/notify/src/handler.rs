//! notify's input, output and flow: on success the document, the registry,
//! the message, the event and the lock; on failure the message, the event
//! and (when rollback finished) the lock. The texts are in [`crate::message`],
//! the writes behind [`NotifyPorts`].

use crate::error::NotifyError;
use crate::message::{self, Failure, RunNames};
use crate::ports::NotifyPorts;
use serde::{Deserialize, Serialize};
use stepdeploy_shared::contract::RunState;
use stepdeploy_shared::ledger::{LedgerEntry, LedgerKind};
use stepdeploy_shared::request::{DEPLOY_FAILED, DEPLOY_SUCCEEDED};
use stepdeploy_shared::state::{RegistryRecord, Release};
use stepdeploy_shared::DeploymentPlan;

/// What the state machine passes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyInput {
    /// `succeeded` or `failed`.
    pub outcome: Outcome,
    /// The whole execution state.
    pub state: RunState,
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

impl Outcome {
    /// As serialized (the message attribute subscribers filter on).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
        }
    }
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

/// Runs notify for one finished run.
pub async fn handle(
    input: NotifyInput,
    ports: &impl NotifyPorts,
) -> Result<NotifyOutput, NotifyError> {
    let NotifyInput { outcome, state } = input;
    let done = match (outcome, state.plan()) {
        (Outcome::Succeeded, Some(plan)) => on_success(plan, &state, ports).await,
        (Outcome::Succeeded, None) => Err(NotifyError::Validation(
            "a succeeded run without a plan".into(),
        )),
        (Outcome::Failed, _) => on_failure(&state, ports).await,
    }?;
    // After everything above succeeded: a notify that failed and is retried
    // counts the run once.
    crate::metrics::emit(&state, outcome);
    Ok(done)
}

/// The document and the registry (each written ahead in the ledger), the
/// message, the event, then the lock.
async fn on_success(
    plan: &DeploymentPlan,
    run: &RunState,
    ports: &impl NotifyPorts,
) -> Result<NotifyOutput, NotifyError> {
    let (Some(ecs), Some(database)) = (&run.ecs, &run.database) else {
        return Err(NotifyError::Validation(
            "state: a succeeded run has no ecs or database result".into(),
        ));
    };
    let dns = run.dns.as_ref().map(|w| &w.output);
    let now = message::now_rfc3339();
    let document = message::config_document(plan, &ecs.output, &database.output, dns, &now);
    let config_version = write_document(plan, &document, ports).await?;
    update_registry(plan, &now, ports).await?;
    add_release(plan, run, config_version, &now, ports).await?;
    let names = RunNames::of(run);
    let subject = message::success_subject(&names);
    let body = message::success_body(plan, &names, &now);
    let attributes = names.attributes(Outcome::Succeeded.as_str());
    ports.publish(&subject, &body, &attributes).await?;
    ports
        .put_event(DEPLOY_SUCCEEDED, &message::success_event(plan, &names))
        .await?;
    let lock_released = ports
        .release_lock(&plan.env, plan.tenant.as_str(), &plan.execution)
        .await?;
    Ok(NotifyOutput {
        outcome: Outcome::Succeeded,
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

/// The message and the event; the lock only when rollback left nothing
/// (what it left keeps the tenant locked until `stepdeploy cleanup`).
async fn on_failure(run: &RunState, ports: &impl NotifyPorts) -> Result<NotifyOutput, NotifyError> {
    let names = RunNames::of(run);
    let failure = Failure::of(run);
    let subject = failure.subject(&names);
    let attributes = names.attributes(Outcome::Failed.as_str());
    ports
        .publish(&subject, &failure.body(&names), &attributes)
        .await?;
    ports
        .put_event(DEPLOY_FAILED, &failure.event(&names))
        .await?;
    let lock_released = match run.plan() {
        Some(plan) if failure.rollback.complete => {
            ports
                .release_lock(&plan.env, plan.tenant.as_str(), &plan.execution)
                .await?
        }
        _ => false,
    };
    Ok(NotifyOutput {
        outcome: Outcome::Failed,
        subject,
        config_document: None,
        lock_released,
        cause: Some(failure.cause_with_rollback()),
        error: Some(failure.error),
    })
}

/// A ledger entry notify writes ahead of a change: `previous` is what
/// rollback puts back, none when the change creates (see
/// [`stepdeploy_shared::ledger`]).
fn ahead(kind: LedgerKind, id: &str, previous: Option<String>) -> LedgerEntry {
    LedgerEntry {
        kind,
        id: id.into(),
        created: previous.is_none(),
        phase: "notify".into(),
        previous,
    }
}

/// The tenant config document in the environment's bucket; should anything
/// after this fail, rollback deletes it or puts the previous version back.
/// Its new version, for the release.
async fn write_document(
    plan: &DeploymentPlan,
    document: &serde_json::Value,
    ports: &impl NotifyPorts,
) -> Result<Option<String>, NotifyError> {
    let key = &plan.names.config_key;
    let previous = ports.document_version(&plan.env, key).await?;
    let entry = ahead(LedgerKind::ConfigDocument, key, previous);
    ports.record(&plan.env, &plan.execution, &entry).await?;
    let body = serde_json::to_string_pretty(document).unwrap_or_default();
    Ok(ports.put_document(&plan.env, key, body).await?)
}

/// The run's release in the tenant's history (the next number); a rerun
/// of notify finds it already there. Should anything after this fail,
/// rollback takes it back.
async fn add_release(
    plan: &DeploymentPlan,
    run: &RunState,
    config_version: Option<String>,
    now: &str,
    ports: &impl NotifyPorts,
) -> Result<(), NotifyError> {
    let tenant = plan.tenant.as_str();
    let latest = ports.latest_release(&plan.env, tenant).await?;
    if latest
        .as_ref()
        .is_some_and(|r| r.execution == plan.execution)
    {
        return Ok(());
    }
    let database = run.database.as_ref().map(|d| &d.output);
    let release = Release {
        number: latest.map_or(1, |r| r.number + 1),
        image: plan.image.to_string(),
        task_definition: run
            .ecs
            .as_ref()
            .map(|e| e.output.task_definition_arn.clone())
            .unwrap_or_default(),
        config_version,
        at: now.to_string(),
        requested_by: plan.requested_by.clone(),
        approvers: run
            .approval
            .as_ref()
            .map(|a| a.approved_by.clone())
            .unwrap_or_default(),
        execution: plan.execution.clone(),
        restored_from: plan.restore.as_ref().map(|r| r.release),
        database_dump: database.and_then(|d| d.backup.clone()),
        database_restored_from: database.and_then(|d| d.restored.clone()),
    };
    let entry = ahead(
        LedgerKind::Release,
        &format!("{tenant}#{}", release.number),
        None,
    );
    ports.record(&plan.env, &plan.execution, &entry).await?;
    if !ports.add_release(&plan.env, tenant, &release).await? {
        // The tenant is locked by this run: nobody else writes its releases.
        return Err(NotifyError::Validation(format!(
            "release {} of {tenant} exists but was not written by this run",
            release.number
        )));
    }
    Ok(())
}

/// The tenant's registry record, now active at this run's image; rollback
/// takes it back to the record it replaced.
async fn update_registry(
    plan: &DeploymentPlan,
    now: &str,
    ports: &impl NotifyPorts,
) -> Result<(), NotifyError> {
    let tenant = plan.tenant.as_str();
    let before = ports.registry(&plan.env, tenant).await?;
    let record = RegistryRecord {
        image: plan.image.to_string(),
        status: "active".into(),
        last_execution: plan.execution.clone(),
        updated_at: now.to_string(),
        config_key: plan.names.config_key.clone(),
        requested_by: plan.requested_by.clone(),
        // A request without labels keeps the tenant's.
        labels: plan
            .labels
            .clone()
            .or_else(|| before.as_ref().map(|r| r.labels.clone()))
            .unwrap_or_default(),
    };
    let previous = before.map(|r| serde_json::to_string(&r).unwrap_or_default());
    let entry = ahead(LedgerKind::RegistryRecord, tenant, previous);
    ports.record(&plan.env, &plan.execution, &entry).await?;
    ports.update_registry(&plan.env, tenant, &record).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use stepdeploy_shared::aws_error::AwsCallError;
    use stepdeploy_shared::config::EnvironmentConfig;

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
        ) -> Result<Option<String>, AwsCallError> {
            self.push(format!("document {key} {body}"));
            Ok(Some("v1".into()))
        }
        async fn latest_release(
            &self,
            _env: &EnvironmentConfig,
            _tenant: &str,
        ) -> Result<Option<Release>, AwsCallError> {
            Ok(None)
        }
        async fn add_release(
            &self,
            _env: &EnvironmentConfig,
            tenant: &str,
            release: &Release,
        ) -> Result<bool, AwsCallError> {
            self.push(format!(
                "add release {tenant} {} {} {}",
                release.number, release.image, release.task_definition
            ));
            Ok(true)
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

    fn input(payload: serde_json::Value) -> NotifyInput {
        serde_json::from_value(payload).expect("a valid payload")
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
            input(serde_json::json!({"outcome": "succeeded", "state": run})),
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
        assert_eq!(log.remove(2), "ledger release goldencrust#1 true");
        assert_eq!(
            log.remove(2),
            "add release goldencrust 1 wordpress:6.4-apache arn:td:1"
        );
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
            input(serde_json::json!({"outcome": "failed", "state": run})),
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
            input(serde_json::json!({"outcome": "failed", "state": run})),
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
            input(serde_json::json!({"outcome": "failed", "state": run})),
            &sent,
        )
        .await
        .expect("ok");
        assert!(!out.lock_released, "the lock belongs to the other run");
        assert!(out.subject.contains("at bootstrap (DeploymentLocked)"));
    }

    /// The payload's shape is checked by the entry helper, naming the field.
    #[test]
    fn a_malformed_payload_names_the_field() {
        let err = stepdeploy_shared::lambda::input::<NotifyInput>(
            serde_json::json!({"outcome": "maybe", "state": {}}),
        )
        .expect_err("not an outcome");
        assert_eq!(err.error_type, "ValidationFailed");
        assert!(
            err.error_message.contains("outcome"),
            "{}",
            err.error_message
        );
        let err = stepdeploy_shared::lambda::input::<NotifyInput>(
            serde_json::json!({"outcome": "failed", "state": {"plan": {"output": 7}}}),
        )
        .expect_err("not a plan");
        assert!(
            err.error_message.contains("state.plan.output"),
            "{}",
            err.error_message
        );
    }

    #[tokio::test]
    async fn a_succeeded_run_without_a_plan_is_refused() {
        let sent = Sent::default();
        let err = handle(
            input(serde_json::json!({"outcome": "succeeded", "state": {}})),
            &sent,
        )
        .await
        .expect_err("no plan");
        assert_eq!(
            err.to_string(),
            "invalid input: a succeeded run without a plan"
        );
        assert!(sent.log().is_empty());
    }
}
