//! What verify reads in the environment's account, and where it writes the
//! report: one trait, with the AWS adapter. Every call here is a read except
//! the report's `PutObject`.

use aws_config::SdkConfig;
use std::future::Future;
use stepdeploy_shared::aws::{s3_client, EnvCache};
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::EnvironmentConfig;

/// The service as ECS reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceView {
    /// `ACTIVE`, `DRAINING`, `INACTIVE`; empty when missing.
    pub status: String,
    /// Desired tasks.
    pub desired: i32,
    /// Running tasks.
    pub running: i32,
    /// The PRIMARY deployment's rollout state (`COMPLETED` when done).
    pub primary_rollout: Option<String>,
    /// The PRIMARY deployment's task definition.
    pub primary_task_definition: Option<String>,
    /// Deployments in all.
    pub deployments: usize,
}

/// Target health, by state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetsView {
    /// Targets registered.
    pub total: usize,
    /// Of which healthy.
    pub healthy: usize,
}

/// Reads for the checks, and the report.
pub trait Observe: Send + Sync {
    /// Whether the secret exists (and is not scheduled for deletion).
    fn secret_exists(&self, name: &str) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
    /// The service.
    fn service(
        &self,
        cluster: &str,
        name: &str,
    ) -> impl Future<Output = Result<ServiceView, AwsCallError>> + Send;
    /// The DNS name of the load balancer that `listener_arn` belongs to.
    fn load_balancer_dns(
        &self,
        listener_arn: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;
    /// Target health of a target group.
    fn targets(
        &self,
        target_group_arn: &str,
    ) -> impl Future<Output = Result<TargetsView, AwsCallError>> + Send;
    /// Log lines matching `term` in streams starting with `prefix` since `since_ms`; at most a few, for the report.
    fn log_lines(
        &self,
        group: &str,
        prefix: &str,
        term: &str,
        since_ms: i64,
    ) -> impl Future<Output = Result<Vec<String>, AwsCallError>> + Send;
    /// Writes the report.
    fn put_report(
        &self,
        bucket: &str,
        key: &str,
        body: String,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// The AWS adapter.
#[derive(Clone)]
pub struct AwsObserve {
    ecs: aws_sdk_ecs::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    secrets: aws_sdk_secretsmanager::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    s3: aws_sdk_s3::Client,
}

impl Observe for AwsObserve {
    async fn secret_exists(&self, name: &str) -> Result<bool, AwsCallError> {
        match self.secrets.describe_secret().secret_id(name).send().await {
            Ok(d) => Ok(d.deleted_date().is_none()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(AwsCallError::new("secretsmanager:DescribeSecret", e)),
        }
    }

    async fn service(&self, cluster: &str, name: &str) -> Result<ServiceView, AwsCallError> {
        let out = self
            .ecs
            .describe_services()
            .cluster(cluster)
            .services(name)
            .send()
            .await
            .map_err(|e| AwsCallError::new("ecs:DescribeServices", e))?;
        Ok(out
            .services()
            .first()
            .map(|s| {
                let primary = s
                    .deployments()
                    .iter()
                    .find(|d| d.status() == Some("PRIMARY"));
                ServiceView {
                    status: s.status().unwrap_or_default().to_string(),
                    desired: s.desired_count(),
                    running: s.running_count(),
                    primary_rollout: primary
                        .and_then(|d| d.rollout_state())
                        .map(|r| r.as_str().to_string()),
                    primary_task_definition: primary
                        .and_then(|d| d.task_definition())
                        .map(str::to_string),
                    deployments: s.deployments().len(),
                }
            })
            .unwrap_or_default())
    }

    async fn load_balancer_dns(&self, listener_arn: &str) -> Result<Option<String>, AwsCallError> {
        let Some(load_balancer_arn) = load_balancer_of(listener_arn) else {
            return Ok(None);
        };
        let out = self
            .elb
            .describe_load_balancers()
            .load_balancer_arns(load_balancer_arn)
            .send()
            .await
            .map_err(|e| AwsCallError::new("elbv2:DescribeLoadBalancers", e))?;
        Ok(out
            .load_balancers()
            .first()
            .and_then(|lb| lb.dns_name())
            .map(str::to_string))
    }

    async fn targets(&self, target_group_arn: &str) -> Result<TargetsView, AwsCallError> {
        let out = self
            .elb
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|e| AwsCallError::new("elbv2:DescribeTargetHealth", e))?;
        let states = out.target_health_descriptions();
        Ok(TargetsView {
            total: states.len(),
            healthy: states
                .iter()
                .filter(|t| {
                    t.target_health()
                        .and_then(|h| h.state())
                        .map(|s| s.as_str())
                        == Some("healthy")
                })
                .count(),
        })
    }

    async fn log_lines(
        &self,
        group: &str,
        prefix: &str,
        term: &str,
        since_ms: i64,
    ) -> Result<Vec<String>, AwsCallError> {
        let result = self
            .logs
            .filter_log_events()
            .log_group_name(group)
            .log_stream_name_prefix(prefix)
            .filter_pattern(term)
            .start_time(since_ms)
            .limit(5)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .events()
                .iter()
                .filter_map(|e| e.message().map(str::to_string))
                .collect()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(AwsCallError::new("logs:FilterLogEvents", e)),
        }
    }

    async fn put_report(&self, bucket: &str, key: &str, body: String) -> Result<(), AwsCallError> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(body.into_bytes().into())
            .send()
            .await
            .map_err(|e| AwsCallError::new("s3:PutObject (report)", e))?;
        Ok(())
    }
}

/// `arn:…:listener/app/{name}/{lb id}/{listener id}` → `arn:…:loadbalancer/app/{name}/{lb id}`.
pub fn load_balancer_of(listener_arn: &str) -> Option<String> {
    let (prefix, rest) = listener_arn.split_once(":listener/")?;
    let (load_balancer, _listener_id) = rest.rsplit_once('/')?;
    Some(format!("{prefix}:loadbalancer/{load_balancer}"))
}

/// Assumes each environment's deploy role once per cold start and keeps the clients.
pub struct AwsConnector(EnvCache<AwsObserve>);

impl AwsConnector {
    /// A connector on top of the orchestrator's own config.
    pub fn new(base: SdkConfig) -> Self {
        Self(EnvCache::new(base, "stepdeploy-verify"))
    }
}

/// Gives the observation port for an environment.
pub trait Connector: Send + Sync {
    /// The port.
    type Observe: Observe;
    /// Acting in `env`'s account.
    fn connect(&self, env: &EnvironmentConfig) -> impl Future<Output = Self::Observe> + Send;
}

impl Connector for AwsConnector {
    type Observe = AwsObserve;

    async fn connect(&self, env: &EnvironmentConfig) -> AwsObserve {
        self.0
            .get(env, |config| AwsObserve {
                ecs: aws_sdk_ecs::Client::new(config),
                elb: aws_sdk_elasticloadbalancingv2::Client::new(config),
                secrets: aws_sdk_secretsmanager::Client::new(config),
                logs: aws_sdk_cloudwatchlogs::Client::new(config),
                s3: s3_client(config),
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_balancer_of_a_listener() {
        assert_eq!(
            load_balancer_of(
                "arn:aws:elasticloadbalancing:eu-west-1:222222222222:listener/app/sit-alb/50dc6c495c0c9188/f2f7dc8efc522ab2"
            )
            .as_deref(),
            Some("arn:aws:elasticloadbalancing:eu-west-1:222222222222:loadbalancer/app/sit-alb/50dc6c495c0c9188")
        );
        assert_eq!(load_balancer_of("arn:aws:s3:::bucket"), None);
    }
}
