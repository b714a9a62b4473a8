//! The config loader's rules, each with the file and field it names.

use super::*;
use std::path::{Path, PathBuf};

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../infra/environments")
        .join(name)
}

fn dev_json() -> serde_json::Value {
    let text = std::fs::read_to_string(repo_file("dev.json")).expect("dev.json");
    serde_json::from_str(&text).expect("json")
}

fn load_value(value: &serde_json::Value) -> Result<EnvironmentConfig, ConfigError> {
    EnvironmentConfig::from_json(Path::new("infra/environments/dev.json"), &value.to_string())
}

fn rejection(value: &serde_json::Value) -> String {
    load_value(value).expect_err("must be rejected").to_string()
}

#[test]
fn checked_in_environments_load() {
    let set = EnvironmentSet::load_dir(&repo_file("")).expect("infra/environments loads");
    assert_eq!(set.names(), ["dev", "prod", "sit"]);
    let prod = set.get("prod").expect("prod");
    let approval = prod.approval.as_ref().expect("prod needs approval");
    assert_eq!(approval.approvals_required, 2);
    assert!(!prod.verify.enabled && prod.dns.enabled);
    let dev = set.get("dev").expect("dev");
    assert_eq!(dev.alb_priority_range, PriorityRange { min: 10, max: 109 });
    assert_eq!(dev.promote_to.as_ref().map(|e| e.as_str()), Some("sit"));
    assert!(dev.approval.is_none() && dev.verify.enabled && !dev.dns.enabled);
}

#[test]
fn unknown_environment_lists_known_ones() {
    let set = EnvironmentSet::load_dir(&repo_file("")).expect("loads");
    let e = set.get("qa").expect_err("unknown");
    assert_eq!(
        e.to_string(),
        "environment: unknown environment \"qa\" (known: dev, prod, sit)"
    );
}

#[test]
fn missing_field_names_file_and_field() {
    let mut v = dev_json();
    v.as_object_mut().expect("object").remove("cluster");
    assert_eq!(
        rejection(&v),
        "infra/environments/dev.json: cluster: is missing"
    );
    let mut v = dev_json();
    v["rds"]
        .as_object_mut()
        .expect("object")
        .remove("master_secret_arn");
    assert_eq!(
        rejection(&v),
        "infra/environments/dev.json: rds.master_secret_arn: is missing"
    );
}

#[test]
fn wrong_type_and_unknown_field() {
    let mut v = dev_json();
    v["defaults"]["cpu"] = serde_json::json!("lots");
    let msg = rejection(&v);
    assert!(
        msg.starts_with("infra/environments/dev.json: defaults.cpu: invalid type: string \"lots\""),
        "{msg}"
    );
    let mut v = dev_json();
    v["vpc"] = serde_json::json!("vpc-1");
    let msg = rejection(&v);
    assert!(
        msg.starts_with("infra/environments/dev.json: vpc: unknown field `vpc`"),
        "{msg}"
    );
}

#[test]
fn semantic_checks() {
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "account_id",
            serde_json::json!("12345"),
            "account_id: \"12345\" is not a 12-digit AWS account id",
        ),
        (
            "deploy_role_arn",
            serde_json::json!("arn:aws:iam::999999999999:role/x"),
            "is in account 999999999999 but the environment's account_id is 111111111111",
        ),
        (
            "region",
            serde_json::json!("Ireland"),
            "region: \"Ireland\" is not an AWS region name",
        ),
        (
            "alb_priority_range",
            serde_json::json!({"min": 300, "max": 10}),
            "alb_priority_range: 300..=10",
        ),
        (
            "alb_priority_range",
            serde_json::json!({"min": 10, "max": 260}),
            "promises 251 tenants, but one load balancer holds at most 100",
        ),
        (
            "verify",
            serde_json::json!({"enabled": true, "interval_seconds": 15, "max_attempts": 5000}),
            "max_attempts is at most 500",
        ),
        (
            "domain",
            serde_json::json!("Kimmy AI"),
            "domain: \"Kimmy AI\" is not a lowercase DNS domain",
        ),
        (
            "private_subnets",
            serde_json::json!([]),
            "private_subnets: needs at least one subnet",
        ),
        (
            "hosted_zone_id",
            serde_json::json!("/hostedzone/Z1"),
            "without /hostedzone/",
        ),
        (
            "name",
            serde_json::json!("sit"),
            "name: is \"sit\" but the file is dev.json",
        ),
        (
            "promote_to",
            serde_json::json!("dev"),
            "promote_to: cannot promote an environment to itself",
        ),
    ];
    for (field, value, expected) in cases {
        let mut v = dev_json();
        v[field] = value;
        let msg = rejection(&v);
        assert!(msg.contains(expected), "{field}: {msg}");
        assert!(msg.starts_with("infra/environments/dev.json: "), "{msg}");
    }
}

#[test]
fn task_size_and_approval_rules() {
    let mut v = dev_json();
    v["defaults"]["memory"] = serde_json::json!(100);
    assert!(rejection(&v).contains("defaults.memory: 100 MiB is not valid with 512 CPU units"));
    let mut v = dev_json();
    v["approval"] = serde_json::json!({"approvers": ["a@x.io"], "approvals_required": 2});
    assert!(rejection(&v).contains(
        "approval.approvals_required: is 2; it must be between 1 and the number of approvers (1)"
    ));
    let mut v = dev_json();
    v["approval"] = serde_json::json!({"approvers": ["a@x.io", "A@x.io"]});
    assert!(rejection(&v).contains("approval.approvers[1]: \"A@x.io\" is listed twice"));
    let mut v = dev_json();
    v["approval"] = serde_json::json!({"approvers": ["a@x.io", "b@x.io"]});
    let config = load_value(&v).expect("defaults apply");
    let approval = config.approval.expect("approval");
    assert_eq!(
        (approval.approvals_required, approval.timeout_seconds),
        (2, 86_400)
    );
}

#[test]
fn invalid_json_is_reported() {
    let e = EnvironmentConfig::from_json(Path::new("x/dev.json"), "{ not json").expect_err("bad");
    assert!(
        e.to_string()
            .starts_with("x/dev.json: (document): key must be a string"),
        "{e}"
    );
}

#[test]
fn promotion_to_unknown_environment_is_rejected() {
    let dir = std::env::temp_dir().join(format!("stepdeploy-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut v = dev_json();
    v["promote_to"] = serde_json::json!("qa");
    std::fs::write(dir.join("dev.json"), v.to_string()).expect("write");
    let e = EnvironmentSet::load_dir(&dir).expect_err("qa unknown");
    std::fs::remove_dir_all(&dir).expect("cleanup");
    assert!(
        e.to_string()
            .contains("dev.json: promote_to: names \"qa\", which has no config file in"),
        "{e}"
    );
}

// Found by tests/props.rs.
#[test]
fn nothing_may_follow_the_document() {
    let text = format!("{} trailing", dev_json());
    let e = EnvironmentConfig::from_json(Path::new("x/dev.json"), &text).expect_err("trailing");
    assert_eq!(e.to_string(), "x/dev.json: (document): trailing characters");
}

// Found by tests/props.rs: serde reads a struct from an array, so these loaded.
#[test]
fn sections_are_objects() {
    let mut v = dev_json();
    let cf = v["cloudfront"].clone();
    // In the wrong order, the two strings would load swapped.
    v["cloudfront"] = serde_json::json!([cf["hosted_zone_id"], cf["domain_name"]]);
    assert_eq!(
        rejection(&v),
        "infra/environments/dev.json: cloudfront: is an array; write it as an object with named fields"
    );
    let v = dev_json();
    let fields = v.as_object().expect("object");
    let as_list: Vec<serde_json::Value> = fields.values().cloned().collect();
    assert_eq!(
        rejection(&serde_json::Value::Array(as_list)),
        "infra/environments/dev.json: (document): is an array; write it as an object with named fields"
    );
    // SECTIONS names every field that is itself an object.
    for file in ["dev.json", "sit.json", "prod.json"] {
        let text = std::fs::read_to_string(repo_file(file)).expect("config");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        for (name, value) in v.as_object().expect("object") {
            assert_eq!(
                value.is_object(),
                SECTIONS.contains(&name.as_str()) && !value.is_null(),
                "{file}: {name}"
            );
        }
    }
}

// Found by tests/props.rs.
#[test]
fn rejections_stay_on_one_line() {
    let mut v = dev_json();
    v["\t"] = serde_json::json!(1);
    let msg = rejection(&v);
    assert!(
        msg.starts_with("infra/environments/dev.json: \"\\t\": unknown field `\\t`"),
        "{msg}"
    );
    let mut v = dev_json();
    v["deploy_role_arn"] = serde_json::json!("arn:aws:iam::1111\n11111111:role/x");
    assert!(!rejection(&v).contains('\n'));
}

/// A plan carries the tenant's load balancer but no deployment windows:
/// bootstrap judges them from its own config.
#[test]
fn a_plan_carries_no_deployment_windows() {
    let mut v = dev_json();
    v["deployment_windows"] = serde_json::json!({"time_zone": "Africa/Johannesburg",
        "freezes": [{"from": "2026-12-18T00:00:00+02:00", "to": "2027-01-04T00:00:00+02:00", "reason": "year-end"}]});
    let config = load_value(&v).expect("windows");
    assert!(config.deployment_windows.is_some());
    let carried = config.in_plan(0);
    assert_eq!(carried.deployment_windows, None);
    assert_eq!(
        EnvironmentConfig {
            deployment_windows: config.deployment_windows.clone(),
            ..carried
        },
        config,
        "nothing else differs"
    );
}

#[test]
fn additional_load_balancers_need_their_own_ranges_and_balancers() {
    let second = "arn:aws:elasticloadbalancing:eu-west-1:111111111111:listener/app/dev-alb-2/0123456789abcdef/0123456789abcdef";
    let lb = |arn: &str, min: u32, max: u32| {
        serde_json::json!({"listener_arn": arn, "priority_range": {"min": min, "max": max},
                           "cloudfront": {"domain_name": "d2.cloudfront.net", "hosted_zone_id": "Z2FDTNDATAQYW2"}})
    };
    let mut v = dev_json();
    v["additional_load_balancers"] = serde_json::json!([lb(second, 110, 209)]);
    let config = load_value(&v).expect("a second load balancer");
    assert_eq!(config.capacity(), 200);
    assert_eq!(config.for_priority(150).alb_listener_arn, second);
    assert_eq!(config.for_priority(150).alb_priority_range.min, 110);
    assert_eq!(config.for_priority(50), config);
    assert_eq!(config.for_priority(0), config, "no priority yet: the first");
    let view = config.for_priority(150);
    assert_eq!(
        view.for_priority(50),
        config
            .for_priority(50)
            .on_load_balancer(&config.load_balancers()[0])
    );
    assert!(config.priority_allowed(209) && !config.priority_allowed(210));

    v["additional_load_balancers"] = serde_json::json!([lb(second, 100, 199)]);
    assert!(rejection(&v).contains("additional_load_balancers[0].priority_range: 100..=199 overlaps alb_priority_range 10..=109"), "{}", rejection(&v));
    let first = v["alb_listener_arn"]
        .as_str()
        .expect("arn")
        .replace("f2f7dc8efc522ab2", "0000000000000001");
    v["additional_load_balancers"] = serde_json::json!([lb(&first, 110, 209)]);
    assert!(
        rejection(&v).contains("same load balancer as alb_listener_arn"),
        "{}",
        rejection(&v)
    );
    v["additional_load_balancers"] = serde_json::json!([lb(
        &second.replace("111111111111", "999999999999"),
        110,
        209
    )]);
    assert!(
        rejection(&v).contains("additional_load_balancers[0].listener_arn"),
        "{}",
        rejection(&v)
    );
    v["additional_load_balancers"] = serde_json::json!([lb(second, 110, 210)]);
    assert!(
        rejection(&v).contains(
            "additional_load_balancers[0].priority_range: 110..=210 promises 101 tenants"
        ),
        "{}",
        rejection(&v)
    );
}
