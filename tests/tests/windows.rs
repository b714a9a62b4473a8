//! Deployment windows and freezes on the local stack: prod (whose local
//! config is open at any hour) freezes tenants labelled `window: frozen`. A
//! request into the freeze is refused before the gate, naming it; an
//! override needs a reason and the quorum, and the mail says what is being
//! approved. (Waiting for an opening is the same judgement with a Wait state
//! in the state machine; its rules are unit-tested with a fixed clock.)

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::json;
use std::time::Duration;
use stepdeploy_tests::{
    approval_links, find_execution, get, history, post, put_deploy_event, tenant_inventory,
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
