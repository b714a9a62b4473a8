//! The local stack itself: what a newcomer checks after `local/up`.

use stepdeploy_tests::{aws_cli, environment, in_environment, orchestrator};

#[test]
fn stock_cli_lists_the_deploy_state_machine() {
    let out = aws_cli(&["stepfunctions", "list-state-machines"]);
    let listed: serde_json::Value = serde_json::from_str(&out).expect("json");
    let names: Vec<&str> = listed["stateMachines"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(names.contains(&"stepdeploy-deploy-tenant"), "{names:?}");
}

#[tokio::test]
async fn environments_live_in_their_own_accounts() {
    for (name, account, region) in [
        ("dev", "111111111111", "eu-west-1"),
        ("sit", "222222222222", "eu-west-1"),
        ("prod", "333333333333", "af-south-1"),
    ] {
        let env = environment(name);
        assert_eq!(
            (env.account_id.as_str(), env.region.as_str()),
            (account, region)
        );
        // A role in that account really is assumed: calls are made as that
        // account (the tests use the local admin role: the deploy role admits
        // only the orchestrator's phase functions, as in AWS).
        let sts = aws_sdk_sts::Client::new(&in_environment(name).await);
        let me = sts
            .get_caller_identity()
            .send()
            .await
            .expect("caller identity");
        assert_eq!(me.account(), Some(account), "{name}");
        assert!(
            me.arn()
                .unwrap_or_default()
                .contains(":assumed-role/stepdeploy-local-admin/"),
            "{:?}",
            me.arn()
        );
    }
    // The orchestrator account holds no environment resources.
    let s3 =
        aws_sdk_s3::Client::from_conf(stepdeploy_shared::aws::s3_config(&orchestrator().await));
    let buckets = s3.list_buckets().send().await.expect("list buckets");
    assert!(buckets.buckets().iter().all(|b| !b
        .name()
        .unwrap_or_default()
        .starts_with("stepdeploy-config-")));
}

#[test]
fn tenant_site_stand_in_answers() {
    stepdeploy_tests::ensure_stack();
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Host: nobody.wpdev.kimmyai.io",
            "http://127.0.0.1:8088/",
        ])
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "404",
        "a host no tenant serves is 404"
    );
}
