//! Fleet rollouts on the local stack, as an operator starts them: one
//! `Fleet Rollout Requested` event put with the stock AWS CLI, the waves run
//! by Step Functions as child deploy-tenant runs, the report in the
//! environment's config bucket.
//!
//! Each test rolls out only tenants it deployed itself (selected by a label
//! of its own), so tests sharing the stack never touch each other's fleet.

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::{json, Value};
use std::time::Duration;
use stepdeploy_shared::state::{DynamoStateStore, StateStore};
use stepdeploy_tests::{
    approval_links_mentioning, aws_cli, deploy_execution_names, environment, find_execution,
    find_execution_of, get, in_environment, post, put_deploy_event, states_entered, unique_tenant,
    ROLLOUT_STATE_MACHINE,
};

const OLD: &str = "wordpress:6.4-apache";
const NEW: &str = "wordpress:6.5-apache";

/// Deploys `tenants` to `env` at [`OLD`] with `labels` each, and waits for
/// every run to succeed (prod: approved by two approvers through their links).
async fn deploy_fleet(env: &str, tenants: &[(String, Value)]) {
    for (tenant, labels) in tenants {
        put_deploy_event(json!({"tenant": tenant, "environment": env, "image": OLD,
                                "requested_by": "jane@kimmyai.io", "labels": labels}))
        .await;
    }
    if env == "prod" {
        for (tenant, _) in tenants {
            let mails = stepdeploy_tests::approval_links(tenant, 3).await;
            assert_eq!(post(&mails[1].1, "").0, "200");
            assert_eq!(post(&mails[2].1, "").0, "200");
        }
    }
    for (tenant, _) in tenants {
        let run = find_execution(&format!("{tenant}-{env}-"), true, Duration::from_secs(300)).await;
        assert_eq!(
            run.status(),
            &ExecutionStatus::Succeeded,
            "{tenant}: {:?} {:?}",
            run.error(),
            run.cause()
        );
    }
}

/// Puts a `Fleet Rollout Requested` event with the stock AWS CLI.
fn put_rollout(detail: &Value) {
    let entries = json!([{
        "Source": "stepdeploy",
        "DetailType": "Fleet Rollout Requested",
        "EventBusName": "stepdeploy",
        "Detail": detail.to_string(),
    }]);
    let out: Value = serde_json::from_str(&aws_cli(&[
        "events",
        "put-events",
        "--entries",
        &entries.to_string(),
    ]))
    .expect("put-events answer");
    assert_eq!(out["FailedEntryCount"], 0, "{out}");
}

/// The rollout run `rollout-{env}-{request_id}` once it ended.
async fn finished_rollout(
    env: &str,
    request_id: &str,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    find_execution_of(
        ROLLOUT_STATE_MACHINE,
        &format!("rollout-{env}-{request_id}"),
        true,
        Duration::from_secs(600),
    )
    .await
}

/// The rollout report in `env`'s config bucket.
async fn report(env: &str, rollout: &str) -> Value {
    let config = in_environment(env).await;
    let bucket = environment(env).config_bucket;
    let body = stepdeploy_shared::aws::s3_client(&config)
        .get_object()
        .bucket(bucket)
        .key(format!("_rollouts/{env}/{rollout}.json"))
        .send()
        .await
        .expect("the rollout report")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    serde_json::from_slice(&body).expect("report json")
}

/// The image `env`'s registry records for `tenant`.
async fn registry_image(env: &str, tenant: &str) -> Option<String> {
    let config = in_environment(env).await;
    let store = DynamoStateStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        environment(env).state_table,
    );
    store
        .registry(tenant)
        .await
        .expect("registry")
        .map(|r| r.image)
}

/// The names of `tenant`'s runs in `env` started by a rollout.
async fn rollout_children(env: &str, tenant: &str) -> Vec<String> {
    deploy_execution_names(&format!("{tenant}-{env}-rollout-"))
        .await
        .into_iter()
        .collect()
}

/// A fleet of `n` tenants named after `prefix`, all labelled `fleet: tag`,
/// the first `canaries` also `ring: canary`.
fn fleet(prefix: &str, n: usize, canaries: usize, tag: &str) -> Vec<(String, Value)> {
    (0..n)
        .map(|i| {
            let ring = if i < canaries { "canary" } else { "main" };
            (
                unique_tenant(&format!("{prefix}{i:02}")),
                json!({"fleet": tag, "ring": ring}),
            )
        })
        .collect()
}

#[tokio::test]
async fn thirteen_tenants_roll_out_in_canary_and_two_waves() {
    let tag = unique_tenant("ro");
    let tenants = fleet("ro", 13, 2, &tag);
    deploy_fleet("sit", &tenants).await;

    put_rollout(&json!({
        "environment": "sit", "image": NEW,
        "tenants": {"labels": {"fleet": tag}},
        "waves": [{"labels": {"ring": "canary"}}, {"percent": 50}],
        "max_parallel": 5, "bake_seconds": 2,
        "requested_by": "jane@kimmyai.io", "request_id": tag,
    }));
    let run = finished_rollout("sit", &tag).await;
    let arn = run.execution_arn().to_string();
    assert_eq!(
        run.status(),
        &ExecutionStatus::Succeeded,
        "{}",
        stepdeploy_tests::history(&arn).await
    );
    let output: Value = serde_json::from_str(run.output().unwrap_or("{}")).expect("output");
    assert_eq!(output["report"]["status"], "succeeded", "{output}");
    let rollout = format!("rollout-sit-{tag}");
    let report = report("sit", &rollout).await;
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(
        (report["waves"].as_u64(), report["waves_completed"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(report["counts"]["succeeded"], 13, "{report}");
    let waves: Vec<u64> = report["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .map(|t| t["wave"].as_u64().unwrap_or(0))
        .collect();
    // Canaries, half of the 13 rounded up, the rest.
    for (wave, size) in [(1, 2), (2, 7), (3, 4)] {
        assert_eq!(
            waves.iter().filter(|w| **w == wave).count(),
            size,
            "{report}"
        );
    }
    for line in report["tenants"].as_array().expect("tenants") {
        let canary = tenants[..2]
            .iter()
            .any(|(t, _)| line["tenant"] == t.as_str());
        assert_eq!(line["wave"] == 1, canary, "canaries first: {line}");
        assert!(line["duration_seconds"].as_u64().is_some(), "{line}");
    }

    // Each tenant deployed once, by its child run, and now on the new image.
    let sfn = aws_sdk_sfn::Client::new(&stepdeploy_tests::orchestrator().await);
    let mut canary_ends = Vec::new();
    let mut later_starts = Vec::new();
    for (i, (tenant, _)) in tenants.iter().enumerate() {
        let children = rollout_children("sit", tenant).await;
        assert_eq!(children.len(), 1, "{tenant}: {children:?}");
        assert_eq!(
            registry_image("sit", tenant).await.as_deref(),
            Some(NEW),
            "{tenant}"
        );
        let child = sfn
            .describe_execution()
            .execution_arn(format!(
                "{}:{}",
                stepdeploy_tests::DEPLOY_STATE_MACHINE.replace(":stateMachine:", ":execution:"),
                children[0]
            ))
            .send()
            .await
            .expect("child");
        if i < 2 {
            canary_ends.push(*child.stop_date().expect("ended"));
        } else {
            later_starts.push(*child.start_date());
        }
    }
    let last_canary = canary_ends.iter().max().expect("canaries");
    assert!(
        later_starts.iter().all(|s| s >= last_canary),
        "no later wave starts before the canaries ended"
    );

    // The same event again (a redelivery, a retrying sender): nothing new starts.
    put_rollout(&json!({
        "environment": "sit", "image": NEW,
        "tenants": {"labels": {"fleet": tag}},
        "waves": [{"labels": {"ring": "canary"}}, {"percent": 50}],
        "max_parallel": 5, "bake_seconds": 2,
        "requested_by": "jane@kimmyai.io", "request_id": tag,
    }));
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (tenant, _) in &tenants {
        assert_eq!(rollout_children("sit", tenant).await.len(), 1, "{tenant}");
    }
}

#[tokio::test]
async fn a_failing_canary_halts_the_rollout_and_later_waves_stay_untouched() {
    let tag = unique_tenant("rh");
    let tenants = fleet("rh", 5, 1, &tag);
    deploy_fleet("dev", &tenants).await;
    let canary = &tenants[0].0;
    let host = format!("{canary}.wpdev.kimmyai.io");
    stepdeploy_tests::standin_fail(&host, true);
    put_rollout(&json!({
        "environment": "dev", "image": NEW,
        "tenants": {"labels": {"fleet": tag}},
        "waves": [{"labels": {"ring": "canary"}}, {"count": 2}],
        "requested_by": "jane@kimmyai.io", "request_id": tag,
    }));
    let run = finished_rollout("dev", &tag).await;
    stepdeploy_tests::standin_fail(&host, false);
    assert_eq!(run.status(), &ExecutionStatus::Failed);
    assert_eq!(run.error(), Some("RolloutHalted"));
    let cause = run.cause().unwrap_or_default();
    assert!(
        cause.contains("halted after wave 1 of 3") && cause.contains(canary.as_str()),
        "{cause}"
    );

    let report = report("dev", &format!("rollout-dev-{tag}")).await;
    assert_eq!(report["status"], "halted");
    assert_eq!(report["counts"]["failed"], 1, "{report}");
    assert_eq!(report["counts"]["untouched"], 4, "{report}");
    let failed = &report["tenants"][0];
    assert_eq!(failed["tenant"], canary.as_str());
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("VerificationFailed")),
        "{failed}"
    );

    // The canary's own run rolled it back to what it ran before.
    let children = rollout_children("dev", canary).await;
    assert_eq!(children.len(), 1);
    let child = find_execution(&children[0], true, Duration::from_secs(10)).await;
    assert_eq!(child.status(), &ExecutionStatus::Failed);
    assert!(
        child.cause().unwrap_or_default().contains("Rolled back"),
        "{:?}",
        child.cause()
    );
    assert_eq!(registry_image("dev", canary).await.as_deref(), Some(OLD));
    // No call touched the later waves' tenants.
    for (tenant, _) in &tenants[1..] {
        assert!(rollout_children("dev", tenant).await.is_empty(), "{tenant}");
        assert_eq!(
            registry_image("dev", tenant).await.as_deref(),
            Some(OLD),
            "{tenant}"
        );
    }
}

#[tokio::test]
async fn a_prod_rollout_waits_for_one_quorum_and_deploys_each_tenant_once() {
    let tag = unique_tenant("rp");
    let tenants = fleet("rp", 3, 1, &tag);
    deploy_fleet("prod", &tenants).await;
    put_rollout(&json!({
        "environment": "prod", "image": NEW,
        "tenants": {"labels": {"fleet": tag}},
        "waves": [{"labels": {"ring": "canary"}}],
        "max_parallel": 2,
        "requested_by": "jane@kimmyai.io", "request_id": tag,
    }));
    let rollout = format!("rollout-prod-{tag}");
    let mails = approval_links_mentioning(&rollout, 3).await;
    // The page lists the waves and the image.
    let (status, page) = get(&mails[1].1);
    assert_eq!(status, "200");
    assert!(
        page.contains("wave 1") && page.contains(tenants[0].0.as_str()) && page.contains(NEW),
        "{page}"
    );
    // Nothing is deployed while the quorum decides.
    for (tenant, _) in &tenants {
        assert!(rollout_children("prod", tenant).await.is_empty());
    }
    assert_eq!(post(&mails[1].1, "").0, "200");
    assert_eq!(post(&mails[2].1, "").0, "200");
    let run = finished_rollout("prod", &tag).await;
    let arn = run.execution_arn().to_string();
    assert_eq!(
        run.status(),
        &ExecutionStatus::Succeeded,
        "{}",
        stepdeploy_tests::history(&arn).await
    );
    for (tenant, _) in &tenants {
        let children = rollout_children("prod", tenant).await;
        assert_eq!(children.len(), 1, "{tenant}: {children:?}");
        assert_eq!(registry_image("prod", tenant).await.as_deref(), Some(NEW));
        // The child asked nobody again: no gate in its history.
        let child = find_execution(&children[0], true, Duration::from_secs(10)).await;
        let states = states_entered(child.execution_arn()).await;
        assert!(states.contains(&"Claim".to_string()), "{states:?}");
        assert!(!states.contains(&"ApprovalGate".to_string()), "{states:?}");
    }

    // A deployment that names the (finished) rollout is no way around the gate.
    let outsider = unique_tenant("rpx");
    put_deploy_event(json!({"tenant": tenants[0].0, "environment": "prod", "image": "wordpress:6.6-apache",
                            "requested_by": "jane@kimmyai.io", "rollout": arn, "request_id": outsider}))
    .await;
    let forged = find_execution(
        &format!("{}-prod-{outsider}", tenants[0].0),
        true,
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(forged.status(), &ExecutionStatus::Failed);
    assert_eq!(
        forged.error(),
        Some("ApprovalBypassed"),
        "{:?}",
        forged.cause()
    );
    assert_eq!(
        registry_image("prod", &tenants[0].0).await.as_deref(),
        Some(NEW)
    );
}
