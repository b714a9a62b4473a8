//! Fault injection on the local stack (issue 6, reliability items 1–3): a
//! phase (bootstrap, ecs, database, verify and notify in dev, dns in sit)
//! that fails at any of its mutating calls rolls back to nothing; a
//! create whose answer is lost (applied, then a 500) is adopted and the run
//! succeeds with one of everything, or, if the phase dies right after it,
//! rolled back all the same; throttling and 5xx beyond the SDK's retries are
//! retried by the state machine.
//!
//! Faults come from the moto launcher's injector (`/__stepdeploy__/faults`,
//! see `local/moto_launcher.py`). Every rule is scoped to the case's own
//! tenant (`match.contains`) and to the phases' role sessions (`match.caller`
//! `stepdeploy-…`, so the tests' own reads and the trigger are never hit):
//! tests running at the same time on the shared stack are unaffected.
//!
//! Failure points come from a clean calibration run per environment: the
//! launcher logs which mutating calls each phase made for the tenant, in
//! order, so `k` is "the k-th mutating call of the phase" and the cases
//! follow the code if a phase gains or loses a call.
//!
//! The inventory compared before and after a run: ECS services (ACTIVE) and
//! task definitions (ACTIVE revisions of the family), target group, listener
//! rule, EFS access point, the tenant secret (rollback force-deletes it, so
//! not even a secret pending deletion may be left), the secrets policy on the
//! task execution role, the Route53 record, the MySQL database and user, the
//! config document and any other object of the tenant in the config bucket
//! except verify's reports (kept on purpose: the failed run's evidence, like
//! its execution history), the registry entry, priority claims and the lock.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};
use stepdeploy_shared::{EnvironmentName, ResourceNames, TenantName};
use stepdeploy_tests::{
    environment, find_execution, in_environment, orchestrator, put_deploy_event,
    tenant_mysql_objects, unique_tenant, ENDPOINT,
};

/// How many runs one test keeps going at once.
const PARALLEL: usize = 6;
/// The phases in the order a run reaches them (their role session is `stepdeploy-{phase}`).
const PHASES: [&str; 6] = ["bootstrap", "ecs", "database", "verify", "dns", "notify"];

// ---- the injector ------------------------------------------------------------

/// `METHOD /__stepdeploy__/faults{query}` with a JSON body; the JSON answer.
fn faults(method: &str, query: &str, body: Option<&Value>) -> Value {
    let mut curl = Command::new("curl");
    curl.args(["-s", "-w", "\n%{http_code}", "-X", method]);
    if let Some(body) = body {
        curl.args(["-H", "content-type: application/json", "--data"])
            .arg(body.to_string());
    }
    let out = curl
        .arg(format!("{ENDPOINT}/__stepdeploy__/faults{query}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (answer, status) = text.rsplit_once('\n').unwrap_or((&text, ""));
    assert_eq!(
        status, "200",
        "{method} faults{query}: {answer} (is the launcher's fault injector there? local/down && local/up)"
    );
    serde_json::from_str(answer).expect("JSON answer")
}

/// Adds `rules` as the group `group`, each scoped to `tenant` and to the phases' sessions.
fn inject(group: &str, tenant: &str, rules: &[Value]) {
    let rules: Vec<Value> = rules
        .iter()
        .map(|rule| {
            let mut rule = rule.clone();
            let matcher = rule["match"].as_object().cloned().unwrap_or_default();
            let mut matcher = serde_json::Map::from_iter(matcher);
            matcher.insert("contains".into(), json!(tenant));
            matcher
                .entry("caller")
                .or_insert_with(|| json!("stepdeploy-"));
            rule["match"] = Value::Object(matcher);
            rule
        })
        .collect();
    faults(
        "POST",
        "",
        Some(&json!({"id": group, "seed": 1, "rules": rules})),
    );
}

/// The group's rules with what they matched and injected; the group is removed.
fn collect(group: &str) -> Vec<Value> {
    let state = faults("GET", &format!("?id={group}"), None);
    faults("DELETE", &format!("?id={group}"), None);
    state["rules"].as_array().cloned().unwrap_or_default()
}

// ---- the inventory -------------------------------------------------------------

/// Everything of `tenant` in `env`'s account, by kind (ids, names or keys).
type Inventory = BTreeMap<&'static str, Vec<String>>;

async fn inventory(env_name: &str, tenant: &str) -> Inventory {
    let env = environment(env_name);
    let names = ResourceNames::new(
        &EnvironmentName::parse(env_name).expect("environment"),
        &TenantName::parse(tenant).expect("tenant"),
        &env.domain,
    );
    let config = in_environment(env_name).await;
    let mut found = Inventory::new();

    let ecs = aws_sdk_ecs::Client::new(&config);
    let services = ecs
        .describe_services()
        .cluster(&env.cluster)
        .services(&names.service)
        .send()
        .await
        .expect("describe services");
    found.insert(
        "ecs service",
        services
            .services()
            .iter()
            .filter(|s| s.status() == Some("ACTIVE"))
            .filter_map(|s| s.service_arn().map(str::to_string))
            .collect(),
    );
    let mut revisions = Vec::new();
    let mut token = None;
    let exact = format!("task-definition/{}:", names.task_family);
    loop {
        let page = ecs
            .list_task_definitions()
            .family_prefix(&names.task_family)
            .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
            .set_next_token(token)
            .send()
            .await
            .expect("task definitions");
        revisions.extend(
            page.task_definition_arns()
                .iter()
                .filter(|a| a.contains(&exact))
                .cloned(),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    found.insert("task definition (ACTIVE)", revisions);

    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let groups = match elb
        .describe_target_groups()
        .names(&names.target_group)
        .send()
        .await
    {
        Ok(out) => out
            .target_groups()
            .iter()
            .filter_map(|t| t.target_group_arn().map(str::to_string))
            .collect(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_target_group_not_found_exception()) =>
        {
            Vec::new()
        }
        Err(e) => panic!("describe target groups: {e:?}"),
    };
    found.insert("target group", groups);
    let mut rules = Vec::new();
    let mut marker = None;
    loop {
        let page = elb
            .describe_rules()
            .listener_arn(&env.alb_listener_arn)
            .set_marker(marker)
            .page_size(400)
            .send()
            .await
            .expect("rules");
        rules.extend(
            page.rules()
                .iter()
                .filter(|r| {
                    r.conditions().iter().any(|c| {
                        c.host_header_config()
                            .is_some_and(|h| h.values().iter().any(|v| v == &names.host))
                    })
                })
                .filter_map(|r| r.rule_arn().map(str::to_string)),
        );
        marker = page
            .next_marker()
            .filter(|m| !m.is_empty())
            .map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    found.insert("listener rule", rules);

    let efs = aws_sdk_efs::Client::new(&config);
    let mut points = Vec::new();
    let mut token = None;
    loop {
        let page = efs
            .describe_access_points()
            .file_system_id(&env.efs_id)
            .set_next_token(token)
            .send()
            .await
            .expect("access points");
        points.extend(
            page.access_points()
                .iter()
                .filter(|ap| {
                    ap.root_directory().and_then(|r| r.path()) == Some(names.efs_path.as_str())
                })
                .filter_map(|ap| ap.access_point_id().map(str::to_string)),
        );
        token = page
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    found.insert("access point", points);

    let secret = match aws_sdk_secretsmanager::Client::new(&config)
        .describe_secret()
        .secret_id(&names.db_secret)
        .send()
        .await
    {
        Ok(s) => vec![format!(
            "{}{}",
            s.arn().unwrap_or_default(),
            if s.deleted_date().is_some() {
                " (pending deletion)"
            } else {
                ""
            }
        )],
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Vec::new()
        }
        Err(e) => panic!("describe secret: {e:?}"),
    };
    found.insert("secret", secret);

    let role = env
        .task_execution_role_arn
        .rsplit('/')
        .next()
        .expect("role name");
    let policy = match aws_sdk_iam::Client::new(&config)
        .get_role_policy()
        .role_name(role)
        .policy_name(&names.secrets_policy)
        .send()
        .await
    {
        Ok(_) => vec![format!("{role}/{}", names.secrets_policy)],
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            Vec::new()
        }
        Err(e) => panic!("get role policy: {e:?}"),
    };
    found.insert("task execution role policy", policy);

    let fqdn = format!("{}.", names.host);
    let records = aws_sdk_route53::Client::new(&config)
        .list_resource_record_sets()
        .hosted_zone_id(&env.hosted_zone_id)
        .start_record_name(&fqdn)
        .start_record_type(aws_sdk_route53::types::RrType::A)
        .max_items(1)
        .send()
        .await
        .expect("records");
    found.insert(
        "route53 record",
        records
            .resource_record_sets()
            .iter()
            .filter(|r| r.name().eq_ignore_ascii_case(&fqdn))
            .map(|r| r.name().to_string())
            .collect(),
    );

    let counts = tenant_mysql_objects(env_name, tenant);
    let mut mysql = Vec::new();
    if counts.first().map(String::as_str) != Some("0") {
        mysql.push(format!("database {} ({counts:?})", names.database));
    }
    if counts.get(1).map(String::as_str) != Some("0") {
        mysql.push(format!("user {} ({counts:?})", names.db_user));
    }
    found.insert("mysql", mysql);

    let s3 = stepdeploy_shared::aws::s3_client(&config);
    let listed = s3
        .list_objects_v2()
        .bucket(&env.config_bucket)
        .prefix(format!("{env_name}/{tenant}"))
        .send()
        .await
        .expect("config bucket");
    found.insert(
        "config bucket",
        listed
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .filter(|k| *k == names.config_key || k.starts_with(&format!("{env_name}/{tenant}/")))
            .filter(|k| !k.contains("/reports/"))
            .map(str::to_string)
            .collect(),
    );

    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let item = |pk: String, sk: &str| {
        ddb.get_item()
            .table_name(&env.state_table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk.into()))
            .consistent_read(true)
            .send()
    };
    let registry = item(format!("TENANT#{tenant}"), "REGISTRY")
        .await
        .expect("registry")
        .item;
    found.insert(
        "registry entry",
        registry
            .map(|i| {
                let mut fields: Vec<&String> = i.keys().collect();
                fields.sort();
                format!("{fields:?}")
            })
            .into_iter()
            .collect(),
    );
    let lock = item(format!("LOCK#{tenant}"), "LOCK")
        .await
        .expect("lock")
        .item;
    found.insert(
        "lock",
        lock.map(|i| format!("{:?}", i.get("owner")))
            .into_iter()
            .collect(),
    );
    let mut claims = Vec::new();
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(&env.state_table)
            .filter_expression("sk = :sk AND tenant = :t")
            .expression_attribute_values(":sk", AttributeValue::S("PRIORITY".into()))
            .expression_attribute_values(":t", AttributeValue::S(tenant.into()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan priority claims");
        claims.extend(
            page.items()
                .iter()
                .filter_map(|i| i.get("pk").and_then(|v| v.as_s().ok()).cloned()),
        );
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    found.insert("priority claim", claims);
    found
}

/// How many of each kind.
fn shape(inventory: &Inventory) -> BTreeMap<&'static str, usize> {
    inventory.iter().map(|(k, v)| (*k, v.len())).collect()
}

fn nothing(inventory: &Inventory) -> bool {
    inventory.values().all(Vec::is_empty)
}

// ---- runs --------------------------------------------------------------------------

/// A finished execution and its history, in the terms the checks need.
struct Run {
    status: ExecutionStatus,
    error: Option<String>,
    states: Vec<String>,
    task_errors: Vec<String>,
    /// The `rollback` field of the state after the Rollback task (`{"output": …}` or absent).
    rollback: Option<Value>,
    took: Duration,
}

async fn deploy(tenant: &str, env: &str, within: Duration) -> Run {
    let started = Instant::now();
    put_deploy_event(
        json!({"tenant": tenant, "environment": env, "requested_by": "faults@kimmyai.io"}),
    )
    .await;
    let execution = find_execution(&format!("{tenant}-{env}-"), true, within).await;
    let took = started.elapsed();
    let sfn = aws_sdk_sfn::Client::new(&orchestrator().await);
    let mut run = Run {
        status: execution.status().clone(),
        error: execution.error().map(str::to_string),
        states: Vec::new(),
        task_errors: Vec::new(),
        rollback: None,
        took,
    };
    let mut token = None;
    loop {
        let page = sfn
            .get_execution_history()
            .execution_arn(execution.execution_arn())
            .max_results(1000)
            .set_next_token(token)
            .send()
            .await
            .expect("history");
        for event in page.events() {
            if let Some(entered) = event.state_entered_event_details() {
                run.states.push(entered.name().to_string());
            }
            if event.r#type() == &HistoryEventType::TaskFailed {
                if let Some(failed) = event.task_failed_event_details() {
                    run.task_errors
                        .push(failed.error().unwrap_or_default().to_string());
                }
            }
            if let Some(exited) = event.state_exited_event_details() {
                if exited.name() == "Rollback" {
                    let state: Value =
                        serde_json::from_str(exited.output().unwrap_or("{}")).unwrap_or_default();
                    run.rollback = state.get("rollback").cloned();
                    if let Some(error) = state.get("rollback_error") {
                        run.rollback = Some(json!({ "rollback_error": error }));
                    }
                }
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return run;
        }
    }
}

/// The mutating calls each phase made for a tenant in a clean run, in order
/// (`call` as the launcher's counter names it), and the clean run's inventory.
struct Calibration {
    calls: BTreeMap<&'static str, Vec<String>>,
    clean: BTreeMap<&'static str, usize>,
}

impl Calibration {
    /// A clean run; again if its bootstrap lost a race for a priority to a
    /// run starting at the same time (a second claim: not the usual sequence).
    async fn run(env: &str) -> Self {
        for _ in 0..3 {
            let calibration = Self::run_once(env).await;
            let claims = calibration
                .of("bootstrap")
                .iter()
                .filter(|c| *c == "dynamodb:TransactWriteItems")
                .count();
            if claims == 1 {
                return calibration;
            }
        }
        panic!("three calibration runs in {env} lost a race for their priority");
    }

    async fn run_once(env: &str) -> Self {
        let tenant = unique_tenant("fk");
        let rules: Vec<Value> = PHASES
            .iter()
            .map(|phase| {
                json!({"id": format!("{tenant}-{phase}"), "mode": "latency", "ms": 0,
                       "match": {"mutating": true, "caller": format!("stepdeploy-{phase}")}})
            })
            .collect();
        inject(&tenant, &tenant, &rules);
        // The first runs after `local/up` may wait for the Lambda emulator to build.
        let run = deploy(&tenant, env, Duration::from_secs(600)).await;
        let rules = collect(&tenant);
        assert_eq!(
            run.status,
            ExecutionStatus::Succeeded,
            "calibration run {tenant}: {:?} {:?}",
            run.error,
            run.states
        );
        let mut calls = BTreeMap::new();
        for (phase, rule) in PHASES.iter().zip(&rules) {
            let log = rule["log"].as_array().cloned().unwrap_or_default();
            calls.insert(
                *phase,
                log.iter()
                    .map(|l| l["call"].as_str().unwrap_or_default().to_string())
                    .collect(),
            );
        }
        let clean = shape(&inventory(env, &tenant).await);
        eprintln!("calibration {env} ({tenant}, {:?}): {calls:?}", run.took);
        Self { calls, clean }
    }

    /// The phase's mutating calls.
    fn of(&self, phase: &str) -> &[String] {
        self.calls.get(phase).map_or(&[], Vec::as_slice)
    }

    /// The position of `phase`'s k-th call among all the phases' mutating calls.
    fn global(&self, phase: &str, k: usize) -> usize {
        PHASES
            .iter()
            .take_while(|p| **p != phase)
            .map(|p| self.of(p).len())
            .sum::<usize>()
            + k
    }
}

/// What a case expects.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// FAILED with this error; rollback ran (except for bootstrap, which
    /// cleans up after itself); the tenant's inventory is as before: nothing.
    RolledBack(&'static str),
    /// SUCCEEDED with one of everything, as the clean run; the named task
    /// error (if any) was retried by the state machine on the way.
    Converged(Option<&'static str>),
}

#[derive(Clone)]
struct Case {
    label: String,
    env: &'static str,
    rules: Vec<Value>,
    expect: Expect,
}

/// Runs the case for a fresh tenant; `Err` says what went wrong.
async fn run_case(case: Case, clean: BTreeMap<&'static str, usize>) -> Result<String, String> {
    let tenant = unique_tenant("fx");
    let before = inventory(case.env, &tenant).await;
    if !nothing(&before) {
        return Err(format!(
            "{}: {tenant} is not fresh: {before:#?}",
            case.label
        ));
    }
    inject(&tenant, &tenant, &case.rules);
    let run = deploy(&tenant, case.env, Duration::from_secs(240)).await;
    let rules = collect(&tenant);
    let after = inventory(case.env, &tenant).await;
    let what = format!(
        "{} ({tenant}): {:?} {:?}, states {:?}, task errors {:?}, rollback {}",
        case.label,
        run.status,
        run.error,
        run.states,
        run.task_errors,
        run.rollback
            .as_ref()
            .map(Value::to_string)
            .unwrap_or_default()
    );
    let unfired: Vec<&Value> = rules.iter().filter(|r| r["injected"] == 0).collect();
    if !unfired.is_empty() {
        return Err(format!("{what}: a rule never fired: {unfired:?}"));
    }
    match case.expect {
        Expect::RolledBack(error) => {
            if run.status != ExecutionStatus::Failed || run.error.as_deref() != Some(error) {
                return Err(format!("{what}: expected FAILED with {error}"));
            }
            let bootstrap_failed = run.states == ["Bootstrap", "NotifyFailure", "Failed"];
            let rolled_back = run.states.iter().any(|s| s == "Rollback")
                && run
                    .rollback
                    .as_ref()
                    .is_some_and(|r| r.get("output").is_some());
            if !bootstrap_failed && !rolled_back {
                return Err(format!("{what}: rollback did not run to the end"));
            }
            if after != before {
                return Err(format!("{what}: left behind {after:#?}"));
            }
        }
        Expect::Converged(retried) => {
            if run.status != ExecutionStatus::Succeeded {
                return Err(format!("{what}: expected SUCCEEDED"));
            }
            if let Some(error) = retried {
                if !run.task_errors.iter().any(|e| e == error) {
                    return Err(format!(
                        "{what}: expected a task to fail with {error} first"
                    ));
                }
            }
            if shape(&after) != clean {
                return Err(format!(
                    "{what}: inventory {:?}, a clean run has {clean:?}: {after:#?}",
                    shape(&after)
                ));
            }
        }
    }
    Ok(format!("{} {:.1?}", case.label, run.took))
}

/// Runs every case, `PARALLEL` at a time; panics listing each failed case.
async fn run_all(name: &str, cases: Vec<Case>, clean: BTreeMap<&'static str, usize>) {
    let started = Instant::now();
    let total = cases.len();
    let mut pending = cases.into_iter();
    let mut running = tokio::task::JoinSet::new();
    let mut passed = Vec::new();
    let mut failed = Vec::new();
    loop {
        while running.len() < PARALLEL {
            let Some(case) = pending.next() else { break };
            let label = case.label.clone();
            let clean = clean.clone();
            running.spawn(async move {
                match tokio::spawn(run_case(case, clean)).await {
                    Ok(result) => result,
                    Err(e) => Err(format!("{label}: panicked: {e}")),
                }
            });
        }
        match running.join_next().await {
            Some(Ok(Ok(line))) => passed.push(line),
            Some(Ok(Err(problem))) => failed.push(problem),
            Some(Err(e)) => failed.push(format!("join: {e}")),
            None => break,
        }
    }
    eprintln!(
        "{name}: {} of {total} cases passed in {:.1?}: {passed:?}",
        passed.len(),
        started.elapsed()
    );
    assert!(
        failed.is_empty(),
        "{} of {total} cases failed:\n{}",
        failed.len(),
        failed.join("\n\n")
    );
}

fn error_at(caller: &str, nth: usize) -> Value {
    json!({"mode": "error", "nth": nth, "match": {"mutating": true, "caller": format!("stepdeploy-{caller}")}})
}

/// `error` on each mutating call of each phase in turn.
fn crash_cases(cal: &Calibration, env: &'static str, phases: &[&'static str]) -> Vec<Case> {
    let mut cases = Vec::new();
    for phase in phases {
        assert!(
            !cal.of(phase).is_empty(),
            "{phase} made no mutating call in {env}"
        );
        for (i, call) in cal.of(phase).iter().enumerate() {
            cases.push(Case {
                label: format!(
                    "{env} {phase} call {}/{} {call}: error",
                    i + 1,
                    cal.of(phase).len()
                ),
                env,
                rules: vec![error_at(phase, i + 1)],
                expect: Expect::RolledBack("AwsAccessDenied"),
            });
        }
    }
    cases
}

/// The phases' calls that create or change something (not their ledger writes):
/// (phase, k, call).
fn creates(cal: &Calibration, phases: &[&'static str]) -> Vec<(&'static str, usize, String)> {
    let mut found = Vec::new();
    for phase in phases {
        for (i, call) in cal.of(phase).iter().enumerate() {
            // bootstrap's first PutItem is the lock; every other PutItem is a ledger entry.
            let ledger = call == "dynamodb:PutItem" && !(*phase == "bootstrap" && i == 0);
            if !ledger {
                found.push((*phase, i + 1, call.clone()));
            }
        }
    }
    found
}

/// For each create: its answer lost (the run converges), and its answer lost
/// with the next mutating call of the run failing (the run rolls back).
fn lost_answer_cases(cal: &Calibration, env: &'static str, phases: &[&'static str]) -> Vec<Case> {
    let mut cases = Vec::new();
    for (phase, k, call) in creates(cal, phases) {
        let at = cal.global(phase, k);
        let any_phase = |mode: &str, nth: usize| json!({"mode": mode, "nth": nth, "match": {"mutating": true, "caller": "stepdeploy-"}});
        cases.push(Case {
            label: format!("{env} {phase} call {k} {call}: answer lost"),
            env,
            rules: vec![any_phase("drop", at)],
            expect: Expect::Converged(None),
        });
        cases.push(Case {
            label: format!("{env} {phase} call {k} {call}: answer lost, next call fails"),
            env,
            rules: vec![any_phase("drop", at), any_phase("error", at + 1)],
            expect: Expect::RolledBack("AwsAccessDenied"),
        });
    }
    assert!(!cases.is_empty(), "no creates found in {env}");
    cases
}

#[tokio::test]
async fn every_failure_point_of_every_phase_in_dev_rolls_back_to_nothing() {
    let started = Instant::now();
    let cal = Calibration::run("dev").await;
    let mut cases = crash_cases(
        &cal,
        "dev",
        &["bootstrap", "ecs", "database", "verify", "notify"],
    );
    // notify's calls in the orchestrator account are made with the Lambda's
    // own credentials, not a role session (locally the key `testing`): the
    // success mail fails after the document and the registry record were
    // written.
    cases.push(Case {
        label: "dev notify sns:Publish: error".into(),
        env: "dev",
        rules: vec![json!({"mode": "error", "nth": 1,
                           "match": {"action": "sns:Publish", "caller": "testing"}})],
        expect: Expect::RolledBack("AwsAccessDenied"),
    });
    run_all(
        "every_failure_point_of_every_phase_in_dev_rolls_back_to_nothing",
        cases,
        cal.clean.clone(),
    )
    .await;
    eprintln!("all {:.1?}", started.elapsed());
}

#[tokio::test]
async fn lost_answers_are_adopted_and_throttling_is_retried_in_dev() {
    let started = Instant::now();
    let cal = Calibration::run("dev").await;
    let mut cases = lost_answer_cases(&cal, "dev", &["bootstrap", "ecs", "database"]);
    // Throttled on every attempt of a create (ecs's own four): the state
    // machine retries the phase, which adopts what it made and goes on.
    cases.push(Case {
        label: "dev ecs CreateService throttled 4 times".into(),
        env: "dev",
        rules: vec![json!({"mode": "throttle", "nth": 1, "count": 4,
                           "match": {"action": "ecs:CreateService", "caller": "stepdeploy-ecs"}})],
        expect: Expect::Converged(Some("AwsThrottled")),
    });
    // 503 on every attempt of a read (the SDK's three).
    cases.push(Case {
        label: "dev ecs DescribeTargetGroups unavailable 3 times".into(),
        env: "dev",
        rules: vec![json!({"mode": "unavailable", "nth": 1, "count": 3,
                           "match": {"action": "elasticloadbalancing:DescribeTargetGroups",
                                     "caller": "stepdeploy-ecs"}})],
        expect: Expect::Converged(Some("AwsUnavailable")),
    });
    run_all(
        "lost_answers_are_adopted_and_throttling_is_retried_in_dev",
        cases,
        cal.clean.clone(),
    )
    .await;
    eprintln!("all {:.1?}", started.elapsed());
}

#[tokio::test]
async fn every_failure_point_of_dns_rolls_back_to_nothing_in_sit() {
    let started = Instant::now();
    let cal = Calibration::run("sit").await;
    let mut cases = crash_cases(&cal, "sit", &["dns"]);
    cases.extend(lost_answer_cases(&cal, "sit", &["dns"]));
    run_all(
        "every_failure_point_of_dns_rolls_back_to_nothing_in_sit",
        cases,
        cal.clean.clone(),
    )
    .await;
    eprintln!("all {:.1?}", started.elapsed());
}
