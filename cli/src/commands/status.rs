//! `status`: tenants × environments, from each environment's registry and
//! the newest runs of both state machines.

use super::{environment, environments, tenant};
use crate::args::{self, Global, Output};
use crate::error::CliError;
use crate::render::{print_json, table, timestamp};
use crate::stack::{Machine, Stack};
use serde::Serialize;
use std::collections::BTreeMap;
use stepdeploy_shared::config::EnvironmentConfig;
use stepdeploy_shared::names::parse_execution_name;
use stepdeploy_shared::state::StateStore;
use stepdeploy_shared::{ResourceNames, TenantName};

/// One row of `status`.
#[derive(Debug, Default, Serialize)]
struct StatusRow {
    tenant: String,
    environment: String,
    image: Option<String>,
    /// The release running now (`stepdeploy releases` lists them all).
    release: Option<u32>,
    priority: Option<u32>,
    deployed_at: Option<String>,
    last_run: Option<String>,
    last_run_started: Option<String>,
    outcome: Option<String>,
    url: Option<String>,
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
    let runs = stack.newest_runs(&prefix, 1000).await?;
    let mut rows: BTreeMap<(String, usize), StatusRow> = BTreeMap::new();
    for (order, env) in selected.iter().enumerate() {
        let state = stack.environment_state(env).await;
        let entries = state
            .registry_entries()
            .await
            .map_err(|e| stack.env_error(e))?;
        for entry in entries {
            let t = entry.tenant;
            if only_tenant.as_ref().is_some_and(|o| o.as_str() != t) {
                continue;
            }
            let host = TenantName::parse(&t)
                .map(|tn| ResourceNames::new(&env.name, &tn, &env.domain).host)
                .ok();
            let row = rows.entry((t.clone(), order)).or_default();
            row.tenant = t;
            row.environment = env.name.to_string();
            row.priority = entry.alb_priority;
            if let Some(record) = entry.record {
                row.release = state
                    .latest_release(&row.tenant)
                    .await
                    .map_err(|e| stack.env_error(e))?
                    .filter(|r| r.execution == record.last_execution)
                    .map(|r| r.number);
                row.image = Some(record.image);
                row.deployed_at = Some(record.updated_at);
                if record.status == "active" {
                    row.url = host.map(|h| format!("https://{h}/"));
                }
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
                    Machine::Rollout => format!("ROLLOUT {}", run.status),
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
                        r.release.map_or_else(dash, |n| n.to_string()),
                        r.last_run_started.clone().unwrap_or_else(dash),
                        r.outcome.clone().unwrap_or_else(dash),
                        r.url.clone().unwrap_or_else(dash),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &["TENANT", "ENV", "IMAGE", "RELEASE", "LAST RUN", "OUTCOME", "URL"],
                    &cells
                )
            );
            Ok(())
        }
    }
}
