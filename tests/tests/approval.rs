//! Production approvals on the local stack, as approvers meet them: mails in
//! the approvals inbox (SNS → SQS), links opened (GET) and confirmed (POST)
//! over HTTP against the approval function's Function URL.

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::json;
use std::time::Duration;
use stepdeploy_tests::{approval_links as links, get, orchestrator, post, unique_tenant};

async fn put(detail: serde_json::Value) {
    stepdeploy_tests::put_deploy_event(detail).await;
}

/// `link` re-signed, with the local stack's real HMAC key, for `approver`.
async fn outsider_link(link: &str, approver: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let sm = aws_sdk_secretsmanager::Client::new(&orchestrator().await);
    let key = sm
        .get_secret_value()
        .secret_id("stepdeploy/approval-hmac-key")
        .send()
        .await
        .expect("hmac key");
    let (base, query) = link.split_once('?').expect("query");
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(&format!("{name}=")))
            .map(|v| {
                v.replace("%3A", ":")
                    .replace("%2F", "/")
                    .replace("%40", "@")
            })
            .expect("param")
    };
    let (execution, decision, expires) = (param("e"), param("d"), param("x"));
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(
        key.secret_string().expect("key").as_bytes(),
    )
    .expect("key");
    mac.update(format!("v1\n{execution}\n{approver}\n{decision}\n{expires}").as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let encoded = |v: &str| {
        v.replace(':', "%3A")
            .replace('/', "%2F")
            .replace('@', "%40")
    };
    format!(
        "{base}?e={}&a={}&d={decision}&x={expires}&s={signature}",
        encoded(&execution),
        encoded(approver)
    )
}

async fn execution(
    prefix: &str,
    done: bool,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    stepdeploy_tests::find_execution(prefix, done, Duration::from_secs(240)).await
}

#[tokio::test]
async fn prod_needs_two_distinct_approvals_and_links_are_safe() {
    let tenant = unique_tenant("ap");
    put(json!({"tenant": tenant, "environment": "prod", "requested_by": "jane@kimmyai.io"})).await;
    let mails = links(&tenant, 3).await;
    let approvers: Vec<&str> = mails.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        approvers,
        ["cto@example.com", "lead@example.com", "ops@example.com"]
    );
    let (_, lead_approve, _) = &mails[1];
    let (_, ops_approve, _) = &mails[2];

    // GET never decides: a mail scanner prefetching the link changes nothing.
    let (status, body) = get(lead_approve);
    assert_eq!(status, "200");
    assert!(
        body.contains("<form method=\"post\">") && body.contains(&tenant),
        "{body}"
    );
    assert_eq!(
        execution(&format!("{tenant}-prod-"), false).await.status(),
        &ExecutionStatus::Running
    );

    // Forged or altered links are refused.
    let forged = lead_approve.replace("d=approve", "d=reject");
    assert_eq!(get(&forged).0, "403");
    let flipped = if lead_approve.ends_with('0') {
        '1'
    } else {
        '0'
    };
    let bad_signature = format!("{}{flipped}", &lead_approve[..lead_approve.len() - 1]);
    assert_eq!(get(&bad_signature).0, "403");

    // A correctly signed link for someone not on the allow-list is refused.
    let outsider = outsider_link(lead_approve, "mallory@example.com").await;
    let (status, body) = post(&outsider, "");
    assert_eq!(status, "403", "{body}");
    assert!(body.contains("not on this environment"), "{body}");

    let (status, body) = post(lead_approve, "looks+good");
    assert_eq!(status, "200", "{body}");
    assert!(body.contains("1 of 2"), "{body}");
    // Replayed: single use.
    assert_eq!(post(lead_approve, "").0, "409");
    assert_eq!(
        execution(&format!("{tenant}-prod-"), false).await.status(),
        &ExecutionStatus::Running
    );

    let (status, body) = post(ops_approve, "");
    assert_eq!(status, "200", "{body}");
    assert!(body.contains("continues"), "{body}");
    let done = execution(&format!("{tenant}-prod-"), true).await;
    assert_eq!(
        done.status(),
        &ExecutionStatus::Succeeded,
        "{:?} {:?}",
        done.error(),
        done.cause()
    );
    let output: serde_json::Value =
        serde_json::from_str(done.output().unwrap_or("{}")).expect("output");
    assert_eq!(
        output["approval"]["approved_by"],
        json!(["lead@example.com", "ops@example.com"])
    );
    // The alias exists and the site answered (an attempt retried while the
    // service was still starting finds the record it made: changed=false then).
    assert!(output["dns"]["output"]["record"]
        .as_str()
        .is_some_and(|r| r.starts_with(&format!("{tenant}.wpprod."))));
    assert!([200, 301, 302, 401].contains(&output["dns"]["output"]["status"].as_u64().unwrap_or(0)));
    // Late link after the decision: refused.
    assert_eq!(post(&mails[0].1, "").0, "409");
}

#[tokio::test]
async fn a_rejection_ends_the_run_and_the_requester_cannot_approve() {
    let tenant = unique_tenant("rj");
    put(json!({"tenant": tenant, "environment": "prod", "requested_by": "cto@example.com"})).await;
    let mails = links(&tenant, 3).await;
    let (cto, cto_approve, _) = &mails[0];
    assert_eq!(cto, "cto@example.com");
    let (status, body) = post(cto_approve, "");
    assert_eq!(status, "403", "{body}");
    assert!(body.contains("you requested this deployment"), "{body}");

    let (_, lead_approve, _) = &mails[1];
    assert_eq!(post(lead_approve, "").0, "200");
    let (_, _, ops_reject) = &mails[2];
    let (status, _) = post(ops_reject, "not+today");
    assert_eq!(status, "200");
    let done = execution(&format!("{tenant}-prod-"), true).await;
    assert_eq!(done.status(), &ExecutionStatus::Failed);
    assert_eq!(done.error(), Some("ApprovalRejected"));
    assert!(
        done.cause()
            .unwrap_or_default()
            .contains("rejected by ops@example.com: not today"),
        "{:?}",
        done.cause()
    );
    // Nothing was created in prod.
    let prod = stepdeploy_tests::in_environment("prod").await;
    let env = stepdeploy_tests::environment("prod");
    let services = aws_sdk_ecs::Client::new(&prod)
        .describe_services()
        .cluster(&env.cluster)
        .services(format!("prod-{tenant}-service"))
        .send()
        .await
        .expect("services");
    assert!(services.services().is_empty(), "{:?}", services.services());
}

#[tokio::test]
async fn nobody_approving_times_out_and_creates_nothing() {
    let tenant = unique_tenant("to");
    put(json!({"tenant": tenant, "environment": "prod", "requested_by": "jane@kimmyai.io"})).await;
    let mails = links(&tenant, 3).await;
    // The local prod gate waits 90 s (real prod: 24 h).
    let done = stepdeploy_tests::find_execution(
        &format!("{tenant}-prod-"),
        true,
        Duration::from_secs(300),
    )
    .await;
    assert_eq!(done.status(), &ExecutionStatus::Failed);
    assert_eq!(done.error(), Some("ApprovalTimedOut"));
    // A link used after the gate closed changes nothing.
    let (status, _) = post(&mails[1].1, "");
    assert!(["409", "410"].contains(&status.as_str()), "{status}");
    let prod = stepdeploy_tests::in_environment("prod").await;
    let env = stepdeploy_tests::environment("prod");
    let services = aws_sdk_ecs::Client::new(&prod)
        .describe_services()
        .cluster(&env.cluster)
        .services(format!("prod-{tenant}-service"))
        .send()
        .await
        .expect("services");
    assert!(services.services().is_empty());
}
