//! The four DORA figures (deployment frequency, lead time for changes,
//! change failure rate, time to restore) from a list of deployments. Pure,
//! so `stepdeploy stats` prints what these tests prove.
//!
//! The input is [`Deployment`]: today one per deploy-tenant execution
//! (`stepdeploy stats` builds them from Step Functions' listing); a release
//! record (say, from a releases table) fits the same struct, with
//! `requested_at` set to when the change was asked for (a merge, a build)
//! instead of the execution's start, and its own [`Source`].
//!
//! How each figure is computed, per environment and over all of them:
//!
//! - **window**: a deployment belongs to it when it *finished* within it;
//!   runs still running are left out of every figure (and only counted);
//! - **deployment frequency**: successful deployments in the window, and
//!   that count divided by the window's length in days;
//! - **lead time for changes**: `finished_at − requested_at` of each
//!   successful deployment, median and 90th percentile (linear interpolation
//!   between the closest ranks, so the median of an even count is the mean
//!   of the middle two);
//! - **change failure rate**: failed ÷ finished (succeeded + failed);
//!   aborted and timed-out runs count as failed; a *refused* run (ended by a
//!   check before it changed anything: a bad request, the lock, the window,
//!   the queue, the approvers; [`REFUSALS`](stepdeploy_shared::error_names::REFUSALS)) is neither a deployment
//!   nor a failure, and is only counted;
//! - **time to restore**: for each failed deployment in the window, the
//!   time from its end to the end of the next successful deployment of the
//!   *same tenant in the same environment*; median over the failures that
//!   have one; failures without one are counted and listed as unrestored.
//!
//! A figure with nothing to compute it from (no successful run, no finished
//! run, no restored failure) is `None` (`-` in text, `null` in JSON), never
//! NaN.

use serde::Serialize;
use std::collections::BTreeMap;
use stepdeploy_shared::error_names::is_refusal;

/// Where a deployment record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Source {
    /// A deploy-tenant execution (its start is when the request arrived).
    Execution,
}

/// How a deployment ended, as far as the figures care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It succeeded.
    Succeeded,
    /// It failed, was aborted or timed out.
    Failed,
    /// It failed with one of [`REFUSALS`](stepdeploy_shared::error_names::REFUSALS): stopped by a check before
    /// it changed anything (in no figure, only counted).
    Refused,
    /// Not finished yet (left out of every figure).
    InProgress,
}

impl Outcome {
    /// A Step Functions execution status: `SUCCEEDED`; `FAILED`, `ABORTED`,
    /// `TIMED_OUT`; anything else (`RUNNING`, `PENDING_REDRIVE`) is in progress.
    pub fn from_execution_status(status: &str) -> Self {
        match status {
            "SUCCEEDED" => Self::Succeeded,
            "FAILED" | "ABORTED" | "TIMED_OUT" => Self::Failed,
            _ => Self::InProgress,
        }
    }

    /// As [`Self::from_execution_status`], with a failed run's error name
    /// (DescribeExecution's `error`) telling a refusal from a failure.
    pub fn from_execution(status: &str, error: Option<&str>) -> Self {
        match (status, error) {
            ("FAILED", Some(e)) if is_refusal(e) => Self::Refused,
            _ => Self::from_execution_status(status),
        }
    }
}

/// One deployment of one tenant to one environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// What identifies it (the execution's name).
    pub id: String,
    /// Where the record comes from.
    pub source: Source,
    /// The tenant.
    pub tenant: String,
    /// The environment.
    pub environment: String,
    /// When the change was asked for, seconds since the epoch: where lead time starts.
    pub requested_at: f64,
    /// When it ended, seconds since the epoch (`None` while in progress).
    pub finished_at: Option<f64>,
    /// How it ended.
    pub outcome: Outcome,
}

/// The period the figures cover, seconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Window {
    /// Start (inclusive).
    pub since: f64,
    /// End (inclusive): now.
    pub until: f64,
}

impl Window {
    /// Its length in days.
    pub fn days(&self) -> f64 {
        (self.until - self.since).max(0.0) / 86_400.0
    }

    fn holds(&self, t: f64) -> bool {
        t >= self.since && t <= self.until
    }
}

/// Deployment frequency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frequency {
    /// Successful deployments in the window.
    pub successful: usize,
    /// `successful` per day of the window (`None` for a window of no length).
    pub per_day: Option<f64>,
}

/// Lead time for changes, seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadTime {
    /// Median.
    pub median: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// How many deployments it is computed from.
    pub samples: usize,
}

/// Change failure rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureRate {
    /// `failed / finished`, a fraction.
    pub rate: Option<f64>,
    /// Failed (aborted and timed out included).
    pub failed: usize,
    /// Finished: succeeded + failed.
    pub finished: usize,
}

/// Time to restore, seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Restore {
    /// Median over the restored failures.
    pub median: Option<f64>,
    /// Failures followed by a success of the same tenant and environment.
    pub restored: usize,
    /// Failures not (yet) followed by one, by id, oldest first.
    pub unrestored: Vec<String>,
}

/// The four figures for one environment, or for all of them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// The environment; `None` for all of them.
    pub environment: Option<String>,
    /// Deployment frequency.
    pub deployment_frequency: Frequency,
    /// Lead time for changes, seconds.
    pub lead_time_seconds: LeadTime,
    /// Change failure rate.
    pub change_failure_rate: FailureRate,
    /// Time to restore, seconds.
    pub time_to_restore_seconds: Restore,
    /// Runs still in progress that started in the window (in no figure).
    pub in_progress: usize,
    /// Runs refused before they changed anything, finished in the window
    /// (in no figure: see [`REFUSALS`](stepdeploy_shared::error_names::REFUSALS)).
    pub refused: usize,
}

/// The figures per environment (by name) and over all of them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The period.
    pub window: Window,
    /// Per environment, by name.
    pub environments: Vec<Figures>,
    /// Over every environment in `environments`.
    pub overall: Figures,
}

/// The `q` quantile (0 to 1) of `values`, linear between the closest
/// ranks; `None` for no values. Non-finite values are ignored.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    Some(v[lo] + (v[hi] - v[lo]) * (rank - lo as f64))
}

/// The figures of `deployments` in `window`. `environments` names the
/// environments to report even without deployments (an `--env` asked for);
/// every environment with a deployment in the window is reported too,
/// unless `only` restricts the report to one.
pub fn compute(
    deployments: &[Deployment],
    window: Window,
    environments: &[String],
    only: Option<&str>,
) -> Report {
    let selected: Vec<&Deployment> = deployments
        .iter()
        .filter(|d| only.is_none_or(|e| d.environment == e))
        .collect();
    let mut names: BTreeMap<String, ()> = environments
        .iter()
        .filter(|e| only.is_none_or(|o| o == e.as_str()))
        .map(|e| (e.clone(), ()))
        .collect();
    for d in &selected {
        if counts(d, window) {
            names.insert(d.environment.clone(), ());
        }
    }
    let per_env = names
        .into_keys()
        .map(|env| {
            let of_env: Vec<&Deployment> = selected
                .iter()
                .copied()
                .filter(|d| d.environment == env)
                .collect();
            figures(Some(env), &of_env, window)
        })
        .collect();
    Report {
        window,
        environments: per_env,
        overall: figures(None, &selected, window),
    }
}

/// Whether `d` is in the window: finished in it, or in progress and started in it.
fn counts(d: &Deployment, window: Window) -> bool {
    match (d.outcome, d.finished_at) {
        (Outcome::InProgress, _) => window.holds(d.requested_at),
        (_, Some(end)) => window.holds(end),
        (_, None) => false,
    }
}

fn figures(environment: Option<String>, all: &[&Deployment], window: Window) -> Figures {
    let in_window: Vec<&Deployment> = all.iter().copied().filter(|d| counts(d, window)).collect();
    let of = |o: Outcome| -> Vec<&Deployment> {
        in_window
            .iter()
            .copied()
            .filter(|d| d.outcome == o && (o == Outcome::InProgress || d.finished_at.is_some()))
            .collect()
    };
    let succeeded = of(Outcome::Succeeded);
    let mut failed = of(Outcome::Failed);
    let in_progress = of(Outcome::InProgress).len();
    let refused = of(Outcome::Refused).len();
    let lead: Vec<f64> = succeeded
        .iter()
        .filter_map(|d| d.finished_at.map(|end| end - d.requested_at))
        .filter(|s| s.is_finite() && *s >= 0.0)
        .collect();
    let finished = succeeded.len() + failed.len();
    let days = window.days();
    // Time to restore: the next success of the same tenant and environment,
    // looked for among every deployment given (it may end after the window).
    failed.sort_by(|a, b| {
        a.finished_at
            .unwrap_or(0.0)
            .total_cmp(&b.finished_at.unwrap_or(0.0))
    });
    // Each tenant and environment's success end times, sorted: the next one
    // after a failure is a binary search away.
    let mut successes: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    for s in all.iter().filter(|s| s.outcome == Outcome::Succeeded) {
        if let Some(end) = s.finished_at.filter(|e| e.is_finite()) {
            successes
                .entry((s.tenant.as_str(), s.environment.as_str()))
                .or_default()
                .push(end);
        }
    }
    for ends in successes.values_mut() {
        ends.sort_by(f64::total_cmp);
    }
    let mut restore = Vec::new();
    let mut unrestored = Vec::new();
    for f in &failed {
        let Some(failed_at) = f.finished_at else {
            continue;
        };
        let next = successes
            .get(&(f.tenant.as_str(), f.environment.as_str()))
            .and_then(|ends| ends.get(ends.partition_point(|end| *end <= failed_at)));
        match next {
            Some(end) => restore.push(end - failed_at),
            None => unrestored.push(f.id.clone()),
        }
    }
    Figures {
        environment,
        deployment_frequency: Frequency {
            successful: succeeded.len(),
            per_day: (days > 0.0).then(|| succeeded.len() as f64 / days),
        },
        lead_time_seconds: LeadTime {
            median: quantile(&lead, 0.5),
            p90: quantile(&lead, 0.9),
            samples: lead.len(),
        },
        change_failure_rate: FailureRate {
            rate: (finished > 0).then(|| failed.len() as f64 / finished as f64),
            failed: failed.len(),
            finished,
        },
        time_to_restore_seconds: Restore {
            median: quantile(&restore, 0.5),
            restored: restore.len(),
            unrestored,
        },
        in_progress,
        refused,
    }
}

/// `--since`: `N` days, hours or weeks (`30d`, `12h`, `2w`), as seconds.
pub fn parse_since(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not a period: use N followed by h, d or w (12h, 30d, 2w)");
    let unit = text.chars().last().ok_or_else(bad)?;
    let seconds = match unit {
        'h' => 3_600.0,
        'd' => 86_400.0,
        'w' => 604_800.0,
        _ => return Err(bad()),
    };
    let n: u32 = text[..text.len() - 1].parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(format!("{text:?}: the period must be longer than 0"));
    }
    // Ten years: far past what Step Functions lists (90 days after a run ends).
    if f64::from(n) * seconds > 3_650.0 * 86_400.0 {
        return Err(format!("{text:?}: at most 3650d"));
    }
    Ok(f64::from(n) * seconds)
}

/// A duration for people: `45 s`, `12 min`, `3 h 05 min`, `2 d 4 h`.
pub fn human_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "-".into();
    }
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3_599 => format!("{} min {:02} s", s / 60, s % 60),
        3_600..=86_399 => format!("{} h {:02} min", s / 3_600, (s % 3_600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3_600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: f64 = 86_400.0;
    const NOW: f64 = 1_800_000_000.0;

    fn window() -> Window {
        Window {
            since: NOW - 30.0 * DAY,
            until: NOW,
        }
    }

    /// A run of `tenant` in `env` requested `ago` seconds before now, lasting `took`.
    fn run(
        id: &str,
        tenant: &str,
        env: &str,
        ago: f64,
        took: Option<f64>,
        status: &str,
    ) -> Deployment {
        Deployment {
            id: id.into(),
            source: Source::Execution,
            tenant: tenant.into(),
            environment: env.into(),
            requested_at: NOW - ago,
            finished_at: took.map(|t| NOW - ago + t),
            outcome: Outcome::from_execution_status(status),
        }
    }

    /// dev: acme fails twice then succeeds; beta succeeds twice; gamma is
    /// running; zeta was aborted and never redeployed; one run finished
    /// before the window. prod: one success.
    fn runs() -> Vec<Deployment> {
        vec![
            run(
                "acme-dev-1",
                "acme",
                "dev",
                10.0 * DAY,
                Some(100.0),
                "FAILED",
            ),
            run(
                "acme-dev-2",
                "acme",
                "dev",
                9.0 * DAY,
                Some(200.0),
                "TIMED_OUT",
            ),
            run(
                "acme-dev-3",
                "acme",
                "dev",
                8.0 * DAY,
                Some(300.0),
                "SUCCEEDED",
            ),
            run(
                "beta-dev-1",
                "beta",
                "dev",
                5.0 * DAY,
                Some(60.0),
                "SUCCEEDED",
            ),
            run(
                "beta-dev-2",
                "beta",
                "dev",
                4.0 * DAY,
                Some(120.0),
                "SUCCEEDED",
            ),
            run("gamma-dev-1", "gamma", "dev", 600.0, None, "RUNNING"),
            run(
                "zeta-dev-1",
                "zeta",
                "dev",
                2.0 * DAY,
                Some(50.0),
                "ABORTED",
            ),
            run("old-dev-1", "old", "dev", 40.0 * DAY, Some(10.0), "FAILED"),
            run(
                "acme-prod-1",
                "acme",
                "prod",
                3.0 * DAY,
                Some(900.0),
                "SUCCEEDED",
            ),
        ]
    }

    fn env<'a>(r: &'a Report, name: &str) -> &'a Figures {
        r.environments
            .iter()
            .find(|f| f.environment.as_deref() == Some(name))
            .expect("environment reported")
    }

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(
            Outcome::from_execution_status("SUCCEEDED"),
            Outcome::Succeeded
        );
        for s in ["FAILED", "ABORTED", "TIMED_OUT"] {
            assert_eq!(Outcome::from_execution_status(s), Outcome::Failed, "{s}");
        }
        for s in ["RUNNING", "PENDING_REDRIVE"] {
            assert_eq!(
                Outcome::from_execution_status(s),
                Outcome::InProgress,
                "{s}"
            );
        }
    }

    #[test]
    fn the_four_figures_per_environment() {
        let r = compute(&runs(), window(), &[], None);
        let names: Vec<_> = r
            .environments
            .iter()
            .map(|f| f.environment.clone())
            .collect();
        assert_eq!(names, [Some("dev".to_string()), Some("prod".to_string())]);
        let dev = env(&r, "dev");
        // acme-dev-3, beta-dev-1, beta-dev-2.
        assert_eq!(dev.deployment_frequency.successful, 3);
        assert_eq!(dev.deployment_frequency.per_day, Some(3.0 / 30.0));
        // Lead times 60, 120, 300: median 120, p90 = 120 + 0.8 × 180.
        assert_eq!(dev.lead_time_seconds.samples, 3);
        assert_eq!(dev.lead_time_seconds.median, Some(120.0));
        assert_eq!(dev.lead_time_seconds.p90, Some(264.0));
        // Failed: acme-dev-1, acme-dev-2 (timed out), zeta-dev-1 (aborted);
        // old-dev-1 finished before the window; gamma is running.
        assert_eq!(dev.change_failure_rate.failed, 3);
        assert_eq!(dev.change_failure_rate.finished, 6);
        assert_eq!(dev.change_failure_rate.rate, Some(0.5));
        assert_eq!(dev.in_progress, 1);
        // acme failed twice, then succeeded: both failures restored by acme-dev-3.
        // From acme-dev-1's end (10 d ago + 100 s) to acme-dev-3's (8 d ago + 300 s),
        // and from acme-dev-2's (9 d ago + 200 s).
        let first = 2.0 * DAY + 200.0;
        let second = DAY + 100.0;
        let ttr = &dev.time_to_restore_seconds;
        assert_eq!(ttr.restored, 2);
        assert_eq!(ttr.median, Some((first + second) / 2.0));
        assert_eq!(ttr.unrestored, ["zeta-dev-1"]);
        let prod = env(&r, "prod");
        assert_eq!(prod.deployment_frequency.successful, 1);
        assert_eq!(prod.lead_time_seconds.median, Some(900.0));
        assert_eq!(prod.change_failure_rate.rate, Some(0.0));
        assert_eq!(prod.time_to_restore_seconds.median, None);
        assert!(prod.time_to_restore_seconds.unrestored.is_empty());
    }

    /// A refused request (the window closed, the tenant busy, the approvers
    /// said no) is in no figure: not a deployment, not a change failure,
    /// and it needs no restoring. Only its count is shown.
    #[test]
    fn refused_runs_are_counted_apart() {
        assert_eq!(
            Outcome::from_execution("FAILED", Some("OutsideDeploymentWindow")),
            Outcome::Refused
        );
        assert_eq!(
            Outcome::from_execution("FAILED", Some("VerificationFailed")),
            Outcome::Failed
        );
        assert_eq!(
            Outcome::from_execution("FAILED", Some("ApprovalBypassed")),
            Outcome::Failed,
            "a forged approval is a failure"
        );
        assert_eq!(Outcome::from_execution("FAILED", None), Outcome::Failed);
        // An aborted run is a failure whatever error it carries.
        assert_eq!(
            Outcome::from_execution("ABORTED", Some("DeploymentLocked")),
            Outcome::Failed
        );
        let refused = |id: &str, tenant: &str, ago: f64, error: &str| Deployment {
            outcome: Outcome::from_execution("FAILED", Some(error)),
            ..run(id, tenant, "dev", ago, Some(5.0), "FAILED")
        };
        let mut all = runs();
        all.push(refused("zeta-dev-2", "zeta", DAY, "DeploymentLocked"));
        all.push(refused("new-dev-1", "new", DAY, "ValidationFailed"));
        all.push(refused("old-dev-2", "old", 35.0 * DAY, "Superseded"));
        let r = compute(&all, window(), &[], None);
        let dev = env(&r, "dev");
        // As without them: 3 of 6 failed, zeta-dev-1 still unrestored.
        assert_eq!(dev.change_failure_rate.failed, 3);
        assert_eq!(dev.change_failure_rate.finished, 6);
        assert_eq!(dev.deployment_frequency.successful, 3);
        assert_eq!(dev.time_to_restore_seconds.unrestored, ["zeta-dev-1"]);
        // Two in the window; old-dev-2 ended before it.
        assert_eq!(dev.refused, 2);
        assert_eq!(r.overall.refused, 2);
        assert_eq!(env(&r, "prod").refused, 0);
    }

    #[test]
    fn overall_is_every_environment_together() {
        let r = compute(&runs(), window(), &[], None);
        let all = &r.overall;
        assert_eq!(all.environment, None);
        assert_eq!(all.deployment_frequency.successful, 4);
        assert_eq!(all.change_failure_rate.failed, 3);
        assert_eq!(all.change_failure_rate.finished, 7);
        assert_eq!(all.change_failure_rate.rate, Some(3.0 / 7.0));
        // Lead times 60, 120, 300, 900.
        assert_eq!(all.lead_time_seconds.median, Some(210.0));
        assert_eq!(all.in_progress, 1);
        assert_eq!(all.time_to_restore_seconds.restored, 2);
    }

    #[test]
    fn a_success_elsewhere_restores_nothing() {
        // acme failed in dev; its only success is in prod.
        let runs = vec![
            run("acme-dev-1", "acme", "dev", 5.0 * DAY, Some(10.0), "FAILED"),
            run(
                "acme-prod-1",
                "acme",
                "prod",
                4.0 * DAY,
                Some(10.0),
                "SUCCEEDED",
            ),
            // An earlier success of the same tenant does not restore a later failure.
            run(
                "beta-dev-1",
                "beta",
                "dev",
                6.0 * DAY,
                Some(10.0),
                "SUCCEEDED",
            ),
            run("beta-dev-2", "beta", "dev", 3.0 * DAY, Some(10.0), "FAILED"),
        ];
        let r = compute(&runs, window(), &[], None);
        let dev = env(&r, "dev");
        assert_eq!(dev.time_to_restore_seconds.restored, 0);
        assert_eq!(dev.time_to_restore_seconds.median, None);
        assert_eq!(
            dev.time_to_restore_seconds.unrestored,
            ["acme-dev-1", "beta-dev-2"],
            "oldest first"
        );
    }

    #[test]
    fn one_environment_only() {
        let r = compute(&runs(), window(), &["prod".to_string()], Some("prod"));
        assert_eq!(r.environments.len(), 1);
        assert_eq!(r.overall.deployment_frequency.successful, 1);
        assert_eq!(r.overall.change_failure_rate.finished, 1);
        assert_eq!(r.overall.in_progress, 0);
    }

    #[test]
    fn an_empty_window_has_no_figures_and_no_nan() {
        let r = compute(&[], window(), &["sit".to_string()], Some("sit"));
        let sit = env(&r, "sit");
        for f in [sit, &r.overall] {
            assert_eq!(f.deployment_frequency.successful, 0);
            assert_eq!(f.deployment_frequency.per_day, Some(0.0));
            assert_eq!(f.lead_time_seconds.median, None);
            assert_eq!(f.lead_time_seconds.p90, None);
            assert_eq!(f.change_failure_rate.rate, None);
            assert_eq!(f.time_to_restore_seconds.median, None);
        }
        let json = serde_json::to_string(&r).expect("json");
        assert!(!json.contains("NaN"), "{json}");
        assert!(json.contains(r#""median":null"#), "{json}");
        // Only runs outside the window, or still running: the same.
        let outside = vec![
            run(
                "old-sit-1",
                "old",
                "sit",
                60.0 * DAY,
                Some(10.0),
                "SUCCEEDED",
            ),
            run("new-sit-1", "new", "sit", 60.0, None, "RUNNING"),
        ];
        let r = compute(&outside, window(), &[], None);
        assert_eq!(r.overall.change_failure_rate.rate, None);
        assert_eq!(r.overall.lead_time_seconds.median, None);
        assert_eq!(r.overall.in_progress, 1);
    }

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[f64::NAN], 0.5), None);
        assert_eq!(quantile(&[7.0], 0.9), Some(7.0));
        assert_eq!(quantile(&[4.0, 1.0, 3.0, 2.0], 0.5), Some(2.5));
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.5), Some(3.0));
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(quantile(&ten, 0.9), Some(9.1));
    }

    #[test]
    fn periods_parse() {
        assert_eq!(parse_since("30d"), Ok(30.0 * DAY));
        assert_eq!(parse_since("12h"), Ok(12.0 * 3_600.0));
        assert_eq!(parse_since("2w"), Ok(14.0 * DAY));
        for bad in ["", "d", "30", "30m", "-1d", "1.5d", "0d", "3651d", "ten d"] {
            assert!(parse_since(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(42.4), "42 s");
        assert_eq!(human_duration(754.0), "12 min 34 s");
        assert_eq!(human_duration(3.0 * 3_600.0 + 300.0), "3 h 05 min");
        assert_eq!(human_duration(2.0 * DAY + 4.0 * 3_600.0), "2 d 4 h");
        assert_eq!(human_duration(f64::NAN), "-");
    }
}
