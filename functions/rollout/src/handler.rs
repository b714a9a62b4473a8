//! The rollout state machine's three steps: `plan` (validate, read the
//! fleet, put it in waves, start the report), `judge` (after each wave: the
//! results against the failure budget, the next wave or the end) and
//! `report` (the final report, the message and the outcome event).
//!
//! The state machine carries one [`RolloutState`] from step to step; each
//! step returns it whole, so the console shows where the rollout stands.

use crate::children::{self, NextWave, Outcome, RolloutInfo};
use crate::error::RolloutError;
use crate::ports::{Announce, Children, Fleet, Reports};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use stepdeploy_shared::config::{ConfigError, EnvironmentConfig, EnvironmentSet};
use stepdeploy_shared::rollout::{
    self, report_key, RolloutPlan, RolloutReport, RolloutRequest, RolloutStatus, TenantResult,
    Verdict,
};
use stepdeploy_shared::validate::FieldError;

/// Most tenants one rollout deploys. The state machine carries the plan and
/// one result per tenant from step to step, and Step Functions refuses a
/// state over 256 KB: 300 tenants stay under it in the worst case (one wave,
/// every tenant failed with a long error; see the test
/// `a_rollout_of_three_hundred_tenants_fits_in_a_state`). A larger fleet is
/// rolled out in several rollouts, selected by label.
pub const MAX_ROLLOUT_TENANTS: usize = 300;

/// Every payload the state machine sends, by `action`.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RolloutInput {
    /// First step: `{event, execution, started_at}`.
    Plan(PlanInput),
    /// After each wave: `{state}` with the Map's `outcomes`.
    Judge(StepInput),
    /// Last step: `{state}`.
    Report(StepInput),
}

/// `plan`'s input.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    /// The `Fleet Rollout Requested` event as delivered.
    pub event: Value,
    /// `$$.Execution.Id`.
    pub execution: String,
    /// `$$.Execution.StartTime`.
    pub started_at: String,
}

/// `judge`'s and `report`'s input.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepInput {
    /// The rollout so far.
    pub state: RolloutState,
}

/// A rollout's approval question (the approval function's `rollout`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// Environment.
    pub environment: String,
    /// Image.
    pub image: String,
    /// Requester.
    pub requested_by: String,
    /// The waves' tenants, in order.
    pub waves: Vec<Vec<String>>,
}

/// What the state machine carries between steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolloutState {
    /// The rollout run and what its children share.
    pub rollout: RolloutInfo,
    /// The validated request.
    pub request: RolloutRequest,
    /// The waves (and skipped tenants).
    pub plan: RolloutPlan,
    /// Whether the environment's quorum approves the rollout first.
    pub needs_approval: bool,
    /// The approval question (where approval is needed).
    pub gate: Option<Gate>,
    /// The gate's timeout (the environment's `approval.timeout_seconds`).
    pub approval_timeout_seconds: u64,
    /// Waves finished.
    pub completed: u32,
    /// One result per tenant run so far.
    pub results: Vec<TenantResult>,
    /// The wave to run next, if any.
    pub next: Option<NextWave>,
    /// `continue`, `done` or `halt` (with the reason).
    pub verdict: Verdict,
    /// The report's key in the environment's config bucket.
    pub report_key: String,
    /// The Map's answers for the wave just run (judge's input only).
    #[serde(default, skip_serializing)]
    pub outcomes: Vec<Value>,
    /// The gate's confirmation (present after an approval; not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Value>,
    /// What stopped the rollout when judging a wave failed (`{Error, Cause}`,
    /// the state machine's Catch): the report says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

/// What `report` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reported {
    /// `succeeded` or `halted`.
    pub status: RolloutStatus,
    /// One paragraph: the outcome message's body.
    pub summary: String,
    /// Where the report is (`s3://bucket/key`).
    pub report: String,
}

/// What the function answers.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum RolloutOutput {
    /// `plan`, `judge`.
    State(Box<RolloutState>),
    /// `report`.
    Reported(Reported),
}

/// Runs one step.
pub async fn handle<P: Fleet + Reports + Announce + Children>(
    input: RolloutInput,
    environments: &Result<EnvironmentSet, Arc<ConfigError>>,
    ports: &P,
) -> Result<RolloutOutput, RolloutError> {
    let environments = environments
        .as_ref()
        .map_err(|e| RolloutError::Config(Arc::clone(e)))?;
    Ok(match input {
        RolloutInput::Plan(input) => {
            RolloutOutput::State(Box::new(plan(input, environments, ports).await?))
        }
        RolloutInput::Judge(input) => {
            RolloutOutput::State(Box::new(judge(input.state, environments, ports).await?))
        }
        RolloutInput::Report(input) => {
            RolloutOutput::Reported(report(input.state, environments, ports).await?)
        }
    })
}

/// Validates the request, reads the fleet, makes the waves. Nothing is
/// started here; an invalid request ends the rollout with `ValidationFailed`.
pub async fn plan<P: Fleet + Reports>(
    input: PlanInput,
    environments: &EnvironmentSet,
    ports: &P,
) -> Result<RolloutState, RolloutError> {
    let request = RolloutRequest::from_event(&input.event, environments)?;
    let env = environment(environments, &request)?;
    let fleet = ports.tenants(env).await?;
    let plan = rollout::plan(&request, &fleet)?;
    if plan.total > MAX_ROLLOUT_TENANTS {
        return Err(FieldError::new(
            "detail.tenants",
            format!(
                "selects {} tenants to deploy; one rollout deploys at most {MAX_ROLLOUT_TENANTS} \
                 (the state Step Functions carries is limited to 256 KB): split it by label",
                plan.total
            ),
        )
        .into());
    }
    let name = input
        .execution
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let info = RolloutInfo {
        execution: input.execution,
        name: name.clone(),
        started_at: input.started_at,
        environment: request.environment.clone(),
        image: request.image.clone(),
        requested_by: request.requested_by.clone(),
        max_parallel: request.max_parallel,
        bake_seconds: request.bake_seconds,
    };
    let gate = env.approval.as_ref().map(|_| Gate {
        environment: request.environment.to_string(),
        image: request.image.to_string(),
        requested_by: request.requested_by.clone(),
        waves: plan
            .waves
            .iter()
            .map(|w| w.tenants.iter().map(ToString::to_string).collect())
            .collect(),
    });
    let next = plan.waves.first().map(|w| children::wave(&info, w));
    let verdict = rollout::verdict(&plan, &request.failure_budget, 0, &[]);
    let state = RolloutState {
        report_key: report_key(&request.environment, &name),
        needs_approval: gate.is_some(),
        approval_timeout_seconds: env.approval.as_ref().map_or(0, |a| a.timeout_seconds),
        gate,
        rollout: info,
        request,
        plan,
        completed: 0,
        results: Vec::new(),
        next,
        verdict,
        outcomes: Vec::new(),
        approval: None,
        error: None,
    };
    write_report(&state, env, ports).await?;
    Ok(state)
}

/// After a wave: its results, the budget's verdict, the next wave.
pub async fn judge<P: Reports + Children>(
    mut state: RolloutState,
    environments: &EnvironmentSet,
    ports: &P,
) -> Result<RolloutState, RolloutError> {
    let env = environment(environments, &state.request)?;
    let wave = state
        .next
        .take()
        .ok_or_else(|| FieldError::new("state.next", "no wave was running"))?;
    let outcomes = std::mem::take(&mut state.outcomes);
    if outcomes.len() != wave.children.len() {
        return Err(FieldError::new(
            "state.outcomes",
            format!(
                "{} outcomes for the {} children of wave {}",
                outcomes.len(),
                wave.children.len(),
                wave.number
            ),
        )
        .into());
    }
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let outcome: Outcome = serde_json::from_value(outcome)
            .map_err(|e| FieldError::new(format!("state.outcomes[{i}]"), e.to_string()))?;
        let result = children::result(outcome, ports).await?;
        tracing::info!(tenant = %result.tenant, outcome = ?result.outcome, "child finished");
        state.results.push(result);
    }
    state.completed = wave.number;
    state.verdict = rollout::verdict(
        &state.plan,
        &state.request.failure_budget,
        state.completed,
        &state.results,
    );
    if state.verdict == Verdict::Continue {
        state.next = state
            .plan
            .waves
            .iter()
            .find(|w| w.number == state.completed + 1)
            .map(|w| children::wave(&state.rollout, w));
    }
    write_report(&state, env, ports).await?;
    Ok(state)
}

/// The final report, the outcome message and event.
pub async fn report<P: Reports + Announce>(
    state: RolloutState,
    environments: &EnvironmentSet,
    ports: &P,
) -> Result<Reported, RolloutError> {
    let env = environment(environments, &state.request)?;
    let report = write_report(&state, env, ports).await?;
    let status = match report.status {
        // Ended without a verdict to stop or finish: say so, never "succeeded".
        RolloutStatus::InProgress => RolloutStatus::Halted,
        other => other,
    };
    let summary = report.summary();
    let detail_type = report.detail_type().unwrap_or(rollout::ROLLOUT_HALTED);
    let location = format!("s3://{}/{}", env.config_bucket, state.report_key);
    let word = if status == RolloutStatus::Succeeded {
        "succeeded"
    } else {
        "halted"
    };
    let subject = format!(
        "Rollout {word}: {} to {}",
        state.rollout.image, state.rollout.environment
    );
    let message = format!(
        "{summary}\n\nRollout: {}\nImage: {}\nRequested by: {}\nReport: {location}\nExecution: {}\n",
        state.rollout.name, state.rollout.image, state.rollout.requested_by, state.rollout.execution
    );
    let detail = json!({
        "rollout": state.rollout.name,
        "execution": state.rollout.execution,
        "environment": state.rollout.environment,
        "image": state.rollout.image,
        "requested_by": state.rollout.requested_by,
        "status": status,
        "reason": report.reason,
        "counts": report.counts,
        "report": location,
    });
    ports
        .announce(&subject, &message, detail_type, &detail)
        .await?;
    Ok(Reported {
        status,
        summary,
        report: location,
    })
}

/// The environment's config, by the request's name.
fn environment<'a>(
    environments: &'a EnvironmentSet,
    request: &RolloutRequest,
) -> Result<&'a EnvironmentConfig, RolloutError> {
    environments
        .get(request.environment.as_str())
        .map_err(|e| FieldError::new("detail.environment", e.to_string()).into())
}

/// The report as the rollout stands now: a rollout stopped by an error
/// (judging a wave failed) is halted, naming the error.
fn report_of(state: &RolloutState) -> RolloutReport {
    let mut report = RolloutReport::new(
        &state.rollout.name,
        &state.request,
        &state.plan,
        state.completed,
        &state.results,
    );
    if let Some(error) = &state.error {
        let cause: String = error["Cause"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        report.status = RolloutStatus::Halted;
        report.reason = Some(format!(
            "stopped after wave {} of {}: judging the wave failed with {}: {cause}",
            state.completed,
            state.plan.waves.len(),
            error["Error"].as_str().unwrap_or("an error"),
        ));
    }
    report
}

/// Writes [`report_of`] the rollout.
async fn write_report(
    state: &RolloutState,
    env: &EnvironmentConfig,
    ports: &impl Reports,
) -> Result<RolloutReport, RolloutError> {
    let report = report_of(state);
    let body = serde_json::to_string_pretty(&report)
        .map_err(|e| FieldError::new("report", e.to_string()))?;
    ports.put(env, &state.report_key, body).await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::ChildRun;
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use stepdeploy_shared::aws_error::AwsCallError;
    use stepdeploy_shared::rollout::{FleetTenant, TenantOutcome};
    use stepdeploy_shared::validate::{ImageRef, TenantName};

    /// A fleet of 13 (`t01`…`t13`, `t01` and `t02` canaries), the reports
    /// written and the announcements made.
    #[derive(Default)]
    struct Fake {
        reports: Mutex<Vec<(String, String)>>,
        announced: Mutex<Vec<(String, Value)>>,
    }

    impl Fleet for Fake {
        async fn tenants(&self, _: &EnvironmentConfig) -> Result<Vec<FleetTenant>, AwsCallError> {
            Ok((1..=13)
                .map(|i| FleetTenant {
                    name: TenantName::parse(&format!("t{i:02}")).expect("name"),
                    labels: if i <= 2 {
                        BTreeMap::from([("ring".to_string(), "canary".to_string())])
                    } else {
                        BTreeMap::new()
                    },
                    image: ImageRef::parse(if i == 13 {
                        "wordpress:6.7"
                    } else {
                        "wordpress:6.6"
                    })
                    .ok(),
                })
                .collect())
        }
    }
    impl Reports for Fake {
        async fn put(
            &self,
            _: &EnvironmentConfig,
            key: &str,
            body: String,
        ) -> Result<(), AwsCallError> {
            self.reports.lock().expect("lock").push((key.into(), body));
            Ok(())
        }
    }
    impl Announce for Fake {
        async fn announce(
            &self,
            _: &str,
            _: &str,
            detail_type: &str,
            detail: &Value,
        ) -> Result<(), AwsCallError> {
            self.announced
                .lock()
                .expect("lock")
                .push((detail_type.into(), detail.clone()));
            Ok(())
        }
    }
    impl Children for Fake {
        fn arn_of(&self, name: &str) -> Option<String> {
            Some(format!(
                "arn:aws:states:eu-west-1:123456789012:execution:s-deploy-tenant:{name}"
            ))
        }
        async fn describe(&self, _: &str) -> Result<Option<ChildRun>, AwsCallError> {
            Ok(Some(ChildRun {
                status: "FAILED".into(),
                error: Some("VerificationFailed".into()),
                cause: Some("HTTP 500".into()),
                duration_seconds: Some(3),
            }))
        }
    }

    fn environments() -> Result<EnvironmentSet, Arc<ConfigError>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/environments");
        Ok(EnvironmentSet::load_dir(&dir).expect("checked-in configs load"))
    }

    fn request(environment: &str, budget: Value) -> RolloutInput {
        RolloutInput::Plan(PlanInput {
            event: json!({
                "version": "0", "id": "e1", "detail-type": rollout::ROLLOUT_REQUESTED,
                "source": "stepdeploy", "account": "123456789012", "time": "2026-11-30T10:00:00Z",
                "region": "eu-west-1", "resources": [],
                "detail": {"environment": environment, "image": "wordpress:6.7", "tenants": "all",
                           "waves": [{"labels": {"ring": "canary"}}, {"percent": 50}],
                           "failure_budget": budget, "requested_by": "jane@example.com"}
            }),
            execution:
                "arn:aws:states:eu-west-1:123456789012:execution:s-rollout-fleet:rollout-sit-e1"
                    .into(),
            started_at: "2026-11-30T10:00:01Z".into(),
        })
    }

    async fn state(output: RolloutOutput) -> RolloutState {
        match output {
            RolloutOutput::State(s) => *s,
            RolloutOutput::Reported(r) => panic!("a state expected, got {r:?}"),
        }
    }

    /// The Map's answers: every child succeeded but those in `failing`.
    fn run_wave(mut s: RolloutState, failing: &[&str]) -> RolloutInput {
        s.outcomes = s
            .next
            .as_ref()
            .expect("a wave to run")
            .children
            .iter()
            .map(|c| {
                if failing.contains(&c.tenant.as_str()) {
                    json!({"tenant": c.tenant, "name": c.name, "error": "States.TaskFailed"})
                } else {
                    json!({"tenant": c.tenant, "name": c.name, "execution": "arn:ok", "status": "SUCCEEDED"})
                }
            })
            .collect();
        RolloutInput::Judge(StepInput { state: s })
    }

    #[tokio::test]
    async fn canaries_then_waves_then_a_success_report() {
        let (fake, envs) = (Fake::default(), environments());
        let s = state(
            handle(request("sit", json!(null)), &envs, &fake)
                .await
                .expect("plan"),
        )
        .await;
        assert!(!s.needs_approval, "sit has no approvers");
        let waves: Vec<usize> = s.plan.waves.iter().map(|w| w.tenants.len()).collect();
        assert_eq!(
            waves,
            vec![2, 6, 4],
            "canaries, half of the 12 to deploy (t13 is on the image), the rest"
        );
        assert_eq!(s.plan.skipped.len(), 1);
        let mut s = s;
        for wave in 1..=3 {
            s = state(handle(run_wave(s, &[]), &envs, &fake).await.expect("judge")).await;
            assert_eq!(s.completed, wave);
        }
        assert_eq!(s.verdict, Verdict::Done);
        assert!(s.next.is_none());
        let RolloutOutput::Reported(done) =
            handle(RolloutInput::Report(StepInput { state: s }), &envs, &fake)
                .await
                .expect("report")
        else {
            panic!("a report")
        };
        assert_eq!(done.status, RolloutStatus::Succeeded);
        let announced = fake.announced.lock().expect("lock");
        assert_eq!(announced[0].0, rollout::ROLLOUT_SUCCEEDED);
        assert_eq!(announced[0].1["counts"]["succeeded"], 12);
        let reports = fake.reports.lock().expect("lock");
        assert_eq!(reports.len(), 5, "plan, three judges, the report");
        assert!(reports
            .iter()
            .all(|(key, _)| key == "_rollouts/sit/rollout-sit-e1.json"));
    }

    #[tokio::test]
    async fn a_failed_canary_halts_with_later_waves_untouched() {
        let (fake, envs) = (Fake::default(), environments());
        let s = state(
            handle(request("sit", json!(null)), &envs, &fake)
                .await
                .expect("plan"),
        )
        .await;
        let s = state(
            handle(run_wave(s, &["t02"]), &envs, &fake)
                .await
                .expect("judge"),
        )
        .await;
        assert!(
            matches!(&s.verdict, Verdict::Halt { reason } if reason.contains("t02")),
            "{:?}",
            s.verdict
        );
        assert!(s.next.is_none(), "no later wave is started");
        let RolloutOutput::Reported(halted) =
            handle(RolloutInput::Report(StepInput { state: s }), &envs, &fake)
                .await
                .expect("report")
        else {
            panic!("a report")
        };
        assert_eq!(halted.status, RolloutStatus::Halted);
        let (_, body) = fake
            .reports
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .expect("a report");
        let report: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(report["counts"]["untouched"], 10);
        assert_eq!(report["counts"]["failed"], 1);
        assert_eq!(
            fake.announced.lock().expect("lock")[0].0,
            rollout::ROLLOUT_HALTED
        );
    }

    #[tokio::test]
    async fn a_budget_lets_a_wave_fail_within_it() {
        let (fake, envs) = (Fake::default(), environments());
        let budget = json!({"per_wave": 1, "overall": 1});
        let s = state(
            handle(request("sit", budget), &envs, &fake)
                .await
                .expect("plan"),
        )
        .await;
        let s = state(
            handle(run_wave(s, &["t01"]), &envs, &fake)
                .await
                .expect("judge"),
        )
        .await;
        assert_eq!(s.verdict, Verdict::Continue);
        assert_eq!(s.next.as_ref().map(|n| n.number), Some(2));
        let s = state(
            handle(run_wave(s, &["t03"]), &envs, &fake)
                .await
                .expect("judge"),
        )
        .await;
        assert!(
            matches!(s.verdict, Verdict::Halt { .. }),
            "the second failure is over the overall budget"
        );
        assert_eq!(
            s.results
                .iter()
                .filter(|r| r.outcome == TenantOutcome::Failed)
                .count(),
            2
        );
    }

    #[tokio::test]
    async fn prod_asks_one_quorum_for_the_whole_rollout() {
        let (fake, envs) = (Fake::default(), environments());
        let s = state(
            handle(request("prod", json!(null)), &envs, &fake)
                .await
                .expect("plan"),
        )
        .await;
        assert!(s.needs_approval);
        let gate = s.gate.expect("a gate");
        assert_eq!(gate.waves.iter().map(Vec::len).sum::<usize>(), 12);
        assert_eq!(gate.image, "wordpress:6.7");
        assert!(s.approval_timeout_seconds > 0);
    }

    #[tokio::test]
    async fn a_bad_request_is_refused_and_writes_nothing() {
        let (fake, envs) = (Fake::default(), environments());
        let err = handle(request("nowhere", json!(null)), &envs, &fake)
            .await
            .expect_err("unknown environment");
        assert!(err.to_string().contains("detail.environment"), "{err}");
        assert!(fake.reports.lock().expect("lock").is_empty());
    }

    /// Step Functions refuses a state over 256 KB (`States.DataLimitExceeded`):
    /// the largest state of a 300-tenant rollout (three full load balancers)
    /// in one wave, with every result and the Map's answers, stays under it.
    #[tokio::test]
    async fn a_rollout_of_three_hundred_tenants_fits_in_a_state() {
        struct Big;
        impl Fleet for Big {
            async fn tenants(
                &self,
                _: &EnvironmentConfig,
            ) -> Result<Vec<FleetTenant>, AwsCallError> {
                Ok((0..300)
                    .map(|i| FleetTenant {
                        name: TenantName::parse(&format!("tenantwithaname{i:05}")).expect("name"),
                        labels: BTreeMap::new(),
                        image: None,
                    })
                    .collect())
            }
        }
        impl Reports for Big {
            async fn put(
                &self,
                _: &EnvironmentConfig,
                _: &str,
                _: String,
            ) -> Result<(), AwsCallError> {
                Ok(())
            }
        }
        let envs = environments();
        let env = envs.as_ref().expect("set").get("sit").expect("sit");
        let RolloutInput::Plan(input) = request("sit", json!(null)) else {
            unreachable!()
        };
        let mut input = input;
        input.event["detail"]["waves"] = json!([]);
        let mut s = plan(input, envs.as_ref().expect("set"), &Big)
            .await
            .expect("plan");
        assert_eq!(s.next.as_ref().map(|n| n.children.len()), Some(300));
        // Every tenant has a result already and the Map answered for each: the worst case.
        s.results = s.plan.waves[0]
            .tenants
            .iter()
            .map(|t| TenantResult {
                tenant: t.clone(),
                outcome: TenantOutcome::Failed,
                execution: Some(format!("arn:aws:states:af-south-1:123456789012:execution:stepdeploy-deploy-tenant:{t}-sit-rollout-sit-0123456789abcdef0123456789abcdef0_0123456789")),
                error: Some("x".repeat(crate::children::ERROR_MAX + 1)),
                duration_seconds: Some(1234),
            })
            .collect();
        let mut with_outcomes = serde_json::to_value(&s).expect("json");
        with_outcomes["outcomes"] = json!(s
            .next
            .as_ref()
            .expect("next")
            .children
            .iter()
            .map(|c| json!({"tenant": c.tenant, "name": c.name, "error": "States.TaskFailed"}))
            .collect::<Vec<_>>());
        let size = with_outcomes.to_string().len();
        assert!(size < 256 * 1024, "{size} bytes for 300 tenants");
        let _ = env;
    }

    #[tokio::test]
    async fn a_failed_judge_is_reported_as_a_halt_naming_the_error() {
        let (fake, envs) = (Fake::default(), environments());
        let mut s = state(
            handle(request("sit", json!(null)), &envs, &fake)
                .await
                .expect("plan"),
        )
        .await;
        s.error = Some(json!({"Error": "AwsUnavailable", "Cause": "dynamodb: no answer"}));
        let RolloutOutput::Reported(stopped) =
            handle(RolloutInput::Report(StepInput { state: s }), &envs, &fake)
                .await
                .expect("report")
        else {
            panic!("a report")
        };
        assert_eq!(stopped.status, RolloutStatus::Halted);
        assert!(
            stopped
                .summary
                .contains("AwsUnavailable: dynamodb: no answer"),
            "{}",
            stopped.summary
        );
        let (_, body) = fake
            .reports
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .expect("a report");
        assert!(body.contains("\"halted\""), "{body}");
        assert_eq!(
            fake.announced.lock().expect("lock")[0].0,
            rollout::ROLLOUT_HALTED
        );
    }
}
