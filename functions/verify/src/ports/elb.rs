//! Elastic Load Balancing, for the `targets_healthy` check and for the
//! `http` check's way in (the ALB's own DNS name).

use std::future::Future;
use stepdeploy_shared::aws_error::AwsCallError;

/// Target health, by state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetsView {
    /// Targets registered.
    pub total: usize,
    /// Of which healthy.
    pub healthy: usize,
}

/// The environment's load balancer and the tenant's target group.
pub trait LoadBalancers: Send + Sync {
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
}

/// ELBv2 adapter.
#[derive(Clone)]
pub struct Elb(pub aws_sdk_elasticloadbalancingv2::Client);

impl LoadBalancers for Elb {
    async fn load_balancer_dns(&self, listener_arn: &str) -> Result<Option<String>, AwsCallError> {
        let Some(load_balancer_arn) = load_balancer_of(listener_arn) else {
            return Ok(None);
        };
        let out = self
            .0
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
            .0
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
}

/// `arn:…:listener/app/{name}/{lb id}/{listener id}` → `arn:…:loadbalancer/app/{name}/{lb id}`.
pub fn load_balancer_of(listener_arn: &str) -> Option<String> {
    let (prefix, rest) = listener_arn.split_once(":listener/")?;
    let (load_balancer, _listener_id) = rest.rsplit_once('/')?;
    Some(format!("{prefix}:loadbalancer/{load_balancer}"))
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
