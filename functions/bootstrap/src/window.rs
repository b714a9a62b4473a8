//! The environment's deployment window (`deployment_windows`, see
//! `stepdeploy_shared::window`), judged where a run would start changing
//! things: at bootstrap outside approval environments, at the claim after
//! the gate in them (a request may wait a day for its quorum). Before the
//! gate an approval environment only refuses, so approvers are not asked
//! about a run that cannot go.
//!
//! Closed and waiting: the plan names the opening (`plan.window`) and
//! nothing is taken; the state machine waits and asks again. Closed and
//! refusing: `OutsideDeploymentWindow`, naming the window and its next
//! opening, before anything is made. An override (`window_override`, a
//! reason) goes through the environment's quorum: its `approval`, or where
//! deployments need none, its `override_approval`; with neither it is
//! refused.

use crate::error::BootstrapError;
use std::collections::BTreeMap;
use stepdeploy_shared::config::EnvironmentConfig;
use stepdeploy_shared::plan::{DeploymentPlan, WindowWait};
use stepdeploy_shared::state::StateStore;
use stepdeploy_shared::window::Verdict;

/// Where the window is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// Before an approval gate: refuse only.
    BeforeGate,
    /// Where the run takes the lock: refuse or wait.
    Claim,
}

/// The labels the windows' per-label rules see: the request's, else the
/// tenant's recorded ones.
pub async fn labels_of(
    plan: &DeploymentPlan,
    state: &impl StateStore,
) -> Result<BTreeMap<String, String>, BootstrapError> {
    if let Some(labels) = &plan.labels {
        return Ok(labels.clone());
    }
    Ok(state
        .registry(plan.tenant.as_str())
        .await?
        .map(|r| r.labels)
        .unwrap_or_default())
}

/// Judges `plan` at `now` (epoch seconds): `Ok` with `plan.window` set when
/// the run must wait, cleared when it may go.
pub fn judge(
    plan: &mut DeploymentPlan,
    env: &EnvironmentConfig,
    labels: &BTreeMap<String, String>,
    now: u64,
    moment: Moment,
) -> Result<(), BootstrapError> {
    plan.window = None;
    let Some(windows) = &env.deployment_windows else {
        return Ok(());
    };
    let verdict = windows.verdict(labels, i64::try_from(now).unwrap_or(i64::MAX));
    let refused = |reason: String| BootstrapError::OutsideWindow {
        environment: env.name.to_string(),
        reason,
    };
    match (verdict, &plan.window_override) {
        (Verdict::Open, _) => Ok(()),
        (closed, Some(_)) if env.approval_for(true).is_none() => Err(refused(format!(
            "{}; an override needs a quorum, and {} has neither approval nor override_approval configured",
            closed.reason().unwrap_or("closed"),
            env.name
        ))),
        // The quorum approved (or is asked to approve) this override.
        (_, Some(_)) => Ok(()),
        (Verdict::Wait { .. }, None) if moment == Moment::BeforeGate => Ok(()),
        (
            Verdict::Wait {
                until_utc, reason, ..
            },
            None,
        ) => {
            plan.window = Some(WindowWait {
                wait_until: until_utc,
                reason,
            });
            Ok(())
        }
        (Verdict::Refuse { reason, .. }, None) => Err(refused(reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mon–Fri 08:00–16:00 in Johannesburg (UTC+2), and a freeze.
    fn env(outside: &str, approvers: bool) -> EnvironmentConfig {
        let mut env = stepdeploy_shared::plan::sample("wordpress:6.4-apache", 140).env;
        env.deployment_windows = Some(
            serde_json::from_value(serde_json::json!({
                "time_zone": "Africa/Johannesburg",
                "allow": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "16:00"}],
                "freezes": [{"from": "2026-12-18T00:00:00+02:00", "to": "2027-01-04T00:00:00+02:00", "reason": "year-end freeze"}],
                "outside": outside,
            }))
            .expect("windows"),
        );
        // sit's sample config has an override_approval: out, unless asked.
        env.override_approval = None;
        if approvers {
            env.approval = Some(stepdeploy_shared::config::ApprovalConfig {
                approvers: vec!["a@x.io".into(), "b@x.io".into()],
                approvals_required: 2,
                timeout_seconds: 60,
            });
        }
        env
    }

    /// Mon 2026-11-30 at `hh:mm` UTC.
    fn monday(hh: u64, mm: u64) -> u64 {
        1_795_996_800 + hh * 3_600 + mm * 60
    }

    #[test]
    fn open_closed_waiting_frozen_and_overridden() {
        let mut plan = stepdeploy_shared::plan::sample("wordpress:6.4-apache", 140);
        let labels = BTreeMap::new();
        // 10:00 UTC = 12:00 SAST: open.
        judge(
            &mut plan,
            &env("refuse", false),
            &labels,
            monday(10, 0),
            Moment::Claim,
        )
        .expect("open");
        assert!(plan.window.is_none());
        // 15:00 UTC = 17:00 SAST: closed; refused, naming the next opening.
        let err = judge(
            &mut plan,
            &env("refuse", false),
            &labels,
            monday(15, 0),
            Moment::Claim,
        )
        .expect_err("closed");
        assert_eq!(
            stepdeploy_shared::errors::ErrorName::error_name(&err),
            "OutsideDeploymentWindow"
        );
        assert!(err.to_string().contains("2026-12-01T06:00Z"), "{err}");
        // The same in an environment that waits: the plan names the opening.
        judge(
            &mut plan,
            &env("wait", false),
            &labels,
            monday(15, 0),
            Moment::Claim,
        )
        .expect("waits");
        let wait = plan.window.clone().expect("a wait");
        assert_eq!(wait.wait_until, "2026-12-01T06:00:00Z");
        // Before a gate, waiting is the claim's business.
        judge(
            &mut plan,
            &env("wait", true),
            &labels,
            monday(15, 0),
            Moment::BeforeGate,
        )
        .expect("asks the approvers");
        assert!(plan.window.is_none());
        // An override: refused without approvers, through the quorum with them.
        plan.window_override = Some("hotfix for CVE-2026-1".into());
        let err = judge(
            &mut plan,
            &env("refuse", false),
            &labels,
            monday(15, 0),
            Moment::Claim,
        )
        .expect_err("no quorum");
        assert!(
            err.to_string()
                .contains("neither approval nor override_approval"),
            "{err}"
        );
        // Where deployments need no approval, override_approval is the quorum.
        let mut sit = env("refuse", false);
        sit.override_approval = Some(stepdeploy_shared::config::ApprovalConfig {
            approvers: vec!["a@x.io".into(), "b@x.io".into()],
            approvals_required: 2,
            timeout_seconds: 60,
        });
        judge(&mut plan, &sit, &labels, monday(15, 0), Moment::Claim).expect("override quorum");
        judge(
            &mut plan,
            &env("refuse", true),
            &labels,
            monday(15, 0),
            Moment::Claim,
        )
        .expect("approved");
        // A freeze refuses inside the window, with its reason.
        plan.window_override = None;
        let err = judge(
            &mut plan,
            &env("refuse", false),
            &labels,
            monday(10, 0) + 21 * 86_400,
            Moment::Claim,
        )
        .expect_err("frozen");
        assert!(err.to_string().contains("year-end freeze"), "{err}");
    }
}
