//! Runs that end without reaching the state machine's Catch (here: stopped
//! with StopExecution, as an operator does in the console) are cleaned up by
//! rollback, from Step Functions' "Execution Status Change" event: the
//! tenant's inventory is as before the run, the lock is released, and the
//! tenant can be deployed again at once.

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::json;
use std::time::{Duration, Instant};
use stepdeploy_tests::{
    find_execution, history, inventory_shape, orchestrator, put_deploy_event, standin_fail,
    states_entered, tenant_inventory, tenant_mysql_objects, unique_tenant,
};

#[tokio::test]
async fn a_run_stopped_mid_verify_is_rolled_back_and_its_lock_released() {
    let tenant = unique_tenant("st");
    let host = format!("{tenant}.wpdev.kimmyai.io");
    let before = inventory_shape(&tenant_inventory("dev", &tenant).await);
    // The site answers 500, so the run stays in its verify loop until stopped.
    standin_fail(&host, true);
    put_deploy_event(
        json!({"tenant": tenant, "environment": "dev", "requested_by": "jane@kimmyai.io"}),
    )
    .await;
    let started = find_execution(&format!("{tenant}-dev-"), false, Duration::from_secs(120)).await;
    let arn = started.execution_arn().to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !states_entered(&arn).await.iter().any(|s| s == "Verify") {
        assert!(
            Instant::now() < deadline,
            "never reached Verify: {}",
            history(&arn).await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let during = inventory_shape(&tenant_inventory("dev", &tenant).await);
    assert_eq!(during.get("ecs service"), Some(&1), "{during:?}");
    assert_eq!(during.get("lock"), Some(&1), "{during:?}");

    let sfn = aws_sdk_sfn::Client::new(&orchestrator().await);
    sfn.stop_execution()
        .execution_arn(&arn)
        .cause("stopped by an operator (test)")
        .send()
        .await
        .expect("stop");
    let stopped = sfn
        .describe_execution()
        .execution_arn(&arn)
        .send()
        .await
        .expect("describe");
    assert_eq!(stopped.status(), &ExecutionStatus::Aborted);
    assert!(
        !states_entered(&arn).await.iter().any(|s| s == "Rollback"),
        "a stopped run never reaches its Rollback state"
    );

    // The cleanup runs from the status-change event: everything the run made goes.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = inventory_shape(&tenant_inventory("dev", &tenant).await);
        let mysql = tenant_mysql_objects("dev", &tenant);
        if now == before && mysql == ["0", "0"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not cleaned up: {now:?} (before {before:?}), mysql {mysql:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    standin_fail(&host, false);

    // The lock is free: a new request deploys the tenant.
    put_deploy_event(json!({"tenant": tenant, "environment": "dev", "requested_by": "jane@kimmyai.io", "request_id": format!("again-{tenant}")}))
        .await;
    let again = find_execution(
        &format!("{tenant}-dev-again"),
        true,
        Duration::from_secs(240),
    )
    .await;
    assert_eq!(
        again.status(),
        &ExecutionStatus::Succeeded,
        "{}",
        history(again.execution_arn()).await
    );
}
