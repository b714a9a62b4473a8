//! Deployment windows and freezes on the local stack: prod (whose local
//! config is open at any hour) freezes tenants labelled `window: frozen`. A
//! request into the freeze is refused before the gate, naming it; an
//! override needs a reason and the quorum, and the mail says what is being
//! approved. sit lets tenants labelled `window: odd-minutes` start in odd
//! minutes only (`outside: wait`): a request sent in an even minute waits in
//! the state machine, holding nothing, and deploys when the minute turns, on
//! the real clock. (The rules themselves are unit-tested with a fixed clock.)

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::json;
use std::time::Duration;
use stepdeploy_tests::{
    approval_links, environment, find_execution, get, history, in_environment, post,
    priority_claims, put_deploy_event, state_input, states_entered, tenant_inventory,
    unique_tenant,
};

#[tokio::test]
async fn a_frozen_tenant_is_refused_and_an_override_goes_through_the_quorum() {
    let tenant = unique_tenant("wf");
    put_deploy_event(
        json!({"tenant": tenant, "environment": "prod", "requested_by": "jane@kimmyai.io",
        "labels": {"window": "frozen"}, "request_id": "w1"}),
    )
    .await;
    let run = find_execution(&format!("{tenant}-prod-w1"), true, Duration::from_secs(120)).await;
    assert_eq!(run.status(), &ExecutionStatus::Failed);
    assert_eq!(run.error(), Some("OutsideDeploymentWindow"));
    let cause = run.cause().unwrap_or_default();
    assert!(
        cause.contains("frozen: local freeze for the window tests") && cause.contains("2100-01-01"),
        "{cause}"
    );
    let made = tenant_inventory("prod", &tenant).await;
    assert!(made.values().all(Vec::is_empty), "nothing made: {made:?}");

    // With a reason: the quorum is asked, and told.
    put_deploy_event(
        json!({"tenant": tenant, "environment": "prod", "requested_by": "jane@kimmyai.io",
        "labels": {"window": "frozen"}, "window_override": "security fix CVE-2026-0001",
        "request_id": "w2"}),
    )
    .await;
    let mails = approval_links(&tenant, 3).await;
    let (status, page) = get(&mails[1].1);
    assert_eq!(status, "200");
    assert!(
        page.contains("OUTSIDE THE DEPLOYMENT WINDOW")
            && page.contains("security fix CVE-2026-0001"),
        "{page}"
    );
    for (_, link, _) in &mails[1..] {
        assert_eq!(post(link, "").0, "200");
    }
    let run = find_execution(&format!("{tenant}-prod-w2"), true, Duration::from_secs(240)).await;
    assert_eq!(
        run.status(),
        &ExecutionStatus::Succeeded,
        "{}",
        history(run.execution_arn()).await
    );
}

/// sit deploys need no approval, but an override of its freeze does: the
/// `override_approval` quorum, through the same gate and guard as prod.
#[tokio::test]
async fn an_override_needs_a_quorum_even_where_deployments_need_none() {
    let tenant = unique_tenant("wo");
    put_deploy_event(
        json!({"tenant": tenant, "environment": "sit", "requested_by": "jane@kimmyai.io",
        "labels": {"window": "frozen"}, "request_id": "o1"}),
    )
    .await;
    let run = find_execution(&format!("{tenant}-sit-o1"), true, Duration::from_secs(120)).await;
    assert_eq!(run.error(), Some("OutsideDeploymentWindow"));
    put_deploy_event(
        json!({"tenant": tenant, "environment": "sit", "requested_by": "jane@kimmyai.io",
        "labels": {"window": "frozen"}, "window_override": "demo for the board",
        "request_id": "o2"}),
    )
    .await;
    let mails = approval_links(&tenant, 3).await;
    let (status, page) = get(&mails[1].1);
    assert_eq!(status, "200");
    assert!(
        page.contains(&format!("deploy {tenant} to sit")) && page.contains("demo for the board"),
        "{page}"
    );
    // One approval is not enough.
    assert_eq!(post(&mails[1].1, "").0, "200");
    let waiting = find_execution(&format!("{tenant}-sit-o2"), false, Duration::from_secs(30)).await;
    assert_eq!(waiting.status(), &ExecutionStatus::Running);
    assert_eq!(post(&mails[2].1, "").0, "200");
    let run = find_execution(&format!("{tenant}-sit-o2"), true, Duration::from_secs(240)).await;
    assert_eq!(
        run.status(),
        &ExecutionStatus::Succeeded,
        "{}",
        history(run.execution_arn()).await
    );
    let output: serde_json::Value =
        serde_json::from_str(run.output().unwrap_or("{}")).expect("output");
    assert_eq!(
        output["approval"]["approved_by"],
        json!(["lead@example.com", "ops@example.com"])
    );
}

/// A request outside its window waits for it (sit's `window: odd-minutes`
/// rule, `outside: wait`): sent in an even minute, the run sits in
/// `WaitForWindow` until the next odd minute begins, holding no lock, no
/// priority and nothing made; then bootstrap judges again and it deploys.
#[tokio::test]
async fn a_request_outside_its_window_waits_for_it_holding_nothing() {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    };
    // Send it early in an even minute, so it waits and is seen waiting.
    let t = now();
    if (t / 60) % 2 == 1 || t % 60 > 40 {
        let next_even = (t / 60 + if (t / 60) % 2 == 1 { 1 } else { 2 }) * 60;
        tokio::time::sleep(Duration::from_secs(next_even - t + 1)).await;
    }
    let tenant = unique_tenant("ww");
    put_deploy_event(
        json!({"tenant": tenant, "environment": "sit", "requested_by": "jane@kimmyai.io",
        "labels": {"window": "odd-minutes"}, "request_id": "ww1"}),
    )
    .await;
    let sent_minute = now() / 60;
    let run = find_execution(&format!("{tenant}-sit-ww1"), false, Duration::from_secs(30)).await;
    let arn = run.execution_arn().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !states_entered(&arn)
        .await
        .iter()
        .any(|s| s == "WaitForWindow")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            history(&arn).await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if now() / 60 == sent_minute {
        // Still the even minute: waiting, holding nothing.
        let made = tenant_inventory("sit", &tenant).await;
        assert!(made.values().all(Vec::is_empty), "nothing made: {made:?}");
        let ddb = aws_sdk_dynamodb::Client::new(&in_environment("sit").await);
        let claims = priority_claims(&ddb, &environment("sit").state_table, &tenant).await;
        assert!(claims.is_empty(), "no priority while waiting: {claims:?}");
    }
    // When it waited until: the next odd minute's start, in the bootstrap output.
    let state = state_input(&arn, "WaitForWindow")
        .await
        .expect("WaitForWindow entered");
    let window = &state["plan"]["output"]["window"];
    let until = window["wait_until"].as_str().expect("wait_until");
    let minute = stepdeploy_shared::names::epoch_millis(until).expect("RFC 3339") / 60_000;
    assert_eq!(minute, sent_minute + 1, "{window}");
    assert!(
        window["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("odd-minutes"),
        "{window}"
    );
    assert!(
        state["plan"]["output"]["env"]
            .get("deployment_windows")
            .is_none(),
        "a plan carries no windows"
    );

    let run = find_execution(&format!("{tenant}-sit-ww1"), true, Duration::from_secs(240)).await;
    assert_eq!(
        run.status(),
        &ExecutionStatus::Succeeded,
        "{}",
        history(&arn).await
    );
    // After the wait bootstrap planned again, and this time went on.
    let states = states_entered(&arn).await;
    let waited = states.iter().position(|s| s == "WaitForWindow");
    let planned = states.iter().rposition(|s| s == "Bootstrap");
    assert!(waited < planned, "{states:?}");
}
