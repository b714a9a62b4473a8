//! Harness for the integration tests: brings the local stack up (once, with
//! `local/up`, which is idempotent), and gives AWS clients for the
//! orchestrator account and for each environment's account, the latter
//! through the environment's deploy role as the Lambdas reach it.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use stepdeploy_shared::config::EnvironmentConfig;
use stepdeploy_shared::listener::{ElbRules, ListenerRules};
use stepdeploy_shared::state::{claim_sk, CLAIMS_PK};
use stepdeploy_shared::{EnvironmentName, ResourceNames, TenantName};

/// moto's endpoint.
pub const ENDPOINT: &str = "http://127.0.0.1:5000";
/// Orchestrator account (moto's default).
pub const ORCHESTRATOR_ACCOUNT: &str = "123456789012";
/// Orchestrator region.
pub const REGION: &str = "eu-west-1";
/// The deploy state machine's ARN.
pub const DEPLOY_STATE_MACHINE: &str =
    "arn:aws:states:eu-west-1:123456789012:stateMachine:stepdeploy-deploy-tenant";

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn answers(url: &str) -> bool {
    Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "2", url])
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes sure the local stack is running and seeded (runs `local/up` at most once per test binary).
pub fn ensure_stack() {
    static UP: OnceLock<()> = OnceLock::new();
    UP.get_or_init(|| {
        let seeded = repo().join("local/.state/stack.json").exists();
        if seeded
            && answers(&format!("{ENDPOINT}/moto-api/"))
            && answers("http://127.0.0.1:9000/")
            && answers("http://127.0.0.1:8088/__standin__/health")
        {
            return;
        }
        let status = Command::new(repo().join("local/up"))
            .status()
            .expect("run local/up");
        assert!(status.success(), "local/up failed; see local/.state/logs/");
    });
}

/// The orchestrator account's config (what the trigger and state machines use).
pub async fn orchestrator() -> SdkConfig {
    ensure_stack();
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(ENDPOINT)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "stepdeploy-tests",
        ))
        .load()
        .await
}

/// The local config of environment `name`, as the seed wrote it.
pub fn environment(name: &str) -> EnvironmentConfig {
    ensure_stack();
    EnvironmentConfig::load(&repo().join(format!("local/.state/environments/{name}.json")))
        .expect("local environment config")
}

/// A config acting in environment `name`'s account through its deploy role.
pub async fn in_environment(name: &str) -> SdkConfig {
    // The tests look around as an operator with admin rights there would:
    // through the local stack's admin role, not the deploy role, whose trust
    // policy (from infra/target-account-role.yaml) admits only the
    // orchestrator's phase functions.
    let mut env = environment(name);
    env.deploy_role_arn = format!(
        "arn:aws:iam::{}:role/stepdeploy-local-admin",
        env.account_id
    );
    stepdeploy_shared::aws::assume_environment_role(&orchestrator().await, &env, "stepdeploy-tests")
        .await
}

fn unique_number() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    nanos
        ^ (u64::from(std::process::id()) << 40)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A tenant name no other test (or earlier run against the same stack) uses: `{prefix}` and digits, 20 characters at most.
pub fn unique_tenant(prefix: &str) -> String {
    format!("{prefix}{}", unique_number())
        .chars()
        .take(20)
        .collect()
}

/// A fresh UUID-shaped event id.
pub fn unique_event_id() -> String {
    let n = unique_number();
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        n >> 32,
        (n >> 16) & 0xffff,
        n & 0xfff,
        (n >> 4) & 0xfff,
        n & 0xffff_ffff_ffff
    )
}

/// An EventBridge event as a rule delivers it.
pub fn event(detail_type: &str, detail: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": unique_event_id(),
        "detail-type": detail_type, "source": "stepdeploy", "account": ORCHESTRATOR_ACCOUNT,
        "time": "2026-11-22T10:00:00Z", "region": REGION, "resources": [], "detail": detail
    })
}

/// The answer of a Lambda invocation.
#[derive(Debug)]
pub enum Invocation {
    /// The function's result.
    Ok(serde_json::Value),
    /// A function error: `errorType` and `errorMessage`.
    Err(String, String),
}

impl Invocation {
    /// The result, or a panic naming the error.
    pub fn ok(self) -> serde_json::Value {
        match self {
            Self::Ok(v) => v,
            Self::Err(t, m) => panic!("function failed: {t}: {m}"),
        }
    }

    /// The error type, or a panic if it succeeded.
    pub fn err(self) -> (String, String) {
        match self {
            Self::Ok(v) => panic!("function succeeded: {v}"),
            Self::Err(t, m) => (t, m),
        }
    }
}

/// Invokes `stepdeploy-{function}` through the Lambda API (moto → cargo lambda watch).
pub async fn invoke(function: &str, payload: &serde_json::Value) -> Invocation {
    let lambda = aws_sdk_lambda::Client::new(&orchestrator().await);
    let out = lambda
        .invoke()
        .function_name(format!("stepdeploy-{function}"))
        .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
        .send()
        .await
        .expect("lambda:Invoke answered");
    let body: serde_json::Value = out
        .payload()
        .map(|b| serde_json::from_slice(b.as_ref()).expect("JSON payload"))
        .unwrap_or(serde_json::Value::Null);
    if out.function_error().is_some() {
        Invocation::Err(
            body["errorType"].as_str().unwrap_or_default().to_string(),
            body["errorMessage"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    } else {
        Invocation::Ok(body)
    }
}

/// Runs the stock AWS CLI from the project's venv against the local stack.
pub fn aws_cli(args: &[&str]) -> String {
    ensure_stack();
    let out = Command::new(repo().join("local/.venv/bin/aws"))
        .args([
            "--endpoint-url",
            ENDPOINT,
            "--region",
            REGION,
            "--output",
            "json",
        ])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run aws");
    assert!(
        out.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bootstrap input (what the state machine passes) for a deployment request.
pub fn bootstrap_input(
    tenant: &str,
    env: &str,
    execution: &str,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut detail = serde_json::json!({"tenant": tenant, "environment": env, "requested_by": "jane@kimmyai.io"});
    if let (Some(d), Some(e)) = (detail.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    serde_json::json!({
        "event": event("Tenant Deployment Requested", detail),
        "execution": format!("arn:aws:states:eu-west-1:123456789012:execution:stepdeploy-deploy-tenant:{execution}"),
        "started_at": "2026-11-22T10:00:01Z"
    })
}

/// HTTP status of `GET http://127.0.0.1:8088{path}` with `Host: {host}` (the tenant-site stand-in).
pub fn site_status(host: &str, path: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
            "-H",
            &format!("Host: {host}"),
            &format!("http://127.0.0.1:8088{path}"),
        ])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls the stand-in until `host` answers `expected` (it caches its view of the accounts for about a second).
pub fn wait_site_status(host: &str, path: &str, expected: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = site_status(host, path);
        if status == expected || std::time::Instant::now() > deadline {
            return status;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// Makes the stand-in answer 500 for `host` (`fail = true`) or serve it again.
pub fn standin_fail(host: &str, fail: bool) {
    let method = if fail { "POST" } else { "DELETE" };
    let status = Command::new("curl")
        .args([
            "-s",
            "-f",
            "-o",
            "/dev/null",
            "-X",
            method,
            &format!("http://127.0.0.1:8088/__standin__/fail?host={host}"),
        ])
        .status()
        .expect("curl");
    assert!(status.success(), "stand-in control call failed");
}

/// bootstrap, then ecs and database, as the state machine runs them: the plan and both outputs.
pub async fn deploy_through_database(
    tenant: &str,
    env: &str,
) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
    let plan = invoke(
        "bootstrap",
        &bootstrap_input(
            tenant,
            env,
            &format!("{tenant}-{env}-1"),
            serde_json::json!({}),
        ),
    )
    .await
    .ok();
    // database first: the service's tasks read the secret it creates.
    let database = invoke("database", &serde_json::json!({ "plan": plan }))
        .await
        .ok();
    let ecs = invoke(
        "ecs",
        &serde_json::json!({ "plan": plan, "database": database }),
    )
    .await
    .ok();
    (plan, ecs, database)
}

/// Puts a `Tenant Deployment Requested` event with `detail` on the bus, as a user does.
pub async fn put_deploy_event(detail: serde_json::Value) {
    put_event("Tenant Deployment Requested", detail).await;
}

/// Puts a `detail_type` event from source `stepdeploy` on the bus; every entry accepted.
pub async fn put_event(detail_type: &str, detail: serde_json::Value) {
    let events = aws_sdk_eventbridge::Client::new(&orchestrator().await);
    let out = events
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name("stepdeploy")
                .source("stepdeploy")
                .detail_type(detail_type)
                .detail(detail.to_string())
                .build(),
        )
        .send()
        .await
        .expect("put events");
    assert_eq!(out.failed_entry_count(), 0);
}

/// The deploy execution whose name starts with `prefix`; with `finished`, once it is no longer running.
pub async fn find_execution(
    prefix: &str,
    finished: bool,
    within: std::time::Duration,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    find_execution_of(DEPLOY_STATE_MACHINE, prefix, finished, within).await
}

/// The teardown state machine.
pub const TEARDOWN_STATE_MACHINE: &str =
    "arn:aws:states:eu-west-1:123456789012:stateMachine:stepdeploy-teardown-tenant";

/// Puts a `Tenant Teardown Requested` event with `detail` on the bus.
pub async fn put_teardown_event(detail: serde_json::Value) {
    put_event("Tenant Teardown Requested", detail).await;
}

/// [`find_execution`] on any state machine.
pub async fn find_execution_of(
    state_machine: &str,
    prefix: &str,
    finished: bool,
    within: std::time::Duration,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    let sfn = aws_sdk_sfn::Client::new(&orchestrator().await);
    let deadline = std::time::Instant::now() + within;
    loop {
        let list = sfn
            .list_executions()
            .state_machine_arn(state_machine)
            .send()
            .await
            .expect("list executions");
        if let Some(found) = list
            .executions()
            .iter()
            .find(|e| e.name().starts_with(prefix))
        {
            let described = sfn
                .describe_execution()
                .execution_arn(found.execution_arn())
                .send()
                .await
                .expect("describe");
            if !finished || described.status() != &aws_sdk_sfn::types::ExecutionStatus::Running {
                return described;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {} execution named {prefix}* within {within:?}",
            if finished { "finished" } else { "started" }
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// A finished execution's events, one line each, for assertion messages.
pub async fn history(arn: &str) -> String {
    let sfn = aws_sdk_sfn::Client::new(&orchestrator().await);
    let events = sfn
        .get_execution_history()
        .execution_arn(arn)
        .max_results(1000)
        .send()
        .await
        .expect("history");
    events
        .events()
        .iter()
        .map(|e| {
            format!(
                "{:?} {:?} {:?}",
                e.r#type(),
                e.state_entered_event_details().map(|d| d.name()),
                e.task_failed_event_details()
                    .map(|d| (d.error(), d.cause()))
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How many of the tenant's MySQL database and user exist on `env`'s MariaDB (as root, through its socket): `["0", "0"]` when both are gone.
pub fn tenant_mysql_objects(env: &str, tenant: &str) -> Vec<String> {
    mariadb_words(
        env,
        &format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='{tenant}_db'; SELECT COUNT(*) FROM mysql.user WHERE User='{tenant}_user'"
        ),
    )
}

/// What `query` prints on `env`'s MariaDB (as root, over its socket), word by word.
fn mariadb_words(env: &str, query: &str) -> Vec<String> {
    let out = Command::new("mariadb")
        .args(["--no-defaults", "-u", "root", "--socket"])
        .arg(repo().join(format!("local/.state/mariadb/{env}/mysqld.sock")))
        .args(["-N", "-e", query])
        .output()
        .expect("mariadb client");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The databases whose names start with `{tenant}_` in `env`'s MariaDB.
pub fn tenant_databases(env: &str, tenant: &str) -> Vec<String> {
    mariadb_words(
        env,
        &format!(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{tenant}\\_%' ORDER BY 1"
        ),
    )
}

/// (approver, approve link, reject link) mailed for `tenant` (read from the approvals inbox, SNS → SQS), sorted by approver.
pub async fn approval_links(tenant: &str, approvers: usize) -> Vec<(String, String, String)> {
    let sqs = aws_sdk_sqs::Client::new(&orchestrator().await);
    let queue = sqs
        .get_queue_url()
        .queue_name("stepdeploy-approvals-inbox")
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut found = Vec::new();
    while found.len() < approvers {
        assert!(
            Instant::now() < deadline,
            "only {} approval mails for {tenant}",
            found.len()
        );
        let out = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        for message in out.messages() {
            let envelope: serde_json::Value =
                serde_json::from_str(message.body().unwrap_or("{}")).expect("sns envelope");
            let text = envelope["Message"].as_str().unwrap_or_default();
            let ours = text.contains(&format!("deploy {tenant} to"))
                || text.contains(&format!("remove {tenant} from"));
            if !ours {
                // Another test's mail: give it back at once (receiving hid it
                // for the queue's visibility timeout; tests reading the same
                // inbox in parallel could otherwise starve each other).
                let _ = sqs
                    .change_message_visibility()
                    .queue_url(&queue)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .visibility_timeout(0)
                    .send()
                    .await;
                continue;
            }
            sqs.delete_message()
                .queue_url(&queue)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
            if !text.contains("Approve:") {
                // The requester's notice: no links in it.
                assert!(text.contains("cannot approve your own"), "{text}");
                continue;
            }
            let approver = envelope["MessageAttributes"]["approver"]["Value"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let line = |prefix: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(prefix))
                    .map(|l| l.trim().to_string())
                    .expect("link line")
            };
            assert!(
                !text.contains("task_token") && !text.contains("AAAA"),
                "no task token in mails"
            );
            found.push((approver, line("Approve:"), line("Reject:")));
        }
    }
    found.sort();
    found
}

/// (status, body) of a GET of `url`.
pub fn get(url: &str) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", url])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (status.to_string(), body.to_string())
}

/// (status, body) of the POST the confirmation page makes.
pub fn post(url: &str, reason: &str) -> (String, String) {
    let (base, query) = url.split_once('?').expect("query");
    let out = Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "-X",
            "POST",
            "-H",
            "content-type: application/x-www-form-urlencoded",
            "--data",
            &format!("{query}&reason={reason}"),
            base,
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (status.to_string(), body.to_string())
}

/// Every deploy execution whose name starts with `prefix` (all pages of the list), described, once at least `count` of them have finished; the running ones are left out.
pub async fn finished_executions(
    prefix: &str,
    count: usize,
    within: Duration,
) -> Vec<aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput> {
    let sfn = aws_sdk_sfn::Client::new(&orchestrator().await);
    let deadline = Instant::now() + within;
    loop {
        let mut arns = Vec::new();
        let mut token = None;
        loop {
            let page = sfn
                .list_executions()
                .state_machine_arn(DEPLOY_STATE_MACHINE)
                .set_next_token(token)
                .send()
                .await
                .expect("list executions");
            arns.extend(
                page.executions()
                    .iter()
                    .filter(|e| e.name().starts_with(prefix))
                    .map(|e| e.execution_arn().to_string()),
            );
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        let mut done = Vec::new();
        for arn in &arns {
            let described = sfn
                .describe_execution()
                .execution_arn(arn)
                .send()
                .await
                .expect("describe");
            if described.status() != &aws_sdk_sfn::types::ExecutionStatus::Running {
                done.push(described);
            }
        }
        if done.len() >= count {
            return done;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} executions {prefix}* ({} started) finished within {within:?}",
            done.len(),
            arns.len()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The names of the states an execution entered, in order.
pub async fn states_entered(arn: &str) -> Vec<String> {
    let sfn = aws_sdk_sfn::Client::new(&orchestrator().await);
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = sfn
            .get_execution_history()
            .execution_arn(arn)
            .max_results(1000)
            .set_next_token(token)
            .send()
            .await
            .expect("history");
        names.extend(
            page.events()
                .iter()
                .filter_map(|e| e.state_entered_event_details())
                .map(|d| d.name().to_string()),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return names;
        }
    }
}

/// Everything of one tenant in an environment's account, by kind (ids, names
/// or keys): what tests compare before and after a run, or count after one.
pub type Inventory = BTreeMap<&'static str, Vec<String>>;

/// How many of each kind.
pub fn inventory_shape(inventory: &Inventory) -> BTreeMap<&'static str, usize> {
    inventory.iter().map(|(k, v)| (*k, v.len())).collect()
}

/// Every kind of `tenant`'s resources in `env` (empty kinds too), so a run
/// can be compared with a clean one or with nothing. A secret scheduled for
/// deletion counts as gone (rollback and teardown delete with a recovery
/// window; the next deployment restores it); verify's reports are left out
/// (a failed run's evidence, kept on purpose).
pub async fn tenant_inventory(env_name: &str, tenant: &str) -> Inventory {
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
    // The exact family: a prefix would also match another tenant's longer name.
    let exact = format!("task-definition/{}:", names.task_family);
    let revisions = ecs
        .list_task_definitions()
        .family_prefix(&names.task_family)
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("task definitions");
    found.insert(
        "task definition (ACTIVE)",
        revisions
            .into_iter()
            .filter(|a| a.contains(&exact))
            .collect(),
    );

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
    found.insert(
        "listener rule",
        listener_rules(&config, &env.alb_listener_arn, &names.host).await,
    );

    found.insert(
        "access point",
        access_points(&config, &env.efs_id, &names.efs_path)
            .await
            .iter()
            .filter_map(|ap| ap.access_point_id().map(str::to_string))
            .collect(),
    );

    let mut live = Vec::new();
    match aws_sdk_secretsmanager::Client::new(&config)
        .describe_secret()
        .secret_id(&names.db_secret)
        .send()
        .await
    {
        Ok(s) if s.deleted_date().is_some() => {}
        Ok(s) => live.push(s.arn().unwrap_or_default().to_string()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(e) => panic!("describe secret: {e:?}"),
    }
    found.insert("secret", live);

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

    let pages = match stepdeploy_shared::aws::s3_client(&config)
        .list_objects_v2()
        .bucket(&env.config_bucket)
        .prefix(format!("{env_name}/{tenant}"))
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
    {
        Ok(pages) => pages,
        // A fresh stack: bootstrap creates the bucket on the environment's first run.
        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_bucket()) => Vec::new(),
        Err(e) => panic!("config bucket: {e:?}"),
    };
    found.insert(
        "config bucket",
        pages
            .iter()
            .flat_map(|page| page.contents())
            .filter_map(|o| o.key())
            .filter(|k| *k == names.config_key || k.starts_with(&format!("{env_name}/{tenant}/")))
            .filter(|k| !k.contains("/reports/"))
            .map(str::to_string)
            .collect(),
    );

    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let registry = state_item(
        &ddb,
        &env.state_table,
        &format!("TENANT#{tenant}"),
        "REGISTRY",
    )
    .await;
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
    let lock = state_item(&ddb, &env.state_table, &format!("LOCK#{tenant}"), "LOCK").await;
    found.insert(
        "lock",
        lock.map(|i| format!("{:?}", i.get("owner")))
            .into_iter()
            .collect(),
    );
    found.insert(
        "priority claim",
        priority_claims(&ddb, &env.state_table, tenant)
            .await
            .iter()
            .map(u32::to_string)
            .collect(),
    );
    found
}

/// The file system's access points rooted at `path` (every page: the
/// environment's file system holds every tenant's access point).
pub async fn access_points(
    config: &SdkConfig,
    efs_id: &str,
    path: &str,
) -> Vec<aws_sdk_efs::types::AccessPointDescription> {
    aws_sdk_efs::Client::new(config)
        .describe_access_points()
        .file_system_id(efs_id)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("access points")
        .into_iter()
        .filter(|ap| ap.root_directory().and_then(|r| r.path()) == Some(path))
        .collect()
}

/// The ARNs of the listener's rules for `host`, read as the phases read
/// them (every page: the shared listener holds every tenant's rule).
pub async fn listener_rules(config: &SdkConfig, listener_arn: &str, host: &str) -> Vec<String> {
    ElbRules(aws_sdk_elasticloadbalancingv2::Client::new(config))
        .rules(listener_arn)
        .await
        .expect("rules")
        .into_iter()
        .filter(|r| r.hosts.iter().any(|h| h == host))
        .map(|r| r.arn)
        .collect()
}

/// The state table's item at `pk`/`sk`, read consistently (tests read right after a run's writes).
pub async fn state_item(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: &str,
    sk: &str,
) -> Option<HashMap<String, AttributeValue>> {
    match ddb
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
    {
        Ok(out) => out.item,
        // A fresh stack: bootstrap creates the table on the environment's first run.
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => panic!("get {pk}/{sk}: {e:?}"),
    }
}

/// The priorities claimed for `tenant`, ascending: a query of the claims'
/// partition (every page), each claim's sort key checked to be the one
/// bootstrap writes for its priority.
pub async fn priority_claims(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    tenant: &str,
) -> Vec<u32> {
    let items: Vec<HashMap<String, AttributeValue>> = ddb
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .filter_expression("tenant = :t")
        .expression_attribute_values(":pk", AttributeValue::S(CLAIMS_PK.into()))
        .expression_attribute_values(":t", AttributeValue::S(tenant.into()))
        .consistent_read(true)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .expect("query priority claims");
    items
        .iter()
        .map(|item| {
            let sk = item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .expect("claim sk");
            let priority: u32 = sk.parse().unwrap_or_else(|_| panic!("claim sk {sk:?}"));
            assert_eq!(
                *sk,
                claim_sk(priority),
                "a claim's sort key is its padded priority"
            );
            priority
        })
        .collect()
}
