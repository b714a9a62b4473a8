//! What verify reads in the environment's account, one service per file,
//! and where it writes the report. Every call is a read except the report's
//! `PutObject`.

pub mod ecs;
pub mod elb;
pub mod logs;
pub mod s3;
pub mod secrets;

pub use ecs::{Ecs, ServiceView, Services};
pub use elb::{Elb, LoadBalancers};
pub use logs::{CloudWatchLogs, Logs};
pub use s3::{Reports, S3};
pub use secrets::{Secrets, SecretsManager};

use aws_config::SdkConfig;
use stepdeploy_shared::aws::{s3_client, AwsConnector};

/// verify's ports in one environment.
#[derive(Clone)]
pub struct EnvPorts<Se, Sv, Lb, Lg, Rp> {
    /// Secrets Manager.
    pub secrets: Se,
    /// ECS.
    pub services: Sv,
    /// ELBv2.
    pub load_balancers: Lb,
    /// CloudWatch Logs.
    pub logs: Lg,
    /// The config bucket, for the report.
    pub reports: Rp,
}

/// The AWS ports.
pub type AwsPorts = EnvPorts<SecretsManager, Ecs, Elb, CloudWatchLogs, S3>;

/// The AWS ports, built once per environment per cold start.
pub fn connector(base: SdkConfig) -> AwsConnector<AwsPorts> {
    AwsConnector::new(base, "stepdeploy-verify", |config| EnvPorts {
        secrets: SecretsManager(aws_sdk_secretsmanager::Client::new(config)),
        services: Ecs(aws_sdk_ecs::Client::new(config)),
        load_balancers: Elb(aws_sdk_elasticloadbalancingv2::Client::new(config)),
        logs: CloudWatchLogs(aws_sdk_cloudwatchlogs::Client::new(config)),
        reports: S3(s3_client(config)),
    })
}
