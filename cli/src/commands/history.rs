//! `history`: a tenant's past runs in one environment, newest first, with
//! who asked, who approved and why a run failed.

use super::{environment, environments, tenant};
use crate::args::{self, Global, Output};
use crate::error::CliError;
use crate::progress::error_text;
use crate::render::{print_json, table, terminal_safe, timestamp};
use crate::stack::{Machine, Stack};
use serde::Serialize;

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
    let runs = stack
        .newest_runs(&format!("{t}-{}-", env.name), a.limit.max(1))
        .await?;
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
            requested_by: detail["requested_by"].as_str().map(terminal_safe),
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
