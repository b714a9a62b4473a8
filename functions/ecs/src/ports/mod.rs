//! What the ecs phase needs from the environment's account: one small trait
//! per kind of resource, each next to its AWS adapter, one AWS service per
//! file (EFS access points, ECS task definitions and services, ELBv2 target
//! groups and the tenant's listener rule), plus the ledger's state table.

mod ecs;
mod efs;
mod elb;
#[cfg(test)]
pub mod fake;

pub use ecs::{AwsEcs, ServiceSpec, Services, TaskDefinitionState, TaskDefinitions};
pub use efs::{AccessPoint, AccessPoints, AwsEfs};
pub use elb::{AwsElb, HostRules, TargetGroups, HEALTH_CHECK_PATH, MATCHER};

use aws_config::SdkConfig;
use stepdeploy_shared::config::EnvironmentConfig;
use stepdeploy_shared::state::DynamoStateStore;

/// The tag set every resource gets.
pub type Tags = Vec<(String, String)>;

/// The ports acting in one environment's account, one per AWS service.
#[derive(Clone)]
pub struct EnvPorts<Efs, Ecs, Elb, State> {
    /// Access points.
    pub efs: Efs,
    /// Task definitions and services.
    pub ecs: Ecs,
    /// Target groups and listener rules.
    pub elb: Elb,
    /// The run's ledger.
    pub state: State,
}

/// The ports in AWS.
pub type AwsPorts = EnvPorts<AwsEfs, AwsEcs, AwsElb, DynamoStateStore>;

/// The AWS ports from an environment's assumed-role config (for
/// [`AwsConnector::with_env`](stepdeploy_shared::aws::AwsConnector::with_env)).
pub fn aws(config: &SdkConfig, env: &EnvironmentConfig) -> AwsPorts {
    EnvPorts {
        efs: AwsEfs(aws_sdk_efs::Client::new(config)),
        ecs: AwsEcs(aws_sdk_ecs::Client::new(config)),
        elb: AwsElb(aws_sdk_elasticloadbalancingv2::Client::new(config)),
        state: DynamoStateStore::new(
            aws_sdk_dynamodb::Client::new(config),
            env.state_table.clone(),
        ),
    }
}

/// Creates are sent once: the steps retry them with
/// [`create_or_adopt`](stepdeploy_shared::retry::create_or_adopt), which looks
/// for the resource before sending a create again.
fn no_retries() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::disabled()
}

/// A request builder's failure, as the failure of `op`.
fn build_err<E: std::error::Error + Send + Sync + 'static>(
    op: &'static str,
) -> impl FnOnce(E) -> stepdeploy_shared::aws_error::AwsCallError {
    move |e| stepdeploy_shared::aws_error::AwsCallError::other(op, e)
}
