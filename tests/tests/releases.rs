//! Release history and rollback on demand, as an operator uses them: every
//! successful deployment records a release; `Tenant Rollback Requested`
//! (put with the stock AWS CLI) puts one back through the same pipeline; in
//! prod the database is dumped before an image change, and a rollback with
//! `restore_database` loads the dump back, after the quorum.

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::json;
use std::time::Duration;
use stepdeploy_shared::state::{DynamoStateStore, Release, StateStore};
use stepdeploy_tests::{
    approval_links, aws_cli, environment, find_execution, history, in_environment, mariadb_words,
    post, put_deploy_event, unique_tenant,
};

const OLD: &str = "wordpress:6.4-apache";
const NEW: &str = "wordpress:6.5-apache";

/// The environment's state table, as the phases see it.
async fn store(env: &str) -> DynamoStateStore {
    DynamoStateStore::new(
        aws_sdk_dynamodb::Client::new(&in_environment(env).await),
        environment(env).state_table,
    )
}

/// Puts a `Tenant Rollback Requested` event with the stock AWS CLI.
fn put_rollback(detail: serde_json::Value) {
    let entries = json!([{
        "Source": "stepdeploy",
        "DetailType": "Tenant Rollback Requested",
        "EventBusName": "stepdeploy",
        "Detail": detail.to_string(),
    }])
    .to_string();
    let out = aws_cli(&["events", "put-events", "--entries", &entries]);
    assert!(out.contains("\"FailedEntryCount\": 0"), "{out}");
}

/// The run named `{tenant}-{env}-{id}`, once finished.
async fn finished(
    tenant: &str,
    env: &str,
    id: &str,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    find_execution(
        &format!("{tenant}-{env}-{id}"),
        true,
        Duration::from_secs(300),
    )
    .await
}

async fn succeeded(tenant: &str, env: &str, id: &str) {
    let run = finished(tenant, env, id).await;
    assert_eq!(
        run.status(),
        &ExecutionStatus::Succeeded,
        "{}",
        history(run.execution_arn()).await
    );
}

/// Approves `tenant`'s pending prod run with two approvers' links; the
/// confirmation pages the two saw, before and after the first approval.
async fn approve(tenant: &str) -> (String, String) {
    let mails = approval_links(tenant, 3).await;
    let (_, first) = stepdeploy_tests::get(&mails[1].1);
    assert_eq!(post(&mails[1].1, "").0, "200");
    let (_, second) = stepdeploy_tests::get(&mails[2].1);
    assert_eq!(post(&mails[2].1, "").0, "200");
    (first, second)
}

fn images(releases: &[Release]) -> Vec<(u32, &str)> {
    releases
        .iter()
        .map(|r| (r.number, r.image.as_str()))
        .collect()
}

#[tokio::test]
async fn every_success_is_a_release_and_a_rollback_puts_the_previous_one_back() {
    let tenant = unique_tenant("rb");
    for (id, image) in [("r1", OLD), ("r2", NEW)] {
        put_deploy_event(
            json!({"tenant": tenant, "environment": "sit", "image": image,
            "requested_by": "jane@kimmyai.io", "request_id": id}),
        )
        .await;
        succeeded(&tenant, "sit", id).await;
    }
    let state = store("sit").await;
    let releases = state.releases(&tenant).await.expect("releases");
    assert_eq!(images(&releases), [(1, OLD), (2, NEW)]);
    // Each run's delivery metrics: one EMF line on notify's stdout.
    let log =
        std::fs::read_to_string(stepdeploy_tests::repo().join("local/.state/logs/lambda.log"))
            .expect("the Lambda runtime's log");
    let emf: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{') && l.contains("\"_aws\"") && l.contains(&tenant))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(emf.len(), 2, "one line per run");
    for line in &emf {
        assert_eq!(line["Environment"], "sit");
        assert_eq!(line["Outcome"], "succeeded");
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "stepdeploy"
        );
        for metric in [
            "DurationSeconds",
            "DatabaseSeconds",
            "EcsSeconds",
            "VerifySeconds",
            "DnsSeconds",
        ] {
            assert!(
                line[metric].as_f64().is_some_and(|s| s >= 0.0),
                "{metric}: {line}"
            );
        }
    }
    assert_ne!(releases[0].task_definition, releases[1].task_definition);
    assert!(releases[1].task_definition.contains(":task-definition/"));
    assert!(releases.iter().all(|r| r.config_version.is_some()
        && r.requested_by == "jane@kimmyai.io"
        && r.execution
            .ends_with(&format!("{tenant}-sit-r{}", r.number))));

    // No release named: the newest earlier one with another image.
    put_rollback(json!({"tenant": tenant, "environment": "sit",
        "requested_by": "ops@kimmyai.io", "request_id": "back1"}));
    succeeded(&tenant, "sit", "back1").await;
    let releases = state.releases(&tenant).await.expect("releases");
    assert_eq!(images(&releases), [(1, OLD), (2, NEW), (3, OLD)]);
    assert_eq!(releases[2].restored_from, Some(1));
    assert!(
        ![&releases[0], &releases[1]]
            .iter()
            .any(|r| r.task_definition == releases[2].task_definition),
        "the rollback registered its own revision (of release 1's image)"
    );
    let record = state
        .registry(&tenant)
        .await
        .expect("registry")
        .expect("record");
    assert_eq!(record.image, OLD);

    // A release that does not exist: refused before anything changes.
    put_rollback(json!({"tenant": tenant, "environment": "sit", "release": 9,
        "requested_by": "ops@kimmyai.io", "request_id": "back2"}));
    let run = finished(&tenant, "sit", "back2").await;
    assert_eq!(run.status(), &ExecutionStatus::Failed);
    assert_eq!(run.error(), Some("ReleaseNotFound"));
    let cause = run.cause().unwrap_or_default();
    assert!(cause.contains("no release 9 (releases 1..=3"), "{cause}");
    assert_eq!(state.releases(&tenant).await.expect("releases").len(), 3);
    let record = state
        .registry(&tenant)
        .await
        .expect("registry")
        .expect("record");
    assert_eq!(record.image, OLD);
    assert!(record.last_execution.ends_with("-back1"));
}

#[tokio::test]
async fn prod_dumps_the_database_before_an_image_change_and_a_rollback_restores_it() {
    let tenant = unique_tenant("rd");
    let db = format!("{tenant}_db");
    // sit first: the approvers see where the image already ran.
    put_deploy_event(json!({"tenant": tenant, "environment": "sit", "image": OLD,
        "requested_by": "jane@kimmyai.io", "request_id": "s1"}))
    .await;
    succeeded(&tenant, "sit", "s1").await;
    put_deploy_event(
        json!({"tenant": tenant, "environment": "prod", "image": OLD,
        "requested_by": "jane@kimmyai.io", "request_id": "p1"}),
    )
    .await;
    let (first, second) = approve(&tenant).await;
    for says in [
        "Now running: nothing (a new tenant in prod)".to_string(),
        "Already ran in sit: succeeded".to_string(),
        format!("({tenant}-sit-s1); verify passed, report s3://"),
        "Approved so far: nobody yet (2 needed)".to_string(),
    ] {
        assert!(first.contains(&says), "{says} not in {first}");
    }
    assert!(
        second.contains("Approved so far: lead@example.com (2 needed)"),
        "{second}"
    );
    succeeded(&tenant, "prod", "p1").await;
    // The first release's data.
    mariadb_words(
        "prod",
        &format!("CREATE TABLE {db}.wp_posts (id INT PRIMARY KEY, title TEXT); INSERT INTO {db}.wp_posts VALUES (1, 'first; post\\nwith ''quotes'''), (2, NULL)"),
    );

    put_deploy_event(
        json!({"tenant": tenant, "environment": "prod", "image": NEW,
        "requested_by": "jane@kimmyai.io", "request_id": "p2"}),
    )
    .await;
    let (page, _) = approve(&tenant).await;
    assert!(page.contains("Already ran: nowhere else yet"), "{page}");
    succeeded(&tenant, "prod", "p2").await;
    let state = store("prod").await;
    let releases = state.releases(&tenant).await.expect("releases");
    assert_eq!(images(&releases), [(1, OLD), (2, NEW)]);
    assert!(
        releases[0].database_dump.is_none(),
        "nothing ran before release 1"
    );
    let dump = releases[1]
        .database_dump
        .clone()
        .expect("a dump before the image changed");
    assert!(dump.starts_with(&format!("_backups/{tenant}/")), "{dump}");
    assert_eq!(
        releases[1].approvers.len(),
        2,
        "{:?}",
        releases[1].approvers
    );
    let s3 = aws_sdk_s3::Client::new(&in_environment("prod").await);
    let bucket = environment("prod").config_bucket;
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key(&dump)
        .send()
        .await
        .expect("the dump");
    assert_eq!(
        head.server_side_encryption().map(|e| e.as_str()),
        Some("AES256")
    );
    let rules = s3
        .get_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .send()
        .await
        .expect("lifecycle");
    let rule = rules
        .rules()
        .iter()
        .find(|r| r.id() == Some("stepdeploy-database-backups"))
        .expect("the dumps expire");
    assert_eq!(rule.expiration().and_then(|e| e.days()), Some(35));

    // Release 2 changes the data.
    mariadb_words(
        "prod",
        &format!("UPDATE {db}.wp_posts SET title = 'changed'; CREATE TABLE {db}.wp_new (id INT)"),
    );

    // Back to release 1, data and all: the mail says so, the quorum decides.
    put_rollback(
        json!({"tenant": tenant, "environment": "prod", "release": 1,
        "restore_database": true, "requested_by": "jane@kimmyai.io", "request_id": "back"}),
    );
    let mails = approval_links(&tenant, 3).await;
    let (status, page) = stepdeploy_tests::get(&mails[1].1);
    assert_eq!(status, "200");
    for says in [
        format!("Now running: {NEW} (release 2)"),
        format!("Image change: {NEW} -&gt; {OLD}"),
        "ROLLBACK: from release 2 back to release 1".to_string(),
        format!("RESTORED from {dump}"),
    ] {
        assert!(page.contains(&says), "{says} not in {page}");
    }
    for (_, link, _) in &mails[1..] {
        assert_eq!(post(link, "").0, "200");
    }
    succeeded(&tenant, "prod", "back").await;
    let rows = mariadb_words(
        "prod",
        &format!("SELECT id, COALESCE(title, 'NULL') FROM {db}.wp_posts ORDER BY id; SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{db}'"),
    );
    assert_eq!(
        rows.join(" "),
        "1 first; post\\nwith 'quotes' 2 NULL 1",
        "release 1's rows back, release 2's table gone"
    );
    let releases = state.releases(&tenant).await.expect("releases");
    assert_eq!(images(&releases), [(1, OLD), (2, NEW), (3, OLD)]);
    assert_eq!(releases[2].restored_from, Some(1));
    assert_eq!(
        releases[2].database_restored_from.as_deref(),
        Some(dump.as_str())
    );
    // What release 2 had written was dumped before the restore replaced it.
    assert!(releases[2].database_dump.is_some());
}
