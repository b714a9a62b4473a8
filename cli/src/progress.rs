//! A run's progress, read from its Step Functions history: one line per
//! phase (Task state) with status and duration. Pure, so `watch` and
//! `history` render the same thing and tests need no AWS.

use crate::render::terminal_safe;
use serde::Serialize;

/// One history event, reduced to what progress needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Step Functions event type, e.g. `TaskStateEntered`.
    pub kind: String,
    /// Seconds since the epoch.
    pub at: f64,
    /// State name (entered/exited events).
    pub state: Option<String>,
    /// `error: cause` of a failed task or execution.
    pub error: Option<String>,
    /// The state's input (entered events) or output (exited events), JSON text.
    pub data: Option<String>,
}

/// Where a phase is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseStatus {
    /// Entered, not yet left.
    Running,
    /// Left without an error.
    Succeeded,
    /// Failed (and was caught or ended the run).
    Failed,
}

/// One phase of the run (one entry into a Task state).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    /// State name, e.g. `Ecs`.
    pub name: String,
    /// Which time this state was entered (the verify loop enters `Verify` once per round).
    pub round: u32,
    /// Status.
    pub status: PhaseStatus,
    /// Seconds since the epoch it was entered.
    pub started: f64,
    /// Seconds it took (until now while running).
    pub seconds: f64,
    /// Times the state machine retried the task.
    pub retries: u32,
    /// The error, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the state was about, when that says more than its name (a rollout's wave and its tenants, a verdict).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Phase {
    /// The phase as one aligned line of text.
    pub fn line(&self) -> String {
        let status = match self.status {
            PhaseStatus::Running => "running",
            PhaseStatus::Succeeded => "ok",
            PhaseStatus::Failed => "FAILED",
        };
        let mut line = format!("  {:<14} {:<8} {:>7.1} s", self.name, status, self.seconds);
        // A detail says which one it is (`wave 2 of 3`); the round would only repeat it.
        if self.round > 1 && self.detail.is_none() {
            line.push_str(&format!("  round {}", self.round));
        }
        if self.retries > 0 {
            line.push_str(&format!("  ({} retries)", self.retries));
        }
        if let Some(detail) = &self.detail {
            line.push_str(&format!("  {detail}"));
        }
        if let Some(error) = &self.error {
            line.push_str(&format!("  {error}"));
        }
        line
    }
}

/// Wait states that hold a run before it may start (the deploy state
/// machine's queue and deployment window): shown as one line each, with
/// why, however many times the run went round (the Bootstrap or Claim it
/// tries again between two waits is folded into that line).
const HOLDS: [&str; 4] = [
    "WaitInQueue",
    "WaitInQueueToClaim",
    "WaitForWindow",
    "WaitToClaim",
];

/// Why a run waits, from the plan in the Wait state's input.
fn hold_detail(data: Option<&str>) -> Option<String> {
    let input: serde_json::Value = serde_json::from_str(data?).ok()?;
    let plan = &input["plan"]["output"];
    if let Some(queued) = plan["queued"].as_object() {
        let behind = queued.get("behind")?.as_str()?;
        let behind = behind.rsplit(':').next().unwrap_or(behind);
        return Some(terminal_safe(&format!(
            "queued behind {behind} (position {}), waiting since {}",
            queued.get("position")?,
            queued.get("since")?.as_str()?
        )));
    }
    plan["window"]["reason"].as_str().map(terminal_safe)
}

/// The phases of a run, in the order they were entered.
pub fn phases(events: &[Event], now: f64) -> Vec<Phase> {
    let mut phases: Vec<Phase> = Vec::new();
    let mut current: Option<usize> = None;
    for event in events {
        match event.kind.as_str() {
            "WaitStateEntered" if event.state.as_deref().is_some_and(|s| HOLDS.contains(&s)) => {
                let name = event.state.clone().unwrap_or_default();
                let detail = hold_detail(event.data.as_deref());
                match phases.last_mut().filter(|p| p.name == name) {
                    // Round again: the same hold, its latest reason.
                    Some(p) => {
                        p.status = PhaseStatus::Running;
                        if detail.is_some() {
                            p.detail = detail;
                        }
                    }
                    None => phases.push(Phase {
                        name,
                        round: 1,
                        status: PhaseStatus::Running,
                        started: event.at,
                        seconds: 0.0,
                        retries: 0,
                        error: None,
                        detail,
                    }),
                }
                current = Some(phases.len() - 1);
            }
            // A retry between two waits: part of the hold, not a phase of its own.
            "TaskStateEntered"
                if matches!(event.state.as_deref(), Some("Bootstrap" | "Claim"))
                    && phases
                        .last()
                        .is_some_and(|p| HOLDS.contains(&p.name.as_str())) =>
            {
                if let Some(p) = phases.last_mut() {
                    p.status = PhaseStatus::Running;
                }
                current = Some(phases.len() - 1);
            }
            "WaitStateExited" if event.state.as_deref().is_some_and(|s| HOLDS.contains(&s)) => {
                if let Some(p) = current.take().and_then(|i| phases.get_mut(i)) {
                    p.seconds = event.at - p.started;
                    p.status = PhaseStatus::Succeeded;
                }
            }
            "TaskStateEntered" => {
                let name = event.state.clone().unwrap_or_default();
                let round = 1 + phases.iter().filter(|p| p.name == name).count() as u32;
                phases.push(Phase {
                    name,
                    round,
                    status: PhaseStatus::Running,
                    started: event.at,
                    seconds: 0.0,
                    retries: 0,
                    error: None,
                    detail: None,
                });
                current = Some(phases.len() - 1);
            }
            "TaskScheduled" => {
                // A task scheduled again after a failure inside the same state is a retry.
                if let Some(p) = current.and_then(|i| phases.get_mut(i)) {
                    if p.error.take().is_some() {
                        p.retries += 1;
                    }
                }
            }
            "TaskFailed" | "TaskTimedOut" | "LambdaFunctionFailed" | "LambdaFunctionTimedOut" => {
                if let Some(p) = current.and_then(|i| phases.get_mut(i)) {
                    p.error = event.error.clone().or_else(|| Some(event.kind.clone()));
                }
            }
            "TaskStateExited" => {
                if let Some(p) = current.take().and_then(|i| phases.get_mut(i)) {
                    p.seconds = event.at - p.started;
                    p.status = if p.error.is_some() {
                        PhaseStatus::Failed
                    } else {
                        PhaseStatus::Succeeded
                    };
                }
            }
            "ExecutionFailed" | "ExecutionAborted" | "ExecutionTimedOut" => {
                if let Some(p) = current.take().and_then(|i| phases.get_mut(i)) {
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
    if let Some(p) = current.and_then(|i| phases.get_mut(i)) {
        p.seconds = (now - p.started).max(0.0);
    }
    phases
}

/// `error: cause`, shortened to one line of reasonable length.
pub fn error_text(error: Option<&str>, cause: Option<&str>) -> Option<String> {
    let text = match (error, cause) {
        (None, None) => return None,
        (Some(e), None) => e.to_string(),
        (None, Some(c)) => c.to_string(),
        (Some(e), Some(c)) => format!("{e}: {}", cause_message(c)),
    };
    let one_line: String = terminal_safe(&text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Some(if one_line.chars().count() > 600 {
        let mut cut: String = one_line.chars().take(597).collect();
        cut.push_str("...");
        cut
    } else {
        one_line
    })
}

/// A Lambda's cause is a JSON document (`errorType`, `errorMessage`); keep the message.
fn cause_message(cause: &str) -> String {
    serde_json::from_str::<serde_json::Value>(cause)
        .ok()
        .and_then(|v| v["errorMessage"].as_str().map(str::to_string))
        .unwrap_or_else(|| cause.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run waiting in the queue shows one line saying behind whom,
    /// however many rounds it waits.
    #[test]
    fn a_queued_run_is_one_line_saying_behind_whom() {
        let waiting = |at: f64, position: u32| {
            Event {
            kind: "WaitStateEntered".into(),
            at,
            state: Some("WaitInQueue".into()),
            error: None,
            data: Some(
                serde_json::json!({"plan": {"output": {"queued": {
                    "wait_until": "2026-11-30T10:00:10Z",
                    "behind": "arn:aws:states:eu-west-1:1:execution:stepdeploy-deploy-tenant:acme-sit-1",
                    "position": position, "since": "2026-11-30T10:00:00Z"}}}})
                .to_string(),
            ),
        }
        };
        let left = |at: f64| Event {
            kind: "WaitStateExited".into(),
            at,
            state: Some("WaitInQueue".into()),
            error: None,
            data: None,
        };
        let events = [
            ev("TaskStateEntered", 0.0, Some("Bootstrap"), None),
            ev("TaskStateExited", 1.0, Some("Bootstrap"), None),
            waiting(1.0, 2),
            left(11.0),
            ev("TaskStateEntered", 11.0, Some("Bootstrap"), None),
            ev("TaskStateExited", 12.0, Some("Bootstrap"), None),
            waiting(12.0, 1),
        ];
        let p = phases(&events, 15.0);
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["Bootstrap", "WaitInQueue"], "{p:?}");
        assert_eq!(
            p[1].line(),
            "  WaitInQueue    running     14.0 s  queued behind acme-sit-1 (position 1), waiting since 2026-11-30T10:00:00Z"
        );
    }

    #[test]
    fn outside_text_in_an_error_cannot_drive_the_terminal() {
        let text = error_text(Some("ApprovalRejected"), Some("no\u{7}pe")).expect("text");
        assert!(!text.chars().any(char::is_control), "{text:?}");
    }

    fn ev(kind: &str, at: f64, state: Option<&str>, error: Option<&str>) -> Event {
        Event {
            kind: kind.into(),
            at,
            state: state.map(Into::into),
            error: error.map(Into::into),
            data: None,
        }
    }

    #[test]
    fn a_successful_run_with_a_retry_and_a_verify_loop() {
        let events = vec![
            ev("ExecutionStarted", 0.0, None, None),
            ev("TaskStateEntered", 0.0, Some("Bootstrap"), None),
            ev("TaskScheduled", 0.1, None, None),
            ev("TaskFailed", 0.5, None, Some("Lambda.ServiceException")),
            ev("TaskScheduled", 1.5, None, None),
            ev("TaskSucceeded", 2.0, None, None),
            ev("TaskStateExited", 2.0, Some("Bootstrap"), None),
            ev("ChoiceStateEntered", 2.0, Some("NeedsApproval"), None),
            ev("TaskStateEntered", 2.0, Some("Verify"), None),
            ev("TaskStateExited", 3.0, Some("Verify"), None),
            ev("WaitStateEntered", 3.0, Some("WaitBeforeVerify"), None),
            ev("TaskStateEntered", 8.0, Some("Verify"), None),
        ];
        let p = phases(&events, 9.5);
        assert_eq!(p.len(), 3);
        assert_eq!(
            (p[0].name.as_str(), &p[0].status, p[0].retries, p[0].seconds),
            ("Bootstrap", &PhaseStatus::Succeeded, 1, 2.0)
        );
        assert_eq!(p[0].error, None);
        assert_eq!((p[1].round, &p[1].status), (1, &PhaseStatus::Succeeded));
        assert_eq!(
            (p[2].round, &p[2].status, p[2].seconds),
            (2, &PhaseStatus::Running, 1.5)
        );
        assert_eq!(p[2].line(), "  Verify         running      1.5 s  round 2");
        assert_eq!(
            p[0].line(),
            "  Bootstrap      ok           2.0 s  (1 retries)"
        );
    }

    #[test]
    fn a_caught_failure_and_the_failed_end() {
        let events = vec![
            ev("TaskStateEntered", 0.0, Some("Ecs"), None),
            ev("TaskFailed", 1.0, None, Some("AwsAccessDenied: no")),
            ev("TaskStateExited", 1.0, Some("Ecs"), None),
            ev("TaskStateEntered", 1.0, Some("Rollback"), None),
            ev("ExecutionFailed", 4.0, None, Some("RollbackFailed: x")),
        ];
        let p = phases(&events, 10.0);
        assert_eq!(p[0].status, PhaseStatus::Failed);
        assert_eq!(p[0].error.as_deref(), Some("AwsAccessDenied: no"));
        assert_eq!(
            (&p[1].status, p[1].seconds, p[1].error.as_deref()),
            (&PhaseStatus::Failed, 3.0, Some("RollbackFailed: x"))
        );
    }

    #[test]
    fn error_text_keeps_the_lambda_message_on_one_line() {
        let cause = r#"{"errorType":"ValidationFailed","errorMessage":"detail.tenant: \"Bad\" must\nstart with a letter"}"#;
        assert_eq!(
            error_text(Some("ValidationFailed"), Some(cause)).as_deref(),
            Some("ValidationFailed: detail.tenant: \"Bad\" must start with a letter")
        );
        assert_eq!(error_text(None, None), None);
        let long = "x ".repeat(400);
        assert!(error_text(Some("E"), Some(&long)).is_some_and(|t| t.len() == 600));
    }
}
