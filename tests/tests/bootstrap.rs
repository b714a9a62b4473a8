//! bootstrap on the local stack: invoked through the Lambda API (moto →
//! cargo lambda watch), acting in the environment's account through its
//! deploy role, checked through the AWS APIs.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use stepdeploy_tests::{in_environment, invoke, orchestrator, unique_tenant};

fn input(tenant: &str, env: &str, execution: &str, extra: serde_json::Value) -> serde_json::Value {
    stepdeploy_tests::bootstrap_input(tenant, env, execution, extra)
}

async fn item(
    env: &str,
    pk: &str,
    sk: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    let ddb = aws_sdk_dynamodb::Client::new(&in_environment(env).await);
    let table = stepdeploy_tests::environment(env).state_table;
    let result = ddb
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await;
    match result {
        Ok(out) => out.item,
        // No state table yet in this environment: certainly no item.
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => panic!("get item: {e:?}"),
    }
}

#[tokio::test]
async fn first_run_creates_backend_in_the_environment_account_and_rerun_converges() {
    let tenant = unique_tenant("bt");
    let exec = format!("{tenant}-run1");
    let plan = invoke("bootstrap", &input(&tenant, "dev", &exec, json!({})))
        .await
        .ok();
    assert_eq!(plan["tenant"], tenant.as_str());
    assert_eq!(plan["names"]["service"], format!("dev-{tenant}-service"));
    assert_eq!(plan["env"]["account_id"], "111111111111");
    let priority = plan["alb_priority"].as_u64().expect("priority");
    assert!((10..=109).contains(&priority));

    // The backend exists in dev's account, with safe settings.
    let dev = in_environment("dev").await;
    let env = stepdeploy_tests::environment("dev");
    let table = aws_sdk_dynamodb::Client::new(&dev)
        .describe_table()
        .table_name(&env.state_table)
        .send()
        .await
        .expect("state table in dev");
    assert_eq!(
        table
            .table()
            .and_then(|t| t.table_status())
            .map(|s| s.as_str()),
        Some("ACTIVE")
    );
    let s3 = stepdeploy_shared::aws::s3_client(&dev);
    let versioning = s3
        .get_bucket_versioning()
        .bucket(&env.config_bucket)
        .send()
        .await
        .expect("bucket in dev");
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));
    let encryption = s3
        .get_bucket_encryption()
        .bucket(&env.config_bucket)
        .send()
        .await
        .expect("encryption");
    assert!(encryption
        .server_side_encryption_configuration()
        .is_some_and(|c| !c.rules().is_empty()));
    let block = s3
        .get_public_access_block()
        .bucket(&env.config_bucket)
        .send()
        .await
        .expect("public access block");
    assert_eq!(
        block
            .public_access_block_configuration()
            .and_then(|c| c.block_public_acls()),
        Some(true)
    );
    // …and not in the orchestrator's.
    let orchestrator_tables = aws_sdk_dynamodb::Client::new(&orchestrator().await)
        .list_tables()
        .send()
        .await
        .expect("tables");
    assert!(!orchestrator_tables.table_names().contains(&env.state_table));

    // Lock and priority claim are recorded.
    let lock = item("dev", &format!("LOCK#{tenant}"), "LOCK")
        .await
        .expect("lock item");
    assert!(lock["owner"].as_s().expect("owner").ends_with(&exec));
    let claim = item("dev", "PRIORITY", &format!("{priority:05}"))
        .await
        .expect("claim item");
    assert_eq!(claim["tenant"].as_s().expect("tenant"), &tenant);

    // The same execution retried: the same plan, nothing new.
    let again = invoke("bootstrap", &input(&tenant, "dev", &exec, json!({})))
        .await
        .ok();
    assert_eq!(again["alb_priority"], plan["alb_priority"]);
    assert_eq!(again["names"], plan["names"]);
}

#[tokio::test]
async fn another_run_for_the_same_tenant_is_locked_out() {
    // dev has no queue: the second run is refused.
    let tenant = unique_tenant("lk");
    invoke("bootstrap", &input(&tenant, "dev", "first", json!({})))
        .await
        .ok();
    let (error, message) = invoke("bootstrap", &input(&tenant, "dev", "second", json!({})))
        .await
        .err();
    assert_eq!(error, "DeploymentLocked");
    assert!(
        message.contains(":first (requested by jane@kimmyai.io)"),
        "{message}"
    );
    // When it may be tried again, in words: ISO-8601 UTC and how long from now.
    assert!(
        message.contains("its lock expires 20") && message.contains("Z, in "),
        "{message}"
    );
    // Another tenant is not blocked and gets a different priority.
    let other = invoke(
        "bootstrap",
        &input(&unique_tenant("lo"), "dev", "third", json!({})),
    )
    .await
    .ok();
    assert!(other["alb_priority"].is_u64());
}

#[tokio::test]
async fn in_an_environment_with_a_queue_the_second_run_waits_holding_nothing() {
    let tenant = unique_tenant("lq");
    invoke("bootstrap", &input(&tenant, "sit", "first", json!({})))
        .await
        .ok();
    let waiting = invoke("bootstrap", &input(&tenant, "sit", "second", json!({})))
        .await
        .ok();
    let queued = &waiting["queued"];
    assert!(
        queued["behind"]
            .as_str()
            .is_some_and(|b| b.ends_with(":first")),
        "{waiting:#}"
    );
    assert_eq!(queued["position"], 1);
    assert_eq!(waiting["alb_priority"], 0, "nothing claimed while waiting");
    assert!(
        item(
            "sit",
            &format!("QUEUE#{tenant}"),
            waiting["execution"].as_str().unwrap_or_default()
        )
        .await
        .is_some(),
        "in the tenant's queue"
    );
}

#[tokio::test]
async fn requested_priority_is_used_and_then_refused_to_others() {
    let (a, b) = (unique_tenant("pa"), unique_tenant("pb"));
    // High in sit's range (10..=109): other tests' tenants take the lowest free.
    let wanted = 60 + (std::process::id() % 40);
    let plan = invoke(
        "bootstrap",
        &input(
            &a,
            "sit",
            &format!("{a}-1"),
            json!({"alb_priority": wanted}),
        ),
    )
    .await
    .ok();
    assert_eq!(plan["alb_priority"], wanted);
    let (error, message) = invoke(
        "bootstrap",
        &input(
            &b,
            "sit",
            &format!("{b}-1"),
            json!({"alb_priority": wanted}),
        ),
    )
    .await
    .err();
    assert_eq!(error, "PriorityInUse");
    assert!(
        message.contains(&format!("{wanted} is in use by tenant {a}")),
        "{message}"
    );
    assert!(
        item("sit", &format!("LOCK#{b}"), "LOCK").await.is_none(),
        "a refused run leaves no lock"
    );
    // In prod a request waits for approvers holding nothing: no lock, no
    // claim until the Claim state after the gate.
    let c = unique_tenant("pc");
    let pending = invoke(
        "bootstrap",
        &input(
            &c,
            "prod",
            &format!("{c}-1"),
            json!({"alb_priority": wanted}),
        ),
    )
    .await
    .ok();
    assert_eq!(
        pending["phases"]["approval"], true,
        "prod waits for approvers"
    );
    assert_eq!(
        pending["alb_priority"], wanted,
        "the requested priority, not yet claimed"
    );
    assert!(item("prod", &format!("LOCK#{c}"), "LOCK").await.is_none());
    // The claim itself needs the quorum: invoked directly, it is refused.
    let (error, _) = invoke("bootstrap", &json!({"action": "claim", "plan": pending}))
        .await
        .err();
    assert_eq!(error, "ApprovalBypassed");
}

#[tokio::test]
async fn bad_requests_fail_validation_and_create_nothing() {
    let tenant = unique_tenant("bad");
    let cases = [
        (
            input("Golden-Crust", "dev", "bad-1", json!({})),
            "detail.tenant",
        ),
        (
            input(&tenant, "qa", "bad-2", json!({})),
            "detail.environment: unknown environment \"qa\"",
        ),
        (
            input(&tenant, "dev", "bad-3", json!({"alb_priority": 5})),
            "detail.alb_priority: 5 is outside dev's range",
        ),
        (
            input(&tenant, "dev", "bad-4", json!({"colour": "blue"})),
            "detail.colour: unknown field `colour`",
        ),
        (json!({"event": {}}), "execution: is missing"),
    ];
    for (payload, expected) in cases {
        let (error, message) = invoke("bootstrap", &payload).await.err();
        assert_eq!(error, "ValidationFailed", "{message}");
        assert!(message.contains(expected), "{message}");
    }
    assert!(item("dev", &format!("LOCK#{tenant}"), "LOCK")
        .await
        .is_none());
    assert!(item("dev", &format!("TENANT#{tenant}"), "REGISTRY")
        .await
        .is_none());
}
