//! What each command does. Requests are validated with the same rules
//! bootstrap applies before anything is put on the bus, so a typo never
//! starts a run.

use crate::args::{self, Global, Output};
use crate::error::CliError;
use crate::progress::{self, error_text, Phase, PhaseStatus};
use crate::stack::{Approval, Machine, Run, Stack};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::{EnvironmentConfig, EnvironmentSet};
use stepdeploy_shared::names::{execution_name, parse_execution_name};
use stepdeploy_shared::request::{DEPLOY_REQUESTED, TEARDOWN_REQUESTED};
use stepdeploy_shared::validate::FieldError;
use stepdeploy_shared::{EnvironmentName, Request, ResourceNames, TenantName};

/// How long `deploy`/`teardown` wait for the trigger to start the run.
const START_WAIT: Duration = Duration::from_secs(60);

fn print_json(value: &impl Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    println!("{text}");
    Ok(())
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// `2026-11-23T19:40:01Z`.
fn timestamp(epoch: f64) -> String {
    aws_smithy_types::DateTime::from_secs(epoch as i64)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// Aligned columns, headers first.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// The environment configs (`--config-dir` / `STEPDEPLOY_CONFIG_DIR`).
fn environments(global: &Global) -> Result<EnvironmentSet, CliError> {
    let dir = global.config_dir.as_deref().ok_or_else(|| {
        CliError::Refused(
            "no environment configs: pass --config-dir DIR or set STEPDEPLOY_CONFIG_DIR (for the local stack: source local/env.sh)".into(),
        )
    })?;
    Ok(EnvironmentSet::load_dir(dir)?)
}

/// A known environment's config, or an error listing the known ones.
fn environment<'a>(
    envs: &'a EnvironmentSet,
    name: &str,
) -> Result<&'a EnvironmentConfig, CliError> {
    EnvironmentName::parse(name).map_err(|e| e.within("--env"))?;
    envs.get(name).map_err(|_| {
        CliError::Invalid(FieldError::new(
            "--env",
            format!(
                "unknown environment {name:?} (known: {})",
                envs.names().join(", ")
            ),
        ))
    })
}

fn tenant(name: &str) -> Result<TenantName, CliError> {
    Ok(TenantName::parse(name).map_err(|e| FieldError::new("tenant", e.reason))?)
}

/// A random UUID (v4), the default `request_id`.
fn new_request_id() -> Result<String, CliError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// The event as a rule delivers it, for validation before it is put.
fn as_delivered(detail_type: &str, detail: &serde_json::Value, id: &str) -> serde_json::Value {
    json!({
        "version": "0", "id": id, "detail-type": detail_type,
        "source": stepdeploy_shared::request::EVENT_SOURCE,
        "account": "000000000000", "time": timestamp(now()), "region": "us-east-1",
        "resources": [], "detail": detail
    })
}

fn requester(request: &args::Request) -> Result<String, CliError> {
    requester_or_user(request.requested_by.clone())
}

/// `--requested-by`, else `$USER` / `$LOGNAME`.
fn requester_or_user(requested_by: Option<String>) -> Result<String, CliError> {
    requested_by
        .or_else(|| {
            ["USER", "LOGNAME"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        })
        .ok_or_else(|| {
            CliError::Refused(
                "say who asks: --requested-by you@example.com (or STEPDEPLOY_REQUESTED_BY)".into(),
            )
        })
}

/// What `deploy` and `teardown` print once the run has started.
#[derive(Debug, Serialize)]
struct Started {
    execution: String,
    execution_arn: String,
    status: String,
    console_url: String,
    event_id: String,
    request_id: String,
}

/// Validates, puts the event, finds the run; follows it with `--wait`.
async fn request(
    stack: &Stack,
    global: &Global,
    machine: Machine,
    detail: serde_json::Value,
    request: &args::Request,
    envs: &EnvironmentSet,
) -> Result<(), CliError> {
    let detail_type = match machine {
        Machine::Deploy => DEPLOY_REQUESTED,
        Machine::Teardown => TEARDOWN_REQUESTED,
    };
    let request_id = detail["request_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let parsed = Request::from_event(&as_delivered(detail_type, &detail, &request_id), envs)?;
    let event_id = stack.put_event(detail_type, &detail.to_string()).await?;
    let name = execution_name(
        parsed.tenant().as_str(),
        parsed.environment().as_str(),
        &request_id,
    );
    let run = stack.await_run(machine, &name, START_WAIT).await?;
    let started = Started {
        execution: run.name.clone(),
        execution_arn: run.arn.clone(),
        status: run.status.clone(),
        console_url: stack.console_url(&run.arn),
        event_id,
        request_id,
    };
    if request.wait {
        if global.output == Output::Text {
            println!(
                "started {}\nconsole: {}",
                started.execution, started.console_url
            );
        }
        return follow(stack, &run, global.output).await;
    }
    match global.output {
        Output::Json => print_json(&started),
        Output::Text => {
            println!(
                "started {} ({})\nconsole: {}\nfollow:  stepdeploy watch {}",
                started.execution, started.status, started.console_url, started.execution
            );
            if let Some(approval) = envs
                .get(parsed.environment().as_str())
                .ok()
                .and_then(|e| e.approval.as_ref())
                .filter(|_| machine == Machine::Deploy)
            {
                println!(
                    "approval: {} of {} approvers must approve ({}); the requester cannot",
                    approval.approvals_required,
                    approval.approvers.len(),
                    approval.approvers.join(", ")
                );
            }
            Ok(())
        }
    }
}

/// `stepdeploy deploy`.
pub async fn deploy(stack: &Stack, global: &Global, a: &args::Deploy) -> Result<(), CliError> {
    let envs = environments(global)?;
    let env = environment(&envs, &a.environment)?;
    tenant(&a.tenant)?;
    let request_id = match &a.request.request_id {
        Some(id) => id.clone(),
        None => new_request_id()?,
    };
    let mut detail = json!({
        "tenant": a.tenant, "environment": env.name.as_str(),
        "requested_by": requester(&a.request)?, "request_id": request_id,
    });
    if let Some(image) = &a.image {
        detail["image"] = json!(image);
    }
    if let Some(priority) = a.priority {
        detail["alb_priority"] = json!(priority);
    }
    if a.auto_promote {
        detail["auto_promote"] = json!(true);
    }
    request(stack, global, Machine::Deploy, detail, &a.request, &envs).await
}

/// `stepdeploy teardown`.
pub async fn teardown(stack: &Stack, global: &Global, a: &args::Teardown) -> Result<(), CliError> {
    let envs = environments(global)?;
    let env = environment(&envs, &a.environment)?;
    let t = tenant(&a.tenant)?;
    if !a.yes {
        confirm(&t, env)?;
    }
    let request_id = match &a.request.request_id {
        Some(id) => id.clone(),
        None => new_request_id()?,
    };
    let detail = json!({
        "tenant": t.as_str(), "environment": env.name.as_str(),
        "requested_by": requester(&a.request)?, "request_id": request_id,
    });
    request(stack, global, Machine::Teardown, detail, &a.request, &envs).await
}

/// `stepdeploy cleanup`: runs rollback again for one failed or stopped run
/// (rollback's `Tenant Cleanup Requested`, invoked and awaited), and says
/// what it undid or what is still left.
pub async fn cleanup(stack: &Stack, global: &Global, a: &args::Cleanup) -> Result<(), CliError> {
    let requested_by = requester_or_user(a.requested_by.clone())?;
    let detail = match &a.environment {
        Some(name) => {
            let envs = environments(global)?;
            let env = environment(&envs, name)?;
            let t = tenant(&a.target)?;
            json!({"tenant": t.as_str(), "environment": env.name.as_str(), "requested_by": requested_by})
        }
        None => json!({"execution": a.target, "requested_by": requested_by}),
    };
    let event = as_delivered(
        "Tenant Cleanup Requested",
        &detail,
        "stepdeploy-cli-cleanup",
    );
    match stack.invoke("rollback", &event).await? {
        Ok(out) => {
            let undone: Vec<String> = ["removed", "restored"]
                .iter()
                .flat_map(|k| out[*k].as_array().cloned().unwrap_or_default())
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            match global.output {
                Output::Json => println!("{}", json!({"complete": true, "result": out})),
                Output::Text => println!(
                    "cleanup finished: nothing is left{}{}",
                    if undone.is_empty() {
                        " (it was already clean)".to_string()
                    } else {
                        format!("; undone: {}", undone.join(", "))
                    },
                    if out["lock_released"] == true {
                        "; lock released"
                    } else {
                        ""
                    }
                ),
            }
            Ok(())
        }
        Err((kind, message)) => {
            let message = crate::progress::terminal_safe(&message);
            if kind == stepdeploy_shared::error_names::ROLLBACK_FAILED {
                Err(CliError::Refused(format!(
                    "cleanup could not finish: {message}"
                )))
            } else {
                Err(CliError::Refused(format!(
                    "cleanup refused ({kind}): {message}"
                )))
            }
        }
    }
}

fn confirm(t: &TenantName, env: &EnvironmentConfig) -> Result<(), CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::Refused(format!(
            "teardown of {t} in {} needs confirmation: run it in a terminal, or pass --yes",
            env.name
        )));
    }
    let names = ResourceNames::new(&env.name, t, &env.domain);
    match &env.approval {
        Some(approval) => eprint!(
            "This asks to remove {t} from {env}: service {svc}, https://{host}/ and its config document go once {n} approvers agree; database {db} is kept renamed and secret {secret} stays restorable for {days} days.\nType the tenant name to confirm: ",
            env = env.name,
            svc = names.service,
            db = names.database,
            secret = names.db_secret,
            host = names.host,
            n = approval.approvals_required,
            days = stepdeploy_shared::config::RETENTION_DAYS,
        ),
        None => eprint!(
            "This removes {t} from {env} for good: service {svc}, database {db}, secret {secret} (restorable for {days} days), https://{host}/ and its config document.\nType the tenant name to confirm: ",
            env = env.name,
            svc = names.service,
            db = names.database,
            secret = names.db_secret,
            host = names.host,
            days = stepdeploy_shared::config::RETENTION_DAYS,
        ),
    }
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if answer.trim() != t.as_str() {
        return Err(CliError::Refused(
            "not confirmed; nothing was requested".into(),
        ));
    }
    Ok(())
}

/// What `watch` (and `deploy --wait`) report at the end.
#[derive(Debug, Serialize)]
struct Report {
    execution: String,
    execution_arn: String,
    kind: &'static str,
    status: String,
    started: String,
    seconds: f64,
    phases: Vec<Phase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    approval: Option<Approval>,
    console_url: String,
}

fn approval_text(a: &Approval) -> String {
    let approved = a.approved_by();
    let mut text = format!(
        "{} of {} approvals",
        approved.len().min(a.required as usize),
        a.required
    );
    if !approved.is_empty() {
        text.push_str(&format!(" ({})", approved.join(", ")));
    }
    if let Some(r) = a.votes.iter().find(|v| v.decision == "reject" && !v.late) {
        text.push_str(&format!("; rejected by {}", r.approver));
    }
    for late in a.votes.iter().filter(|v| v.late) {
        let verb = if late.decision == "reject" {
            "rejected"
        } else {
            "approved"
        };
        text.push_str(&format!(
            "; {} {verb} too late (after the gate settled)",
            late.approver
        ));
    }
    text
}

/// Follows a run to its end, printing phases as they finish.
async fn follow(stack: &Stack, run: &Run, output: Output) -> Result<(), CliError> {
    let live = output == Output::Text && std::io::stdout().is_terminal();
    let mut printed = 0usize;
    let mut approval_said = String::new();
    let mut approval: Option<Approval> = None;
    let mut out = std::io::stdout();
    loop {
        let described = stack
            .describe_full(&run.arn)
            .await?
            .ok_or_else(|| CliError::NotFound(format!("execution {} no longer exists", run.arn)))?;
        let done = described.status().as_str() != "RUNNING";
        let phases = progress::phases(&stack.history(&run.arn).await?, now());
        let running = phases.last().filter(|p| p.status == PhaseStatus::Running);
        if running.is_some_and(|p| p.name.contains("Approval")) {
            approval = stack.approval(&run.arn).await?;
        }
        if output == Output::Text {
            if live {
                write!(out, "\r\x1b[K")?;
            }
            while let Some(p) = phases
                .get(printed)
                .filter(|p| p.status != PhaseStatus::Running)
            {
                writeln!(out, "{}", p.line())?;
                printed += 1;
            }
            let waiting = running
                .filter(|p| p.name.contains("Approval"))
                .and(approval.as_ref())
                .map(approval_text);
            if let Some(text) = waiting.as_ref().filter(|t| **t != approval_said) {
                if !live {
                    writeln!(out, "  {:<14} waiting  {text}", "ApprovalGate")?;
                }
                approval_said = text.clone();
            }
            if let (true, Some(p), false) = (live, running, done) {
                let extra = waiting
                    .map(|w| format!("  waiting: {w}"))
                    .unwrap_or_default();
                write!(out, "{}{extra}", p.line())?;
            }
            out.flush()?;
        }
        if done {
            let status = described.status().as_str().to_string();
            let started = described.start_date().as_secs_f64();
            let seconds = described
                .stop_date()
                .map(|s| s.as_secs_f64() - started)
                .unwrap_or_default();
            let error = error_text(described.error(), described.cause());
            let report = Report {
                execution: run.name.clone(),
                execution_arn: run.arn.clone(),
                kind: run.machine.kind(),
                status: status.clone(),
                started: timestamp(started),
                seconds,
                phases,
                error: error.clone(),
                approval,
                console_url: stack.console_url(&run.arn),
            };
            match output {
                Output::Json => print_json(&report)?,
                Output::Text => println!(
                    "execution {}: {status} in {seconds:.1} s{}",
                    run.name,
                    error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                ),
            }
            return if status == "SUCCEEDED" {
                Ok(())
            } else {
                Err(CliError::RunFailed {
                    name: run.name.clone(),
                    status,
                    error,
                })
            };
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `stepdeploy watch`.
pub async fn watch(stack: &Stack, global: &Global, a: &args::Watch) -> Result<(), CliError> {
    let run = find_run(stack, &a.target, a.environment.as_deref()).await?;
    if global.output == Output::Text {
        println!(
            "{} {} ({}), started {}\nconsole: {}",
            run.machine.kind(),
            run.name,
            run.status,
            timestamp(run.started),
            stack.console_url(&run.arn)
        );
    }
    follow(stack, &run, global.output).await
}

/// An execution ARN, an execution name, or a tenant's newest run in `env`.
async fn find_run(stack: &Stack, target: &str, env: Option<&str>) -> Result<Run, CliError> {
    if target.starts_with("arn:") {
        let machine = if target.contains("-teardown-tenant:") {
            Machine::Teardown
        } else {
            Machine::Deploy
        };
        return stack
            .describe(target, machine)
            .await?
            .ok_or_else(|| CliError::NotFound(format!("no execution {target}")));
    }
    if target.contains('-') {
        for machine in Machine::ALL {
            let sm = stack.machine_arn(machine).await?;
            let arn = format!(
                "{}:{target}",
                sm.replacen(":stateMachine:", ":execution:", 1)
            );
            if let Some(run) = stack.describe(&arn, machine).await? {
                return Ok(run);
            }
        }
        return Err(CliError::NotFound(format!(
            "no execution named {target} in {} or {}",
            stack.machine_name(Machine::Deploy),
            stack.machine_name(Machine::Teardown)
        )));
    }
    let t = tenant(target)?;
    let env = env.ok_or_else(|| {
        CliError::Refused(format!(
            "{target} is a tenant: say which environment with --env (or name an execution)"
        ))
    })?;
    EnvironmentName::parse(env).map_err(|e| e.within("--env"))?;
    newest_runs(stack, &format!("{t}-{env}-"), 1)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| CliError::NotFound(format!("no runs of tenant {t} in {env}")))
}

/// Deploy and teardown runs whose names start with `prefix`, newest first.
async fn newest_runs(stack: &Stack, prefix: &str, limit: usize) -> Result<Vec<Run>, CliError> {
    let mut runs = Vec::new();
    for machine in Machine::ALL {
        runs.extend(stack.runs(machine, prefix, limit).await?);
    }
    runs.sort_by(|a, b| b.started.total_cmp(&a.started));
    runs.truncate(limit);
    Ok(runs)
}

/// One row of `status`.
#[derive(Debug, Default, Serialize)]
struct StatusRow {
    tenant: String,
    environment: String,
    image: Option<String>,
    priority: Option<u32>,
    deployed_at: Option<String>,
    last_run: Option<String>,
    last_run_started: Option<String>,
    outcome: Option<String>,
    url: Option<String>,
}

/// The tenant registry of an environment (`TENANT#…`/`REGISTRY` items); empty if the table does not exist yet.
async fn registry(
    stack: &Stack,
    env: &EnvironmentConfig,
) -> Result<Vec<(String, serde_json::Value)>, CliError> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let ddb = stack.environment_dynamodb(env).await;
    let mut pages = ddb
        .scan()
        .table_name(&env.state_table)
        .filter_expression("sk = :r")
        .expression_attribute_values(":r", AttributeValue::S("REGISTRY".into()))
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(out)
            }
            Err(e) => return Err(stack.env_error(AwsCallError::new("dynamodb:Scan (registry)", e))),
        };
        for item in page.items() {
            let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
            let Some(tenant) =
                text("pk").and_then(|pk| pk.strip_prefix("TENANT#").map(str::to_string))
            else {
                continue;
            };
            out.push((
                tenant,
                json!({
                    "image": text("image"), "status": text("status"),
                    "updated_at": text("updated_at"), "last_execution": text("last_execution"),
                    "priority": item.get("alb_priority").and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<u32>().ok()),
                }),
            ));
        }
    }
    Ok(out)
}

/// `stepdeploy status`.
pub async fn status(stack: &Stack, global: &Global, a: &args::Status) -> Result<(), CliError> {
    let envs = environments(global)?;
    let only_tenant = a.tenant.as_deref().map(tenant).transpose()?;
    let selected: Vec<&EnvironmentConfig> = match &a.environment {
        Some(name) => vec![environment(&envs, name)?],
        None => envs
            .names()
            .iter()
            .filter_map(|n| envs.get(n).ok())
            .collect(),
    };
    let prefix = only_tenant
        .as_ref()
        .map(|t| format!("{t}-"))
        .unwrap_or_default();
    let runs = newest_runs(stack, &prefix, 1000).await?;
    let mut rows: BTreeMap<(String, usize), StatusRow> = BTreeMap::new();
    for (order, env) in selected.iter().enumerate() {
        for (t, record) in registry(stack, env).await? {
            if only_tenant.as_ref().is_some_and(|o| o.as_str() != t) {
                continue;
            }
            let host = TenantName::parse(&t)
                .map(|tn| ResourceNames::new(&env.name, &tn, &env.domain).host)
                .ok();
            let row = rows.entry((t.clone(), order)).or_default();
            row.tenant = t;
            row.environment = env.name.to_string();
            row.image = record["image"].as_str().map(str::to_string);
            row.priority = record["priority"].as_u64().map(|p| p as u32);
            row.deployed_at = record["updated_at"].as_str().map(str::to_string);
            if record["status"] == "active" {
                row.url = host.map(|h| format!("https://{h}/"));
            }
        }
        for run in &runs {
            let Some((t, e)) = parse_execution_name(&run.name) else {
                continue;
            };
            if e != env.name.as_str() {
                continue;
            }
            let row = rows.entry((t.to_string(), order)).or_default();
            // Runs come newest first: keep the first one seen.
            if row.last_run.is_none() {
                row.tenant = t.to_string();
                row.environment = e.to_string();
                row.last_run = Some(run.name.clone());
                row.last_run_started = Some(timestamp(run.started));
                row.outcome = Some(match run.machine {
                    Machine::Deploy => run.status.clone(),
                    Machine::Teardown => format!("TEARDOWN {}", run.status),
                });
            }
        }
    }
    let rows: Vec<StatusRow> = rows.into_values().collect();
    if let (Some(t), true) = (&only_tenant, rows.is_empty()) {
        return Err(CliError::NotFound(format!(
            "tenant {t} has no deployment in {}",
            selected
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    match global.output {
        Output::Json => print_json(&rows),
        Output::Text => {
            if rows.is_empty() {
                println!("no tenants deployed yet");
                return Ok(());
            }
            let dash = || "-".to_string();
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.tenant.clone(),
                        r.environment.clone(),
                        r.image.clone().unwrap_or_else(dash),
                        r.last_run_started.clone().unwrap_or_else(dash),
                        r.outcome.clone().unwrap_or_else(dash),
                        r.url.clone().unwrap_or_else(dash),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &["TENANT", "ENV", "IMAGE", "LAST RUN", "OUTCOME", "URL"],
                    &cells
                )
            );
            Ok(())
        }
    }
}

/// One row of `history`.
#[derive(Debug, Serialize)]
struct HistoryRow {
    execution: String,
    kind: &'static str,
    status: String,
    started: String,
    seconds: Option<f64>,
    requested_by: Option<String>,
    image: Option<String>,
    approved_by: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `stepdeploy history`.
pub async fn history(stack: &Stack, global: &Global, a: &args::History) -> Result<(), CliError> {
    let envs = environments(global)?;
    let env = environment(&envs, &a.environment)?;
    let t = tenant(&a.tenant)?;
    let runs = newest_runs(stack, &format!("{t}-{}-", env.name), a.limit.max(1)).await?;
    if runs.is_empty() {
        return Err(CliError::NotFound(format!(
            "no runs of tenant {t} in {} (stepdeploy status lists the tenants there are)",
            env.name
        )));
    }
    let mut rows = Vec::new();
    for run in runs {
        let d = stack.describe_full(&run.arn).await?;
        let input: serde_json::Value = d
            .as_ref()
            .and_then(|d| d.input())
            .and_then(|i| serde_json::from_str(i).ok())
            .unwrap_or_default();
        let detail = &input["event"]["detail"];
        let approved_by = if env.approval.is_some() && run.machine == Machine::Deploy {
            stack
                .approval(&run.arn)
                .await?
                .map(|a| a.approved_by())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        rows.push(HistoryRow {
            execution: run.name.clone(),
            kind: run.machine.kind(),
            status: run.status.clone(),
            started: timestamp(run.started),
            seconds: run.stopped.map(|s| s - run.started),
            requested_by: detail["requested_by"]
                .as_str()
                .map(crate::progress::terminal_safe),
            image: detail["image"].as_str().map(str::to_string),
            approved_by,
            error: d.as_ref().and_then(|d| error_text(d.error(), d.cause())),
        });
    }
    match global.output {
        Output::Json => print_json(&rows),
        Output::Text => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.started.clone(),
                        r.kind.to_string(),
                        r.status.clone(),
                        r.seconds
                            .map(|s| format!("{s:.0} s"))
                            .unwrap_or_else(|| "-".into()),
                        r.requested_by.clone().unwrap_or_else(|| "-".into()),
                        if r.approved_by.is_empty() {
                            "-".into()
                        } else {
                            r.approved_by.join(", ")
                        },
                        r.error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &[
                        "STARTED",
                        "KIND",
                        "OUTCOME",
                        "TOOK",
                        "REQUESTED BY",
                        "APPROVED BY",
                        "ERROR"
                    ],
                    &cells
                )
            );
            Ok(())
        }
    }
}

/// One file's verdict in `config validate`.
#[derive(Debug, Serialize)]
struct Checked {
    file: PathBuf,
    environment: Option<String>,
    error: Option<String>,
}

/// `stepdeploy config validate`.
pub fn config_validate(global: &Global, files: &[PathBuf]) -> Result<(), CliError> {
    let dir = global.config_dir.clone();
    let files: Vec<PathBuf> = if files.is_empty() {
        let dir = dir.as_deref().ok_or_else(|| {
            CliError::Refused(
                "name files to check, or a directory with --config-dir / STEPDEPLOY_CONFIG_DIR"
                    .into(),
            )
        })?;
        json_files(dir)?
    } else {
        files.to_vec()
    };
    let mut checked: Vec<Checked> = files
        .iter()
        .map(|file| match EnvironmentConfig::load(file) {
            Ok(env) => Checked {
                file: file.clone(),
                environment: Some(env.name.to_string()),
                error: None,
            },
            Err(e) => Checked {
                file: file.clone(),
                environment: None,
                error: Some(e.to_string()),
            },
        })
        .collect();
    // Checked as a set too, when they all load: `promote_to` must name a known environment.
    if checked.iter().all(|c| c.error.is_none()) {
        let configs: Vec<EnvironmentConfig> = files
            .iter()
            .filter_map(|f| EnvironmentConfig::load(f).ok())
            .collect();
        let set = EnvironmentSet::from_configs(configs);
        for c in &mut checked {
            let Some(env) = c.environment.as_deref().and_then(|n| set.get(n).ok()) else {
                continue;
            };
            if let Some(next) = &env.promote_to {
                if set.get(next.as_str()).is_err() {
                    c.error = Some(format!(
                        "{}: promote_to: names {next:?}, which is not among the files checked ({})",
                        c.file.display(),
                        set.names().join(", ")
                    ));
                }
            }
        }
    }
    let failed = checked.iter().filter(|c| c.error.is_some()).count();
    match global.output {
        Output::Json => print_json(&checked)?,
        Output::Text => {
            for c in &checked {
                match (&c.error, &c.environment) {
                    (Some(e), _) => println!("error {e}"),
                    (None, Some(env)) => println!("ok    {} ({env})", c.file.display()),
                    (None, None) => {}
                }
            }
        }
    }
    if failed > 0 {
        return Err(CliError::ConfigsInvalid {
            failed,
            total: checked.len(),
        });
    }
    Ok(())
}

fn json_files(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let read = std::fs::read_dir(dir).map_err(|e| {
        std::io::Error::new(e.kind(), format!("{}: cannot read: {e}", dir.display()))
    })?;
    let mut files: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(CliError::NotFound(format!(
            "{}: no <env>.json files",
            dir.display()
        )));
    }
    Ok(files)
}

/// `stepdeploy events example`: a PutEvents entry list.
pub fn events_example(
    global: &Global,
    kind: args::EventKind,
    tenant_name: &str,
    env: &str,
) -> Result<(), CliError> {
    tenant(tenant_name)?;
    EnvironmentName::parse(env).map_err(|e| e.within("--env"))?;
    let (detail_type, detail) = match kind {
        args::EventKind::Deploy => (
            DEPLOY_REQUESTED,
            json!({"tenant": tenant_name, "environment": env, "requested_by": "jane@example.com",
                   "request_id": new_request_id()?}),
        ),
        args::EventKind::Teardown => (
            TEARDOWN_REQUESTED,
            json!({"tenant": tenant_name, "environment": env, "requested_by": "jane@example.com",
                   "request_id": new_request_id()?}),
        ),
    };
    print_json(&json!([{
        "Source": stepdeploy_shared::request::EVENT_SOURCE,
        "DetailType": detail_type,
        "EventBusName": global.stack,
        "Detail": detail.to_string(),
    }]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_v4_uuids_and_fit_the_rule() {
        let id = new_request_id().expect("random");
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
        assert_ne!(id, new_request_id().expect("random"));
        let name = execution_name("goldencrust", "dev", &id);
        assert_eq!(name, format!("goldencrust-dev-{id}"));
    }

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["A", "BB"],
            &[vec!["long".into(), "x".into()], vec!["s".into(), "".into()]],
        );
        assert_eq!(t, "A     BB\nlong  x\ns");
    }

    #[test]
    fn approval_text_counts_distinct_approvals() {
        let a = Approval {
            required: 2,
            approvers: vec!["a@x".into(), "b@x".into(), "c@x".into()],
            status: "pending".into(),
            votes: vec![crate::stack::Vote {
                approver: "b@x".into(),
                decision: "approve".into(),
                late: false,
            }],
        };
        assert_eq!(approval_text(&a), "1 of 2 approvals (b@x)");
    }
}
