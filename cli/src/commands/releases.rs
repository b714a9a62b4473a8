//! `releases` and `rollback`: a tenant's release history in an environment
//! (read through the environment's read-only role), and putting one of its
//! releases back through the deploy pipeline.

use super::deploy::{new_request_id, request, requester};
use super::{environment, environments, tenant};
use crate::args::{self, Global, Output};
use crate::error::CliError;
use crate::render::{print_json, table};
use crate::stack::Stack;
use serde_json::json;
use stepdeploy_shared::request::ROLLBACK_REQUESTED;
use stepdeploy_shared::state::{Release, StateStore};

/// `stepdeploy releases`.
pub async fn releases(stack: &Stack, global: &Global, a: &args::Releases) -> Result<(), CliError> {
    let envs = environments(global)?;
    let env = environment(&envs, &a.environment)?;
    let t = tenant(&a.tenant)?;
    let state = stack.environment_state(env).await;
    let releases = state
        .releases(t.as_str())
        .await
        .map_err(|e| stack.env_error(e))?;
    let current = state
        .registry(t.as_str())
        .await
        .map_err(|e| stack.env_error(e))?;
    if releases.is_empty() {
        return Err(CliError::NotFound(format!(
            "{t} has no releases in {} (a release is recorded by every successful deployment)",
            env.name
        )));
    }
    let live = current.map(|r| r.last_execution);
    let is_live = |r: &Release| live.as_deref() == Some(r.execution.as_str());
    match global.output {
        Output::Json => {
            let rows: Vec<serde_json::Value> = releases
                .iter()
                .map(|r| {
                    let mut row = serde_json::to_value(r).unwrap_or_default();
                    row["current"] = json!(is_live(r));
                    row
                })
                .collect();
            print_json(&rows)
        }
        Output::Text => {
            let dash = || "-".to_string();
            let cells: Vec<Vec<String>> = releases
                .iter()
                .map(|r| {
                    vec![
                        format!("{}{}", r.number, if is_live(r) { " *" } else { "" }),
                        r.at.clone(),
                        r.image.clone(),
                        r.task_definition
                            .rsplit('/')
                            .next()
                            .unwrap_or_default()
                            .to_string(),
                        r.requested_by.clone(),
                        if r.approvers.is_empty() {
                            dash()
                        } else {
                            r.approvers.join(", ")
                        },
                        describe(r),
                        r.execution
                            .rsplit(':')
                            .next()
                            .unwrap_or_default()
                            .to_string(),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &[
                        "RELEASE",
                        "AT",
                        "IMAGE",
                        "TASK DEF",
                        "BY",
                        "APPROVED BY",
                        "NOTE",
                        "RUN"
                    ],
                    &cells
                )
            );
            println!("* running now; roll back: stepdeploy rollback {t} --env {} [--to N] [--restore-database]", env.name);
            Ok(())
        }
    }
}

/// What else a release did: a rollback's source, its dumps.
fn describe(r: &Release) -> String {
    let mut notes = Vec::new();
    if let Some(from) = r.restored_from {
        notes.push(format!("rollback to {from}"));
    }
    if r.database_restored_from.is_some() {
        notes.push("database restored".to_string());
    }
    if r.database_dump.is_some() {
        notes.push("database dumped before".to_string());
    }
    if notes.is_empty() {
        "-".into()
    } else {
        notes.join("; ")
    }
}

/// `stepdeploy rollback`.
pub async fn rollback(stack: &Stack, global: &Global, a: &args::Rollback) -> Result<(), CliError> {
    let envs = environments(global)?;
    let env = environment(&envs, &a.environment)?;
    let t = tenant(&a.tenant)?;
    let request_id = match &a.request.request_id {
        Some(id) => id.clone(),
        None => new_request_id(),
    };
    let mut detail = json!({
        "tenant": t.as_str(), "environment": env.name.as_str(),
        "requested_by": requester(&a.request)?, "request_id": request_id,
    });
    if let Some(n) = a.to {
        detail["release"] = json!(n);
    }
    if a.restore_database {
        detail["restore_database"] = json!(true);
    }
    if let Some(reason) = &a.window_override {
        detail["window_override"] = json!(reason);
    }
    request(stack, global, ROLLBACK_REQUESTED, detail, &a.request, &envs).await
}
