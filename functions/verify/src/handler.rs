//! One round of verify: every check once, no sleeping. The state machine's
//! Wait/Choice loop calls this until `stable` or the attempts run out; the
//! last round (stable, or the final attempt) writes the JSON report to the
//! config bucket under `{env}/{tenant}/reports/`.

use crate::ports::{Connector, Observe};
use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;
use serde::Deserialize;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::contract::{Check, EcsOutput, VerifyOutput};
use stepdeploy_shared::error_names;
use stepdeploy_shared::errors::{diagnostic, ErrorName};
use stepdeploy_shared::http::Site;
use stepdeploy_shared::DeploymentPlan;

/// What the state machine passes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyInput {
    /// bootstrap's plan.
    pub plan: DeploymentPlan,
    /// ecs's output (extra fields ignored).
    pub ecs: EcsOutput,
    /// Rounds done before this one.
    pub attempt: u32,
}

/// `name: detail` of each failing check, each detail cut to 200 characters.
pub fn failing_summary(checks: &[Check]) -> String {
    let lines: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| {
            let detail: String = c.detail.split_whitespace().collect::<Vec<_>>().join(" ");
            let cut: String = detail.chars().take(200).collect();
            format!("{}: {cut}", c.name)
        })
        .collect();
    if lines.is_empty() {
        "none".into()
    } else {
        lines.join("; ")
    }
}

/// Why a round could not even run its checks.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The payload is not `{plan, ecs, attempt}`.
    #[error("invalid input: {0}")]
    Validation(String),
    /// An AWS read failed (not a failed check: the check could not be made).
    #[error(transparent)]
    Aws(#[from] AwsCallError),
}

impl ErrorName for VerifyError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Validation(_) => error_names::VALIDATION_FAILED,
            Self::Aws(e) => e.error_name(),
        }
    }
}

impl From<VerifyError> for lambda_runtime::Diagnostic {
    fn from(err: VerifyError) -> Self {
        diagnostic(&err)
    }
}

/// HTTP answers that mean WordPress is up (a fresh install redirects to its setup page).
pub const GOOD_STATUS: [u16; 3] = [200, 301, 302];

fn check(name: &str, ok: bool, detail: String) -> Check {
    Check {
        name: name.into(),
        ok,
        detail,
    }
}

/// Runs one round.
pub async fn handle(
    input: serde_json::Value,
    connector: &impl Connector,
    site: &impl Site,
) -> Result<VerifyOutput, VerifyError> {
    let VerifyInput { plan, ecs, attempt } = serde_json::from_value(input)
        .map_err(|e| VerifyError::Validation(format!("expected {{plan, ecs, attempt}}: {e}")))?;
    let env = &plan.env;
    let names = &plan.names;
    let observe = connector.connect(env).await;
    let mut checks = Vec::new();

    let secret = observe.secret_exists(&names.db_secret).await?;
    checks.push(check(
        "secret",
        secret,
        format!(
            "{} {}",
            names.db_secret,
            if secret { "exists" } else { "is missing" }
        ),
    ));

    let service = observe.service(&env.cluster, &names.service).await?;
    checks.push(check(
        "service_active",
        service.status == "ACTIVE",
        format!("{} is {:?}", names.service, service.status),
    ));
    let steady = service.running == service.desired
        && service.desired > 0
        && service.primary_rollout.as_deref() == Some("COMPLETED")
        && service.primary_task_definition.as_deref() == Some(ecs.task_definition_arn.as_str());
    checks.push(check(
        "service_steady",
        steady,
        format!(
            "running {}/{} desired, primary deployment {} on {}, {} deployment(s)",
            service.running,
            service.desired,
            service.primary_rollout.as_deref().unwrap_or("missing"),
            service.primary_task_definition.as_deref().unwrap_or("none"),
            service.deployments
        ),
    ));

    let targets = observe.targets(&ecs.target_group_arn).await?;
    checks.push(check(
        "targets_healthy",
        targets.total > 0 && targets.healthy == targets.total,
        format!("{}/{} targets healthy", targets.healthy, targets.total),
    ));

    // Through the load balancer, not DNS: the tenant's name has no record
    // before the dns phase (and none at all in dev). The URL keeps the name,
    // so it is the TLS SNI and the Host; the connection goes to the ALB.
    let (url, via) = match &env.verify.base_url {
        Some(base) => (format!("{}/", base.trim_end_matches('/')), None),
        None => (
            format!("https://{}/", names.host),
            observe.load_balancer_dns(&env.alb_listener_arn).await?,
        ),
    };
    let (http, how) = match &via {
        Some(alb) => (site.status_via(&url, alb).await, format!("via {alb}")),
        None => (
            site.status(&url, &names.host).await,
            format!("Host: {}", names.host),
        ),
    };
    checks.push(match http {
        Ok(status) => check(
            "http",
            GOOD_STATUS.contains(&status),
            format!("GET {url} ({how}) answered {status}"),
        ),
        Err(why) => check("http", false, format!("GET {url} ({how}) failed: {why}")),
    });

    let since_ms = DateTime::from_str(&plan.started_at, Format::DateTime)
        .map(|t| t.to_millis().unwrap_or(0))
        .unwrap_or(0);
    let mut errors = Vec::new();
    for term in ["ERROR", "Fatal"] {
        errors.extend(
            observe
                .log_lines(&env.log_group, &names.log_stream_prefix, term, since_ms)
                .await?,
        );
    }
    checks.push(check(
        "logs",
        errors.is_empty(),
        if errors.is_empty() {
            format!(
                "no ERROR or Fatal lines in {} streams {}* since {}",
                env.log_group, names.log_stream_prefix, plan.started_at
            )
        } else {
            format!(
                "{} error line(s), first: {}",
                errors.len(),
                errors[0].chars().take(300).collect::<String>()
            )
        },
    ));

    let stable = checks.iter().all(|c| c.ok);
    let attempt = attempt + 1;
    let last = stable || attempt >= env.verify.max_attempts;
    let mut output = VerifyOutput {
        stable,
        attempt,
        failing: failing_summary(&checks),
        checks,
        report: None,
    };
    if last {
        let execution = plan.execution.rsplit(':').next().unwrap_or("run");
        let key = format!("{}{execution}.json", names.reports_prefix);
        let report = serde_json::json!({
            "tenant": plan.tenant, "environment": plan.environment, "execution": plan.execution,
            "image": plan.image, "started_at": plan.started_at, "verdict": if stable { "stable" } else { "not stable" },
            "attempts": attempt, "checks": output.checks,
        });
        observe
            .put_report(
                &env.config_bucket,
                &key,
                serde_json::to_string_pretty(&report).unwrap_or_default(),
            )
            .await?;
        output.report = Some(format!("s3://{}/{key}", env.config_bucket));
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{ServiceView, TargetsView};
    use std::sync::{Arc, Mutex};
    use stepdeploy_shared::config::EnvironmentConfig;

    /// What the account looks like, and the reports written.
    #[derive(Clone)]
    struct Fake {
        secret: bool,
        service: ServiceView,
        targets: TargetsView,
        errors: Vec<String>,
        reports: Arc<Mutex<Vec<(String, String)>>>,
    }

    fn healthy() -> Fake {
        Fake {
            secret: true,
            service: ServiceView {
                status: "ACTIVE".into(),
                desired: 1,
                running: 1,
                primary_rollout: Some("COMPLETED".into()),
                primary_task_definition: Some("arn:td:2".into()),
                deployments: 1,
            },
            targets: TargetsView {
                total: 1,
                healthy: 1,
            },
            errors: vec![],
            reports: Arc::default(),
        }
    }

    impl Observe for Fake {
        async fn secret_exists(&self, _name: &str) -> Result<bool, AwsCallError> {
            Ok(self.secret)
        }
        async fn service(&self, _cluster: &str, _name: &str) -> Result<ServiceView, AwsCallError> {
            Ok(self.service.clone())
        }
        async fn targets(&self, _tg: &str) -> Result<TargetsView, AwsCallError> {
            Ok(self.targets.clone())
        }
        async fn load_balancer_dns(&self, _listener: &str) -> Result<Option<String>, AwsCallError> {
            Ok(Some(
                "internal-sit-alb-1.eu-west-1.elb.amazonaws.com".into(),
            ))
        }
        async fn log_lines(
            &self,
            _group: &str,
            _prefix: &str,
            term: &str,
            _since: i64,
        ) -> Result<Vec<String>, AwsCallError> {
            Ok(self
                .errors
                .iter()
                .filter(|l| l.contains(term))
                .cloned()
                .collect())
        }
        async fn put_report(
            &self,
            bucket: &str,
            key: &str,
            _body: String,
        ) -> Result<(), AwsCallError> {
            self.reports
                .lock()
                .expect("lock")
                .push((bucket.into(), key.into()));
            Ok(())
        }
    }

    impl Connector for Fake {
        type Observe = Fake;
        async fn connect(&self, _env: &EnvironmentConfig) -> Fake {
            self.clone()
        }
    }

    struct Answers(u16);
    impl Site for Answers {
        async fn status(&self, _url: &str, _host: &str) -> Result<u16, String> {
            Ok(self.0)
        }
        async fn status_via(&self, url: &str, connect_to: &str) -> Result<u16, String> {
            // No base_url in the sample plan: the ALB, with the tenant's name in the URL.
            assert_eq!(url, "https://goldencrust.wpsit.kimmyai.io/");
            assert_eq!(connect_to, "internal-sit-alb-1.eu-west-1.elb.amazonaws.com");
            Ok(self.0)
        }
    }

    fn input(attempt: u32) -> serde_json::Value {
        serde_json::json!({
            "plan": stepdeploy_shared::plan::sample("wordpress:6.4-apache", 140),
            "ecs": {"task_definition_arn": "arn:td:2", "target_group_arn": "arn:tg", "service_arn": "arn:svc", "access_point_id": "fsap-1", "listener_rule_arn": "arn:rule", "changes": []},
            "attempt": attempt
        })
    }

    #[tokio::test]
    async fn healthy_tenant_is_stable_and_reported() {
        let fake = healthy();
        let out = handle(input(0), &fake, &Answers(302)).await.expect("round");
        assert!(out.stable, "{:?}", out.checks);
        assert_eq!(out.attempt, 1);
        assert_eq!(
            out.report.as_deref(),
            Some("s3://stepdeploy-config-sit-222222222222/sit/goldencrust/reports/1.json")
        );
        assert_eq!(fake.reports.lock().expect("lock").len(), 1);
    }

    #[tokio::test]
    async fn each_failing_check_is_named_and_only_the_last_round_reports() {
        let mut fake = healthy();
        fake.service.running = 0;
        fake.targets = TargetsView {
            total: 1,
            healthy: 0,
        };
        fake.errors = vec!["PHP Fatal error: out of memory".into()];
        let out = handle(input(0), &fake, &Answers(500)).await.expect("round");
        assert!(!out.stable);
        let failed: Vec<&str> = out
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            failed,
            ["service_steady", "targets_healthy", "http", "logs"]
        );
        assert_eq!(out.report, None);
        // The last allowed round (max_attempts = 40 in sit.json) writes the report even when not stable.
        let last = handle(input(39), &fake, &Answers(500))
            .await
            .expect("round");
        assert_eq!(last.attempt, 40);
        assert!(last.report.is_some());
    }

    #[tokio::test]
    async fn a_service_on_an_old_revision_is_not_steady() {
        let mut fake = healthy();
        fake.service.primary_task_definition = Some("arn:td:1".into());
        let out = handle(input(0), &fake, &Answers(200)).await.expect("round");
        assert!(!out.stable);
        assert!(out
            .checks
            .iter()
            .any(|c| c.name == "service_steady" && !c.ok && c.detail.contains("arn:td:1")));
    }
}
