//! The run's delivery metrics: one CloudWatch embedded-metric-format line
//! on stdout (CloudWatch Logs makes the metrics; see
//! `stepdeploy_shared::domain::metrics`), timed from the moments the state
//! machine recorded: the execution's start, each phase's
//! `$$.State.EnteredTime`, the gate's wait and the verify loop's start.
//!
//! A phase lasts from its entry to the next recorded entry (the last one to
//! notify): a failed run's last phase includes its rollback.

use crate::handler::Outcome;
use stepdeploy_shared::contract::RunState;
use stepdeploy_shared::domain::metrics::{PhaseTiming, RunMetrics, RunOutcome};
use stepdeploy_shared::error_names::is_refusal;

/// Milliseconds since the epoch of an RFC 3339 moment.
fn millis(at: Option<&str>) -> Option<u64> {
    stepdeploy_shared::names::epoch_millis(at?)
}

/// The metrics of a finished run, ended `now_ms`; `None` for a refused
/// request, which is no deployment: one that never got a plan, or one a
/// check stopped before it changed anything (its error one of
/// [`stepdeploy_shared::error_names::REFUSALS`]: the approvers' no, a busy tenant, a closed window, …).
pub fn of(run: &RunState, outcome: Outcome, now_ms: u64) -> Option<RunMetrics> {
    let plan = run.plan()?;
    let error = run.error.as_ref().and_then(|e| e.error.as_deref());
    if outcome == Outcome::Failed && error.is_some_and(is_refusal) {
        return None;
    }
    let started = millis(Some(&plan.started_at))?;
    let entered = |step: Option<&str>| millis(step);
    let gate = run
        .approval_wait
        .as_ref()
        .and_then(|w| entered(w.waited_from.as_deref()));
    let marks: Vec<(&str, u64)> = [
        ("bootstrap", Some(started)),
        ("approval", gate),
        (
            "database",
            run.database
                .as_ref()
                .and_then(|s| entered(s.entered_at.as_deref())),
        ),
        (
            "ecs",
            run.ecs
                .as_ref()
                .and_then(|s| entered(s.entered_at.as_deref())),
        ),
        (
            "verify",
            run.verify_loop
                .as_ref()
                .and_then(|l| entered(l.started_at.as_deref())),
        ),
        (
            "dns",
            run.dns
                .as_ref()
                .and_then(|s| entered(s.entered_at.as_deref())),
        ),
    ]
    .into_iter()
    .filter_map(|(name, at)| Some((name, at?)))
    .collect();
    let phases = marks
        .iter()
        .enumerate()
        .map(|(i, (name, at))| {
            let until = marks.get(i + 1).map_or(now_ms, |(_, next)| *next);
            PhaseTiming {
                name: (*name).to_string(),
                seconds: until.saturating_sub(*at) as f64 / 1000.0,
            }
        })
        .collect();
    let confirmed = run
        .approval
        .as_ref()
        .and_then(|a| entered(a.confirmed_at.as_deref()));
    let approval_wait_seconds = match (gate, confirmed) {
        (Some(from), Some(to)) => Some(to.saturating_sub(from) as f64 / 1000.0),
        _ => None,
    };
    let rolled_back = run
        .rollback
        .as_ref()
        .is_some_and(|r| !r.output.removed.is_empty() || !r.output.restored.is_empty());
    Some(RunMetrics {
        environment: plan.environment.to_string(),
        tenant: plan.tenant.to_string(),
        execution: plan
            .execution
            .rsplit(':')
            .next()
            .unwrap_or(&plan.execution)
            .to_string(),
        outcome: match outcome {
            Outcome::Succeeded => RunOutcome::Succeeded,
            Outcome::Failed => RunOutcome::Failed,
        },
        started_at_ms: started,
        ended_at_ms: now_ms,
        phases,
        approval_wait_seconds,
        rolled_back,
    })
}

/// Writes the run's EMF line to stdout (not through `tracing`: its JSON
/// formatter would nest the line, and CloudWatch would extract nothing).
pub fn emit(run: &RunState, outcome: Outcome) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    if let Some(metrics) = of(run, outcome, now_ms) {
        println!("{}", metrics.emf_line());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_timed_from_the_recorded_entries_and_the_gate_from_its_wait() {
        let mut plan = stepdeploy_shared::plan::sample("wordpress:6.4-apache", 140);
        plan.started_at = "2026-11-30T10:00:00Z".into();
        let run: RunState = serde_json::from_value(serde_json::json!({
            "plan": {"output": plan, "entered_at": "2026-11-30T10:05:00Z"},
            "approval_wait": {"waited_from": "2026-11-30T10:00:02Z"},
            "approval": {"approved_by": ["a", "b"], "late": [], "confirmed_at": "2026-11-30T10:04:02Z"},
            "database": {"output": {"database": "d", "username": "u", "secret_arn": "s", "changes": []}, "entered_at": "2026-11-30T10:04:05.500000+00:00"},
            "ecs": {"output": {"task_definition_arn": "td", "target_group_arn": "tg", "access_point_id": "ap", "listener_rule_arn": "r", "service_arn": "svc", "changes": []}, "entered_at": "2026-11-30T10:04:10Z"},
            "verify_loop": {"attempt": 3, "started_at": "2026-11-30T10:04:40Z"},
            "dns": {"output": {"record": "r", "target": "t", "changed": true, "url": "u", "status": 200}, "entered_at": "2026-11-30T10:05:40Z"},
        }))
        .expect("state");
        let end = millis(Some("2026-11-30T10:06:00Z")).expect("time");
        let m = of(&run, Outcome::Succeeded, end).expect("metrics");
        let times: Vec<(&str, f64)> = m
            .phases
            .iter()
            .map(|p| (p.name.as_str(), p.seconds))
            .collect();
        assert_eq!(
            times,
            [
                ("bootstrap", 2.0),
                ("approval", 243.5),
                ("database", 4.5),
                ("ecs", 30.0),
                ("verify", 60.0),
                ("dns", 20.0)
            ]
        );
        assert_eq!(m.approval_wait_seconds, Some(240.0));
        assert_eq!(m.ended_at_ms - m.started_at_ms, 360_000);
        assert!(!m.rolled_back);
        let line: serde_json::Value = serde_json::from_str(&m.emf_line()).expect("json");
        assert_eq!(line["Environment"], "sit");
        assert_eq!(line["DurationSeconds"], 360.0);
        assert_eq!(line["ApprovalWaitSeconds"], 240.0);
        // A run bootstrap refused made no plan: no deployment to count.
        assert!(of(&RunState::default(), Outcome::Failed, end).is_none());
        // Nor does a run the approvers rejected, with a plan and a gate.
        let mut refused = run.clone();
        refused.error =
            serde_json::from_value(serde_json::json!({"Error": "ApprovalRejected", "Cause": "no"}))
                .ok();
        assert!(of(&refused, Outcome::Failed, end).is_none());
        // A phase that failed is a failed deployment.
        let mut failed = run;
        failed.error = serde_json::from_value(
            serde_json::json!({"Error": "VerificationFailed", "Cause": "503"}),
        )
        .ok();
        let m = of(&failed, Outcome::Failed, end).expect("a failure counts");
        assert_eq!(m.outcome, RunOutcome::Failed);
    }
}
