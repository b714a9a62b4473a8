//! Events on the bus, as users send them: EventBridge rule → trigger →
//! Step Functions → the phase Lambdas.

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::json;
use std::time::{Duration, Instant};
use stepdeploy_tests::{orchestrator, unique_tenant, DEPLOY_STATE_MACHINE};

async fn put(detail: serde_json::Value) {
    let events = aws_sdk_eventbridge::Client::new(&orchestrator().await);
    let out = events
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name("stepdeploy")
                .source("stepdeploy")
                .detail_type("Tenant Deployment Requested")
                .detail(detail.to_string())
                .build(),
        )
        .send()
        .await
        .expect("put events");
    assert_eq!(out.failed_entry_count(), 0);
}

/// Waits for the execution whose name starts with `prefix` to finish.
async fn finished_execution(
    prefix: &str,
    within: Duration,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    let sfn = aws_sdk_sfn::Client::new(&orchestrator().await);
    let deadline = Instant::now() + within;
    loop {
        let list = sfn
            .list_executions()
            .state_machine_arn(DEPLOY_STATE_MACHINE)
            .send()
            .await
            .expect("list executions");
        if let Some(found) = list
            .executions()
            .iter()
            .find(|e| e.name().starts_with(prefix))
        {
            let described = sfn
                .describe_execution()
                .execution_arn(found.execution_arn())
                .send()
                .await
                .expect("describe");
            if described.status() != &ExecutionStatus::Running {
                return described;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no finished execution named {prefix}* within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
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
