//! A fleet rollout's progress, read from its Step Functions history: one
//! line per top-level state (Plan, ApprovalGate, each RunWave with its
//! tenants, Judge with the failure budget's verdict, Bake, Report), and the
//! rollout's report rebuilt from the state the run carried. Pure, like
//! `progress`, so `watch` renders it and tests need no AWS.
//!
//! The report is rebuilt with the same [`RolloutReport::new`] the rollout's
//! report step writes to `s3://{config bucket}/_rollouts/…`, from the same
//! state, so it is that report without reading the environment's bucket
//! (the environment's read-only role reads only the registry).

use crate::progress::{Event, Phase, PhaseStatus};
use crate::render::terminal_safe;
use serde_json::Value;
use stepdeploy_shared::rollout::{RolloutPlan, RolloutReport, RolloutRequest, TenantResult};

/// Events that open a line: the rollout's tasks, its wave Map and its bake.
const ENTERED: [&str; 3] = ["TaskStateEntered", "MapStateEntered", "WaitStateEntered"];
/// Events that close one.
const EXITED: [&str; 3] = ["TaskStateExited", "MapStateExited", "WaitStateExited"];
/// Tenants named in a line before "and N more".
const NAMED_MAX: usize = 8;

/// The rollout's steps in the order they were entered; the tenant runs
/// inside a wave are counted, not listed.
pub fn steps(events: &[Event], now: f64) -> Vec<Phase> {
    let mut steps: Vec<Phase> = Vec::new();
    let mut current: Option<usize> = None;
    // Inside the wave's Map: its iterations' own states are the children's business.
    let mut in_map = false;
    let mut wave_size = 0usize;
    let mut wave_done = 0usize;
    for event in events {
        let kind = event.kind.as_str();
        if in_map {
            match kind {
                "MapIterationSucceeded" | "MapIterationFailed" | "MapIterationAborted" => {
                    wave_done += 1;
                    continue;
                }
                "MapStateExited" => in_map = false,
                "MapStateFailed" | "MapStateAborted" => {
                    in_map = false;
                    continue;
                }
                k if k.starts_with("Execution") => in_map = false,
                _ => continue,
            }
        }
        match kind {
            k if ENTERED.contains(&k) => {
                let name = event.state.clone().unwrap_or_default();
                let data = json(event.data.as_deref());
                let detail = match k {
                    "MapStateEntered" => {
                        wave_size = data["next"]["children"].as_array().map_or(0, Vec::len);
                        wave_done = 0;
                        in_map = true;
                        Some(wave_text(&data))
                    }
                    "WaitStateEntered" => data["next"]["number"]
                        .as_u64()
                        .map(|n| format!("before wave {n}")),
                    _ => None,
                };
                let round = 1 + steps.iter().filter(|p| p.name == name).count() as u32;
                steps.push(Phase {
                    name,
                    round,
                    status: PhaseStatus::Running,
                    started: event.at,
                    seconds: 0.0,
                    retries: 0,
                    error: None,
                    detail,
                });
                current = Some(steps.len() - 1);
            }
            "TaskScheduled" => {
                if let Some(p) = current.and_then(|i| steps.get_mut(i)) {
                    if p.error.take().is_some() {
                        p.retries += 1;
                    }
                }
            }
            "TaskFailed" | "TaskTimedOut" | "LambdaFunctionFailed" | "LambdaFunctionTimedOut" => {
                if let Some(p) = current.and_then(|i| steps.get_mut(i)) {
                    p.error = event.error.clone().or_else(|| Some(event.kind.clone()));
                }
            }
            k if EXITED.contains(&k) => {
                if let Some(p) = current.take().and_then(|i| steps.get_mut(i)) {
                    p.seconds = event.at - p.started;
                    p.status = if p.error.is_some() {
                        PhaseStatus::Failed
                    } else {
                        PhaseStatus::Succeeded
                    };
                    let data = json(event.data.as_deref());
                    if let Some(detail) = exit_text(&p.name, &data) {
                        p.detail = Some(detail);
                    }
                }
            }
            "ExecutionFailed" | "ExecutionAborted" | "ExecutionTimedOut" => {
                if let Some(p) = current.take().and_then(|i| steps.get_mut(i)) {
                    p.seconds = event.at - p.started;
                    p.status = PhaseStatus::Failed;
                    if p.error.is_none() {
                        p.error = event.error.clone().or_else(|| Some(event.kind.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(p) = current.and_then(|i| steps.get_mut(i)) {
        p.seconds = (now - p.started).max(0.0);
        if in_map {
            let wave = p.detail.take().unwrap_or_default();
            p.detail = Some(format!("{wave}; {wave_done} of {wave_size} finished"));
        }
    }
    for p in &mut steps {
        p.detail = p.detail.as_deref().map(terminal_safe);
    }
    steps
}

/// A state's data as JSON (`Null` when absent or not JSON).
fn json(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

/// `wave 2 of 3: charlie, delta, echo` from the RunWave's input.
fn wave_text(state: &Value) -> String {
    let tenants: Vec<String> = state["next"]["children"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["tenant"].as_str().map(str::to_string))
        .collect();
    let number = state["next"]["number"].as_u64().unwrap_or(0);
    match state["plan"]["waves"].as_array().map(Vec::len) {
        Some(of) => format!("wave {number} of {of}: {}", named(&tenants)),
        None => format!("wave {number}: {}", named(&tenants)),
    }
}

/// What a finished step found, from its output.
fn exit_text(step: &str, out: &Value) -> Option<String> {
    match step {
        "Plan" => {
            let waves = out["plan"]["waves"].as_array()?.len();
            let total = out["plan"]["total"].as_u64().unwrap_or(0);
            let skipped = out["plan"]["skipped"].as_array().map_or(0, Vec::len);
            let on_image = if skipped > 0 {
                format!(
                    ", {} already on the image",
                    plural(skipped as u64, "tenant")
                )
            } else {
                String::new()
            };
            Some(if waves == 0 {
                format!("nothing to deploy{on_image}")
            } else {
                format!(
                    "{}, {} to deploy{on_image}",
                    plural(waves as u64, "wave"),
                    plural(total, "tenant")
                )
            })
        }
        "ConfirmApproval" => {
            let by: Vec<&str> = out["approval"]["approved_by"]
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .collect();
            Some(format!("approved by {}", by.join(", ")))
        }
        "Judge" => Some(judge_text(out)),
        "Report" => {
            let status = out["report"]["status"].as_str()?;
            Some(match out["report"]["report"].as_str() {
                Some(at) => format!("{status}; report {at}"),
                None => status.to_string(),
            })
        }
        _ => None,
    }
}

/// `wave 1: 2 succeeded, 1 failed (bravo); halt: …` from Judge's output.
fn judge_text(state: &Value) -> String {
    let completed = state["completed"].as_u64().unwrap_or(0);
    let tenants: Vec<&str> = state["plan"]["waves"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|w| w["number"].as_u64() == Some(completed))
        .and_then(|w| w["tenants"].as_array())
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    // The last result of each tenant counts, as the budget counts it.
    let outcome = |t: &str| {
        state["results"]
            .as_array()
            .into_iter()
            .flatten()
            .rev()
            .find(|r| r["tenant"].as_str() == Some(t))
            .and_then(|r| r["outcome"].as_str())
            .unwrap_or("failed")
            .to_string()
    };
    let mut tally: Vec<(String, Vec<String>)> = Vec::new();
    for t in tenants {
        let o = outcome(t);
        match tally.iter_mut().find(|(k, _)| *k == o) {
            Some((_, names)) => names.push(t.to_string()),
            None => tally.push((o, vec![t.to_string()])),
        }
    }
    tally.sort_by_key(|(o, _)| o != "succeeded");
    let counts: Vec<String> = tally
        .iter()
        .map(|(o, names)| {
            if o == "succeeded" {
                format!("{} {o}", names.len())
            } else {
                format!("{} {o} ({})", names.len(), named(names))
            }
        })
        .collect();
    let verdict = match state["verdict"]["verdict"].as_str() {
        Some("halt") => format!(
            "halt: {}",
            state["verdict"]["reason"]
                .as_str()
                .unwrap_or("over the failure budget")
        ),
        Some(v) => v.to_string(),
        None => "no verdict".to_string(),
    };
    format!("wave {completed}: {}; {verdict}", counts.join(", "))
}

/// `1 wave`, `3 waves`.
fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `a, b, c` or `a, …, h and 4 more`.
fn named(names: &[String]) -> String {
    let shown = names
        .iter()
        .take(NAMED_MAX)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    match names.len().saturating_sub(NAMED_MAX) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// The rollout's report as it stands at the end of `events`, and where the
/// report step put it (`s3://…`, once it ran); `None` before the plan (or
/// when the plan failed: then nothing was deployed).
pub fn report(events: &[Event], rollout: &str) -> Option<(RolloutReport, Option<String>)> {
    // The newest full state: Plan's and each Judge's output, Report's input.
    let state = events
        .iter()
        .rev()
        .filter(|e| {
            matches!(
                (e.kind.as_str(), e.state.as_deref()),
                ("TaskStateExited", Some("Plan" | "Judge")) | ("TaskStateEntered", Some("Report"))
            )
        })
        .map(|e| json(e.data.as_deref()))
        .find(|s| s.get("request").is_some() && s.get("plan").is_some())?;
    let request: RolloutRequest = serde_json::from_value(state["request"].clone()).ok()?;
    let plan: RolloutPlan = serde_json::from_value(state["plan"].clone()).ok()?;
    let results: Vec<TenantResult> =
        serde_json::from_value(state["results"].clone()).unwrap_or_default();
    let completed = state["completed"]
        .as_u64()
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(0);
    let name = state["rollout"]["name"].as_str().unwrap_or(rollout);
    let location = events
        .iter()
        .rev()
        .filter(|e| e.kind == "TaskStateExited" && e.state.as_deref() == Some("Report"))
        .find_map(|e| {
            json(e.data.as_deref())["report"]["report"]
                .as_str()
                .map(str::to_string)
        });
    Some((
        RolloutReport::new(name, &request, &plan, completed, &results),
        location,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use stepdeploy_shared::rollout::{RolloutStatus, TenantOutcome};

    fn ev(kind: &str, at: f64, state: Option<&str>, data: Option<Value>) -> Event {
        Event {
            kind: kind.into(),
            at,
            state: state.map(Into::into),
            error: None,
            data: data.map(|d| d.to_string()),
        }
    }

    fn failed(kind: &str, at: f64, error: &str) -> Event {
        Event {
            kind: kind.into(),
            at,
            state: None,
            error: Some(error.into()),
            data: None,
        }
    }

    /// The state the rollout carries, `completed` waves in, with `results`.
    fn state(completed: u32, results: Value, verdict: Value, next: Option<u32>) -> Value {
        let children = |n: u32| match n {
            1 => {
                json!([{"tenant": "alpha", "name": "alpha-dev-r_1"}, {"tenant": "bravo", "name": "bravo-dev-r_1"}])
            }
            _ => json!([{"tenant": "charlie", "name": "charlie-dev-r_1"}]),
        };
        json!({
            "rollout": {"name": "rollout-dev-r1", "bake_seconds": 30},
            "request": {
                "environment": "dev", "image": "wordpress:6.5-apache", "tenants": "all",
                "waves": [{"tenants": ["alpha", "bravo"]}], "max_parallel": 5,
                "failure_budget": {"per_wave": 0, "overall": 0}, "bake_seconds": 30,
                "requested_by": "jane@kimmyai.io", "request_id": "r1"
            },
            "plan": {
                "waves": [{"number": 1, "tenants": ["alpha", "bravo"]}, {"number": 2, "tenants": ["charlie"]}],
                "skipped": ["delta"], "total": 3
            },
            "completed": completed,
            "results": results,
            "verdict": verdict,
            "next": next.map(|n| json!({"number": n, "children": children(n)})),
            "report_key": "_rollouts/dev/rollout-dev-r1.json"
        })
    }

    fn ok(t: &str) -> Value {
        json!({"tenant": t, "outcome": "succeeded", "execution": format!("arn:x:{t}-dev-r_1"), "duration_seconds": 42})
    }

    fn bad(t: &str) -> Value {
        json!({"tenant": t, "outcome": "failed", "execution": format!("arn:x:{t}-dev-r_1"), "error": "VerificationFailed: http: HTTP 500"})
    }

    /// A rollout whose first wave succeeds and whose second fails its only tenant.
    fn halted_history() -> Vec<Event> {
        let planned = state(0, json!([]), json!({"verdict": "continue"}), Some(1));
        let after1 = state(
            1,
            json!([ok("alpha"), ok("bravo")]),
            json!({"verdict": "continue"}),
            Some(2),
        );
        let halt = json!({"verdict": "halt", "reason": "wave 2: 1 of 1 tenants failed (charlie); the per-wave failure budget (0) allows 0"});
        let after2 = state(
            2,
            json!([ok("alpha"), ok("bravo"), bad("charlie")]),
            halt,
            None,
        );
        let mut reported = after2.clone();
        reported["report"] = json!({"status": "halted", "summary": "…", "report": "s3://dev-config/_rollouts/dev/rollout-dev-r1.json"});
        vec![
            ev("ExecutionStarted", 0.0, None, None),
            ev(
                "TaskStateEntered",
                0.0,
                Some("Plan"),
                Some(json!({"event": {}})),
            ),
            ev("TaskScheduled", 0.1, None, None),
            ev("TaskSucceeded", 1.0, None, None),
            ev("TaskStateExited", 1.0, Some("Plan"), Some(planned.clone())),
            ev(
                "ChoiceStateEntered",
                1.0,
                Some("AnyWave"),
                Some(planned.clone()),
            ),
            ev("MapStateEntered", 1.0, Some("RunWave"), Some(planned)),
            ev("MapStateStarted", 1.0, None, None),
            ev("MapIterationStarted", 1.0, None, None),
            ev("TaskStateEntered", 1.0, Some("DeployTenant"), None),
            failed("TaskFailed", 5.0, "States.TaskFailed"),
            ev("TaskStateExited", 5.0, Some("DeployTenant"), None),
            ev("MapIterationSucceeded", 5.0, None, None),
            ev("MapIterationSucceeded", 9.0, None, None),
            ev("MapStateSucceeded", 9.0, None, None),
            ev("MapStateExited", 9.0, Some("RunWave"), None),
            ev("TaskStateEntered", 9.0, Some("Judge"), None),
            ev("TaskStateExited", 9.5, Some("Judge"), Some(after1.clone())),
            ev("WaitStateEntered", 9.5, Some("Bake"), Some(after1.clone())),
            ev("WaitStateExited", 39.5, Some("Bake"), Some(after1.clone())),
            ev("MapStateEntered", 39.5, Some("RunWave"), Some(after1)),
            ev("MapStateStarted", 39.5, None, None),
            ev("MapIterationSucceeded", 50.0, None, None),
            ev("MapStateExited", 50.0, Some("RunWave"), None),
            ev("TaskStateEntered", 50.0, Some("Judge"), None),
            ev("TaskStateExited", 50.5, Some("Judge"), Some(after2.clone())),
            ev("TaskStateEntered", 50.5, Some("Report"), Some(after2)),
            ev("TaskStateExited", 51.0, Some("Report"), Some(reported)),
            ev("FailStateEntered", 51.0, Some("Halted"), None),
            failed(
                "ExecutionFailed",
                51.0,
                "RolloutHalted: rollout rollout-dev-r1: …",
            ),
        ]
    }

    #[test]
    fn one_line_per_wave_verdict_bake_and_report() {
        let lines: Vec<String> = steps(&halted_history(), 60.0)
            .iter()
            .map(Phase::line)
            .collect();
        assert_eq!(
            lines,
            [
                "  Plan           ok           1.0 s  2 waves, 3 tenants to deploy, 1 tenant already on the image",
                "  RunWave        ok           8.0 s  wave 1 of 2: alpha, bravo",
                "  Judge          ok           0.5 s  wave 1: 2 succeeded; continue",
                "  Bake           ok          30.0 s  before wave 2",
                "  RunWave        ok          10.5 s  wave 2 of 2: charlie",
                "  Judge          ok           0.5 s  wave 2: 1 failed (charlie); halt: wave 2: 1 of 1 tenants failed (charlie); the per-wave failure budget (0) allows 0",
                "  Report         ok           0.5 s  halted; report s3://dev-config/_rollouts/dev/rollout-dev-r1.json",
            ]
        );
    }

    #[test]
    fn a_running_wave_counts_its_finished_tenants() {
        let history = halted_history();
        let p = steps(&history[..14], 9.0);
        let last = p.last().expect("a step");
        assert_eq!(last.status, PhaseStatus::Running);
        assert_eq!(
            last.line(),
            "  RunWave        running      8.0 s  wave 1 of 2: alpha, bravo; 2 of 2 finished"
        );
        assert_eq!(p.len(), 2, "the tenants' own states make no line: {p:?}");
    }

    #[test]
    fn a_failed_plan_ends_the_rollout_with_its_error() {
        let events = vec![
            ev("TaskStateEntered", 0.0, Some("Plan"), None),
            ev("TaskScheduled", 0.1, None, None),
            failed(
                "TaskFailed",
                0.5,
                "ValidationFailed: invalid input: detail.tenants.labels: no tenant deployed in dev has fleet=x",
            ),
            failed("ExecutionFailed", 0.6, "ValidationFailed: …"),
        ];
        let p = steps(&events, 1.0);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].status, PhaseStatus::Failed);
        assert!(
            p[0].line()
                .contains("detail.tenants.labels: no tenant deployed in dev has fleet=x"),
            "{}",
            p[0].line()
        );
        assert!(
            report(&events, "rollout-dev-x").is_none(),
            "no plan, no report"
        );
    }

    #[test]
    fn the_report_is_rebuilt_from_the_state_the_run_carried() {
        let (report, location) = report(&halted_history(), "rollout-dev-r1").expect("a report");
        assert_eq!(
            location.as_deref(),
            Some("s3://dev-config/_rollouts/dev/rollout-dev-r1.json")
        );
        assert_eq!(report.status, RolloutStatus::Halted);
        let outcomes: Vec<(&str, Option<u32>, TenantOutcome)> = report
            .tenants
            .iter()
            .map(|t| (t.tenant.as_str(), t.wave, t.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("alpha", Some(1), TenantOutcome::Succeeded),
                ("bravo", Some(1), TenantOutcome::Succeeded),
                ("charlie", Some(2), TenantOutcome::Failed),
                ("delta", None, TenantOutcome::Skipped),
            ]
        );
        assert!(
            report.summary().contains("halted after wave 2 of 2"),
            "{}",
            report.summary()
        );
        // Stopped mid-way: the report as the last verdict left it.
        let (midway, location) = report_of(&halted_history()[..20]);
        assert_eq!(midway.status, RolloutStatus::InProgress);
        assert_eq!(midway.untouched.len(), 1);
        assert_eq!(location, None);
    }

    fn report_of(events: &[Event]) -> (RolloutReport, Option<String>) {
        report(events, "rollout-dev-r1").expect("a report")
    }

    #[test]
    fn long_waves_name_eight_tenants() {
        let names: Vec<String> = (1..=11).map(|i| format!("t{i:02}")).collect();
        assert_eq!(
            named(&names),
            "t01, t02, t03, t04, t05, t06, t07, t08 and 3 more"
        );
    }
}
