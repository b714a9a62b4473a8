//! The rollback Lambda end to end on the fakes: the ledger newest first and
//! once, what is left, the lock and the priority, the cleanup paths.

use crate::cleanup::{History, Reports, RunRecord, CLEANUP_REQUESTED, STATUS_CHANGE};
use crate::fake::{FakeEnv, FakeRule};
use crate::{handle, Environments, LeftBehind, RollbackError};
use serde_json::{json, Value};
use std::sync::Mutex;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::errors::ErrorName;
use stepdeploy_shared::ledger::{LedgerEntry, LedgerKind};
use stepdeploy_shared::state::StateStore;
use stepdeploy_shared::{DeploymentPlan, EnvironmentSet};

/// A history that knows one run.
struct OneRun {
    status: Option<&'static str>,
    record: RunRecord,
}

impl History for OneRun {
    async fn run_record(&self, _execution_arn: &str) -> Result<RunRecord, AwsCallError> {
        Ok(self.record.clone())
    }
    async fn status(&self, _execution_arn: &str) -> Result<Option<String>, AwsCallError> {
        Ok(self.status.map(str::to_string))
    }
}

#[derive(Default)]
struct Published(Mutex<Vec<(String, String)>>);

impl Reports for Published {
    async fn publish(&self, subject: &str, message: &str) -> Result<(), AwsCallError> {
        let mut published = self.0.lock().expect("not poisoned");
        published.push((subject.into(), message.into()));
        Ok(())
    }
}

fn environments() -> Environments {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/environments");
    Ok(EnvironmentSet::load_dir(&dir).expect("checked-in configs load"))
}

fn plan() -> DeploymentPlan {
    stepdeploy_shared::plan::sample("wordpress:6.7", 140)
}

fn state() -> Value {
    json!({"event": {}, "plan": {"output": plan()}})
}

fn failed_run() -> OneRun {
    OneRun {
        status: Some("FAILED"),
        record: RunRecord {
            last_state: Some(state()),
            rolled_back: false,
        },
    }
}

/// goldencrust's first run got as far as its service: a priority claim, a
/// target group and a rule (by name, written ahead), the service (written
/// twice by a retried phase), the lock.
async fn half_deployed() -> FakeEnv {
    let p = plan();
    let n = &p.names;
    let fake = FakeEnv::default();
    fake.with(|w| {
        w.target_groups = vec![(n.target_group.clone(), "arn:tg".into())];
        w.rules = vec![FakeRule {
            arn: "arn:rule".into(),
            host: n.host.clone(),
            priority: 140,
            target_group: "arn:tg".into(),
        }];
        w.services.insert(n.service.clone(), "arn:td:1".into());
    });
    let (state, tenant, run) = (&fake.state, p.tenant.as_str(), p.execution.as_str());
    state
        .acquire_lock(tenant, run, "jane", 0, u64::MAX)
        .await
        .expect("locked");
    state
        .claim_priority(140, tenant, run)
        .await
        .expect("claimed");
    for (kind, id) in [
        (LedgerKind::PriorityClaim, "140"),
        (LedgerKind::TargetGroup, n.target_group.as_str()),
        (LedgerKind::ListenerRule, n.host.as_str()),
        (LedgerKind::Service, n.service.as_str()),
        (LedgerKind::Service, n.service.as_str()),
    ] {
        let entry = LedgerEntry::created(kind, id, "ecs");
        state.record(run, &entry).await.expect("recorded");
    }
    fake
}

fn lock_holder(fake: &FakeEnv) -> Option<String> {
    fake.state
        .with(|t| t.locks.get("goldencrust").map(|h| h.owner.clone()))
}

#[tokio::test]
async fn the_ledger_is_undone_newest_first_once_then_the_lock_and_priority_go() {
    let fake = half_deployed().await;
    let out = handle(
        json!({ "state": state() }),
        &fake,
        &failed_run(),
        &Published::default(),
        &environments(),
    )
    .await
    .expect("rolled back");
    let n = &plan().names;
    assert_eq!(
        out.removed,
        [
            format!("service {}", n.service),
            format!("listener_rule {}", n.host),
            format!("target_group {}", n.target_group),
            "priority_claim 140".to_string(),
        ]
    );
    assert!(out.left.is_empty() && out.restored.is_empty());
    assert!(out.lock_released);
    assert_eq!(lock_holder(&fake), None);
    assert!(fake.state.with(|t| t.claims.is_empty()));
    let deletes: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|c| c.contains(":Delete"))
        .collect();
    assert_eq!(
        deletes,
        [
            format!("ecs:DeleteService {} {}", plan().env.cluster, n.service),
            "elbv2:DeleteRule arn:rule".to_string(),
            "elbv2:DeleteTargetGroup arn:tg".to_string(),
        ],
        "newest first, the twice-written service once"
    );
}

#[tokio::test]
async fn a_failing_undo_is_left_behind_the_rest_goes_and_the_lock_and_priority_stay() {
    let fake = half_deployed().await;
    fake.with(|w| w.failing.insert("elbv2:DeleteRule"));
    let err = handle(
        json!({ "state": state() }),
        &fake,
        &failed_run(),
        &Published::default(),
        &environments(),
    )
    .await
    .expect_err("incomplete");
    assert_eq!(err.error_name(), "RollbackFailed");
    let RollbackError::Incomplete { removed, left, .. } = &err else {
        panic!("{err}");
    };
    let n = &plan().names;
    assert_eq!(
        removed,
        &[
            format!("service {}", n.service),
            format!("target_group {}", n.target_group)
        ]
    );
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(left[0].resource, format!("listener_rule {}", n.host));
    assert!(
        left[0].error.starts_with("elbv2:DeleteRule failed"),
        "{left:?}"
    );
    assert_eq!(
        left[1],
        LeftBehind {
            resource: "priority_claim 140".into(),
            error: "kept until the rest is removed".into(),
        }
    );
    let message = err.to_string();
    assert!(
        message.starts_with("rollback could not finish; remove the obstacle, then run `stepdeploy cleanup 1` (the tenant stays locked until then). 2 left: listener_rule "),
        "{message}"
    );
    assert_eq!(lock_holder(&fake).as_deref(), Some("arn:exec:1"));
    assert_eq!(fake.state.with(|t| t.claims.len()), 1, "priority kept");
}

#[tokio::test]
async fn a_succeeded_run_is_not_undone() {
    let fake = half_deployed().await;
    let succeeded = OneRun {
        status: Some("SUCCEEDED"),
        ..failed_run()
    };
    let err = handle(
        json!({ "state": state() }),
        &fake,
        &succeeded,
        &Published::default(),
        &environments(),
    )
    .await
    .expect_err("refused");
    assert_eq!(err.error_name(), "ValidationFailed");
    assert!(err.to_string().contains("is SUCCEEDED"), "{err}");
    assert!(fake.calls().is_empty());
    assert_eq!(lock_holder(&fake).as_deref(), Some("arn:exec:1"));
}

#[tokio::test]
async fn a_state_without_a_plan_needs_nothing() {
    let fake = FakeEnv::default();
    let out = handle(
        json!({ "state": {"event": {}} }),
        &fake,
        &failed_run(),
        &Published::default(),
        &environments(),
    )
    .await
    .expect("nothing to do");
    assert_eq!(out, crate::RollbackOutput::default());
}

#[tokio::test]
async fn a_status_change_after_the_rollback_state_ran_is_skipped() {
    let fake = half_deployed().await;
    let history = OneRun {
        record: RunRecord {
            last_state: Some(state()),
            rolled_back: true,
        },
        ..failed_run()
    };
    let event = json!({
        "detail-type": STATUS_CHANGE,
        "detail": {"executionArn": "arn:exec:1", "status": "ABORTED"}
    });
    let out = handle(
        event,
        &fake,
        &history,
        &Published::default(),
        &environments(),
    )
    .await
    .expect("skipped");
    assert_eq!(
        out.skipped.as_deref(),
        Some("the run's Rollback state already ran")
    );
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn a_cleanup_request_finishes_the_run_holding_the_lock_and_reports_it() {
    let fake = half_deployed().await;
    let reports = Published::default();
    let request = json!({
        "detail-type": CLEANUP_REQUESTED,
        "detail": {"tenant": "goldencrust", "environment": "sit", "requested_by": "ops@kimmyai.io"}
    });
    let out = handle(request, &fake, &failed_run(), &reports, &environments())
        .await
        .expect("cleaned up");
    assert!(out.lock_released);
    let published = reports.0.lock().expect("not poisoned").clone();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].0, "stepdeploy: cleanup of 1 finished");
    assert!(
        published[0].1.starts_with(
            "Cleanup of 1, asked by ops@kimmyai.io: nothing is left.\nUndone: service "
        ),
        "{}",
        published[0].1
    );
    // Again: nobody holds the tenant any more.
    let request = json!({
        "detail-type": CLEANUP_REQUESTED,
        "detail": {"tenant": "goldencrust", "environment": "sit", "requested_by": "ops@kimmyai.io"}
    });
    let err = handle(request, &fake, &failed_run(), &reports, &environments())
        .await
        .expect_err("nothing to clean");
    assert_eq!(
        err.to_string(),
        "invalid input: no run holds goldencrust in sit: nothing to clean up"
    );
}
