//! verify's checks, one function each, in the order a round makes them.
//! A check that fails is a verdict (`ok: false` and what was seen); only a
//! read that could not be made is an error.

use crate::ports::{LoadBalancers, Logs, Secrets, ServiceView};
use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::contract::{Check, EcsOutput};
use stepdeploy_shared::http::Site;
use stepdeploy_shared::{DeploymentPlan, ResourceNames};

/// HTTP answers that mean WordPress is up (a fresh install redirects to its setup page).
pub const GOOD_STATUS: [u16; 3] = [200, 301, 302];

/// A verdict.
pub fn check(name: &str, ok: bool, detail: String) -> Check {
    Check {
        name: name.into(),
        ok,
        detail,
    }
}

/// `secret`: the tenant's database secret exists (and is not being deleted).
pub async fn secret(secrets: &impl Secrets, names: &ResourceNames) -> Result<Check, AwsCallError> {
    let exists = secrets.secret_exists(&names.db_secret).await?;
    Ok(check(
        "secret",
        exists,
        format!(
            "{} {}",
            names.db_secret,
            if exists { "exists" } else { "is missing" }
        ),
    ))
}

/// `service_active`: the service exists and is `ACTIVE`.
pub fn service_active(service: &ServiceView, names: &ResourceNames) -> Check {
    check(
        "service_active",
        service.status == "ACTIVE",
        format!("{} is {:?}", names.service, service.status),
    )
}

/// `service_steady`: every desired task runs, and the PRIMARY deployment has
/// finished rolling out the task definition ecs made in this run.
pub fn service_steady(service: &ServiceView, ecs: &EcsOutput) -> Check {
    let steady = service.running == service.desired
        && service.desired > 0
        && service.primary_rollout.as_deref() == Some("COMPLETED")
        && service.primary_task_definition.as_deref() == Some(ecs.task_definition_arn.as_str());
    check(
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
    )
}

/// `targets_healthy`: the target group has targets and all are healthy.
pub async fn targets_healthy(
    load_balancers: &impl LoadBalancers,
    ecs: &EcsOutput,
) -> Result<Check, AwsCallError> {
    let targets = load_balancers.targets(&ecs.target_group_arn).await?;
    Ok(check(
        "targets_healthy",
        targets.total > 0 && targets.healthy == targets.total,
        format!("{}/{} targets healthy", targets.healthy, targets.total),
    ))
}

/// `http`: `GET /` answers one of [`GOOD_STATUS`].
///
/// Through the load balancer, not DNS: the tenant's name has no record
/// before the dns phase (and none at all in dev). The URL keeps the name,
/// so it is the TLS SNI and the Host; the connection goes to the ALB. With
/// `verify.base_url` (the local stand-in) the URL is that, the Host the name.
pub async fn http(
    load_balancers: &impl LoadBalancers,
    site: &impl Site,
    plan: &DeploymentPlan,
) -> Result<Check, AwsCallError> {
    let (env, names) = (&plan.env, &plan.names);
    let (url, via) = match &env.verify.base_url {
        Some(base) => (format!("{}/", base.trim_end_matches('/')), None),
        None => (
            format!("https://{}/", names.host),
            load_balancers
                .load_balancer_dns(&env.alb_listener_arn)
                .await?,
        ),
    };
    let (http, how) = match &via {
        Some(alb) => (site.status_via(&url, alb).await, format!("via {alb}")),
        None => (
            site.status(&url, &names.host).await,
            format!("Host: {}", names.host),
        ),
    };
    Ok(match http {
        Ok(status) => check(
            "http",
            GOOD_STATUS.contains(&status),
            format!("GET {url} ({how}) answered {status}"),
        ),
        Err(why) => check("http", false, format!("GET {url} ({how}) failed: {why}")),
    })
}

/// `logs`: no `ERROR` or `Fatal` line in the tenant's streams since the run started.
pub async fn logs(logs: &impl Logs, plan: &DeploymentPlan) -> Result<Check, AwsCallError> {
    let (env, names) = (&plan.env, &plan.names);
    let since_ms = DateTime::from_str(&plan.started_at, Format::DateTime)
        .map(|t| t.to_millis().unwrap_or(0))
        .unwrap_or(0);
    let mut errors = Vec::new();
    for term in ["ERROR", "Fatal"] {
        errors.extend(
            logs.log_lines(&env.log_group, &names.log_stream_prefix, term, since_ms)
                .await?,
        );
    }
    Ok(check(
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
    ))
}
