//! Reliability on the local stack (issue 6, items 5 and 6): no secret ever
//! leaves Secrets Manager and MySQL, whatever path a run takes; and ten
//! concurrent requests for one tenant start exactly one deployment.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_eventbridge::types::{PutEventsRequestEntry, Target};
use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stepdeploy_tests::{
    approval_links, aws_cli, environment, find_execution, finished_executions, in_environment,
    inventory_shape, orchestrator, post, repo, standin_fail, state_item, states_entered,
    tenant_inventory, tenant_mysql_objects, unique_tenant, wait_site_status, ORCHESTRATOR_ACCOUNT,
    REGION,
};

const BUS: &str = "stepdeploy";
const TOPICS: [&str; 2] = ["stepdeploy-approvals", "stepdeploy-notifications"];

/// A private copy, for this test only, of every mail sent to both SNS topics
/// and of every event on the bus (the seed's inboxes are shared with other
/// tests, which read and delete from them).
struct Capture {
    queue_url: String,
    rule: String,
    subscriptions: Vec<String>,
}

impl Capture {
    async fn create(name: &str) -> Self {
        let config = orchestrator().await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let queue_url = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .expect("create capture queue")
            .queue_url
            .expect("queue url");
        let queue_arn = format!("arn:aws:sqs:{REGION}:{ORCHESTRATOR_ACCOUNT}:{name}");
        let subscriptions = TOPICS
            .iter()
            .map(|topic| {
                let out = aws_cli(&[
                    "sns",
                    "subscribe",
                    "--topic-arn",
                    &format!("arn:aws:sns:{REGION}:{ORCHESTRATOR_ACCOUNT}:{topic}"),
                    "--protocol",
                    "sqs",
                    "--notification-endpoint",
                    &queue_arn,
                    "--return-subscription-arn",
                ]);
                let out: serde_json::Value = serde_json::from_str(&out).expect("subscribe answer");
                out["SubscriptionArn"]
                    .as_str()
                    .expect("subscription arn")
                    .to_string()
            })
            .collect();
        let events = aws_sdk_eventbridge::Client::new(&config);
        events
            .put_rule()
            .name(name)
            .event_bus_name(BUS)
            .event_pattern(json!({"source": ["stepdeploy"]}).to_string())
            .send()
            .await
            .expect("capture rule");
        events
            .put_targets()
            .rule(name)
            .event_bus_name(BUS)
            .targets(
                Target::builder()
                    .id("capture")
                    .arn(&queue_arn)
                    .build()
                    .expect("target"),
            )
            .send()
            .await
            .expect("capture target");
        Self {
            queue_url,
            rule: name.to_string(),
            subscriptions,
        }
    }
}

/// Every message captured so far in the capture queue (this test's own: received and deleted).
async fn drain(queue_url: &str) -> Vec<String> {
    let sqs = aws_sdk_sqs::Client::new(&orchestrator().await);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut bodies = Vec::new();
    while Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .expect("receive");
        if out.messages().is_empty() {
            break;
        }
        for message in out.messages() {
            bodies.push(format!(
                "{} {:?}",
                message.body().unwrap_or_default(),
                message.message_attributes()
            ));
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete own message");
        }
    }
    bodies
}

impl Capture {
    async fn remove(self) {
        let config = orchestrator().await;
        for subscription in &self.subscriptions {
            aws_cli(&["sns", "unsubscribe", "--subscription-arn", subscription]);
        }
        let events = aws_sdk_eventbridge::Client::new(&config);
        let _ = events
            .remove_targets()
            .rule(&self.rule)
            .event_bus_name(BUS)
            .ids("capture")
            .send()
            .await;
        let _ = events
            .delete_rule()
            .name(&self.rule)
            .event_bus_name(BUS)
            .send()
            .await;
        let _ = aws_sdk_sqs::Client::new(&config)
            .delete_queue()
            .queue_url(&self.queue_url)
            .send()
            .await;
    }
}

/// (ARN, value) of a secret.
async fn secret_value(config: &SdkConfig, id: &str) -> Result<(String, String), String> {
    aws_sdk_secretsmanager::Client::new(config)
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))
        .map(|s| {
            (
                s.arn().unwrap_or_default().to_string(),
                s.secret_string().unwrap_or_default().to_string(),
            )
        })
}

/// Asserts that a credentials secret (`host`, `port`, `username`, `password`) logs in to its MySQL.
async fn logs_in(secret: &str) {
    use mysql_async::prelude::Queryable;
    let doc: serde_json::Value = serde_json::from_str(secret).expect("secret is JSON");
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(doc["host"].as_str().unwrap_or("127.0.0.1").to_string())
        .tcp_port(u16::try_from(doc["port"].as_u64().expect("port")).expect("port"))
        .user(doc["username"].as_str().map(str::to_string))
        .pass(doc["password"].as_str().map(str::to_string))
        .prefer_socket(false);
    let user = doc["username"].as_str().unwrap_or_default();
    let mut conn = mysql_async::Conn::new(opts)
        .await
        .unwrap_or_else(|e| panic!("{user} cannot log in with its secret: {e}"));
    let one: Option<i64> = conn.query_first("SELECT 1").await.expect("select");
    assert_eq!(one, Some(1));
    conn.disconnect().await.expect("disconnect");
}

fn password_of(secret: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(secret).expect("secret is JSON");
    value["password"]
        .as_str()
        .expect("password field")
        .to_string()
}

/// The forms a secret takes when written somewhere: raw, JSON-escaped, and
/// JSON-escaped twice (a JSON document carried in a JSON string).
fn needles(secret: &str) -> BTreeSet<String> {
    let escaped = |s: &str| {
        let quoted = serde_json::to_string(s).expect("string");
        quoted[1..quoted.len() - 1].to_string()
    };
    let once = escaped(secret);
    let twice = escaped(&once);
    [secret.to_string(), once, twice].into_iter().collect()
}

/// Everything read, by where it came from.
#[derive(Default)]
struct Haystack {
    parts: Vec<(String, String)>,
}

impl Haystack {
    fn add(&mut self, source: impl Into<String>, text: impl Into<String>) {
        self.parts.push((source.into(), text.into()));
    }

    fn bytes(&self, prefix: &str) -> usize {
        self.parts
            .iter()
            .filter(|(s, _)| s.starts_with(prefix))
            .map(|(_, t)| t.len())
            .sum()
    }

    /// "{secret label} in {source}" for every hit.
    fn hits(&self, secrets: &[(String, String)]) -> Vec<String> {
        let mut hits = Vec::new();
        for (label, secret) in secrets {
            for needle in needles(secret) {
                for (source, text) in &self.parts {
                    if text.contains(&needle) {
                        hits.push(format!("{label} in {source}"));
                    }
                }
            }
        }
        hits.sort();
        hits.dedup();
        hits
    }
}

/// Every log file of the local stack: `local/.state/logs/**` and each MariaDB's own logs.
fn read_logs(into: &mut Haystack) {
    fn walk(dir: &Path, into: &mut Haystack) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, into);
            } else if let Ok(bytes) = std::fs::read(&path) {
                into.add(
                    format!("log {}", path.display()),
                    String::from_utf8_lossy(&bytes),
                );
            }
        }
    }
    let state = repo().join("local/.state");
    walk(&state.join("logs"), into);
    for env in ["dev", "sit", "prod"] {
        let Ok(entries) = std::fs::read_dir(state.join("mariadb").join(env)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "log") {
                if let Ok(bytes) = std::fs::read(&path) {
                    into.add(
                        format!("log {}", path.display()),
                        String::from_utf8_lossy(&bytes),
                    );
                }
            }
        }
    }
}

/// The execution's full history and description, as the AWS CLI prints them
/// (every event's input, output, parameters, error and cause); the number of events.
fn read_execution(arn: &str, into: &mut Haystack) -> usize {
    let history = aws_cli(&[
        "stepfunctions",
        "get-execution-history",
        "--execution-arn",
        arn,
    ]);
    let events = serde_json::from_str::<serde_json::Value>(&history).expect("history JSON")
        ["events"]
        .as_array()
        .map_or(0, Vec::len);
    into.add(format!("history {arn}"), history);
    let described = aws_cli(&[
        "stepfunctions",
        "describe-execution",
        "--execution-arn",
        arn,
    ]);
    into.add(format!("execution {arn}"), described);
    events
}

/// The tenant's objects in the environment's config bucket (config document,
/// verify reports); (config documents, reports) read.
async fn read_bucket(
    config: &SdkConfig,
    env: &str,
    tenant: &str,
    into: &mut Haystack,
) -> (usize, usize) {
    let s3 = aws_sdk_s3::Client::new(config);
    let bucket = environment(env).config_bucket;
    let (mut documents, mut reports) = (0, 0);
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(&bucket)
            .prefix(format!("{env}/{tenant}"))
            .set_continuation_token(token)
            .send()
            .await
            .expect("list objects");
        for object in page.contents() {
            let key = object.key().unwrap_or_default();
            let body = s3
                .get_object()
                .bucket(&bucket)
                .key(key)
                .send()
                .await
                .expect("get object")
                .body
                .collect()
                .await
                .expect("body")
                .into_bytes();
            if key == format!("{env}/{tenant}.json") {
                documents += 1;
            } else if key.contains("/reports/") {
                reports += 1;
            }
            into.add(
                format!("s3://{bucket}/{key}"),
                String::from_utf8_lossy(&body),
            );
        }
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            return (documents, reports);
        }
    }
}

/// The tenant's registry entry and the run's ledger in the environment's state table; items read.
async fn read_state(
    config: &SdkConfig,
    env: &str,
    tenant: &str,
    execution: &str,
    into: &mut Haystack,
) -> usize {
    let ddb = aws_sdk_dynamodb::Client::new(config);
    let table = environment(env).state_table;
    let registry = ddb
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(format!("TENANT#{tenant}")))
        .key("sk", AttributeValue::S("REGISTRY".into()))
        .send()
        .await
        .expect("registry");
    let ledger = ddb
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("RUN#{execution}")))
        .send()
        .await
        .expect("ledger");
    let items: Vec<_> = registry.item.iter().chain(ledger.items()).collect();
    into.add(
        format!("state table {table} ({tenant}, {execution})"),
        format!("{items:?}"),
    );
    items.len()
}

/// Keeps reading the tenant's secret until it exists (or `stop` is set):
/// the password of a run that rolls back, read in the window before rollback deletes it.
async fn capture_password(env: String, tenant: String, stop: Arc<AtomicBool>) -> Option<String> {
    let config = in_environment(&env).await;
    let id = format!("{env}-{tenant}-db-credentials");
    let deadline = Instant::now() + Duration::from_secs(240);
    while Instant::now() < deadline {
        let last_try = stop.load(Ordering::SeqCst);
        if let Ok((_, secret)) = secret_value(&config, &id).await {
            return Some(password_of(&secret));
        }
        if last_try {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// When the execution's bootstrap task was scheduled and when it ended (epoch seconds).
async fn bootstrap_window(arn: &str) -> (f64, f64) {
    use aws_sdk_sfn::types::HistoryEventType as T;
    let history = aws_sdk_sfn::Client::new(&orchestrator().await)
        .get_execution_history()
        .execution_arn(arn)
        .max_results(100)
        .send()
        .await
        .expect("history");
    let at = |types: &[T]| {
        history
            .events()
            .iter()
            .find(|e| types.contains(e.r#type()))
            .map(|e| e.timestamp().as_secs_f64())
            .expect("bootstrap task events")
    };
    (
        at(&[T::TaskScheduled]),
        at(&[T::TaskSucceeded, T::TaskFailed]),
    )
}

async fn put(detail: serde_json::Value) {
    stepdeploy_tests::put_deploy_event(detail).await;
}

#[tokio::test]
async fn no_secret_leaks_anywhere() {
    let dev = unique_tenant("lk");
    let prod = unique_tenant("lp");
    let broken = unique_tenant("lf");
    let broken_host = format!("{broken}.wpdev.kimmyai.io");
    let capture = Capture::create(&format!("stepdeploy-tests-leaks-{dev}")).await;
    let queue_url = capture.queue_url.clone();
    let scenario = tokio::spawn(leak_scenario(
        dev,
        prod,
        broken.clone(),
        broken_host.clone(),
        queue_url,
    ));
    let outcome = scenario.await;
    standin_fail(&broken_host, false);
    capture.remove().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn leak_scenario(
    dev: String,
    prod: String,
    broken: String,
    broken_host: String,
    queue_url: String,
) {
    let started = Instant::now();
    // Three runs at once: dev succeeds; prod succeeds through two approvals;
    // a dev run whose site answers 500 fails verify, rolls back and notifies the failure.
    standin_fail(&broken_host, true);
    let stop = Arc::new(AtomicBool::new(false));
    let broken_password = tokio::spawn(capture_password(
        "dev".into(),
        broken.clone(),
        Arc::clone(&stop),
    ));
    tokio::join!(
        put(json!({"tenant": dev, "environment": "dev", "requested_by": "jane@kimmyai.io"})),
        put(json!({"tenant": prod, "environment": "prod", "requested_by": "jane@kimmyai.io"})),
        put(json!({"tenant": broken, "environment": "dev", "requested_by": "jane@kimmyai.io"})),
    );
    let mails = approval_links(&prod, 3).await;
    let approve = |who: &str| {
        mails
            .iter()
            .find(|(a, _, _)| a == who)
            .map(|(_, link, _)| link.clone())
            .unwrap_or_else(|| panic!("no approval mail for {who}: {mails:?}"))
    };
    assert_eq!(post(&approve("lead@example.com"), "fine").0, "200");
    assert_eq!(post(&approve("ops@example.com"), "fine").0, "200");

    let within = Duration::from_secs(170);
    let prefixes = [
        format!("{dev}-dev-"),
        format!("{prod}-prod-"),
        format!("{broken}-dev-"),
    ];
    let (dev_run, prod_run, broken_run) = tokio::join!(
        find_execution(&prefixes[0], true, within),
        find_execution(&prefixes[1], true, within),
        find_execution(&prefixes[2], true, within),
    );
    stop.store(true, Ordering::SeqCst);
    standin_fail(&broken_host, false);
    let runs_took = started.elapsed();
    for (run, status) in [
        (&dev_run, ExecutionStatus::Succeeded),
        (&prod_run, ExecutionStatus::Succeeded),
        (&broken_run, ExecutionStatus::Failed),
    ] {
        assert_eq!(
            run.status(),
            &status,
            "{} {:?}",
            run.execution_arn(),
            run.error()
        );
    }
    assert_eq!(broken_run.error(), Some("VerificationFailed"));

    // The secrets, each checked to be the live one (it logs in to MySQL).
    let dev_account = in_environment("dev").await;
    let prod_account = in_environment("prod").await;
    let mut secrets = Vec::new();
    let mut secret_arns = Vec::new();
    for (account, env, tenant) in [(&dev_account, "dev", &dev), (&prod_account, "prod", &prod)] {
        let (arn, secret) = secret_value(account, &format!("{env}-{tenant}-db-credentials"))
            .await
            .expect("tenant secret");
        logs_in(&secret).await;
        secrets.push((
            format!("{env} tenant {tenant} database password"),
            password_of(&secret),
        ));
        secret_arns.push((format!("{env} tenant {tenant} secret ARN"), arn));
    }
    secrets.push((
        format!("rolled-back tenant {broken} database password"),
        broken_password
            .await
            .expect("capture task")
            .expect("the rolled-back run's secret was seen before rollback deleted it"),
    ));
    for env in ["dev", "sit", "prod"] {
        let account = in_environment(env).await;
        let (_, master) = secret_value(&account, &environment(env).rds.master_secret_arn)
            .await
            .expect("master secret");
        logs_in(&master).await;
        secrets.push((format!("{env} RDS master password"), password_of(&master)));
    }
    secrets.push((
        "approval HMAC key".into(),
        secret_value(&orchestrator().await, "stepdeploy/approval-hmac-key")
            .await
            .expect("hmac key")
            .1,
    ));
    for (label, secret) in &secrets {
        // Long and random enough that any hit is a leak, not a coincidence.
        assert!(
            secret.len() >= 20 && secret.chars().collect::<BTreeSet<_>>().len() >= 8,
            "{label} is too short or too plain to search for meaningfully"
        );
    }

    // Everything the runs wrote anywhere we can read.
    let mut haystack = Haystack::default();
    let mut history_events = 0;
    for run in [&dev_run, &prod_run, &broken_run] {
        history_events += read_execution(run.execution_arn(), &mut haystack);
    }
    let messages = drain(&queue_url).await;
    let ours = |m: &&String| {
        [&dev, &prod, &broken]
            .iter()
            .any(|t| m.contains(t.as_str()))
    };
    let sns_messages = messages
        .iter()
        .filter(ours)
        .filter(|m| m.contains("\"TopicArn\""))
        .count();
    let approval_mails = messages
        .iter()
        .filter(ours)
        .filter(|m| m.contains(":stepdeploy-approvals\""))
        .count();
    let events = messages
        .iter()
        .filter(ours)
        .filter(|m| m.contains("\"detail-type\""))
        .count();
    for (i, message) in messages.iter().enumerate() {
        haystack.add(format!("captured SNS/EventBridge message #{i}"), message);
    }
    let (mut documents, mut reports, mut state_items) = (0, 0, 0);
    for (account, env, tenant, run) in [
        (&dev_account, "dev", &dev, &dev_run),
        (&prod_account, "prod", &prod, &prod_run),
        (&dev_account, "dev", &broken, &broken_run),
    ] {
        let (d, r) = read_bucket(account, env, tenant, &mut haystack).await;
        documents += d;
        reports += r;
        state_items += read_state(account, env, tenant, run.execution_arn(), &mut haystack).await;
    }
    read_logs(&mut haystack);
    let log_bytes = haystack.bytes("log ");

    let hits = haystack.hits(&secrets);
    eprintln!(
        "no_secret_leaks_anywhere: {} secrets searched in {} sources: {log_bytes} log bytes, \
         {history_events} history events ({} bytes), {} captured messages ({sns_messages} SNS \
         of these runs, {approval_mails} approval mails, {events} events), {documents} config \
         documents, {reports} reports, {state_items} state items; runs took {runs_took:?}, \
         all {:?}; {} hits",
        secrets.len(),
        haystack.parts.len(),
        haystack.bytes("history "),
        messages.len(),
        started.elapsed(),
        hits.len()
    );
    assert!(hits.is_empty(), "secrets found: {hits:#?}");
    // The search finds what is there: the secrets' ARNs, which the phases do
    // pass on, turn up in the histories and in the config documents.
    let found = haystack.hits(&secret_arns);
    for (label, _) in &secret_arns {
        for place in ["history", "s3://"] {
            assert!(
                found
                    .iter()
                    .any(|h| h.starts_with(label.as_str()) && h.contains(&format!(" in {place}"))),
                "{label} not found in {place}: {found:#?}"
            );
        }
    }

    // The search read something: it cannot pass vacuously.
    assert!(log_bytes > 10_000, "{log_bytes} log bytes");
    assert!(history_events >= 40, "{history_events} history events");
    assert!(
        sns_messages >= 6,
        "{sns_messages} mails (4 approval, 2 success, 1 failure expected)"
    );
    // Three approvers' links and the requester's notice.
    assert_eq!(approval_mails, 4);
    assert!(
        events >= 6,
        "{events} events (3 requested, 2 succeeded, 1 failed expected)"
    );
    assert_eq!(documents, 2, "a config document per successful run");
    assert!(reports >= 1, "{reports} verify reports");
    assert!(state_items >= 2, "{state_items} state items");
}

#[tokio::test]
async fn ten_concurrent_events_for_one_tenant_start_one_deployment() {
    let tenant = unique_tenant("tc");
    let started = Instant::now();
    // One PutEvents call of ten entries: ten events, ten event ids, at once.
    let entries = (0..10)
        .map(|_| {
            PutEventsRequestEntry::builder()
                .event_bus_name(BUS)
                .source("stepdeploy")
                .detail_type("Tenant Deployment Requested")
                .detail(
                    json!({"tenant": tenant, "environment": "dev", "requested_by": "jane@kimmyai.io"})
                        .to_string(),
                )
                .build()
        })
        .collect();
    let out = aws_sdk_eventbridge::Client::new(&orchestrator().await)
        .put_events()
        .set_entries(Some(entries))
        .send()
        .await
        .expect("put events");
    assert_eq!(out.failed_entry_count(), 0);
    let ids: BTreeSet<_> = out.entries().iter().filter_map(|e| e.event_id()).collect();
    assert_eq!(ids.len(), 10, "ten distinct event ids");

    let runs = finished_executions(&format!("{tenant}-dev-"), 10, Duration::from_secs(170)).await;
    let runs_took = started.elapsed();
    assert_eq!(runs.len(), 10, "one execution per event");
    let outcomes: Vec<_> = runs
        .iter()
        .map(|r| (r.status().as_str(), r.error()))
        .collect();
    let winners: Vec<_> = runs
        .iter()
        .filter(|r| r.status() == &ExecutionStatus::Succeeded)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one run proceeds: {outcomes:?}");
    let winner = winners[0];
    let winner_name = winner.name().unwrap_or_default();
    let output: serde_json::Value =
        serde_json::from_str(winner.output().unwrap_or("{}")).expect("output");
    assert_eq!(output["notify"]["output"]["lock_released"], true);

    // The nine others were refused at bootstrap, naming the run holding the lock, and did nothing else.
    let dev = in_environment("dev").await;
    let env = environment("dev");
    let ddb = aws_sdk_dynamodb::Client::new(&dev);
    for loser in runs
        .iter()
        .filter(|r| r.execution_arn() != winner.execution_arn())
    {
        assert_eq!(loser.status(), &ExecutionStatus::Failed, "{outcomes:?}");
        assert_eq!(loser.error(), Some("DeploymentLocked"), "{outcomes:?}");
        assert!(
            loser.cause().unwrap_or_default().contains(winner_name),
            "the lock holder is the winner: {:?}",
            loser.cause()
        );
        assert_eq!(
            states_entered(loser.execution_arn()).await,
            ["Bootstrap", "NotifyFailure", "Failed"],
            "{}",
            loser.execution_arn()
        );
        let ledger = ddb
            .query()
            .table_name(&env.state_table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(format!("RUN#{}", loser.execution_arn())),
            )
            .send()
            .await
            .expect("ledger");
        assert_eq!(ledger.count(), 0, "a refused run records nothing");
    }

    // Exactly one of each of the tenant's resources, and the lock released.
    let inventory = tenant_inventory("dev", &tenant).await;
    let one_each = BTreeMap::from([
        ("access point", 1),
        ("config bucket", 1),
        ("ecs service", 1),
        ("listener rule", 1),
        ("lock", 0),
        ("mysql", 2),
        ("priority claim", 1),
        ("registry entry", 1),
        ("route53 record", 0), // dns is off in dev
        ("secret", 1),
        ("target group", 1),
        ("task definition (ACTIVE)", 1),
    ]);
    assert_eq!(inventory_shape(&inventory), one_each, "{inventory:#?}");
    assert_eq!(
        tenant_mysql_objects("dev", &tenant),
        ["1", "1"],
        "database and user"
    );
    let described = aws_sdk_ecs::Client::new(&dev)
        .describe_services()
        .cluster(&env.cluster)
        .services(format!("dev-{tenant}-service"))
        .send()
        .await
        .expect("describe services");
    let service = described.services().first().expect("service");
    assert_eq!(service.status(), Some("ACTIVE"));
    assert_eq!(
        service.task_definition(),
        output["ecs"]["output"]["task_definition_arn"].as_str()
    );
    let registry = state_item(
        &ddb,
        &env.state_table,
        &format!("TENANT#{tenant}"),
        "REGISTRY",
    )
    .await
    .expect("one registry entry");
    assert_eq!(
        registry.get("last_execution"),
        Some(&AttributeValue::S(winner.execution_arn().to_string()))
    );
    assert_eq!(
        registry.get("status"),
        Some(&AttributeValue::S("active".into()))
    );
    let priority: u32 = registry
        .get("alb_priority")
        .and_then(|p| p.as_n().ok())
        .and_then(|p| p.parse().ok())
        .expect("registry priority");
    assert_eq!(
        inventory["priority claim"],
        [priority.to_string()],
        "the one claim is the registry's priority"
    );
    let mut windows = Vec::new();
    for run in &runs {
        windows.push(bootstrap_window(run.execution_arn()).await);
    }
    // How many bootstraps were running at the busiest moment (a real race, not ten in a row).
    let overlap = windows
        .iter()
        .map(|(start, _)| {
            windows
                .iter()
                .filter(|(s, e)| s <= start && start < e)
                .count()
        })
        .max()
        .unwrap_or_default();
    let host = format!("{tenant}.wpdev.kimmyai.io");
    assert_eq!(wait_site_status(&host, "/", "200"), "200");
    eprintln!(
        "ten_concurrent_events_for_one_tenant_start_one_deployment: {winner_name} won, 9 \
         DeploymentLocked; up to {overlap} bootstraps at once; runs finished in {runs_took:?}, \
         all {:?}",
        started.elapsed()
    );
}
