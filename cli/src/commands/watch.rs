//! `watch` (and `deploy --wait`, `rollout --wait`): follow a run to its
//! end, one line per phase (a rollout: per step and wave), the approval
//! gate's votes while it waits, and a rollout's per-tenant report at the end.

use crate::args::{self, Global, Output};
use crate::error::CliError;
use crate::fleet;
use crate::progress::{self, error_text, Phase, PhaseStatus};
use crate::render::{now, print_json, table, terminal_safe, timestamp};
use crate::stack::{Approval, Machine, Run, Stack};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::time::Duration;
use stepdeploy_shared::error_names;
use stepdeploy_shared::rollout::{RolloutReport, RolloutStatus, TenantOutcome};

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
    /// A rollout's report (per tenant: wave, outcome, execution, error), as its report step wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    rollout: Option<RolloutReport>,
    /// Where the report step put it (`s3://…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    report_location: Option<String>,
    console_url: String,
}

/// `text` cut to [`TABLE_ERROR_MAX`] characters.
fn shorten(text: &str) -> String {
    if text.chars().count() <= TABLE_ERROR_MAX {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(TABLE_ERROR_MAX - 3).collect();
    cut.push_str("...");
    cut
}

/// How often a run's history is read again: a rollout's is long and changes slowly.
fn poll_interval(machine: Machine) -> Duration {
    match machine {
        Machine::Rollout => Duration::from_secs(3),
        Machine::Deploy | Machine::Teardown => Duration::from_secs(1),
    }
}

/// Longest error shown in a rollout's table (the JSON output has it whole).
const TABLE_ERROR_MAX: usize = 160;

/// A rollout's report as a table, one row per tenant, then its summary
/// line; `status` is the run's, for a run that ended before its report step.
fn report_text(report: &RolloutReport, location: Option<&str>, status: &str) -> String {
    let outcome = |o: TenantOutcome| {
        match o {
            TenantOutcome::Succeeded => "succeeded",
            TenantOutcome::Failed => "FAILED",
            TenantOutcome::Skipped => "skipped (on the image)",
            TenantOutcome::Locked => "locked",
        }
        .to_string()
    };
    let mut rows: Vec<Vec<String>> = report
        .tenants
        .iter()
        .map(|t| {
            // A child's execution by name: its ARN's last part.
            let run = t
                .execution
                .as_deref()
                .map(|e| e.rsplit(':').next().unwrap_or(e).to_string());
            vec![
                t.tenant.to_string(),
                t.wave.map(|w| w.to_string()).unwrap_or_else(|| "-".into()),
                outcome(t.outcome),
                t.duration_seconds
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                match (&t.error, run) {
                    (Some(e), _) => shorten(&error_text(Some(e), None).unwrap_or_default()),
                    (None, Some(run)) => terminal_safe(&run),
                    (None, None) => String::new(),
                },
            ]
        })
        .collect();
    rows.extend(report.untouched.iter().map(|t| {
        vec![
            t.to_string(),
            "-".into(),
            "untouched (wave not started)".into(),
            "-".into(),
            String::new(),
        ]
    }));
    let mut text = String::new();
    if !rows.is_empty() {
        text.push_str(&table(
            &["TENANT", "WAVE", "OUTCOME", "SECONDS", "EXECUTION / ERROR"],
            &rows,
        ));
        text.push('\n');
    }
    if report.status == RolloutStatus::InProgress && status != "RUNNING" {
        // Stopped, failed or timed out before its report step: say so, not "in progress".
        let c = &report.counts;
        let when = match report.waves_completed {
            0 => "before its first wave".to_string(),
            n => format!("after wave {n} of {}, before its report", report.waves),
        };
        text.push_str(&format!(
            "rollout {}: {} to {} ended {status} {when}; {} deployed, {} failed, {} locked, {} untouched, {} already on the image",
            terminal_safe(&report.rollout),
            report.image,
            report.environment,
            c.succeeded,
            c.failed,
            c.locked,
            c.untouched,
            c.skipped
        ));
    } else {
        text.push_str(&terminal_safe(&report.summary()));
    }
    if let Some(at) = location {
        text.push_str(&format!("\nreport: {}", terminal_safe(at)));
    }
    text
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
        let events = stack.history(&run.arn).await?;
        let phases = match run.machine {
            Machine::Rollout => fleet::steps(&events, now()),
            Machine::Deploy | Machine::Teardown => progress::phases(&events, now()),
        };
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
            let (rollout, report_location) = match run.machine {
                Machine::Rollout => fleet::report(&events, &run.name).unzip(),
                Machine::Deploy | Machine::Teardown => (None, None),
            };
            let report_location = report_location.flatten();
            if let (Output::Text, Some(r)) = (output, &rollout) {
                println!(
                    "{}",
                    report_text(r, report_location.as_deref(), described.status().as_str())
                );
            }
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
                rollout,
                report_location,
                console_url: stack.console_url(&run.arn),
            };
            // A halted rollout's cause is its summary, printed just above: name the error only.
            let shown = match (&report.rollout, described.error()) {
                (Some(_), Some(name)) if name == error_names::ROLLOUT_HALTED => {
                    Some(name.to_string())
                }
                _ => error.clone(),
            };
            match output {
                Output::Json => print_json(&report)?,
                Output::Text => println!(
                    "execution {}: {status} in {seconds:.1} s{}",
                    run.name,
                    shown
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
        tokio::time::sleep(poll_interval(run.machine)).await;
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
    use serde_json::json;
    use stepdeploy_shared::rollout::{RolloutPlan, RolloutRequest, TenantResult};

    /// A sit rollout of six tenants: the canary succeeded, wave 2 lost
    /// charlie, so wave 3 never started; echo was on the image already.
    fn halted() -> RolloutReport {
        let request: RolloutRequest = serde_json::from_value(json!({
            "environment": "sit", "image": "wordpress:6.5-apache", "tenants": {"labels": {"fleet": "web"}},
            "waves": [{"labels": {"ring": "canary"}}, {"count": 2}], "max_parallel": 5,
            "failure_budget": {"per_wave": 0, "overall": 0}, "bake_seconds": 300,
            "requested_by": "jane@kimmyai.io", "request_id": "r42"
        }))
        .expect("request");
        let plan: RolloutPlan = serde_json::from_value(json!({
            "waves": [{"number": 1, "tenants": ["alpha"]}, {"number": 2, "tenants": ["bravo", "charlie"]},
                      {"number": 3, "tenants": ["delta", "foxtrot"]}],
            "skipped": ["echo"], "total": 5
        }))
        .expect("plan");
        let results: Vec<TenantResult> = serde_json::from_value(json!([
            {"tenant": "alpha", "outcome": "succeeded", "duration_seconds": 211,
             "execution": "arn:aws:states:eu-west-1:123456789012:execution:stepdeploy-deploy-tenant:alpha-sit-rollout-sit-r42_5d1e0c9b7a"},
            {"tenant": "bravo", "outcome": "succeeded", "duration_seconds": 240,
             "execution": "arn:aws:states:eu-west-1:123456789012:execution:stepdeploy-deploy-tenant:bravo-sit-rollout-sit-r42_5d1e0c9b7a"},
            {"tenant": "charlie", "outcome": "failed", "duration_seconds": 247,
             "execution": "arn:aws:states:eu-west-1:123456789012:execution:stepdeploy-deploy-tenant:charlie-sit-rollout-sit-r42_5d1e0c9b7a",
             "error": format!("VerificationFailed: Not stable after 10 rounds of checks; failing: http: HTTP 500 {}", "x".repeat(200))}
        ]))
        .expect("results");
        RolloutReport::new("rollout-sit-r42", &request, &plan, 2, &results)
    }

    #[test]
    fn a_rollout_report_is_a_table_and_its_summary() {
        let text = report_text(
            &halted(),
            Some("s3://stepdeploy-config-sit/_rollouts/sit/rollout-sit-r42.json"),
            "FAILED",
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "TENANT   WAVE  OUTCOME                       SECONDS  EXECUTION / ERROR"
        );
        assert_eq!(
            lines[1],
            "alpha    1     succeeded                     211      alpha-sit-rollout-sit-r42_5d1e0c9b7a"
        );
        assert!(lines[3].starts_with(
            "charlie  2     FAILED                        247      VerificationFailed: Not stable"
        ));
        assert!(
            lines[3].ends_with("xxx...") && lines[3].len() < 220,
            "{}",
            lines[3]
        );
        assert_eq!(
            lines[4].trim_end(),
            "echo     -     skipped (on the image)        -"
        );
        assert_eq!(
            lines[5].trim_end(),
            "delta    -     untouched (wave not started)  -"
        );
        assert!(
            lines[7].starts_with("rollout rollout-sit-r42: wordpress:6.5-apache to sit halted after wave 2 of 3 (wave 2: 1 of 2 tenants failed (charlie)"),
            "{}",
            lines[7]
        );
        assert_eq!(
            lines[8],
            "report: s3://stepdeploy-config-sit/_rollouts/sit/rollout-sit-r42.json"
        );
    }

    #[test]
    fn a_rollout_stopped_before_its_report_says_so() {
        let mut report = halted();
        report.status = RolloutStatus::InProgress;
        report.waves_completed = 0;
        let text = report_text(&report, None, "ABORTED");
        assert!(
            text.ends_with("rollout rollout-sit-r42: wordpress:6.5-apache to sit ended ABORTED before its first wave; 2 deployed, 1 failed, 0 locked, 2 untouched, 1 already on the image"),
            "{text}"
        );
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
