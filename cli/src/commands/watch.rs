//! `watch` (and `deploy --wait`): follow a run to its end, one line per
//! phase, the approval gate's votes while it waits.

use crate::args::{self, Global, Output};
use crate::error::CliError;
use crate::progress::{self, error_text, Phase, PhaseStatus};
use crate::render::{now, print_json, timestamp};
use crate::stack::{Approval, Run, Stack};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::time::Duration;

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

/// The gate's progress in one line: approvals so far, a rejection, late votes.
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
pub(super) async fn follow(stack: &Stack, run: &Run, output: Output) -> Result<(), CliError> {
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
    let run = stack.find_run(&a.target, a.environment.as_deref()).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
