//! `deploy` and `teardown`: validate the request, put its event on the bus,
//! find the run it started (and follow it with `--wait`).

use super::rollout::labels;
use super::watch::follow;
use super::{environment, environments, tenant};
use crate::args::{self, Global, Output};
use crate::error::CliError;
use crate::render::{now, print_json, timestamp};
use crate::stack::{Machine, Stack};
use serde::Serialize;
use serde_json::{json, Value};
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;
use stepdeploy_shared::config::{EnvironmentConfig, EnvironmentSet};
use stepdeploy_shared::names::execution_name;
use stepdeploy_shared::request::{DEPLOY_REQUESTED, TEARDOWN_REQUESTED};
use stepdeploy_shared::rollout::ROLLOUT_REQUESTED;
use stepdeploy_shared::{Request, ResourceNames, TenantName};

/// How long `deploy`/`teardown`/`rollout` wait for the trigger to start the run.
pub(super) const START_WAIT: Duration = Duration::from_secs(60);

/// A random UUID (v4), the default `request_id`: unique per request, so
/// only an operator's own `--request-id` makes a repeat find the first run.
pub(super) fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The event as a rule delivers it, for validation before it is put.
pub(super) fn as_delivered(
    detail_type: &str,
    detail: &serde_json::Value,
    id: &str,
) -> serde_json::Value {
    json!({
        "version": "0", "id": id, "detail-type": detail_type,
        "source": stepdeploy_shared::request::EVENT_SOURCE,
        "account": "000000000000", "time": timestamp(now()), "region": "us-east-1",
        "resources": [], "detail": detail
    })
}

pub(super) fn requester(request: &args::Request) -> Result<String, CliError> {
    requester_or_user(request.requested_by.clone())
}

/// `--requested-by`, else `$USER` / `$LOGNAME`.
pub(super) fn requester_or_user(requested_by: Option<String>) -> Result<String, CliError> {
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

/// What `deploy`, `teardown` and `rollout` print once the run has started.
#[derive(Debug, Serialize)]
pub(super) struct Started {
    pub(super) execution: String,
    pub(super) execution_arn: String,
    pub(super) status: String,
    pub(super) console_url: String,
    pub(super) event_id: String,
    pub(super) request_id: String,
}

/// Validates, puts the event, finds the run; follows it with `--wait`.
pub(super) async fn request(
    stack: &Stack,
    global: &Global,
    detail_type: &str,
    detail: serde_json::Value,
    request: &args::Request,
    envs: &EnvironmentSet,
) -> Result<(), CliError> {
    let machine = match detail_type {
        TEARDOWN_REQUESTED => Machine::Teardown,
        // Rollouts have their own request (commands/rollout.rs): refused below.
        ROLLOUT_REQUESTED => Machine::Rollout,
        // A deployment or a rollback (a deployment of a recorded release).
        _ => Machine::Deploy,
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
        None => new_request_id(),
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
    if !a.labels.is_empty() {
        detail["labels"] = Value::Object(labels("--label", &a.labels)?);
    }
    if let Some(reason) = &a.window_override {
        detail["window_override"] = json!(reason);
    }
    request(stack, global, DEPLOY_REQUESTED, detail, &a.request, &envs).await
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
        None => new_request_id(),
    };
    let detail = json!({
        "tenant": t.as_str(), "environment": env.name.as_str(),
        "requested_by": requester(&a.request)?, "request_id": request_id,
    });
    request(stack, global, TEARDOWN_REQUESTED, detail, &a.request, &envs).await
}

/// Asks the operator to type the tenant's name, after saying what goes.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_v4_uuids_and_fit_the_rule() {
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
        assert_ne!(id, new_request_id());
        let name = execution_name("goldencrust", "dev", &id);
        assert_eq!(name, format!("goldencrust-dev-{id}"));
    }
}
