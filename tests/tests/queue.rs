//! A queue instead of "locked" (sit's `queue`: 5 min, newest supersedes),
//! through the bus and the state machine: while one run changes a tenant, a
//! second request waits in `WaitInQueue` holding nothing; a third one
//! supersedes the second (which ends `Superseded`, having changed nothing)
//! and runs once the first has finished.

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::json;
use std::time::{Duration, Instant};
use stepdeploy_tests::{
    find_execution, history, put_deploy_event, standin_fail, states_entered, unique_tenant,
};

/// Waits until the run `{tenant}-sit-{id}` has entered `state`.
async fn entered(tenant: &str, id: &str, state: &str) -> String {
    let run = find_execution(
        &format!("{tenant}-sit-{id}"),
        false,
        Duration::from_secs(120),
    )
    .await;
    let arn = run.execution_arn().to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !states_entered(&arn).await.iter().any(|s| s == state) {
        assert!(
            Instant::now() < deadline,
            "{id} never entered {state}: {}",
            history(&arn).await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    arn
}

#[tokio::test]
async fn a_busy_tenant_queues_the_next_request_and_the_newest_supersedes() {
    let tenant = unique_tenant("qu");
    let host = format!("{tenant}.wpsit.kimmyai.io");
    // The first run stays in its verify loop while the site answers 500.
    standin_fail(&host, true);
    let put = |id: &str| {
        put_deploy_event(json!({"tenant": tenant, "environment": "sit",
            "requested_by": "jane@kimmyai.io", "request_id": id}))
    };
    put("q1").await;
    entered(&tenant, "q1", "Verify").await;
    put("q2").await;
    entered(&tenant, "q2", "WaitInQueue").await;
    put("q3").await;
    entered(&tenant, "q3", "WaitInQueue").await;
    // The site comes back: the first run's verify passes and it ends.
    standin_fail(&host, false);
    // The second was replaced by the third while both waited.
    let second = find_execution(&format!("{tenant}-sit-q2"), true, Duration::from_secs(60)).await;
    assert_eq!(second.status(), &ExecutionStatus::Failed);
    assert_eq!(second.error(), Some("Superseded"));
    let cause = second.cause().unwrap_or_default();
    assert!(cause.contains(&format!("{tenant}-sit-q3")), "{cause}");
    let second_states = states_entered(second.execution_arn()).await;
    assert!(
        !second_states.iter().any(|s| s == "Database"),
        "a superseded run changed nothing: {second_states:?}"
    );
    // The first ends, then the third runs.
    let first = find_execution(&format!("{tenant}-sit-q1"), true, Duration::from_secs(120)).await;
    assert_eq!(
        first.status(),
        &ExecutionStatus::Succeeded,
        "{}",
        history(first.execution_arn()).await
    );
    let third = find_execution(&format!("{tenant}-sit-q3"), true, Duration::from_secs(180)).await;
    assert_eq!(
        third.status(),
        &ExecutionStatus::Succeeded,
        "{}",
        history(third.execution_arn()).await
    );
    let third_states = states_entered(third.execution_arn()).await;
    assert!(
        third_states.iter().filter(|s| *s == "WaitInQueue").count() >= 1
            && third_states.iter().any(|s| s == "NotifySuccess"),
        "{third_states:?}"
    );
}
