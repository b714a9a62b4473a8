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
    let (execution, attempt, key_id, decision, expires) =
        (param("e"), param("n"), param("k"), param("d"), param("x"));
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(
        key.secret_string().expect("key").as_bytes(),
    )
    .expect("key");
    mac.update(
        format!("v2\n{execution}\n{attempt}\n{key_id}\n{approver}\n{decision}\n{expires}")
            .as_bytes(),
    );
    let signature = hex::encode(mac.finalize().into_bytes());
    let encoded = |v: &str| {
        v.replace(':', "%3A")
            .replace('/', "%2F")
            .replace('@', "%40")
            .replace('+', "%2B")
    };
    format!(
        "{base}?e={}&n={attempt}&k={}&a={}&d={decision}&x={expires}&s={signature}",
        encoded(&execution),
        encoded(&key_id),
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

/// No prod service of `tenant` exists.
async fn nothing_in_prod(tenant: &str) {
    let prod = stepdeploy_tests::in_environment("prod").await;
    let env = stepdeploy_tests::environment("prod");
    let services = aws_sdk_ecs::Client::new(&prod)
        .describe_services()
        .cluster(&env.cluster)
        .services(format!("prod-{tenant}-service"))
        .send()
        .await
        .expect("services");
    assert!(
        services
            .services()
            .iter()
            .all(|s| s.status() != Some("ACTIVE")),
        "{:?}",
        services.services()
    );
    assert_eq!(
        stepdeploy_tests::tenant_mysql_objects("prod", tenant),
        ["0", "0"],
        "no database or user for {tenant}"
    );
}

#[tokio::test]
async fn a_rejection_ends_the_run_and_the_requester_cannot_approve() {
    let tenant = unique_tenant("rj");
    // The requester is an approver, in disguise: `+deploy` and upper case
    // are one mailbox with cto@example.com.
    put(json!({"tenant": tenant, "environment": "prod", "requested_by": "CTO+deploy@example.com"}))
        .await;
    // The requester is mailed a notice, not links: two link mails only.
    let mails = links(&tenant, 2).await;
    let approvers: Vec<&str> = mails.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(approvers, ["lead@example.com", "ops@example.com"]);
    let (_, lead_approve, _) = &mails[0];
    // A link for the requester under any spelling is refused (signed with the
    // real key, as if the requester had one).
    for disguise in ["cto@example.com", "Cto+Me@Example.com"] {
        let own = outsider_link(lead_approve, disguise).await;
        let (status, body) = post(&own, "");
        assert_eq!(status, "403", "{disguise}: {body}");
        assert!(body.contains("you requested this change"), "{body}");
    }

    assert_eq!(post(lead_approve, "").0, "200");
    let (_, _, ops_reject) = &mails[1];
    // A terminal escape in the reason reaches nobody's terminal.
    let (status, _) = post(ops_reject, "not+today%1B%5B31m");
    assert_eq!(status, "200");
    let done = execution(&format!("{tenant}-prod-"), true).await;
    assert_eq!(done.status(), &ExecutionStatus::Failed);
    assert_eq!(done.error(), Some("ApprovalRejected"));
    let cause = done.cause().unwrap_or_default();
    assert!(
        cause.contains("rejected by ops@example.com: not today") && !cause.contains('\u{1b}'),
        "{cause:?}"
    );
    nothing_in_prod(&tenant).await;
}

/// The task token is readable by anyone with `states:GetExecutionHistory`:
/// resuming the gate with it, without the quorum, fails the run before any
/// change (`ApprovalBypassed`).
#[tokio::test]
async fn resuming_the_gate_by_hand_is_refused() {
    let tenant = unique_tenant("by");
    put(json!({"tenant": tenant, "environment": "prod", "requested_by": "jane@kimmyai.io"})).await;
    let mails = links(&tenant, 3).await;
    // One approval of two: not a quorum.
    assert_eq!(post(&mails[1].1, "").0, "200");
    let waiting = execution(&format!("{tenant}-prod-"), false).await;
    let sfn = aws_sdk_sfn::Client::new(&orchestrator().await);
    let history = sfn
        .get_execution_history()
        .execution_arn(waiting.execution_arn())
        .send()
        .await
        .expect("history");
    let token = history
        .events()
        .iter()
        .filter_map(|e| e.task_scheduled_event_details())
        .find_map(|d| {
            let p: serde_json::Value = serde_json::from_str(d.parameters()).ok()?;
            p["Payload"]["task_token"].as_str().map(str::to_string)
        })
        .expect("the gate's token is in the history");
    sfn.send_task_success()
        .task_token(token)
        .output(json!({"approved_by": ["lead@example.com", "ops@example.com"]}).to_string())
        .send()
        .await
        .expect("SendTaskSuccess is allowed to an admin");
    let done = execution(&format!("{tenant}-prod-"), true).await;
    assert_eq!(done.status(), &ExecutionStatus::Failed);
    assert_eq!(done.error(), Some("ApprovalBypassed"), "{:?}", done.cause());
    assert!(
        done.cause()
            .unwrap_or_default()
            .contains("pending, not approved"),
        "{:?}",
        done.cause()
    );
    nothing_in_prod(&tenant).await;
    // The gate's links still belong to a run that has ended.
    let (status, _) = post(&mails[2].1, "");
    assert_ne!(status, "200");
}

/// Invoking a phase directly with a hand-made prod plan changes nothing:
/// the plan's environment details are replaced from the function's own
/// configs, and the run it names holds no quorum.
#[tokio::test]
async fn phases_invoked_directly_do_not_change_prod() {
    let tenant = unique_tenant("dx");
    // A well-formed prod plan (bootstrap only validates and claims).
    let plan = stepdeploy_tests::invoke(
        "bootstrap",
        &stepdeploy_tests::bootstrap_input(&tenant, "prod", &format!("{tenant}-prod-x"), json!({})),
    )
    .await
    .ok();
    for (function, payload) in [
        ("database", json!({ "plan": plan })),
        (
            "ecs",
            json!({ "plan": plan, "database": {"secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x", "database": "x_db", "username": "x_user", "changes": []} }),
        ),
        ("dns", json!({ "plan": plan })),
        ("teardown", json!({ "action": "remove", "plan": plan })),
    ] {
        let (kind, message) = stepdeploy_tests::invoke(function, &payload).await.err();
        assert_eq!(kind, "ApprovalBypassed", "{function}: {message}");
    }
    // A plan pointing prod's name at dev's account is re-resolved to prod's.
    let mut forged = plan.clone();
    forged["env"]["account_id"] = json!("111111111111");
    let (kind, _) = stepdeploy_tests::invoke("database", &json!({ "plan": forged }))
        .await
        .err();
    assert_eq!(kind, "ApprovalBypassed");
    // Rollback undoes only runs that failed or are failing.
    let (kind, message) =
        stepdeploy_tests::invoke("rollback", &json!({"state": {"plan": {"output": plan}}}))
            .await
            .err();
    assert_eq!(kind, "ValidationFailed", "{message}");
    assert!(message.contains("rollback undoes only"), "{message}");
    nothing_in_prod(&tenant).await;
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

/// Removing a tenant from prod goes through the same quorum, and keeps the
/// data: the database is renamed, not dropped.
#[tokio::test]
async fn removing_a_prod_tenant_needs_the_quorum_and_keeps_its_data() {
    use stepdeploy_tests::{find_execution_of, put_teardown_event, TEARDOWN_STATE_MACHINE};
    let tenant = unique_tenant("rm");
    put(json!({"tenant": tenant, "environment": "prod", "requested_by": "jane@kimmyai.io"})).await;
    let mails = links(&tenant, 3).await;
    assert_eq!(post(&mails[1].1, "").0, "200");
    assert_eq!(post(&mails[2].1, "").0, "200");
    let deployed = execution(&format!("{tenant}-prod-"), true).await;
    assert_eq!(
        deployed.status(),
        &ExecutionStatus::Succeeded,
        "{:?}",
        deployed.cause()
    );
    let database = format!("{tenant}_db");
    assert_eq!(
        stepdeploy_tests::tenant_databases("prod", &tenant),
        std::slice::from_ref(&database)
    );

    // One teardown event, rejected: nothing is removed.
    put_teardown_event(json!({"tenant": tenant, "environment": "prod", "requested_by": "jane@kimmyai.io", "request_id": format!("{tenant}-rm1")})).await;
    let mails = links(&tenant, 3).await;
    let (status, body) = get(&mails[1].1);
    assert_eq!(status, "200");
    assert!(
        body.contains(&format!("remove {tenant} from prod")),
        "{body}"
    );
    assert_eq!(post(&mails[2].2, "keep+it").0, "200");
    let rejected = find_execution_of(
        TEARDOWN_STATE_MACHINE,
        &format!("{tenant}-prod-{tenant}-rm1"),
        true,
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(rejected.status(), &ExecutionStatus::Failed);
    assert_eq!(rejected.error(), Some("ApprovalRejected"));
    assert_eq!(
        stepdeploy_tests::tenant_databases("prod", &tenant),
        std::slice::from_ref(&database)
    );

    // Approved by two others: removed, the data kept under a dated name.
    put_teardown_event(json!({"tenant": tenant, "environment": "prod", "requested_by": "jane@kimmyai.io", "request_id": format!("{tenant}-rm2")})).await;
    let mails = links(&tenant, 3).await;
    assert_eq!(post(&mails[0].1, "").0, "200");
    let (status, body) = post(&mails[1].1, "");
    assert_eq!(status, "200", "{body}");
    assert!(body.contains("2 of 2"), "{body}");
    let removed = find_execution_of(
        TEARDOWN_STATE_MACHINE,
        &format!("{tenant}-prod-{tenant}-rm2"),
        true,
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(
        removed.status(),
        &ExecutionStatus::Succeeded,
        "{:?}",
        removed.cause()
    );
    let left = stepdeploy_tests::tenant_databases("prod", &tenant);
    assert!(!left.contains(&database), "{left:?}");
    assert!(
        left.iter()
            .any(|o| o.starts_with(&format!("{database}_rm"))),
        "the data is kept: {left:?}"
    );
}
