//! Events on the bus, as users send them: EventBridge rule → trigger →
//! Step Functions → the phase Lambdas.

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::json;
use std::time::Duration;
use stepdeploy_tests::{history, orchestrator, unique_tenant, DEPLOY_STATE_MACHINE};

async fn put(detail: serde_json::Value) {
    stepdeploy_tests::put_deploy_event(detail).await;
}

/// Waits for the execution whose name starts with `prefix` to finish.
async fn finished_execution(
    prefix: &str,
    within: Duration,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    stepdeploy_tests::find_execution(prefix, true, within).await
}

#[tokio::test]
async fn an_invalid_event_fails_at_bootstrap_with_validation_failed() {
    // A tenant name that breaks the rules, recognisable in the execution's name.
    let tenant = format!("{}X", &unique_tenant("iv")[..12]);
    put(json!({"tenant": tenant, "environment": "dev", "requested_by": "jane@kimmyai.io"})).await;
    let prefix = format!("{}-dev-", tenant.to_ascii_lowercase());
    let execution = finished_execution(&prefix, Duration::from_secs(120)).await;
    assert_eq!(execution.status(), &ExecutionStatus::Failed);
    assert_eq!(execution.error(), Some("ValidationFailed"));
    assert!(
        execution
            .cause()
            .unwrap_or_default()
            .contains("detail.tenant"),
        "{:?}",
        execution.cause()
    );
}

#[tokio::test]
async fn dev_deployment_from_the_bus_succeeds_and_a_failed_verify_rolls_back_to_nothing() {
    let tenant = unique_tenant("e2e");
    put(json!({"tenant": tenant, "environment": "dev", "requested_by": "jane@kimmyai.io"})).await;
    let execution = finished_execution(&format!("{tenant}-dev-"), Duration::from_secs(240)).await;
    let arn = execution.execution_arn().to_string();
    assert_eq!(
        execution.status(),
        &ExecutionStatus::Succeeded,
        "{}",
        history(&arn).await
    );
    let output: serde_json::Value =
        serde_json::from_str(execution.output().unwrap_or("{}")).expect("output");
    assert_eq!(output["verify"]["output"]["stable"], true);
    assert_eq!(output["notify"]["output"]["lock_released"], true);
    let document = output["notify"]["output"]["config_document"]
        .as_str()
        .expect("config document")
        .to_string();

    let dev = stepdeploy_tests::in_environment("dev").await;
    let (bucket, key) = document
        .trim_start_matches("s3://")
        .split_once('/')
        .expect("s3 url");
    let body = stepdeploy_shared::aws::s3_client(&dev)
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("config document")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    let doc: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(doc["tenant_name"], tenant.as_str());
    assert_eq!(
        doc["infrastructure"]["ecs_service"],
        format!("dev-{tenant}-service")
    );
    assert!(doc["database"]["secret_arn"]
        .as_str()
        .is_some_and(|a| a.contains(&format!("dev-{tenant}-db-credentials"))));
    assert!(!String::from_utf8_lossy(&body).contains("\"password\""));

    // A second tenant whose site answers 500: verify gives up, rollback removes everything, the run fails.
    let broken = unique_tenant("rb");
    let host = format!("{broken}.wpdev.kimmyai.io");
    stepdeploy_tests::standin_fail(&host, true);
    put(json!({"tenant": broken, "environment": "dev", "requested_by": "jane@kimmyai.io"})).await;
    let failed = finished_execution(&format!("{broken}-dev-"), Duration::from_secs(240)).await;
    stepdeploy_tests::standin_fail(&host, false);
    let failed_arn = failed.execution_arn().to_string();
    assert_eq!(
        failed.status(),
        &ExecutionStatus::Failed,
        "{}",
        history(&failed_arn).await
    );
    assert_eq!(failed.error(), Some("VerificationFailed"));
    // The run's error names the failing check with what it saw last.
    let cause = failed.cause().unwrap_or_default();
    assert!(
        cause.contains("failing: http: ") && cause.contains("500"),
        "{cause}"
    );
    assert!(cause.contains("Rolled back: complete"), "{cause}");
    let env = stepdeploy_tests::environment("dev");
    let ecs = aws_sdk_ecs::Client::new(&dev);
    let services = ecs
        .describe_services()
        .cluster(&env.cluster)
        .services(format!("dev-{broken}-service"))
        .send()
        .await
        .expect("services");
    assert!(
        services
            .services()
            .iter()
            .all(|s| s.status() != Some("ACTIVE")),
        "service removed: {:?}",
        services.services()
    );
    // Scheduled for deletion (a recovery window; a redeploy restores it).
    let sm = aws_sdk_secretsmanager::Client::new(&dev);
    assert!(
        sm.describe_secret()
            .secret_id(format!("dev-{broken}-db-credentials"))
            .send()
            .await
            .map_or(true, |s| s.deleted_date().is_some()),
        "secret removed"
    );
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&dev);
    assert!(
        elb.describe_target_groups()
            .names(format!("dev-{broken}-tg"))
            .send()
            .await
            .is_err(),
        "target group removed"
    );
    assert_eq!(
        stepdeploy_tests::tenant_mysql_objects("dev", &broken),
        ["0", "0"],
        "database and user dropped"
    );
    // The lock is free again: the tenant can be deployed.
    let ddb = aws_sdk_dynamodb::Client::new(&dev);
    let lock = ddb
        .get_item()
        .table_name(&env.state_table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("LOCK#{broken}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("LOCK".into()),
        )
        .send()
        .await
        .expect("get lock");
    assert!(lock.item.is_none(), "lock released");
}

#[tokio::test]
async fn auto_promote_from_dev_runs_sit_with_verify_and_dns() {
    let tenant = unique_tenant("pr");
    put(json!({"tenant": tenant, "environment": "dev", "auto_promote": true, "requested_by": "jane@kimmyai.io"})).await;
    let dev = finished_execution(&format!("{tenant}-dev-"), Duration::from_secs(240)).await;
    assert_eq!(
        dev.status(),
        &ExecutionStatus::Succeeded,
        "{}",
        history(dev.execution_arn()).await
    );
    let sit = finished_execution(&format!("{tenant}-sit-"), Duration::from_secs(240)).await;
    assert_eq!(
        sit.status(),
        &ExecutionStatus::Succeeded,
        "{}",
        history(sit.execution_arn()).await
    );
    let output: serde_json::Value =
        serde_json::from_str(sit.output().unwrap_or("{}")).expect("output");
    assert_eq!(output["verify"]["output"]["stable"], true);
    assert_eq!(output["dns"]["output"]["status"], 200);
    assert_eq!(
        output["plan"]["output"]["phases"]["promote_to"],
        serde_json::Value::Null,
        "sit does not promote to prod (approval)"
    );
}

#[tokio::test]
async fn two_requests_for_one_tenant_at_once_run_one_and_lock_out_the_other() {
    let tenant = unique_tenant("cc");
    let detail = json!({"tenant": tenant, "environment": "dev", "requested_by": "jane@kimmyai.io"});
    tokio::join!(put(detail.clone()), put(detail));
    let runs = stepdeploy_tests::finished_executions(
        &format!("{tenant}-dev-"),
        2,
        Duration::from_secs(240),
    )
    .await;
    let mut outcomes: Vec<(String, Option<String>)> = runs
        .iter()
        .map(|r| {
            (
                r.status().as_str().to_string(),
                r.error().map(str::to_string),
            )
        })
        .collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            ("FAILED".to_string(), Some("DeploymentLocked".to_string())),
            ("SUCCEEDED".to_string(), None)
        ]
    );
}

#[tokio::test]
async fn a_failed_update_of_a_live_tenant_keeps_the_previous_version_serving() {
    let tenant = unique_tenant("up");
    put(json!({"tenant": tenant, "environment": "dev", "image": "wordpress:6.4-apache", "requested_by": "jane@kimmyai.io"})).await;
    let first = finished_execution(&format!("{tenant}-dev-"), Duration::from_secs(240)).await;
    assert_eq!(
        first.status(),
        &ExecutionStatus::Succeeded,
        "{}",
        history(first.execution_arn()).await
    );
    let output: serde_json::Value =
        serde_json::from_str(first.output().unwrap_or("{}")).expect("output");
    let live_revision = output["ecs"]["output"]["task_definition_arn"]
        .as_str()
        .expect("revision")
        .to_string();

    // The update's new version never becomes healthy (the stand-in answers 500).
    let host = format!("{tenant}.wpdev.kimmyai.io");
    stepdeploy_tests::standin_fail(&host, true);
    put(json!({"tenant": tenant, "environment": "dev", "image": "wordpress:6.5-apache", "requested_by": "jane@kimmyai.io"})).await;
    let runs = stepdeploy_tests::finished_executions(
        &format!("{tenant}-dev-"),
        2,
        Duration::from_secs(240),
    )
    .await;
    stepdeploy_tests::standin_fail(&host, false);
    let failed = runs
        .iter()
        .find(|r| r.status() == &ExecutionStatus::Failed)
        .expect("the update failed");
    assert_eq!(failed.error(), Some("VerificationFailed"));

    // The service is still there, back on the previous revision, and serving.
    let dev = stepdeploy_tests::in_environment("dev").await;
    let env = stepdeploy_tests::environment("dev");
    let services = aws_sdk_ecs::Client::new(&dev)
        .describe_services()
        .cluster(&env.cluster)
        .services(format!("dev-{tenant}-service"))
        .send()
        .await
        .expect("services");
    let service = services.services().first().expect("service kept");
    assert_eq!(service.status(), Some("ACTIVE"));
    assert_eq!(
        service.task_definition(),
        Some(live_revision.as_str()),
        "previous revision restored"
    );
    assert_eq!(stepdeploy_tests::wait_site_status(&host, "/", "200"), "200");
    let secret = aws_sdk_secretsmanager::Client::new(&dev)
        .describe_secret()
        .secret_id(format!("dev-{tenant}-db-credentials"))
        .send()
        .await;
    assert!(secret.is_ok(), "the live tenant's secret is kept");
}

#[tokio::test]
async fn the_same_event_sent_twice_starts_one_execution() {
    let tenant = unique_tenant("du");
    let detail = json!({"tenant": tenant, "environment": "dev", "requested_by": "jane@kimmyai.io", "request_id": format!("ci-{tenant}")});
    put(detail.clone()).await;
    let first = finished_execution(&format!("{tenant}-dev-"), Duration::from_secs(240)).await;
    assert_eq!(
        first.status(),
        &ExecutionStatus::Succeeded,
        "{}",
        history(first.execution_arn()).await
    );
    put(detail).await;
    // Give the trigger time to act on the re-sent event, then count.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let sfn = aws_sdk_sfn::Client::new(&orchestrator().await);
    let list = sfn
        .list_executions()
        .state_machine_arn(DEPLOY_STATE_MACHINE)
        .send()
        .await
        .expect("list");
    let runs = list
        .executions()
        .iter()
        .filter(|e| e.name().starts_with(&format!("{tenant}-dev-")))
        .count();
    assert_eq!(runs, 1);
}

/// A request id names one request: the same id with another detail (a
/// squatter, or a sender reusing ids) is refused loudly instead of being
/// swallowed as a duplicate of the first run.
#[tokio::test]
async fn another_request_under_a_used_request_id_is_refused() {
    let tenant = unique_tenant("ri");
    let id = format!("rel-{tenant}");
    let first = stepdeploy_tests::event(
        "Tenant Deployment Requested",
        json!({"tenant": tenant, "environment": "dev", "requested_by": "jane@kimmyai.io", "request_id": id}),
    );
    let started = stepdeploy_tests::invoke("trigger", &first).await.ok();
    assert_eq!(started["deduplicated"], false, "{started}");
    // The same request again, as a retrying sender puts it (a new event id):
    // found, not started twice.
    let mut resent = first.clone();
    resent["id"] = json!(stepdeploy_tests::unique_event_id());
    let again = stepdeploy_tests::invoke("trigger", &resent).await.ok();
    assert_eq!(again["deduplicated"], true, "{again}");
    assert_eq!(again["execution_arn"], started["execution_arn"]);
    // Another image under the same id: refused.
    let other = stepdeploy_tests::event(
        "Tenant Deployment Requested",
        json!({"tenant": tenant, "environment": "dev", "requested_by": "jane@kimmyai.io", "request_id": id, "image": "wordpress:6.5-apache"}),
    );
    let (kind, message) = stepdeploy_tests::invoke("trigger", &other).await.err();
    assert_eq!(kind, "ValidationFailed", "{message}");
    assert!(message.contains("another detail"), "{message}");
    let done = finished_execution(&format!("{tenant}-dev-"), Duration::from_secs(240)).await;
    assert_eq!(done.status(), &ExecutionStatus::Succeeded);
}

/// An event with stepdeploy's source and a misspelt detail-type is not
/// silently lost: a `Request Not Understood` event names what was received
/// and what stepdeploy knows, and nothing starts. A `detail` that is not a
/// JSON object is refused by PutEvents itself (as AWS does), once.
#[tokio::test]
async fn misspelt_and_malformed_requests_are_reported_not_lost() {
    let tenant = unique_tenant("ty");
    let typo = format!("Tenant Deploymnet Requested {tenant}");
    let detail = json!({"tenant": tenant, "environment": "dev", "requested_by": "jane@kimmyai.io"});
    let entries = json!([{"EventBusName": "stepdeploy", "Source": "stepdeploy", "DetailType": typo, "Detail": detail.to_string()}]).to_string();
    let put = stepdeploy_tests::aws_cli(&["events", "put-events", "--entries", &entries]);
    assert!(put.contains("\"FailedEntryCount\": 0"), "{put}");
    let sqs = aws_sdk_sqs::Client::new(&orchestrator().await);
    let queue = sqs
        .get_queue_url()
        .queue_name("stepdeploy-events-inbox")
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let report = 'found: loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no Request Not Understood for {typo}"
        );
        let out = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        for m in out.messages() {
            let event: serde_json::Value =
                serde_json::from_str(m.body().unwrap_or("{}")).unwrap_or_default();
            let ours = event["detail-type"] == "Request Not Understood"
                && event["detail"]["received_detail_type"] == typo.as_str();
            if !ours {
                // The inbox holds every event of the run; others stay hidden
                // for the queue's visibility timeout so the scan moves on
                // (no other test reads this inbox).
                continue;
            }
            let _ = sqs
                .delete_message()
                .queue_url(&queue)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await;
            break 'found event;
        }
    };
    assert_eq!(
        report["detail"]["known_detail_types"],
        json!([
            "Tenant Deployment Requested",
            "Tenant Rollback Requested",
            "Tenant Teardown Requested",
            "Tenant Cleanup Requested",
            "Fleet Rollout Requested"
        ])
    );
    // A detail that is a JSON string: refused by PutEvents, one entry, no run.
    let entries = json!([{"EventBusName": "stepdeploy", "Source": "stepdeploy", "DetailType": "Tenant Deployment Requested", "Detail": json!(detail.to_string()).to_string()}]).to_string();
    let put = stepdeploy_tests::aws_cli(&["events", "put-events", "--entries", &entries]);
    assert!(
        put.contains("MalformedDetail") && put.contains("\"FailedEntryCount\": 1"),
        "{put}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sfn = aws_sdk_sfn::Client::new(&orchestrator().await);
    let runs = sfn
        .list_executions()
        .state_machine_arn(DEPLOY_STATE_MACHINE)
        .send()
        .await
        .expect("list");
    assert!(
        !runs
            .executions()
            .iter()
            .any(|e| e.name().starts_with(&format!("{tenant}-"))),
        "nothing started for {tenant}"
    );
}
