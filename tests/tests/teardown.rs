//! Teardown on the local stack: a deployed tenant, a `Tenant Teardown
//! Requested` event, and nothing of the tenant left in the environment.

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::json;
use std::time::{Duration, Instant};
use stepdeploy_tests::{
    find_execution, history, in_environment, orchestrator, put_deploy_event, unique_tenant,
};

const TEARDOWN_STATE_MACHINE: &str =
    "arn:aws:states:eu-west-1:123456789012:stateMachine:stepdeploy-teardown-tenant";

#[tokio::test]
async fn teardown_removes_everything_the_tenant_had() {
    let tenant = unique_tenant("td");
    put_deploy_event(
        json!({"tenant": tenant, "environment": "sit", "requested_by": "jane@kimmyai.io"}),
    )
    .await;
    let deployed = find_execution(&format!("{tenant}-sit-"), true, Duration::from_secs(240)).await;
    assert_eq!(
        deployed.status(),
        &ExecutionStatus::Succeeded,
        "{}",
        history(deployed.execution_arn()).await
    );
    let host = format!("{tenant}.wpsit.kimmyai.io");
    assert_eq!(stepdeploy_tests::wait_site_status(&host, "/", "200"), "200");

    let events = aws_sdk_eventbridge::Client::new(&orchestrator().await);
    events
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name("stepdeploy")
                .source("stepdeploy")
                .detail_type("Tenant Teardown Requested")
                .detail(json!({"tenant": tenant, "environment": "sit", "requested_by": "ops@kimmyai.io"}).to_string())
                .build(),
        )
        .send()
        .await
        .expect("put teardown event");
    let sfn = aws_sdk_sfn::Client::new(&orchestrator().await);
    let deadline = Instant::now() + Duration::from_secs(240);
    let done = loop {
        let list = sfn
            .list_executions()
            .state_machine_arn(TEARDOWN_STATE_MACHINE)
            .send()
            .await
            .expect("list");
        if let Some(e) = list
            .executions()
            .iter()
            .find(|e| e.name().starts_with(&format!("{tenant}-sit-")))
        {
            let d = sfn
                .describe_execution()
                .execution_arn(e.execution_arn())
                .send()
                .await
                .expect("describe");
            if d.status() != &ExecutionStatus::Running {
                break d;
            }
        }
        assert!(Instant::now() < deadline, "no teardown execution finished");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(
        done.status(),
        &ExecutionStatus::Succeeded,
        "{}",
        history(done.execution_arn()).await
    );

    let sit = in_environment("sit").await;
    let env = stepdeploy_tests::environment("sit");
    let services = aws_sdk_ecs::Client::new(&sit)
        .describe_services()
        .cluster(&env.cluster)
        .services(format!("sit-{tenant}-service"))
        .send()
        .await
        .expect("services");
    assert!(services
        .services()
        .iter()
        .all(|s| s.status() != Some("ACTIVE")));
    let tds = aws_sdk_ecs::Client::new(&sit)
        .list_task_definitions()
        .family_prefix(format!("sit-{tenant}"))
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .send()
        .await
        .expect("tds");
    assert!(
        tds.task_definition_arns().is_empty(),
        "{:?}",
        tds.task_definition_arns()
    );
    assert!(aws_sdk_elasticloadbalancingv2::Client::new(&sit)
        .describe_target_groups()
        .names(format!("sit-{tenant}-tg"))
        .send()
        .await
        .is_err());
    // Scheduled for deletion with a recovery window (restorable for 7 days).
    assert!(aws_sdk_secretsmanager::Client::new(&sit)
        .describe_secret()
        .secret_id(format!("sit-{tenant}-db-credentials"))
        .send()
        .await
        .map_or(true, |s| s.deleted_date().is_some()));
    let records = aws_sdk_route53::Client::new(&sit)
        .list_resource_record_sets()
        .hosted_zone_id(&env.hosted_zone_id)
        .send()
        .await
        .expect("records");
    assert!(records
        .resource_record_sets()
        .iter()
        .all(|r| r.name().trim_end_matches('.') != host));
    let s3 = stepdeploy_shared::aws::s3_client(&sit);
    assert!(
        s3.head_object()
            .bucket(&env.config_bucket)
            .key(format!("sit/{tenant}.json"))
            .send()
            .await
            .is_err(),
        "config document removed"
    );
    assert_eq!(
        stepdeploy_tests::tenant_mysql_objects("sit", &tenant),
        ["0", "0"]
    );
    assert_eq!(
        stepdeploy_tests::wait_site_status(&host, "/", "404"),
        "404",
        "the site is gone"
    );
}

/// A teardown of a tenant with no trace in the environment (a typo) is
/// refused, naming the tenants that do exist there; nothing is removed.
#[tokio::test]
async fn a_teardown_of_an_unknown_tenant_is_refused() {
    let tenant = unique_tenant("nv");
    stepdeploy_tests::put_teardown_event(
        json!({"tenant": tenant, "environment": "dev", "requested_by": "ops@kimmyai.io"}),
    )
    .await;
    let done = stepdeploy_tests::find_execution_of(
        TEARDOWN_STATE_MACHINE,
        &format!("{tenant}-dev-"),
        true,
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(done.status(), &ExecutionStatus::Failed);
    assert_eq!(done.error(), Some("TenantNotFound"));
    let cause = done.cause().unwrap_or_default();
    assert!(
        cause.contains(&format!("{tenant} has no trace in dev"))
            && cause.contains("Tenants in dev: "),
        "{cause}"
    );
}
