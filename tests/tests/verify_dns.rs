//! verify and dns on the local stack, after the real ecs and database phases.

use serde_json::json;
use stepdeploy_tests::{
    deploy_through_database, in_environment, invoke, standin_fail, unique_tenant, wait_site_status,
};

#[tokio::test]
async fn verify_is_stable_after_a_deployment_and_writes_the_report() {
    let tenant = unique_tenant("vf");
    let (plan, ecs, _) = deploy_through_database(&tenant, "dev").await;
    let host = plan["names"]["host"].as_str().expect("host").to_string();
    assert_eq!(wait_site_status(&host, "/", "200"), "200");

    let round = invoke("verify", &json!({"plan": plan, "ecs": ecs, "attempt": 0}))
        .await
        .ok();
    let failed: Vec<&serde_json::Value> = round["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] != true)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(round["stable"], true);
    let names: Vec<&str> = round["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "secret",
            "service_active",
            "service_steady",
            "targets_healthy",
            "http",
            "logs"
        ]
    );

    // The stable round wrote the report to the config bucket.
    let report = round["report"].as_str().expect("report written");
    let (bucket, key) = report
        .trim_start_matches("s3://")
        .split_once('/')
        .expect("s3 url");
    let s3 = stepdeploy_shared::aws::s3_client(&in_environment("dev").await);
    let body = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("report object")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    let doc: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(doc["verdict"], "stable");
    assert!(key.starts_with(&format!("dev/{tenant}/reports/")));
}

#[tokio::test]
async fn verify_reports_a_failing_site_and_keeps_polling() {
    let tenant = unique_tenant("vx");
    let (plan, ecs, _) = deploy_through_database(&tenant, "dev").await;
    let host = plan["names"]["host"].as_str().expect("host").to_string();
    standin_fail(&host, true);
    let round = invoke("verify", &json!({"plan": plan, "ecs": ecs, "attempt": 0}))
        .await
        .ok();
    standin_fail(&host, false);
    assert_eq!(round["stable"], false);
    assert_eq!(
        round["report"],
        serde_json::Value::Null,
        "not the last round: no report yet"
    );
    let http = round["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "http")
        .expect("http check")
        .clone();
    assert_eq!(http["ok"], false);
    assert!(
        http["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("answered 500"),
        "{http}"
    );
}

#[tokio::test]
async fn dns_points_the_host_at_cloudfront_and_checks_it() {
    let tenant = unique_tenant("dn");
    let (plan, _, _) = deploy_through_database(&tenant, "sit").await;
    let host = plan["names"]["host"].as_str().expect("host").to_string();
    assert_eq!(wait_site_status(&host, "/", "200"), "200");

    let first = invoke("dns", &json!({ "plan": plan })).await.ok();
    assert_eq!(first["changed"], true);
    assert_eq!(first["status"], 200);
    let env = stepdeploy_tests::environment("sit");
    let r53 = aws_sdk_route53::Client::new(&in_environment("sit").await);
    let records = r53
        .list_resource_record_sets()
        .hosted_zone_id(&env.hosted_zone_id)
        .send()
        .await
        .expect("records");
    let record = records
        .resource_record_sets()
        .iter()
        .find(|r| r.name().trim_end_matches('.') == host)
        .expect("alias record");
    assert_eq!(
        record
            .alias_target()
            .map(|a| a.dns_name().trim_end_matches('.')),
        Some(env.cloudfront.domain_name.as_str())
    );

    let second = invoke("dns", &json!({ "plan": plan })).await.ok();
    assert_eq!(second["changed"], false, "a re-run changes nothing");

    standin_fail(&host, true);
    let (error, message) = invoke("dns", &json!({ "plan": plan })).await.err();
    standin_fail(&host, false);
    assert_eq!(error, "DnsCheckFailed");
    assert!(message.contains("answered 500"), "{message}");
}
