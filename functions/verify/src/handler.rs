//! One round of verify: every check once, no sleeping. The state machine's
//! Wait/Choice loop calls this until `stable` or the attempts run out; the
//! last round (stable, or the final attempt) writes the JSON report to the
//! config bucket under `{env}/{tenant}/reports/`.

use crate::checks;
use crate::error::VerifyError;
use crate::ports::{EnvPorts, LoadBalancers, Logs, Reports, Secrets, Services};
use serde::Deserialize;
use stepdeploy_shared::aws::Connect;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::contract::{Check, EcsOutput, VerifyOutput};
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

/// Runs one round.
pub async fn handle<Se, Sv, Lb, Lg, Rp>(
    VerifyInput { plan, ecs, attempt }: VerifyInput,
    connector: &impl Connect<EnvPorts<Se, Sv, Lb, Lg, Rp>>,
    site: &impl Site,
) -> Result<VerifyOutput, VerifyError>
where
    Se: Secrets,
    Sv: Services,
    Lb: LoadBalancers,
    Lg: Logs,
    Rp: Reports,
{
    let names = &plan.names;
    let ports = connector.connect(&plan.env).await;
    let secret = checks::secret(&ports.secrets, names).await?;
    let service = ports
        .services
        .service(&plan.env.cluster, &names.service)
        .await?;
    let checks = vec![
        secret,
        checks::service_active(&service, names),
        checks::service_steady(&service, &ecs),
        checks::targets_healthy(&ports.load_balancers, &ecs).await?,
        checks::http(&ports.load_balancers, site, &plan).await?,
        checks::logs(&ports.logs, &plan).await?,
    ];
    Ok(report(&plan, attempt + 1, checks, &ports.reports).await?)
}

/// The round's verdict; the last round (stable, or out of attempts) also
/// writes the report and says where.
async fn report(
    plan: &DeploymentPlan,
    attempt: u32,
    checks: Vec<Check>,
    reports: &impl Reports,
) -> Result<VerifyOutput, AwsCallError> {
    let (env, names) = (&plan.env, &plan.names);
    let stable = checks.iter().all(|c| c.ok);
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
        reports
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::check;
    use crate::ports::elb::TargetsView;
    use crate::ports::ServiceView;
    use std::sync::{Arc, Mutex};
    use stepdeploy_shared::aws::Same;

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

    impl Secrets for Fake {
        async fn secret_exists(&self, _name: &str) -> Result<bool, AwsCallError> {
            Ok(self.secret)
        }
    }

    impl Services for Fake {
        async fn service(&self, _cluster: &str, _name: &str) -> Result<ServiceView, AwsCallError> {
            Ok(self.service.clone())
        }
    }

    impl LoadBalancers for Fake {
        async fn targets(&self, _tg: &str) -> Result<TargetsView, AwsCallError> {
            Ok(self.targets.clone())
        }
        async fn load_balancer_dns(&self, _listener: &str) -> Result<Option<String>, AwsCallError> {
            Ok(Some(
                "internal-sit-alb-1.eu-west-1.elb.amazonaws.com".into(),
            ))
        }
    }

    impl Logs for Fake {
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
    }

    impl Reports for Fake {
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

    /// The same fake behind every port.
    fn connector(fake: &Fake) -> Same<EnvPorts<Fake, Fake, Fake, Fake, Fake>> {
        Same(EnvPorts {
            secrets: fake.clone(),
            services: fake.clone(),
            load_balancers: fake.clone(),
            logs: fake.clone(),
            reports: fake.clone(),
        })
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

    fn input(attempt: u32) -> VerifyInput {
        serde_json::from_value(serde_json::json!({
            "plan": stepdeploy_shared::plan::sample("wordpress:6.4-apache", 140),
            "ecs": {"task_definition_arn": "arn:td:2", "target_group_arn": "arn:tg", "service_arn": "arn:svc", "access_point_id": "fsap-1", "listener_rule_arn": "arn:rule", "changes": []},
            "attempt": attempt
        }))
        .expect("a verify input")
    }

    #[tokio::test]
    async fn healthy_tenant_is_stable_and_reported() {
        let fake = healthy();
        let out = handle(input(0), &connector(&fake), &Answers(302))
            .await
            .expect("round");
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
        let out = handle(input(0), &connector(&fake), &Answers(500))
            .await
            .expect("round");
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
        let last = handle(input(39), &connector(&fake), &Answers(500))
            .await
            .expect("round");
        assert_eq!(last.attempt, 40);
        assert!(last.report.is_some());
    }

    #[tokio::test]
    async fn a_service_on_an_old_revision_is_not_steady() {
        let mut fake = healthy();
        fake.service.primary_task_definition = Some("arn:td:1".into());
        let out = handle(input(0), &connector(&fake), &Answers(200))
            .await
            .expect("round");
        assert!(!out.stable);
        assert!(out
            .checks
            .iter()
            .any(|c| c.name == "service_steady" && !c.ok && c.detail.contains("arn:td:1")));
    }

    #[test]
    fn the_failing_summary_names_each_failing_check_on_one_short_line() {
        let checks = [
            check("secret", true, "exists".into()),
            check("http", false, "GET /\n answered   500".into()),
            check("logs", false, "x".repeat(300)),
        ];
        let summary = failing_summary(&checks);
        assert!(
            summary.starts_with("http: GET / answered 500; logs: xxx"),
            "{summary}"
        );
        assert_eq!(
            summary.len(),
            "http: GET / answered 500; logs: ".len() + 200
        );
        assert_eq!(failing_summary(&checks[..1]), "none");
    }
}
