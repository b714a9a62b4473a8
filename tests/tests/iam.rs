//! IAM is enforced on the local stack from the templates themselves: a
//! deployment whose deploy role lacks one permission it needs fails with
//! `AwsAccessDenied` naming the call, as it would in AWS. (Every statement of
//! the deploy role is also probed call by call in the launcher's self-test,
//! `local/stack/tests/test_iam.py`; here whole deployments run through the bus.)
//!
//! One test in its own binary: it edits dev's deploy role for a while, and
//! test binaries run one after another.

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::json;
use std::time::Duration;
use stepdeploy_tests::{find_execution, history, in_environment, put_deploy_event, unique_tenant};

const ROLE: &str = "stepdeploy-deploy";

async fn policy(iam: &aws_sdk_iam::Client, name: &str) -> serde_json::Value {
    let raw = iam
        .get_role_policy()
        .role_name(ROLE)
        .policy_name(name)
        .send()
        .await
        .expect("deploy role policy")
        .policy_document()
        .to_string();
    serde_json::from_str(&raw)
        // IAM answers policy documents URL-encoded.
        .or_else(|_| serde_json::from_str(&stepdeploy_shared::http::url_decode(&raw)))
        .expect("policy JSON")
}

async fn put(iam: &aws_sdk_iam::Client, name: &str, document: &serde_json::Value) {
    iam.put_role_policy()
        .role_name(ROLE)
        .policy_name(name)
        .policy_document(document.to_string())
        .send()
        .await
        .expect("put deploy role policy");
}

/// `document` without `action` in the statement `sid`.
fn without(document: &serde_json::Value, sid: &str, action: &str) -> serde_json::Value {
    let mut document = document.clone();
    let statements = document["Statement"].as_array_mut().expect("statements");
    let statement = statements
        .iter_mut()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("no statement {sid}"));
    let actions: Vec<serde_json::Value> = match &statement["Action"] {
        serde_json::Value::String(a) => vec![json!(a)],
        serde_json::Value::Array(a) => a.clone(),
        other => panic!("Action {other}"),
    };
    assert!(
        actions.contains(&json!(action)),
        "{sid} does not grant {action}"
    );
    let kept: Vec<_> = actions.into_iter().filter(|a| a != action).collect();
    if kept.is_empty() {
        statements.retain(|s| s["Sid"] != sid);
    } else {
        statement["Action"] = json!(kept);
    }
    document
}

#[tokio::test]
async fn a_deploy_role_without_a_needed_permission_fails_the_deployment_with_access_denied() {
    let iam = aws_sdk_iam::Client::new(&in_environment("dev").await);
    // (policy, statement, action removed, the phase that needs it, what the run's cause names)
    let cases = [
        // notify reads the config document's version with HeadObject: s3:GetObject.
        (
            "state-and-config",
            "ConfigDocumentsAndReports",
            "s3:GetObject",
            "NotifySuccess",
            "s3:HeadObject",
        ),
        (
            "ecs",
            "Services",
            "ecs:CreateService",
            "Ecs",
            "ecs:CreateService",
        ),
        (
            "secrets-and-iam",
            "TenantSecrets",
            "secretsmanager:CreateSecret",
            "Database",
            "secretsmanager:CreateSecret",
        ),
        // MySQL is reached only through the environment's agent, invoked through the deploy role.
        (
            "mysql-agent",
            "InvokeTheMySqlAgent",
            "lambda:InvokeFunction",
            "Database",
            "lambda:Invoke (MySQL agent)",
        ),
    ];
    let mut failures = Vec::new();
    for (name, sid, action, phase, named) in cases {
        let original = policy(&iam, name).await;
        let reduced = without(&original, sid, action);
        if reduced["Statement"].as_array().is_some_and(Vec::is_empty) {
            // IAM refuses an empty policy: remove it.
            iam.delete_role_policy()
                .role_name(ROLE)
                .policy_name(name)
                .send()
                .await
                .expect("delete deploy role policy");
        } else {
            put(&iam, name, &reduced).await;
        }
        let tenant = unique_tenant("ia");
        put_deploy_event(
            json!({"tenant": tenant, "environment": "dev", "requested_by": "jane@kimmyai.io"}),
        )
        .await;
        let done = find_execution(&format!("{tenant}-dev-"), true, Duration::from_secs(240)).await;
        put(&iam, name, &original).await;
        let cause = done.cause().unwrap_or_default().to_string();
        let ok = done.status() == &ExecutionStatus::Failed
            && done.error() == Some("AwsAccessDenied")
            && cause.contains(named)
            && history(done.execution_arn()).await.contains(phase);
        if !ok {
            failures.push(format!(
                "without {action} ({name}/{sid}): {:?} {:?} {cause}",
                done.status(),
                done.error()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
