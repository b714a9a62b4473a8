//! An environment past one load balancer: the local dev environment has
//! three (dev-alb, dev-alb-2, dev-alb-3, priorities 10–109, 110–209,
//! 210–309), and the local stack refuses what AWS refuses (100 rules and
//! 100 target groups per Application Load Balancer: local/stack/patches/
//! strict_quotas.py). 250 tenants must fit, each on the load balancer its
//! priority names, none over a quota; then the test's own tenants are torn
//! down again, so the stack keeps its room for the other tests.

use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use stepdeploy_shared::state::{DynamoStateStore, StateStore};
use stepdeploy_tests::{
    deploy_through_database, environment, in_environment, invoke, unique_tenant,
};

/// Tenants the environment must hold at once.
const TENANTS: usize = 250;
/// Deployments in flight at once (the local Lambda runtime runs 4 invocations at a time).
const PARALLEL: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_fifty_tenants_fit_across_three_load_balancers_within_the_quotas() {
    let env = environment("dev");
    let balancers = env.load_balancers();
    assert_eq!(
        balancers.len(),
        3,
        "the local dev environment has three load balancers"
    );
    assert_eq!(env.capacity(), 300);
    let config = in_environment("dev").await;
    let store = DynamoStateStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        env.state_table.clone(),
    );
    store.ensure_table().await.expect("state table");
    let existing = store.claimed_priorities().await.expect("claims").len();
    // Enough new tenants to reach 250 in all, and always enough to need the
    // third load balancer (more than the first two hold).
    let want = TENANTS.saturating_sub(existing).max(201);
    assert!(
        existing + want <= env.capacity() as usize,
        "dev already holds {existing} tenants, no room for {want} more; start a fresh stack (local/down && local/up)"
    );
    let prefix: String = unique_tenant("cap").chars().take(16).collect();
    let tenants: Vec<String> = (0..want).map(|i| format!("{prefix}{i:03}")).collect();

    // Deployed as the state machine runs the phases that place a tenant:
    // bootstrap (lock, priority), database, ecs (target group, listener rule,
    // service), notify; verify is left out (it only reads, and waits for
    // ECS: 250 of it are minutes that test nothing about capacity).
    let gate = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut runs = tokio::task::JoinSet::new();
    for tenant in tenants.clone() {
        let gate = Arc::clone(&gate);
        runs.spawn(async move {
            let _slot = gate.acquire_owned().await.expect("semaphore");
            let (plan, ecs, database) = deploy_through_database(&tenant, "dev").await;
            // notify ends the run as the state machine does: registry, config
            // document, the lock released.
            let state = json!({"event": {}, "plan": {"output": plan}, "database": {"output": database},
                               "ecs": {"output": ecs}});
            let notified = invoke("notify", &json!({"outcome": "succeeded", "state": state})).await.ok();
            assert_eq!(notified["lock_released"], true, "{notified}");
            (tenant, plan, ecs)
        });
    }
    let mut placed: BTreeMap<String, (u64, String)> = BTreeMap::new();
    while let Some(run) = runs.join_next().await {
        let (tenant, plan, ecs) = run.expect("deployment task");
        let priority = plan["alb_priority"].as_u64().expect("priority");
        let listener = plan["env"]["alb_listener_arn"]
            .as_str()
            .expect("listener")
            .to_string();
        assert!(
            ecs["listener_rule_arn"]
                .as_str()
                .is_some_and(|r| r.contains(":listener-rule/")),
            "{ecs}"
        );
        placed.insert(tenant, (priority, listener));
    }

    // Each tenant on the load balancer its priority says, its rule there.
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let mut hosts_on: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for lb in &balancers {
        let mut rules = Vec::new();
        let mut marker = None;
        loop {
            let page = elb
                .describe_rules()
                .listener_arn(&lb.listener_arn)
                .set_marker(marker)
                .send()
                .await
                .expect("rules");
            rules.extend(page.rules().to_vec());
            marker = page.next_marker().map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
        let tenant_rules: Vec<_> = rules
            .iter()
            .filter(|r| !r.is_default().unwrap_or(false))
            .collect();
        assert!(
            tenant_rules.len() <= 100,
            "{} rules on {}",
            tenant_rules.len(),
            lb.listener_arn
        );
        let groups: BTreeSet<String> = tenant_rules
            .iter()
            .flat_map(|r| r.actions())
            .filter_map(|a| a.target_group_arn().map(str::to_string))
            .collect();
        assert!(
            groups.len() <= 100,
            "{} target groups behind {}",
            groups.len(),
            lb.listener_arn
        );
        for rule in &tenant_rules {
            let priority: u32 = rule.priority().unwrap_or_default().parse().unwrap_or(0);
            assert!(
                lb.priority_range.contains(priority),
                "rule at {priority} on {}",
                lb.listener_arn
            );
        }
        hosts_on.insert(
            lb.listener_arn.clone(),
            tenant_rules
                .iter()
                .flat_map(|r| r.conditions())
                .flat_map(|c| {
                    c.host_header_config()
                        .map(|h| h.values().to_vec())
                        .unwrap_or_default()
                })
                .collect(),
        );
    }
    for (tenant, (priority, listener)) in &placed {
        let lb = balancers
            .iter()
            .find(|lb| lb.priority_range.contains(*priority as u32))
            .expect("a priority in some load balancer's range");
        assert_eq!(&lb.listener_arn, listener, "{tenant} at {priority}");
        assert!(
            hosts_on[listener].contains(&format!("{tenant}.wpdev.kimmyai.io")),
            "{tenant}"
        );
    }
    let on_third = placed
        .values()
        .filter(|(p, _)| balancers[2].priority_range.contains(*p as u32))
        .count();
    assert!(on_third > 0, "the third load balancer took tenants");
    let total = store.claimed_priorities().await.expect("claims").len();
    assert!(total >= TENANTS, "{total} tenants in dev");

    // The test's tenants go again, by teardown's steps as its state machine
    // runs them (prepare, then remove, which also releases the lock; the teardown state machine's own
    // flow is tests/tests/teardown.rs): the stack keeps its room.
    let mut removals = tokio::task::JoinSet::new();
    for tenant in tenants.clone() {
        let gate = Arc::clone(&gate);
        removals.spawn(async move {
            let _slot = gate.acquire_owned().await.expect("semaphore");
            let execution = format!(
                "arn:aws:states:eu-west-1:123456789012:execution:stepdeploy-teardown-tenant:{tenant}-dev-down"
            );
            let event = stepdeploy_tests::event(
                "Tenant Teardown Requested",
                json!({"tenant": tenant, "environment": "dev", "requested_by": "ops@kimmyai.io"}),
            );
            let plan = invoke(
                "teardown",
                &json!({"action": "prepare", "event": event, "execution": execution,
                        "started_at": "2026-11-30T12:00:00Z"}),
            )
            .await
            .ok();
            let removed = invoke("teardown", &json!({"action": "remove", "plan": plan})).await.ok();
            (tenant, removed)
        });
    }
    while let Some(removal) = removals.join_next().await {
        let (tenant, removed) = removal.expect("teardown task");
        let what = removed["removed"].to_string();
        assert!(
            what.contains("ListenerRule") || what.contains("listener"),
            "{tenant}: {removed}"
        );
    }
    let left = store.claimed_priorities().await.expect("claims").len();
    assert_eq!(
        left,
        total - want,
        "every torn-down tenant gave its priority back"
    );
}
