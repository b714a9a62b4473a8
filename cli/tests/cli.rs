//! The `stepdeploy` binary driven as an operator drives it, against the
//! local stack: every command, its text and JSON output, and its one-line
//! errors for bad input, an unknown tenant, a wrong environment and a stack
//! that is down.

use serde_json::Value;
use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use stepdeploy_shared::config::EnvironmentSet;
use stepdeploy_shared::rollout::{RolloutRequest, TenantSelection, WaveSpec, ROLLOUT_REQUESTED};
use stepdeploy_shared::Request;
use stepdeploy_tests::{approval_links, ensure_stack, post, repo, unique_tenant, ENDPOINT};

/// The CLI with the local stack's settings, as `source local/env.sh` gives them.
fn cli(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stepdeploy"));
    c.args(args)
        .env("AWS_ENDPOINT_URL", ENDPOINT)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "eu-west-1")
        .env(
            "STEPDEPLOY_CONFIG_DIR",
            repo().join("local/.state/environments"),
        )
        .env_remove("AWS_PROFILE")
        .env_remove("STEPDEPLOY_STACK")
        .stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    cli(args).output().expect("run stepdeploy")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and expects success; the JSON it printed.
fn json(args: &[&str]) -> Value {
    let o = run(args);
    assert!(
        o.status.success(),
        "stepdeploy {args:?}: {}\n{}",
        stderr(&o),
        stdout(&o)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("JSON from {args:?}: {e}"))
}

/// Runs and expects failure with `code` and exactly one line on stderr containing `says`.
fn fails(args: &[&str], code: i32, says: &str) {
    let o = run(args);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "stepdeploy {args:?}: {err}{}",
        stdout(&o)
    );
    assert_eq!(err.lines().count(), 1, "one line for {args:?}: {err}");
    assert!(err.starts_with("stepdeploy: "), "{err}");
    assert!(
        err.contains(says),
        "stepdeploy {args:?}: {err:?} lacks {says:?}"
    );
    assert!(
        !err.contains("Error {") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn config_validate_names_file_and_field() {
    let good = run(&[
        "config",
        "validate",
        "--config-dir",
        &repo().join("infra/environments").display().to_string(),
    ]);
    assert!(good.status.success(), "{}", stderr(&good));
    assert_eq!(
        stdout(&good).matches("\nok ").count() + 1,
        3,
        "{}",
        stdout(&good)
    );

    let dir = std::env::temp_dir().join(format!("stepdeploy-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let text = std::fs::read_to_string(repo().join("infra/environments/dev.json")).expect("dev");
    let mut doc: Value = serde_json::from_str(&text).expect("json");
    doc["rds"]
        .as_object_mut()
        .expect("rds")
        .remove("master_secret_arn");
    let broken = dir.join("dev.json");
    std::fs::write(&broken, doc.to_string()).expect("write");
    let o = run(&["config", "validate", &broken.display().to_string()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stdout(&o).contains("dev.json: rds.master_secret_arn: is missing"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        stderr(&o).trim(),
        "stepdeploy: 1 of 1 environment config(s) invalid"
    );
}

#[test]
fn events_example_is_a_valid_request_the_bus_accepts() {
    let envs = EnvironmentSet::load_dir(&repo().join("infra/environments")).expect("configs");
    for kind in ["deploy", "teardown"] {
        let entries = json(&["events", "example", kind, "--env", "sit"]);
        let entry = &entries[0];
        assert_eq!(entry["EventBusName"], "stepdeploy");
        let detail: Value =
            serde_json::from_str(entry["Detail"].as_str().expect("detail")).expect("detail json");
        let event = stepdeploy_tests::event(entry["DetailType"].as_str().expect("type"), detail);
        let request = Request::from_event(&event, &envs).expect("a valid request");
        assert_eq!(
            (request.tenant().as_str(), request.environment().as_str()),
            ("goldencrust", "sit")
        );
    }
    fails(
        &["events", "example", "deploy", "--tenant", "Gold-Crust"],
        2,
        "tenant:",
    );

    // A rollout: every tenant of the environment, the named tenant as the canary wave.
    let entries = json(&[
        "events", "example", "rollout", "--env", "sit", "--tenant", "acme",
    ]);
    let entry = &entries[0];
    assert_eq!(
        (
            &entry["EventBusName"],
            &entry["DetailType"],
            &entry["Source"]
        ),
        (
            &Value::from("stepdeploy"),
            &Value::from(ROLLOUT_REQUESTED),
            &Value::from("stepdeploy")
        )
    );
    let detail: Value =
        serde_json::from_str(entry["Detail"].as_str().expect("detail")).expect("detail json");
    let rollout =
        RolloutRequest::from_event(&stepdeploy_tests::event(ROLLOUT_REQUESTED, detail), &envs)
            .expect("a valid rollout request");
    assert_eq!(rollout.environment.as_str(), "sit");
    assert_eq!(rollout.tenants, TenantSelection::All);
    assert!(
        matches!(&rollout.waves[0], WaveSpec::Tenants(t) if t.len() == 1 && t[0].as_str() == "acme"),
        "{:?}",
        rollout.waves
    );
    assert!(rollout.request_id.is_some());
    fails(
        &["events", "example", "rollout", "--env", "Prod"],
        2,
        "--env",
    );
}

/// The entries of a sample file (`events/…`) as rules deliver them.
fn sample_events(path: &std::path::Path) -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(path).expect("sample");
    let entries: Vec<Value> = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not a PutEvents entry list: {e}", path.display()));
    entries
        .iter()
        .map(|entry| {
            assert_eq!(entry["Source"], "stepdeploy", "{}", path.display());
            assert_eq!(entry["EventBusName"], "stepdeploy", "{}", path.display());
            let detail_type = entry["DetailType"]
                .as_str()
                .expect("DetailType")
                .to_string();
            let detail: Value = serde_json::from_str(entry["Detail"].as_str().expect("Detail"))
                .unwrap_or_else(|e| panic!("{}: Detail: {e}", path.display()));
            let event = stepdeploy_tests::event(&detail_type, detail);
            (detail_type, event)
        })
        .collect()
}

/// A sample event checked with the rules its run applies first (bootstrap's, the rollout plan's).
fn check_sample(
    detail_type: &str,
    event: &Value,
    envs: &EnvironmentSet,
) -> Result<(), stepdeploy_shared::validate::FieldError> {
    if detail_type == ROLLOUT_REQUESTED {
        RolloutRequest::from_event(event, envs).map(|_| ())
    } else {
        Request::from_event(event, envs).map(|_| ())
    }
}

/// `events/*.json` are valid requests; each `events/bad/*.json` is refused
/// (its run fails with `ValidationFailed`) by an error that names the field.
#[test]
fn sample_events_are_valid_and_bad_ones_name_the_field() {
    let envs = EnvironmentSet::load_dir(&repo().join("infra/environments")).expect("configs");
    let files = |dir: &str| {
        let mut files: Vec<_> = std::fs::read_dir(repo().join(dir))
            .expect("events dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
    };
    let good = files("events");
    assert!(
        good.iter().any(|p| p.ends_with("rollout-sit.json")),
        "{good:?}"
    );
    for path in &good {
        for (detail_type, event) in sample_events(path) {
            if let Err(e) = check_sample(&detail_type, &event, &envs) {
                panic!("{}: refused: {e}", path.display());
            }
        }
    }
    let bad = files("events/bad");
    assert!(
        bad.iter()
            .filter(|p| p.display().to_string().contains("rollout-"))
            .count()
            >= 3,
        "{bad:?}"
    );
    for path in &bad {
        for (detail_type, event) in sample_events(path) {
            let e = check_sample(&detail_type, &event, &envs)
                .err()
                .unwrap_or_else(|| panic!("{}: accepted", path.display()));
            assert!(
                e.field.starts_with("detail.") && e.to_string().starts_with(&e.field),
                "{}: {e} names no field",
                path.display()
            );
        }
    }
    // The bad rollouts fail for the reason their names say.
    for (file, says) in [
        (
            "rollout-tenant-in-two-waves.json",
            "detail.waves[1].tenants[0]: \"acme\" is already in detail.waves[0]",
        ),
        (
            "rollout-failure-budget.json",
            "detail.failure_budget.overall: 150% is more than 100%",
        ),
        (
            "rollout-max-parallel-zero.json",
            "detail.max_parallel: 0 is outside 1..=100",
        ),
        (
            "rollback-release-zero.json",
            "detail.release: releases are numbered from 1",
        ),
        // A rollback names a release, never an image.
        ("rollback-image.json", "detail.image: unknown field"),
    ] {
        let (detail_type, event) = sample_events(&repo().join("events/bad").join(file)).remove(0);
        let e = check_sample(&detail_type, &event, &envs).expect_err(file);
        assert!(e.to_string().starts_with(says), "{file}: {e}");
    }
}

/// `rollout` and `deploy --label` refuse malformed flags and invalid
/// requests before anything is put on the bus: one line, exit code 2.
#[test]
fn rollout_and_label_flags_are_checked_before_anything_is_put() {
    let configs = repo().join("infra/environments").display().to_string();
    let rollout = |extra: &[&str]| {
        let mut args = vec![
            "--config-dir",
            &configs,
            "rollout",
            "--env",
            "dev",
            "--image",
            "wordpress:6.5-apache",
            "--requested-by",
            "jane@kimmyai.io",
        ];
        args.extend_from_slice(extra);
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };
    for (extra, says) in [
        (
            &["--wave", "canary"][..],
            "--wave: \"canary\" is not a wave; expected label:KEY=VALUE",
        ),
        (
            &["--wave", "label:ring"],
            "--wave: \"ring\" is not KEY=VALUE",
        ),
        (&["--label", "ring"], "--label: \"ring\" is not KEY=VALUE"),
        (
            &["--tenants", "most"],
            "--tenants: \"most\" is not a selection",
        ),
        (
            &["--tenant", "acme", "--label", "ring=canary"],
            "--tenant: a rollout selects tenants by name or by label, not both",
        ),
        (
            &["--failure-budget", "10%"],
            "--failure-budget: \"10%\" is not KEY=VALUE",
        ),
        (
            &["--max-parallel", "0"],
            "detail.max_parallel: 0 is outside 1..=100",
        ),
        (
            &["--wave", "0%"],
            "detail.waves[0].percent: 0 is outside 1..=100",
        ),
        (
            &[
                "--wave",
                "tenants:acme,goldencrust",
                "--wave",
                "tenants:acme",
            ],
            "detail.waves[1].tenants[0]: \"acme\" is already in detail.waves[0]",
        ),
        (
            &["--failure-budget", "per_wave=1,overall=150%"],
            "detail.failure_budget.overall: 150% is more than 100%",
        ),
        (
            &["--bake", "86401"],
            "detail.bake_seconds: 86401 is outside 0..=86400",
        ),
        (
            &["--label", "ring=Canary"],
            "detail.tenants.labels.ring: \"Canary\" must match",
        ),
    ] {
        let args = rollout(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(&args, 2, says);
    }
    // Rollouts report to their requester: an e-mail address, in every environment.
    fails(
        &[
            "--config-dir",
            &configs,
            "rollout",
            "--env",
            "dev",
            "--image",
            "wordpress:6.5-apache",
            "--requested-by",
            "jane",
        ],
        2,
        "detail.requested_by:",
    );
    for (label, says) in [
        ("ring", "--label: \"ring\" is not KEY=VALUE"),
        ("Ring=canary", "detail.labels: \"Ring\" must match"),
        ("ring=canary,ring=main", "--label: \"ring\" is given twice"),
    ] {
        fails(
            &[
                "--config-dir",
                &configs,
                "deploy",
                "goldencrust",
                "--env",
                "dev",
                "--label",
                label,
                "--requested-by",
                "jane@kimmyai.io",
            ],
            2,
            says,
        );
    }
}

#[test]
fn bad_input_and_a_stack_that_is_down_get_one_clear_line() {
    ensure_stack();
    fails(
        &[
            "deploy",
            "Gold-Crust",
            "--env",
            "dev",
            "--requested-by",
            "jane@x.io",
        ],
        2,
        "tenant: \"Gold-Crust\"",
    );
    fails(
        &[
            "deploy",
            "goldencrust",
            "--env",
            "qa",
            "--requested-by",
            "jane@x.io",
        ],
        2,
        "--env: unknown environment \"qa\" (known: dev, prod, sit)",
    );
    fails(
        &[
            "deploy",
            "goldencrust",
            "--env",
            "dev",
            "--priority",
            "5",
            "--requested-by",
            "jane@x.io",
        ],
        2,
        "detail.alb_priority: 5 is outside dev's range",
    );
    let tenant = unique_tenant("nobody");
    fails(
        &["status", &tenant],
        1,
        &format!("tenant {tenant} has no deployment in dev, prod, sit"),
    );
    fails(
        &["history", &tenant, "--env", "sit"],
        1,
        &format!("no runs of tenant {tenant} in sit"),
    );
    fails(&["watch", &tenant], 2, "say which environment with --env");
    fails(
        &["watch", "nosuch-dev-123"],
        1,
        "no execution named nosuch-dev-123",
    );
    fails(&["status", "--env", "qa"], 2, "unknown environment \"qa\"");
    fails(
        &["teardown", &tenant, "--env", "dev"],
        2,
        "needs confirmation",
    );
    fails(
        &["--endpoint-url", "http://127.0.0.1:9", "status"],
        1,
        "cannot reach AWS at http://127.0.0.1:9 for states:ListStateMachines: no answer; is the local stack up? (local/up)",
    );
    fails(
        &["--stack", "other", "status"],
        1,
        "state machine other-deploy-tenant not found",
    );
}

#[test]
fn deploy_status_history_and_teardown_in_dev() {
    ensure_stack();
    let tenant = unique_tenant("cli");
    let done = json(&[
        "deploy",
        &tenant,
        "--env",
        "dev",
        "--requested-by",
        "jane@kimmyai.io",
        "--wait",
        "--output",
        "json",
    ]);
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    assert_eq!(done["kind"], "deploy");
    let phases: Vec<(&str, &str)> = done["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or(""),
                p["status"].as_str().unwrap_or(""),
            )
        })
        .filter(|(name, _)| *name != "Verify")
        .collect();
    assert_eq!(
        phases,
        [
            ("Bootstrap", "succeeded"),
            ("Database", "succeeded"),
            ("Ecs", "succeeded"),
            ("NotifySuccess", "succeeded")
        ],
        "{done:#}"
    );
    assert!(done["console_url"]
        .as_str()
        .is_some_and(|u| u.starts_with("https://eu-west-1.console.aws.amazon.com/states/home")));

    let rows = json(&["status", &tenant, "--output", "json"]);
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows:#}");
    let row = &rows[0];
    assert_eq!(row["environment"], "dev");
    assert_eq!(row["outcome"], "SUCCEEDED");
    assert_eq!(row["image"], "wordpress:6.4-apache");
    assert_eq!(row["url"], format!("https://{tenant}.wpdev.kimmyai.io/"));
    assert_eq!(row["last_run"], done["execution"]);
    let text = stdout(&run(&["status", "--env", "dev"]));
    assert!(
        text.starts_with("TENANT") && text.contains(&tenant),
        "{text}"
    );

    let history = json(&["history", &tenant, "--env", "dev", "--output", "json"]);
    assert_eq!(history[0]["requested_by"], "jane@kimmyai.io");
    assert_eq!(history[0]["status"], "SUCCEEDED");
    assert!(history[0]["seconds"].as_f64().is_some_and(|s| s > 0.0));

    // Watching a finished run reports it again; by tenant it finds the newest run.
    let watched = json(&["watch", &tenant, "--env", "dev", "--output", "json"]);
    assert_eq!(watched["execution"], done["execution"]);

    // A second image, then `rollback` puts release 1 back: three releases,
    // the third current, on the first image.
    assert_eq!(row["release"], 1, "{row:#}");
    let second = json(&[
        "deploy",
        &tenant,
        "--env",
        "dev",
        "--image",
        "wordpress:6.5-apache",
        "--requested-by",
        "jane@kimmyai.io",
        "--wait",
        "--output",
        "json",
    ]);
    assert_eq!(second["status"], "SUCCEEDED", "{second:#}");
    let back = json(&[
        "rollback",
        &tenant,
        "--env",
        "dev",
        "--requested-by",
        "ops@kimmyai.io",
        "--wait",
        "--output",
        "json",
    ]);
    assert_eq!(back["status"], "SUCCEEDED", "{back:#}");
    let releases = json(&["releases", &tenant, "--env", "dev", "--output", "json"]);
    let seen: Vec<(u64, &str, bool)> = releases
        .as_array()
        .expect("releases")
        .iter()
        .map(|r| {
            (
                r["number"].as_u64().unwrap_or(0),
                r["image"].as_str().unwrap_or(""),
                r["current"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "wordpress:6.4-apache", false),
            (2, "wordpress:6.5-apache", false),
            (3, "wordpress:6.4-apache", true)
        ],
        "{releases:#}"
    );
    assert_eq!(releases[2]["restored_from"], 1);
    let text = stdout(&run(&["releases", &tenant, "--env", "dev"]));
    assert!(
        text.contains("rollback to 1") && text.contains("3 *"),
        "{text}"
    );
    fails(
        &[
            "rollback",
            &tenant,
            "--env",
            "dev",
            "--to",
            "0",
            "--requested-by",
            "ops@kimmyai.io",
        ],
        2,
        "detail.release: releases are numbered from 1",
    );
    // A release that is not there: the run starts, and bootstrap refuses it
    // before anything is made.
    fails(
        &[
            "rollback",
            &tenant,
            "--env",
            "dev",
            "--to",
            "99",
            "--requested-by",
            "ops@kimmyai.io",
            "--wait",
        ],
        3,
        "ReleaseNotFound",
    );
    // These three runs are in the delivery figures of the last hour, and the
    // refused one is counted apart (not a change failure).
    let stats = json(&["stats", "--env", "dev", "--since", "1h", "--output", "json"]);
    let dev = &stats["environments"][0];
    assert_eq!(dev["environment"], "dev", "{stats:#}");
    assert!(
        dev["deployment_frequency"]["successful"]
            .as_u64()
            .unwrap_or(0)
            >= 3,
        "{stats:#}"
    );
    assert!(
        dev["lead_time_seconds"]["median"]
            .as_f64()
            .is_some_and(|s| s > 0.0),
        "{stats:#}"
    );
    assert!(dev["refused"].as_u64().unwrap_or(0) >= 1, "{stats:#}");
    let text = stdout(&run(&["stats", "--env", "dev", "--since", "1h"]));
    assert!(text.contains("REFUSED"), "{text}");

    let gone = json(&[
        "teardown",
        &tenant,
        "--env",
        "dev",
        "--yes",
        "--wait",
        "--requested-by",
        "jane@kimmyai.io",
        "--output",
        "json",
    ]);
    assert_eq!(
        (&gone["status"], &gone["kind"]),
        (&Value::from("SUCCEEDED"), &Value::from("teardown"))
    );
    let rows = json(&["status", &tenant, "--env", "dev", "--output", "json"]);
    assert_eq!(rows[0]["outcome"], "TEARDOWN SUCCEEDED", "{rows:#}");
    assert_eq!(
        rows[0]["url"],
        Value::Null,
        "no URL once torn down: {rows:#}"
    );
}

#[test]
fn prod_deploy_is_watched_through_two_approvals() {
    ensure_stack();
    let tenant = unique_tenant("cliprod");
    let started = json(&[
        "deploy",
        &tenant,
        "--env",
        "prod",
        "--requested-by",
        "ops@example.com",
        "--output",
        "json",
    ]);
    let execution = started["execution"]
        .as_str()
        .expect("execution")
        .to_string();
    assert!(
        execution.starts_with(&format!("{tenant}-prod-")),
        "{started:#}"
    );

    // An operator watches in another terminal (plain lines: stdout is a pipe).
    let mut watcher = cli(&["watch", &execution])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watch");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // The requester (an approver) is mailed a notice, not links.
    let mails = rt.block_on(approval_links(&tenant, 2));
    // Let the watcher see the gate with no approvals before anyone decides.
    std::thread::sleep(Duration::from_secs(3));
    for (approver, approve, _) in &mails {
        assert_ne!(approver, "ops@example.com");
        assert_eq!(post(approve, "ok").0, "200", "{approver}");
    }
    let status = watcher.wait().expect("watch ends");
    let mut out = String::new();
    watcher
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    assert!(status.success(), "watch exit {status:?}: {out}");
    assert!(
        out.contains("ApprovalGate   waiting  0 of 2 approvals"),
        "{out}"
    );
    assert!(out.contains("  ApprovalGate   ok"), "{out}");
    assert!(
        out.contains(&format!("execution {execution}: SUCCEEDED")),
        "{out}"
    );

    let history = json(&["history", &tenant, "--env", "prod", "--output", "json"]);
    assert_eq!(
        history[0]["approved_by"],
        serde_json::json!(["cto@example.com", "lead@example.com"]),
        "{history:#}"
    );
    assert_eq!(history[0]["requested_by"], "ops@example.com");
}

/// When rollback cannot finish (an operator's extra listener rule pins the
/// tenant's target group), the run's error, `history` and the failure mail
/// say what is left and the command that finishes; the tenant stays locked.
/// Once the obstacle is gone, `stepdeploy cleanup` finishes the job.
#[test]
fn an_incomplete_rollback_is_reported_and_finished_by_cleanup() {
    use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, RuleCondition};
    ensure_stack();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tenant = unique_tenant("pin");
    let host = format!("{tenant}.wpdev.kimmyai.io");
    stepdeploy_tests::standin_fail(&host, true);
    let started = json(&[
        "deploy",
        &tenant,
        "--env",
        "dev",
        "--requested-by",
        "ops@example.com",
        "--output",
        "json",
    ]);
    let execution = started["execution"]
        .as_str()
        .expect("execution")
        .to_string();
    let env = stepdeploy_tests::environment("dev");
    // While it verifies, an operator points a rule of their own at the tenant's target group.
    let pin = rt.block_on(async {
        let dev = stepdeploy_tests::in_environment("dev").await;
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&dev);
        let tg = loop {
            if let Ok(out) = elb
                .describe_target_groups()
                .names(format!("dev-{tenant}-tg"))
                .send()
                .await
            {
                if let Some(arn) = out
                    .target_groups()
                    .first()
                    .and_then(|t| t.target_group_arn())
                {
                    break arn.to_string();
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        let rule = elb
            .create_rule()
            .listener_arn(&env.alb_listener_arn)
            .priority(40_000 + i32::try_from(std::process::id() % 9_000).unwrap_or(0))
            .conditions(
                RuleCondition::builder()
                    .field("path-pattern")
                    .values(format!("/pinned-{tenant}"))
                    .build(),
            )
            .actions(
                Action::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .target_group_arn(&tg)
                    .build(),
            )
            .send()
            .await
            .expect("operator's rule");
        rule.rules()[0].rule_arn().expect("rule arn").to_string()
    });
    let waited = run(&["watch", &execution]);
    stepdeploy_tests::standin_fail(&host, false);
    assert_eq!(waited.status.code(), Some(3), "{}", stdout(&waited));
    let done = rt.block_on(stepdeploy_tests::find_execution(
        &execution,
        true,
        Duration::from_secs(60),
    ));
    assert_eq!(
        done.error(),
        Some("VerificationFailed"),
        "the original error stays"
    );
    let cause = done.cause().unwrap_or_default().to_string();
    for says in [
        "Rolled back: NOT complete",
        "target_group",
        &format!("stepdeploy cleanup {execution}"),
    ] {
        assert!(
            cause.contains(says),
            "{says:?} not in the run's cause: {cause}"
        );
    }
    let history = json(&["history", &tenant, "--env", "dev", "--output", "json"]);
    let error = history[0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("NOT complete") && error.contains("stepdeploy cleanup"),
        "{history:#}"
    );
    // The lock stays until the rest is gone: a redeploy is refused.
    let again = run(&[
        "deploy",
        &tenant,
        "--env",
        "dev",
        "--requested-by",
        "ops@example.com",
        "--wait",
    ]);
    let said = format!("{}{}", stdout(&again), stderr(&again));
    assert!(said.contains("DeploymentLocked"), "{said}");

    // Cleanup before the obstacle is gone: still says what is left.
    let o = run(&["cleanup", &execution, "--requested-by", "ops@example.com"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("target_group"), "{}", stderr(&o));
    // The operator removes their rule; cleanup finishes.
    rt.block_on(async {
        let dev = stepdeploy_tests::in_environment("dev").await;
        aws_sdk_elasticloadbalancingv2::Client::new(&dev)
            .delete_rule()
            .rule_arn(&pin)
            .send()
            .await
            .expect("delete the operator's rule");
    });
    let o = run(&[
        "cleanup",
        &tenant,
        "--env",
        "dev",
        "--requested-by",
        "ops@example.com",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stderr(&o), stdout(&o));
    assert!(
        stdout(&o).contains("nothing is left") && stdout(&o).contains("lock released"),
        "{}",
        stdout(&o)
    );
    // As a tenant never deployed (a fresh stack has no state table before
    // the environment's first run, so "before" is read as this).
    let (after, never) = rt.block_on(async {
        let shape = |t: String| async move {
            stepdeploy_tests::inventory_shape(&stepdeploy_tests::tenant_inventory("dev", &t).await)
        };
        (
            shape(tenant.clone()).await,
            shape(unique_tenant("never")).await,
        )
    });
    assert_eq!(after, never, "the environment is as before the run");
    // Idempotent: a second cleanup finds no run holding the tenant.
    let o = run(&[
        "cleanup",
        &tenant,
        "--env",
        "dev",
        "--requested-by",
        "ops@example.com",
    ]);
    assert!(stderr(&o).contains("nothing to clean up"), "{}", stderr(&o));
}

/// A prod run stopped while its gate waits: its links answer 410 "this run
/// has ended", and nothing of the tenant is held (a new request reaches the
/// gate at once).
#[test]
fn a_run_stopped_at_the_gate_closes_its_links() {
    ensure_stack();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tenant = unique_tenant("sg");
    let started = json(&[
        "deploy",
        &tenant,
        "--env",
        "prod",
        "--requested-by",
        "jane@kimmyai.io",
        "--output",
        "json",
    ]);
    let arn = started["execution_arn"].as_str().expect("arn").to_string();
    let mails = rt.block_on(approval_links(&tenant, 3));
    stepdeploy_tests::aws_cli(&["stepfunctions", "stop-execution", "--execution-arn", &arn]);
    // As the console shows it: the run has ended.
    let stopped = rt.block_on(stepdeploy_tests::find_execution(
        started["execution"].as_str().expect("name"),
        true,
        Duration::from_secs(30),
    ));
    assert_eq!(stopped.status().as_str(), "ABORTED");
    let (status, body) = stepdeploy_tests::get(&mails[0].1);
    assert_eq!(status, "410", "{body}");
    assert!(body.contains("this run has ended"), "{body}");
    let (status, _) = post(&mails[1].1, "");
    assert_eq!(status, "410");
    // Nothing held: the next request for the tenant reaches its gate.
    let next = json(&[
        "deploy",
        &tenant,
        "--env",
        "prod",
        "--requested-by",
        "jane@kimmyai.io",
        "--output",
        "json",
    ]);
    let links = rt.block_on(approval_links(&tenant, 3));
    assert_eq!(links.len(), 3);
    stepdeploy_tests::aws_cli(&[
        "stepfunctions",
        "stop-execution",
        "--execution-arn",
        next["execution_arn"].as_str().expect("arn"),
    ]);
}

/// A rollout whose label selects no tenant is put (the CLI cannot see the
/// fleet), and its run refuses it at Plan, naming the field: nothing is
/// deployed, `--wait` and `watch` exit 3.
#[test]
fn a_rollout_on_a_label_nobody_has_is_refused_by_its_plan() {
    ensure_stack();
    let tag = unique_tenant("clinobody");
    let o = run(&[
        "rollout",
        "--env",
        "dev",
        "--image",
        "wordpress:6.5-apache",
        "--label",
        &format!("fleet={tag}"),
        "--requested-by",
        "jane@kimmyai.io",
        "--request-id",
        &tag,
        "--wait",
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(3), "{}{out}", stderr(&o));
    let name = format!("rollout-dev-{tag}");
    assert!(out.starts_with(&format!("started {name}: ")), "{out}");
    let plan = out
        .lines()
        .find(|l| l.starts_with("  Plan "))
        .unwrap_or_else(|| panic!("a Plan line: {out}"));
    assert!(
        plan.contains(" FAILED ")
            && plan.ends_with(&format!(
                "ValidationFailed: invalid input: detail.tenants.labels: no tenant deployed in dev has fleet={tag}"
            )),
        "{out}"
    );
    assert!(!out.contains("RunWave"), "no wave ran: {out}");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "stepdeploy: execution {name} FAILED: ValidationFailed"
        )),
        "{err}"
    );
    // Watched again by name: the same verdict, the same exit code.
    let watched = run(&["watch", &name, "--output", "json"]);
    assert_eq!(watched.status.code(), Some(3));
    let report: Value = serde_json::from_slice(&watched.stdout).expect("json");
    assert_eq!(
        (&report["kind"], &report["status"]),
        (&Value::from("rollout"), &Value::from("FAILED"))
    );
    assert_eq!(report["phases"][0]["name"], "Plan");
    assert_eq!(report["phases"][0]["status"], "failed");
    assert!(
        report.get("rollout").is_none(),
        "no plan, no report: {report:#}"
    );
}

/// Tenants deployed with `--label` are rolled out by label, the canary
/// first: `rollout --wait` prints one line per step and wave and the
/// per-tenant report, `watch` shows the same, and a second rollout to the
/// same image deploys nothing.
#[test]
fn labelled_tenants_roll_out_in_waves_in_dev() {
    ensure_stack();
    let tag = unique_tenant("clifleet");
    let tenants: Vec<String> = (0..3).map(|_| unique_tenant("cli")).collect();
    for (i, t) in tenants.iter().enumerate() {
        let ring = if i == 0 { "ring=canary" } else { "ring=main" };
        let done = json(&[
            "deploy",
            t,
            "--env",
            "dev",
            "--image",
            "wordpress:6.4-apache",
            "--label",
            &format!("fleet={tag}"),
            "--label",
            ring,
            "--requested-by",
            "jane@kimmyai.io",
            "--wait",
            "--output",
            "json",
        ]);
        assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    }
    let o = run(&[
        "rollout",
        "--env",
        "dev",
        "--image",
        "wordpress:6.5-apache",
        "--label",
        &format!("fleet={tag}"),
        "--wave",
        "label:ring=canary",
        "--wave",
        "1",
        "--failure-budget",
        "per_wave=0,overall=0",
        "--bake",
        "1",
        "--requested-by",
        "jane@kimmyai.io",
        "--request-id",
        &tag,
        "--wait",
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}{out}", stderr(&o));
    let name = format!("rollout-dev-{tag}");
    let location = format!(
        "s3://{}/_rollouts/dev/{name}.json",
        stepdeploy_tests::environment("dev").config_bucket
    );
    let steps: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(
        steps,
        [
            "Plan", "RunWave", "Judge", "Bake", "RunWave", "Judge", "Bake", "RunWave", "Judge",
            "Report"
        ],
        "{out}"
    );
    for says in [
        "3 waves, 3 tenants to deploy".to_string(),
        format!("wave 1 of 3: {}", tenants[0]),
        "wave 1: 1 succeeded; continue".to_string(),
        "wave 3: 1 succeeded; done".to_string(),
        format!("succeeded; report {location}"),
        format!("rollout {name}: wordpress:6.5-apache to dev succeeded; 3 deployed, 0 failed"),
        format!("execution {name}: SUCCEEDED"),
    ] {
        assert!(out.contains(&says), "{says:?} not in:\n{out}");
    }
    let row = out
        .lines()
        .find(|l| l.starts_with(tenants[0].as_str()))
        .expect("the canary's row");
    assert!(row.contains(" 1 ") && row.contains("succeeded"), "{row}");

    // Watched afterwards: the report, per tenant, as the rollout wrote it.
    let watched = json(&["watch", &name, "--output", "json"]);
    assert_eq!(watched["kind"], "rollout");
    let report = &watched["rollout"];
    assert_eq!(report["status"], "succeeded", "{watched:#}");
    assert_eq!(report["counts"]["succeeded"], 3);
    let waves: Vec<(String, u64)> = report["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .map(|t| {
            (
                t["tenant"].as_str().unwrap_or("").to_string(),
                t["wave"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    // The canary, then one tenant per wave in name order.
    let mut main = [tenants[1].clone(), tenants[2].clone()];
    main.sort();
    assert_eq!(
        waves,
        [
            (tenants[0].clone(), 1),
            (main[0].clone(), 2),
            (main[1].clone(), 3)
        ],
        "{watched:#}"
    );
    assert_eq!(watched["report_location"], location.as_str());
    let rows = json(&["status", &tenants[1], "--env", "dev", "--output", "json"]);
    assert_eq!(rows[0]["image"], "wordpress:6.5-apache", "{rows:#}");

    // The same image again: every tenant is skipped, nothing is deployed.
    let again = json(&[
        "rollout",
        "--env",
        "dev",
        "--image",
        "wordpress:6.5-apache",
        "--label",
        &format!("fleet={tag}"),
        "--requested-by",
        "jane@kimmyai.io",
        "--wait",
        "--output",
        "json",
    ]);
    assert_eq!(again["status"], "SUCCEEDED", "{again:#}");
    assert_eq!(again["rollout"]["counts"]["skipped"], 3, "{again:#}");
    assert_eq!(again["rollout"]["counts"]["succeeded"], 0, "{again:#}");
}
