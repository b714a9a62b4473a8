//! One CloudWatch metrics record per finished deploy run, in the
//! **embedded metric format** (EMF): a single JSON log line that CloudWatch
//! Logs turns into metrics when a Lambda writes it to stdout. Pure: it
//! builds the line; writing it is the caller's (notify's) job.
//!
//! The line follows AWS's specification ("Specification: Embedded metric
//! format", CloudWatch User Guide):
//!
//! - `_aws.Timestamp`: milliseconds since the epoch (the run's end);
//! - `_aws.CloudWatchMetrics`: one MetricDirective, namespace
//!   [`NAMESPACE`], the dimension sets [`DIMENSION_SETS`] and one
//!   `{Name, Unit}` per metric (at most [`MAX_METRICS`], the spec's 100);
//! - every metric's value, and every dimension's value (a string), as a
//!   top-level member named like it; `tenant` and `execution` are plain
//!   members too, kept in the log line for Logs Insights but **not**
//!   dimensions: a tenant dimension would make a metric per tenant
//!   (cardinality is what custom metrics cost).
//!
//! Dimension sets: `[]` (the whole stack: what the failure-rate alarm in
//! `infra/template.yaml` reads, since alarms cannot use `SEARCH` over
//! unknown environments; the spec allows an empty set), `[Environment]`
//! and `[Environment, Outcome]`. Each set is at most 30 keys (the spec's
//! limit; ours hold 0, 1 and 2).
//!
//! Metrics (every value finite and non-negative; a value that would not be
//! is left out rather than reported wrong):
//!
//! | metric | unit | value |
//! |---|---|---|
//! | `Deployments` | Count | 1 |
//! | `Succeeded` | Count | 1 or 0 |
//! | `Failures` | Count | 1 or 0 |
//! | `RolledBack` | Count | 1 or 0 |
//! | `DurationSeconds` | Seconds | end − start, approval wait included |
//! | `ApprovalWaitSeconds` | Seconds | only for runs that waited at the gate |
//! | `BootstrapSeconds`, `DatabaseSeconds`, `EcsSeconds`, `VerifySeconds`, `DnsSeconds`, … | Seconds | only for the phases the run has |

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The CloudWatch namespace of every stepdeploy metric.
pub const NAMESPACE: &str = "stepdeploy";

/// The dimension key holding the environment's name.
pub const ENVIRONMENT: &str = "Environment";

/// The dimension key holding the run's outcome (`succeeded` or `failed`).
pub const OUTCOME: &str = "Outcome";

/// The dimension sets every metric is published under: the whole stack,
/// per environment, per environment and outcome.
pub const DIMENSION_SETS: [&[&str]; 3] = [&[], &[ENVIRONMENT], &[ENVIRONMENT, OUTCOME]];

/// Most metrics one MetricDirective may hold (the EMF specification).
pub const MAX_METRICS: usize = 100;

/// Most dimension keys one dimension set may hold (the EMF specification).
pub const MAX_DIMENSIONS_PER_SET: usize = 30;

/// The metric holding the time a run waited at the approval gate.
pub const APPROVAL_WAIT_METRIC: &str = "ApprovalWaitSeconds";

/// The metrics every run has, in the order they are listed.
const FIXED_METRICS: [&str; 5] = [
    "Deployments",
    "Succeeded",
    "Failures",
    "RolledBack",
    "DurationSeconds",
];

/// How a deploy run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every phase passed.
    Succeeded,
    /// A phase failed, or the run was aborted or timed out (a refused
    /// request, [`crate::error_names::REFUSALS`], is no deployment: notify
    /// publishes no metrics for it).
    Failed,
}

impl RunOutcome {
    /// `succeeded` or `failed`: the `Outcome` dimension's value (the same
    /// word as notify's `outcome` message attribute).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// How long one phase of the run took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseTiming {
    /// The phase, as [`crate::contract::PHASES`] names it (`bootstrap`,
    /// `database`, `ecs`, `verify`, `dns`; `approval` is the gate's wait).
    pub name: String,
    /// Seconds it took; a phase given twice (verify's rounds) is summed.
    pub seconds: f64,
}

/// What one finished deploy run contributes to the metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    /// The environment (the `Environment` dimension; must not be empty).
    pub environment: String,
    /// The tenant (a plain property, not a dimension).
    pub tenant: String,
    /// The execution's name (a plain property).
    pub execution: String,
    /// How it ended.
    pub outcome: RunOutcome,
    /// When the run started (the execution's start), ms since the epoch.
    pub started_at_ms: u64,
    /// When it ended, ms since the epoch: the line's `_aws.Timestamp`.
    pub ended_at_ms: u64,
    /// The phases it ran, in order.
    pub phases: Vec<PhaseTiming>,
    /// Seconds it waited for approvals (approval environments only).
    pub approval_wait_seconds: Option<f64>,
    /// Whether rollback undid (some of) what it made.
    pub rolled_back: bool,
}

/// The metric a phase's time is published under: `ecs` → `EcsSeconds`,
/// `dns` → `DnsSeconds`; `approval` → [`APPROVAL_WAIT_METRIC`]. A phase
/// stepdeploy does not have yet gets its name's ASCII letters and digits
/// with the first letter upper-cased (`smoke-test` → `SmoketestSeconds`);
/// `None` when nothing of the name is left.
pub fn phase_metric_name(phase: &str) -> Option<String> {
    if phase == "approval" {
        return Some(APPROVAL_WAIT_METRIC.to_string());
    }
    let mut clean = phase.chars().filter(char::is_ascii_alphanumeric);
    let first = clean.next()?;
    Some(format!(
        "{}{}Seconds",
        first.to_ascii_uppercase(),
        clean.collect::<String>()
    ))
}

/// `value` if it can be a metric value (finite, not negative).
fn usable(value: f64) -> Option<f64> {
    (value.is_finite() && value >= 0.0).then_some(value)
}

fn flag(yes: bool) -> f64 {
    if yes {
        1.0
    } else {
        0.0
    }
}

impl RunMetrics {
    /// The metrics of this run, `(name, unit, value)`, in listing order:
    /// the fixed ones, then the approval wait, then one per phase in the
    /// order the phases ran. Values are finite and non-negative; at most
    /// [`MAX_METRICS`].
    pub fn metrics(&self) -> Vec<(String, &'static str, f64)> {
        let failed = self.outcome == RunOutcome::Failed;
        let mut out: Vec<(String, &'static str, f64)> = vec![
            (FIXED_METRICS[0].into(), "Count", 1.0),
            (FIXED_METRICS[1].into(), "Count", flag(!failed)),
            (FIXED_METRICS[2].into(), "Count", flag(failed)),
            (FIXED_METRICS[3].into(), "Count", flag(self.rolled_back)),
        ];
        if self.ended_at_ms >= self.started_at_ms {
            let total = (self.ended_at_ms - self.started_at_ms) as f64 / 1000.0;
            out.push((FIXED_METRICS[4].into(), "Seconds", total));
        }
        // The gate's wait: the explicit figure, else an `approval` phase.
        let mut phases: Vec<(String, f64)> = Vec::new();
        if let Some(wait) = self.approval_wait_seconds.and_then(usable) {
            phases.push((APPROVAL_WAIT_METRIC.to_string(), wait));
        }
        let explicit_wait = !phases.is_empty();
        for phase in &self.phases {
            let (Some(name), Some(seconds)) =
                (phase_metric_name(&phase.name), usable(phase.seconds))
            else {
                continue;
            };
            if FIXED_METRICS.contains(&name.as_str())
                || (explicit_wait && name == APPROVAL_WAIT_METRIC)
            {
                continue;
            }
            match phases.iter_mut().find(|(n, _)| *n == name) {
                Some((_, sum)) => *sum += seconds,
                None => phases.push((name, seconds)),
            }
        }
        out.extend(
            phases
                .into_iter()
                .filter(|(_, s)| s.is_finite())
                .map(|(n, s)| (n, "Seconds", s)),
        );
        out.truncate(MAX_METRICS);
        out
    }

    /// The EMF document (see the module's documentation).
    pub fn emf_document(&self) -> Value {
        let metrics = self.metrics();
        let definitions: Vec<Value> = metrics
            .iter()
            .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
            .collect();
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": self.ended_at_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": DIMENSION_SETS,
                    "Metrics": definitions,
                }],
            }),
        );
        root.insert(ENVIRONMENT.into(), json!(self.environment));
        root.insert(OUTCOME.into(), json!(self.outcome.as_str()));
        root.insert("tenant".into(), json!(self.tenant));
        root.insert("execution".into(), json!(self.execution));
        for (name, _, value) in metrics {
            root.insert(name, json!(value));
        }
        Value::Object(root)
    }

    /// The EMF document as one line, ready for stdout (no newline inside).
    pub fn emf_line(&self) -> String {
        self.emf_document().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(outcome: RunOutcome) -> RunMetrics {
        RunMetrics {
            environment: "prod".into(),
            tenant: "goldencrust".into(),
            execution: "goldencrust-prod-7f3a".into(),
            outcome,
            started_at_ms: 1_764_000_000_000,
            ended_at_ms: 1_764_000_754_500,
            phases: vec![
                PhaseTiming {
                    name: "bootstrap".into(),
                    seconds: 2.5,
                },
                PhaseTiming {
                    name: "database".into(),
                    seconds: 4.0,
                },
                PhaseTiming {
                    name: "ecs".into(),
                    seconds: 30.0,
                },
                PhaseTiming {
                    name: "verify".into(),
                    seconds: 60.0,
                },
                PhaseTiming {
                    name: "verify".into(),
                    seconds: 15.5,
                },
                PhaseTiming {
                    name: "dns".into(),
                    seconds: 3.0,
                },
            ],
            approval_wait_seconds: Some(600.0),
            rolled_back: false,
        }
    }

    fn parse(run: &RunMetrics) -> Value {
        let line = run.emf_line();
        assert!(!line.contains('\n'), "one log line: {line}");
        serde_json::from_str(&line).expect("the line is JSON")
    }

    /// Every metric the directive lists, name → unit.
    fn listed(doc: &Value) -> Vec<(String, String)> {
        doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .expect("Metrics")
            .iter()
            .map(|m| {
                (
                    m["Name"].as_str().expect("Name").to_string(),
                    m["Unit"].as_str().expect("Unit").to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn a_succeeded_run_is_one_emf_document() {
        let doc = parse(&run(RunOutcome::Succeeded));
        let aws = &doc["_aws"];
        assert_eq!(aws["Timestamp"], json!(1_764_000_754_500u64));
        assert!(aws["Timestamp"].is_u64(), "an integer of milliseconds");
        let directives = aws["CloudWatchMetrics"].as_array().expect("array");
        assert_eq!(directives.len(), 1);
        let d = &directives[0];
        assert_eq!(d["Namespace"], "stepdeploy");
        assert_eq!(
            d["Dimensions"],
            json!([[], ["Environment"], ["Environment", "Outcome"]])
        );
        assert_eq!(
            listed(&doc),
            [
                ("Deployments", "Count"),
                ("Succeeded", "Count"),
                ("Failures", "Count"),
                ("RolledBack", "Count"),
                ("DurationSeconds", "Seconds"),
                ("ApprovalWaitSeconds", "Seconds"),
                ("BootstrapSeconds", "Seconds"),
                ("DatabaseSeconds", "Seconds"),
                ("EcsSeconds", "Seconds"),
                ("VerifySeconds", "Seconds"),
                ("DnsSeconds", "Seconds"),
            ]
            .map(|(n, u)| (n.to_string(), u.to_string()))
        );
        // Values and dimensions are top-level members.
        assert_eq!(doc["Environment"], "prod");
        assert_eq!(doc["Outcome"], "succeeded");
        assert_eq!(doc["Deployments"], json!(1.0));
        assert_eq!(doc["Succeeded"], json!(1.0));
        assert_eq!(doc["Failures"], json!(0.0));
        assert_eq!(doc["RolledBack"], json!(0.0));
        assert_eq!(doc["DurationSeconds"], json!(754.5));
        assert_eq!(doc["ApprovalWaitSeconds"], json!(600.0));
        assert_eq!(doc["BootstrapSeconds"], json!(2.5));
        assert_eq!(doc["VerifySeconds"], json!(75.5), "verify's rounds summed");
        assert_eq!(doc["DnsSeconds"], json!(3.0));
        // Tenant and execution are properties, never dimensions.
        assert_eq!(doc["tenant"], "goldencrust");
        assert_eq!(doc["execution"], "goldencrust-prod-7f3a");
        let dims = d["Dimensions"].to_string();
        assert!(!dims.contains("tenant") && !dims.contains("execution"));
        // Nothing else at the top: metrics, dimensions, the two properties, _aws.
        let members = doc.as_object().expect("object").len();
        assert_eq!(members, listed(&doc).len() + 2 + 2 + 1);
    }

    #[test]
    fn every_reference_resolves_as_the_spec_requires() {
        for outcome in [RunOutcome::Succeeded, RunOutcome::Failed] {
            let doc = parse(&run(outcome));
            let d = &doc["_aws"]["CloudWatchMetrics"][0];
            for set in d["Dimensions"].as_array().expect("sets") {
                let keys = set.as_array().expect("a set");
                assert!(keys.len() <= MAX_DIMENSIONS_PER_SET);
                for key in keys {
                    let key = key.as_str().expect("a key");
                    assert!(doc[key].is_string(), "dimension {key} is a string member");
                }
            }
            let names = listed(&doc);
            assert!(!names.is_empty() && names.len() <= MAX_METRICS);
            for (name, _) in &names {
                let v = doc[name].as_f64().expect("a numeric member");
                assert!(v.is_finite() && v >= 0.0, "{name} = {v}");
            }
        }
    }

    #[test]
    fn a_failed_rolled_back_run_counts_as_a_failure() {
        let mut r = run(RunOutcome::Failed);
        r.rolled_back = true;
        r.phases.truncate(3); // failed at ecs
        let doc = parse(&r);
        assert_eq!(doc["Outcome"], "failed");
        assert_eq!(doc["Deployments"], json!(1.0));
        assert_eq!(doc["Succeeded"], json!(0.0));
        assert_eq!(doc["Failures"], json!(1.0));
        assert_eq!(doc["RolledBack"], json!(1.0));
        assert_eq!(doc["EcsSeconds"], json!(30.0));
    }

    #[test]
    fn phases_the_run_did_not_have_are_absent() {
        let mut r = run(RunOutcome::Succeeded);
        r.approval_wait_seconds = None;
        r.phases
            .retain(|p| p.name == "bootstrap" || p.name == "ecs");
        let doc = parse(&r);
        for absent in [
            "ApprovalWaitSeconds",
            "DatabaseSeconds",
            "VerifySeconds",
            "DnsSeconds",
        ] {
            assert!(doc.get(absent).is_none(), "{absent} is not a member");
            assert!(
                listed(&doc).iter().all(|(n, _)| n != absent),
                "{absent} is not listed"
            );
        }
        assert_eq!(
            listed(&doc).len(),
            FIXED_METRICS.len() + 2,
            "the fixed ones, bootstrap and ecs"
        );
    }

    #[test]
    fn values_that_are_not_finite_or_negative_are_left_out() {
        let mut r = run(RunOutcome::Succeeded);
        r.phases = vec![
            PhaseTiming {
                name: "bootstrap".into(),
                seconds: f64::NAN,
            },
            PhaseTiming {
                name: "ecs".into(),
                seconds: -1.0,
            },
            PhaseTiming {
                name: "verify".into(),
                seconds: f64::INFINITY,
            },
            PhaseTiming {
                name: "dns".into(),
                seconds: 0.0,
            },
        ];
        r.approval_wait_seconds = Some(f64::NAN);
        // A clock that went backwards: no total rather than a negative one.
        r.ended_at_ms = r.started_at_ms - 1;
        let doc = parse(&r);
        for absent in [
            "BootstrapSeconds",
            "EcsSeconds",
            "VerifySeconds",
            "ApprovalWaitSeconds",
            "DurationSeconds",
        ] {
            assert!(doc.get(absent).is_none(), "{absent}");
        }
        assert_eq!(doc["DnsSeconds"], json!(0.0));
        for (name, _, v) in r.metrics() {
            assert!(v.is_finite() && v >= 0.0, "{name} = {v}");
        }
    }

    #[test]
    fn the_approval_phase_is_the_approval_wait() {
        let mut r = run(RunOutcome::Succeeded);
        r.approval_wait_seconds = None;
        r.phases.insert(
            1,
            PhaseTiming {
                name: "approval".into(),
                seconds: 42.0,
            },
        );
        assert_eq!(parse(&r)["ApprovalWaitSeconds"], json!(42.0));
        // The explicit figure wins over an `approval` phase.
        r.approval_wait_seconds = Some(600.0);
        let doc = parse(&r);
        assert_eq!(doc["ApprovalWaitSeconds"], json!(600.0));
        let listed = listed(&doc);
        assert_eq!(
            listed
                .iter()
                .filter(|(n, _)| n == "ApprovalWaitSeconds")
                .count(),
            1
        );
    }

    #[test]
    fn phase_names_become_metric_names() {
        assert_eq!(
            phase_metric_name("bootstrap").as_deref(),
            Some("BootstrapSeconds")
        );
        assert_eq!(phase_metric_name("ecs").as_deref(), Some("EcsSeconds"));
        assert_eq!(phase_metric_name("dns").as_deref(), Some("DnsSeconds"));
        assert_eq!(
            phase_metric_name("approval").as_deref(),
            Some("ApprovalWaitSeconds")
        );
        assert_eq!(
            phase_metric_name("smoke-test").as_deref(),
            Some("SmoketestSeconds")
        );
        assert_eq!(phase_metric_name("--"), None);
        assert_eq!(phase_metric_name(""), None);
        // A phase cannot pose as a fixed metric or a dimension.
        let mut r = run(RunOutcome::Succeeded);
        r.phases = vec![PhaseTiming {
            name: "duration".into(),
            seconds: 1.0,
        }];
        assert_eq!(parse(&r)["DurationSeconds"], json!(754.5));
    }

    #[test]
    fn never_more_than_a_hundred_metrics() {
        let mut r = run(RunOutcome::Succeeded);
        r.phases = (0..150)
            .map(|i| PhaseTiming {
                name: format!("p{i}"),
                seconds: 1.0,
            })
            .collect();
        let doc = parse(&r);
        assert_eq!(listed(&doc).len(), MAX_METRICS);
        // Every listed metric still has its value.
        for (name, _) in listed(&doc) {
            assert!(doc[&name].is_number(), "{name}");
        }
    }
}
