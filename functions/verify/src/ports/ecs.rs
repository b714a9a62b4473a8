//! ECS, for the `service_active` and `service_steady` checks.

use std::future::Future;
use stepdeploy_shared::aws_error::AwsCallError;

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

/// The tenant's ECS service.
pub trait Services: Send + Sync {
    /// The service `name` in `cluster` (a default view when there is none).
    fn service(
        &self,
        cluster: &str,
        name: &str,
    ) -> impl Future<Output = Result<ServiceView, AwsCallError>> + Send;
}

/// ECS adapter.
#[derive(Clone)]
pub struct Ecs(pub aws_sdk_ecs::Client);

impl Services for Ecs {
    async fn service(&self, cluster: &str, name: &str) -> Result<ServiceView, AwsCallError> {
        let out = self
            .0
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
}
