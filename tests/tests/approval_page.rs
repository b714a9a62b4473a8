//! The approval pages in a real browser: headless Chromium (driven by
//! playwright-core, `tests/browser/approval-page.cjs`) opens an approver's
//! link from the mail, reads the confirmation page (what changes, where the
//! image already ran, who approved so far), types a reason, clicks Approve
//! and reads the result page; screenshots of both are kept.

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::json;
use std::process::Command;
use std::time::Duration;
use stepdeploy_tests::{
    approval_links, find_execution, history, post, put_deploy_event, repo, unique_tenant,
};

#[tokio::test]
async fn an_approver_approves_in_a_real_browser() {
    let tenant = unique_tenant("br");
    put_deploy_event(
        json!({"tenant": tenant, "environment": "prod", "image": "wordpress:6.5-apache",
        "requested_by": "jane@kimmyai.io", "request_id": "b1"}),
    )
    .await;
    let mails = approval_links(&tenant, 3).await;
    let out = repo().join("local/.state/screenshots").join(&tenant);
    std::fs::create_dir_all(&out).expect("screenshot dir");
    let browser = Command::new("node")
        .arg(repo().join("tests/browser/approval-page.cjs"))
        .arg(&mails[1].1)
        .arg(&out)
        .output()
        .expect("node");
    assert!(
        browser.status.success(),
        "browser: {}",
        String::from_utf8_lossy(&browser.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&browser.stdout).expect("JSON");
    let page = &seen["confirmation"];
    assert_eq!(page["status"], 200, "{seen:#}");
    assert_eq!(page["button"], "Approve");
    let text = page["text"].as_str().unwrap_or_default();
    assert!(
        text.contains(&format!("deploy {tenant} to prod"))
            && text.contains("You are lead@example.com"),
        "{text}"
    );
    let evidence: Vec<&str> = page["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    assert!(
        evidence
            .iter()
            .any(|l| l.starts_with("Now running: nothing (a new tenant in prod)"))
            && evidence
                .iter()
                .any(|l| l.starts_with("Already ran: nowhere else yet")),
        "{evidence:?}"
    );
    assert!(
        page["approved_so_far"].as_str().is_some_and(
            |s| s.starts_with("Approved so far: nobody yet (2 needed). The links expire at 20")
        ),
        "{seen:#}"
    );
    let result = &seen["result"];
    assert_eq!(result["status"], 200, "{seen:#}");
    assert!(
        result["text"]
            .as_str()
            .is_some_and(|t| t.contains("1 of 2")),
        "{seen:#}"
    );
    for shot in seen["screenshots"].as_array().expect("screenshots") {
        let png = std::fs::read(shot.as_str().unwrap_or_default()).expect("screenshot");
        assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "{shot}");
    }
    // The second approval (over plain HTTP) completes the quorum.
    assert_eq!(post(&mails[2].1, "").0, "200");
    let run = find_execution(&format!("{tenant}-prod-b1"), true, Duration::from_secs(240)).await;
    assert_eq!(
        run.status(),
        &ExecutionStatus::Succeeded,
        "{}",
        history(run.execution_arn()).await
    );
    let approvers: serde_json::Value =
        serde_json::from_str(run.output().unwrap_or("{}")).expect("output");
    assert_eq!(
        approvers["approval"]["approved_by"],
        json!(["lead@example.com", "ops@example.com"])
    );
}
