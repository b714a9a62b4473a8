//! `stats`: the four DORA figures of the deploy runs, per environment and
//! over all of them, for a window ending now (`--since`, default 30 days).
//!
//! Reads the deploy-tenant state machine's executions (Step Functions'
//! listing, newest first; teardowns and rollouts are not deployments, a
//! rollout's per-tenant children are) and attributes each to its tenant and
//! environment by its name, as `status` does. The figures are computed by
//! [`crate::dora`], which says exactly how:
//!
//! - deployment frequency: successful runs that finished in the window, and
//!   per day of the window;
//! - lead time for changes: stop − start of each successful run (the start
//!   is when the request event arrived; a rollout's child starts with its
//!   wave), median and p90;
//! - change failure rate: failed ÷ finished runs (aborted and timed out
//!   count as failed; running runs are left out); a run refused before it
//!   changed anything (its error one of [`stepdeploy_shared::error_names::REFUSALS`], read with
//!   one DescribeExecution per failed run in the window) is in no figure,
//!   only counted (REFUSED);
//! - time to restore: from each failed run's end to the end of the next
//!   successful run of the same tenant in the same environment, median;
//!   failures with no such run are listed as unrestored.
//!
//! Step Functions lists an execution for 90 days after it ends, so a longer
//! window only holds what is still listed; the listing is read up to its
//! newest 10,000 runs.

use super::{environment, environments};
use crate::args::{self, Global, Output};
use crate::dora::{self, human_duration, Deployment, Figures, Outcome, Report, Source, Window};
use crate::error::CliError;
use crate::render::{now, print_json, table, timestamp};
use crate::stack::{Machine, Stack};
use serde::Serialize;
use stepdeploy_shared::names::parse_execution_name;
use stepdeploy_shared::validate::FieldError;
use stepdeploy_shared::EnvironmentName;

/// Most runs `Stack::runs` reads from the listing.
const LISTING_CAP: usize = 10_000;

/// The window as printed.
#[derive(Debug, Serialize)]
struct WindowDoc {
    since: String,
    until: String,
    days: f64,
}

/// `--output json`.
#[derive(Debug, Serialize)]
struct StatsDoc<'a> {
    window: WindowDoc,
    environments: &'a [Figures],
    overall: &'a Figures,
    /// Set when the listing was cut before the window's start.
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

/// `stepdeploy stats`.
pub async fn stats(stack: &Stack, global: &Global, a: &args::Stats) -> Result<(), CliError> {
    let period = dora::parse_since(&a.since).map_err(|e| FieldError::new("--since", e))?;
    let only = a.environment.as_deref();
    if let Some(name) = only {
        EnvironmentName::parse(name).map_err(|e| e.within("--env"))?;
        // With the configs at hand, a typo is refused rather than shown as an idle environment.
        if global.config_dir.is_some() {
            environment(&environments(global)?, name)?;
        }
    }
    let until = now();
    let window = Window {
        since: until - period,
        until,
    };
    let runs = stack.runs(Machine::Deploy, "", usize::MAX).await?;
    let mut deployments = Vec::with_capacity(runs.len());
    for run in &runs {
        let Some((tenant, env)) = parse_execution_name(&run.name) else {
            continue;
        };
        // Only a failed run's error tells a refusal from a failure, and the
        // listing does not carry it: one DescribeExecution per failed run
        // that finished in the window (few, unlike the runs).
        let error = if run.status == "FAILED" && run.stopped.is_some_and(|t| t >= window.since) {
            stack
                .describe_full(&run.arn)
                .await?
                .and_then(|d| d.error().map(str::to_string))
        } else {
            None
        };
        deployments.push(Deployment {
            id: run.name.clone(),
            source: Source::Execution,
            tenant: tenant.to_string(),
            environment: env.to_string(),
            requested_at: run.started,
            finished_at: run.stopped,
            outcome: Outcome::from_execution(&run.status, error.as_deref()),
        });
    }
    let oldest = runs.iter().map(|r| r.started).min_by(f64::total_cmp);
    let warning =
        (runs.len() >= LISTING_CAP && oldest.is_some_and(|o| o > window.since)).then(|| {
            format!(
            "only the newest {LISTING_CAP} runs were read (back to {}); the window starts earlier",
            oldest.map(timestamp).unwrap_or_default()
        )
        });
    let asked: Vec<String> = only.map(str::to_string).into_iter().collect();
    let report = dora::compute(&deployments, window, &asked, only);
    match global.output {
        Output::Json => print_json(&StatsDoc {
            window: WindowDoc {
                since: timestamp(window.since),
                until: timestamp(window.until),
                days: window.days(),
            },
            environments: &report.environments,
            overall: &report.overall,
            warning,
        }),
        Output::Text => {
            println!("{}", text(&report, warning.as_deref()));
            Ok(())
        }
    }
}

fn or_dash(value: Option<f64>, show: impl Fn(f64) -> String) -> String {
    value.map(show).unwrap_or_else(|| "-".into())
}

fn row(label: &str, f: &Figures) -> Vec<String> {
    let cfr = &f.change_failure_rate;
    let ttr = &f.time_to_restore_seconds;
    vec![
        label.to_string(),
        f.deployment_frequency.successful.to_string(),
        or_dash(f.deployment_frequency.per_day, |d| format!("{d:.2}")),
        or_dash(f.lead_time_seconds.median, human_duration),
        or_dash(f.lead_time_seconds.p90, human_duration),
        or_dash(cfr.rate, |r| {
            format!("{:.0}% ({} of {})", r * 100.0, cfr.failed, cfr.finished)
        }),
        or_dash(ttr.median, human_duration),
        ttr.unrestored.len().to_string(),
        f.refused.to_string(),
        f.in_progress.to_string(),
    ]
}

/// The text output: the window, one row per environment (and `all` when
/// there are several), the unrestored failures.
fn text(report: &Report, warning: Option<&str>) -> String {
    let w = report.window;
    // `--since 12h` is not "0 days".
    let length = if w.days() >= 1.0 {
        format!("{:.0} days", w.days())
    } else {
        human_duration(w.until - w.since)
    };
    let mut out = format!(
        "deploy runs that finished from {} to {} ({length})\n\n",
        timestamp(w.since),
        timestamp(w.until),
    );
    let mut rows: Vec<Vec<String>> = report
        .environments
        .iter()
        .map(|f| row(f.environment.as_deref().unwrap_or("-"), f))
        .collect();
    if report.environments.len() != 1 {
        rows.push(row("all", &report.overall));
    }
    out.push_str(&table(
        &[
            "ENV",
            "DEPLOYS",
            "PER DAY",
            "LEAD TIME p50",
            "LEAD TIME p90",
            "CHANGE FAILURE RATE",
            "TIME TO RESTORE p50",
            "UNRESTORED",
            "REFUSED",
            "RUNNING",
        ],
        &rows,
    ));
    let unrestored = &report.overall.time_to_restore_seconds.unrestored;
    if !unrestored.is_empty() {
        out.push_str(&format!(
            "\n\nunrestored (no later success of the same tenant and environment): {}",
            unrestored.join(", ")
        ));
    }
    if let Some(w) = warning {
        out.push_str(&format!("\n\nwarning: {w}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: f64 = 86_400.0;

    fn deployment(id: &str, env: &str, end: Option<f64>, outcome: Outcome) -> Deployment {
        Deployment {
            id: id.into(),
            source: Source::Execution,
            tenant: id.split('-').next().unwrap_or_default().into(),
            environment: env.into(),
            requested_at: 1_000.0 * DAY,
            finished_at: end,
            outcome,
        }
    }

    fn window() -> Window {
        Window {
            since: 990.0 * DAY,
            until: 1_020.0 * DAY,
        }
    }

    #[test]
    fn text_shows_each_environment_and_all() {
        let runs = vec![
            deployment(
                "acme-dev-1",
                "dev",
                Some(1_000.0 * DAY + 60.0),
                Outcome::Succeeded,
            ),
            deployment(
                "beta-dev-1",
                "dev",
                Some(1_000.0 * DAY + 90.0),
                Outcome::Failed,
            ),
            deployment(
                "acme-prod-1",
                "prod",
                Some(1_000.0 * DAY + 600.0),
                Outcome::Succeeded,
            ),
        ];
        let report = dora::compute(&runs, window(), &[], None);
        let t = text(&report, None);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("(30 days)"), "{t}");
        assert!(lines[2].starts_with("ENV"), "{t}");
        assert!(lines[3].starts_with("dev "), "{t}");
        assert!(lines[3].contains("50% (1 of 2)"), "{t}");
        assert!(lines[4].starts_with("prod "), "{t}");
        assert!(lines[4].contains("10 min 00 s"), "{t}");
        assert!(lines[5].starts_with("all "), "{t}");
        assert!(
            t.contains(
                "unrestored (no later success of the same tenant and environment): beta-dev-1"
            ),
            "{t}"
        );
    }

    #[test]
    fn an_empty_window_shows_dashes() {
        let report = dora::compute(&[], window(), &["sit".into()], Some("sit"));
        let t = text(&report, Some("only the newest 10000 runs were read"));
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[3].starts_with("sit "), "{t}");
        assert_eq!(
            lines.len(),
            6,
            "one environment: no `all` row; then the warning\n{t}"
        );
        let cells: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(
            cells,
            ["sit", "0", "0.00", "-", "-", "-", "-", "0", "0", "0"],
            "{t}"
        );
        assert!(
            t.ends_with("warning: only the newest 10000 runs were read"),
            "{t}"
        );
        assert!(!t.contains("NaN"));
    }

    #[test]
    fn json_has_numbers_fractions_and_nulls() {
        let runs = vec![
            deployment(
                "acme-dev-1",
                "dev",
                Some(1_000.0 * DAY + 60.0),
                Outcome::Succeeded,
            ),
            deployment(
                "beta-dev-1",
                "dev",
                Some(1_000.0 * DAY + 90.0),
                Outcome::Failed,
            ),
        ];
        let report = dora::compute(&runs, window(), &[], None);
        let doc = serde_json::to_value(StatsDoc {
            window: WindowDoc {
                since: timestamp(window().since),
                until: timestamp(window().until),
                days: window().days(),
            },
            environments: &report.environments,
            overall: &report.overall,
            warning: None,
        })
        .expect("json");
        assert_eq!(doc["window"]["days"], 30.0);
        let dev = &doc["environments"][0];
        assert_eq!(dev["environment"], "dev");
        assert_eq!(dev["deployment_frequency"]["successful"], 1);
        assert_eq!(dev["lead_time_seconds"]["median"], 60.0);
        assert_eq!(dev["change_failure_rate"]["rate"], 0.5);
        assert_eq!(
            dev["time_to_restore_seconds"]["median"],
            serde_json::Value::Null
        );
        assert_eq!(
            dev["time_to_restore_seconds"]["unrestored"][0],
            "beta-dev-1"
        );
        assert_eq!(doc["overall"]["environment"], serde_json::Value::Null);
        assert!(doc.get("warning").is_none());
    }
}
